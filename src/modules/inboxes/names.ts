// Names and addresses for generated inboxes: realistic first and last names (faker, in a locale, or
// the caller's own lists), turned into local parts by a naming pattern, unique within each domain.
import { validationFailed } from '../../core/errors.ts';

export const PATTERNS = ['first.last', 'firstlast', 'first', 'f.last', 'first_l', 'firstl'] as const;
export type PatternName = (typeof PATTERNS)[number];

/** The fixed patterns as templates: {first} {last} {f} {l}, and {n} for a number that makes it unique. */
const TEMPLATES: Record<PatternName, string> = {
  'first.last': '{first}.{last}',
  firstlast: '{first}{last}',
  first: '{first}',
  'f.last': '{f}.{last}',
  first_l: '{first}_{l}',
  firstl: '{first}{l}',
};
const TEMPLATE_FIELD = /\{(first|last|f|l|n)\}/g;
const TEMPLATE_SHAPE = /^([a-z0-9._-]|\{(first|last|f|l|n)\})+$/;

export interface PersonName {
  first: string;
  last: string;
}

/** Where names come from: a locale's names, or the caller's lists. */
export type NameSource = () => PersonName;

/** A template from a pattern name or a template string; 422 when it cannot make local parts. */
export function templateOf(pattern: string): string {
  const template = (TEMPLATES as Record<string, string>)[pattern] ?? pattern.toLowerCase();
  if (!TEMPLATE_SHAPE.test(template) || !/\{(first|last|f|l)\}/.test(template))
    throw validationFailed(
      'pattern',
      `must be one of ${PATTERNS.join(', ')}, or a template of {first}, {last}, {f}, {l}, {n} and the characters a-z 0-9 . _ -`,
    );
  if (template.length > 60) throw validationFailed('pattern', 'a template has at most 60 characters');
  return template;
}

/** A name as it goes into an address: Latin letters only, diacritics dropped (Müller → muller). */
export function asciiName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/ß/g, 'ss')
    .replace(/[æ]/gi, 'ae')
    .replace(/[ø]/gi, 'o')
    .replace(/[ł]/gi, 'l')
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}

/** The local part for a name, with `n` for {n} (omitted when null); null when the name has no Latin letters. */
export function localPartFor(template: string, name: PersonName, n: number | null): string | null {
  const first = asciiName(name.first);
  const last = asciiName(name.last);
  if (!first || !last) return null;
  const parts: Record<string, string> = {
    first,
    last,
    f: first[0],
    l: last[0],
    n: n === null ? '' : String(n),
  };
  const local = template
    .replace(TEMPLATE_FIELD, (_, key: string) => parts[key])
    .replace(/[._-]{2,}/g, (m) => m[0])
    .replace(/^[._-]+|[._-]+$/g, '');
  return local.length > 0 && local.length <= 64 ? local : null;
}

/** Names from a faker locale (e.g. en, de, fr, en_GB); 422 for a locale faker does not have. */
export async function localeNames(locale: string): Promise<NameSource> {
  // The locale names a module path: only faker's own shape of locale code gets that far.
  if (!/^[a-z]{2,3}(_[A-Za-z]{2,8})*$/.test(locale)) throw unknownLocale(locale);
  let faker: { person: { firstName(): string; lastName(): string } };
  try {
    ({ faker } = await import(`@faker-js/faker/locale/${locale}`));
  } catch {
    throw unknownLocale(locale);
  }
  return () => ({ first: faker.person.firstName(), last: faker.person.lastName() });
}

function unknownLocale(locale: string) {
  return validationFailed(
    'locale',
    `${locale} is not a locale of @faker-js/faker (e.g. en, en_GB, de, fr, es)`,
  );
}

/** Names drawn from the caller's lists. */
export function listNames(
  firstNames: string[],
  lastNames: string[],
  random: (n: number) => number,
): NameSource {
  return () => ({
    first: firstNames[random(firstNames.length)].trim(),
    last: lastNames[random(lastNames.length)].trim(),
  });
}

/**
 * `count` distinct local parts for one domain, none in `taken` (which it extends). A name whose local
 * part is taken is drawn again a few times; then the smallest free number is added ({n}, or at the end).
 * 422 when the names cannot be written in Latin letters.
 */
export function planAddresses(
  count: number,
  template: string,
  names: NameSource,
  taken: Set<string>,
  refused: (localPart: string) => boolean,
): { localPart: string; name: PersonName }[] {
  const numbered = template.includes('{n}');
  const planned: { localPart: string; name: PersonName }[] = [];
  let unusable = 0;
  while (planned.length < count) {
    // A taken address gets another name a few times; the name kept is the one its address is made of.
    let name = names();
    let localPart: string | null = null;
    for (let tries = 0; tries < 5 && localPart === null; tries++) {
      const candidate = tries === 0 ? name : names();
      const local = localPartFor(template, candidate, null);
      if (local && !taken.has(local) && !refused(local)) [localPart, name] = [local, candidate];
    }
    localPart ??= withNumber(template, name, numbered, taken, refused);
    if (localPart === null) {
      if (++unusable > 100 + count)
        throw validationFailed(
          'locale',
          'its names cannot be written in Latin letters for addresses; choose another locale or give names',
        );
      continue;
    }
    taken.add(localPart);
    planned.push({ localPart, name });
  }
  return planned;
}

function withNumber(
  template: string,
  name: PersonName,
  numbered: boolean,
  taken: Set<string>,
  refused: (localPart: string) => boolean,
): string | null {
  const base = numbered ? template : `${template}{n}`;
  for (let n = 2; n < 1_000_000; n++) {
    const candidate = localPartFor(base, name, n);
    if (candidate === null) return null;
    if (!taken.has(candidate) && !refused(candidate)) return candidate;
  }
  return null;
}
