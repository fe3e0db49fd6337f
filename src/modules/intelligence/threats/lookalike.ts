// Domains made to be mistaken for a protected one (the organisation's own domains and well-known
// brands): homoglyphs and punycode, character swaps (rn→m, 0→o, 1→l), one or two typing edits, the same
// name under another suffix, and the protected name planted in an unrelated domain. Registrable domains
// are compared, so mail.paypal.com is PayPal's own and never a lookalike.
import { domainToUnicode } from 'node:url';
import { parse } from 'tldts';
import { BRANDS, brandOwning } from './brands.ts';
import { registrableDomain } from './domains.ts';
import type { ThreatFinding, ThreatSeverity } from './findings.ts';

interface ProtectedEntry {
  /** The registrable domain imitated, e.g. paypal.com. */
  domain: string;
  /** Its label without the public suffix, e.g. paypal. */
  label: string;
  skeleton: string;
  /** "PayPal", or "your organisation". */
  owner: string;
  organization: boolean;
  /** An ordinary word (live, office): matched only exactly or through homoglyphs. */
  generic: boolean;
}

export interface ProtectedDomains {
  /** The organisation's registrable domains. */
  organization: ReadonlySet<string>;
  organizationEntries: ProtectedEntry[];
  organizationIndex: EntryIndex;
  /** Names this set of domains in the shared answer cache. */
  key: string;
}

export interface LookalikeMatch {
  code: 'confusable_domain' | 'lookalike_domain' | 'brand_embedded_domain';
  severity: ThreatSeverity;
  /** The protected domain imitated (or the protected name, for a mixed-script domain). */
  imitates: string;
  owner: string;
  /** How: homoglyph, character_substitution, edit_distance, other_suffix, embedded_name, subdomain, mixed_script. */
  method: string;
  /** The host as a reader sees it, punycode decoded. */
  shown: string;
  distance?: number;
}

// Letters from other scripts drawn like Latin ones (Unicode confusables, the ones seen in phishing).
const CONFUSABLE_LETTERS: Record<string, string> = {
  а: 'a',
  б: 'b',
  в: 'b',
  с: 'c',
  ԁ: 'd',
  е: 'e',
  ё: 'e',
  һ: 'h',
  н: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  ӏ: 'l',
  м: 'm',
  п: 'n',
  о: 'o',
  р: 'p',
  ԛ: 'q',
  г: 'r',
  ѕ: 's',
  т: 't',
  ц: 'u',
  ѵ: 'v',
  ԝ: 'w',
  ш: 'w',
  х: 'x',
  у: 'y',
  ү: 'y',
  ʏ: 'y',
  α: 'a',
  β: 'b',
  ϲ: 'c',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  γ: 'y',
  ω: 'w',
  օ: 'o',
  ո: 'n',
  ս: 'u',
  ց: 'g',
  ɡ: 'g',
  ı: 'i',
  ł: 'l',
  ĸ: 'k',
  ɑ: 'a',
};

const NON_ASCII = /[\u0080-\uffff]/g;
const foldedChars = new Map<string, string>();

function foldChar(char: string): string {
  let folded = foldedChars.get(char);
  if (folded === undefined) {
    // Compatibility forms (ｐ, ﬁ) to plain letters, accents dropped (é reads as e), then homoglyphs.
    folded = char.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
    folded = CONFUSABLE_LETTERS[folded] ?? folded;
    if (foldedChars.size < 10_000) foldedChars.set(char, folded);
  }
  return folded;
}

/** Lower-case text with letters from other scripts that are drawn like Latin ones folded to Latin. */
export function foldLetters(text: string): string {
  return text.toLowerCase().replace(NON_ASCII, foldChar);
}

/** The shape a reader perceives: confusable letters folded to Latin, rn→m, vv→w, cl→d, 0→o, 1/i→l. */
export function skeleton(label: string): string {
  return foldLetters(label)
    .replace(/rn/g, 'm')
    .replace(/vv/g, 'w')
    .replace(/cl/g, 'd')
    .replace(/0/g, 'o')
    .replace(/[1i|]/g, 'l');
}

const rowA = new Int32Array(65);
const rowB = new Int32Array(65);
const rowC = new Int32Array(65);

/** Optimal-string-alignment distance (a transposition is one edit), or limit + 1 once it exceeds limit. */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  if (a.length > 64 || b.length > 64) return a === b ? 0 : limit + 1;
  let previous2 = rowA;
  let previous = rowB;
  let current = rowC;
  for (let j = 0; j <= b.length; j++) previous[j] = j;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowMinimum = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let value = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, previous2[j - 2] + 1);
      current[j] = value;
      if (value < rowMinimum) rowMinimum = value;
    }
    if (rowMinimum > limit) return limit + 1;
    const spare = previous2;
    previous2 = previous;
    previous = current;
    current = spare;
  }
  return previous[b.length];
}

function entry(domain: string, owner: string, organization: boolean, generic: boolean): ProtectedEntry {
  const label = domain.slice(0, domain.indexOf('.'));
  return { domain, label, skeleton: skeleton(label), owner, organization, generic };
}

/** Protected entries arranged for the checks below, so a host costs a few look-ups, not a scan. */
interface EntryIndex {
  /** Listed registrable domains, for the planted-domain check. */
  byDomain: Map<string, ProtectedEntry>;
  bySkeleton: Map<string, ProtectedEntry[]>;
  /** Non-generic entries by label, for the same name under another suffix. */
  byLabel: Map<string, ProtectedEntry>;
  /** Non-generic entries that allow edits, by skeleton length. */
  byLength: Map<number, ProtectedEntry[]>;
  /** Non-generic labels of four letters or more, and their skeletons, for embedded names. */
  byToken: Map<string, ProtectedEntry>;
  /** Labels of six letters or more (and skeletons), found anywhere inside a label: paypalsupport. */
  longNames: RegExp | null;
}

function editLimit(e: ProtectedEntry): number {
  const length = e.skeleton.length;
  // The organisation's own name is worth more edits: a one-letter slip on it is a targeted attack.
  if (e.organization) return length >= 8 ? 2 : length >= 4 ? 1 : 0;
  return length >= 9 ? 2 : length >= 6 ? 1 : 0;
}

function indexEntries(entries: ProtectedEntry[]): EntryIndex {
  const index: EntryIndex = {
    byDomain: new Map(),
    bySkeleton: new Map(),
    byLabel: new Map(),
    byLength: new Map(),
    byToken: new Map(),
    longNames: null,
  };
  const longNames = new Set<string>();
  for (const e of entries) {
    if (!index.byDomain.has(e.domain)) index.byDomain.set(e.domain, e);
    const sameShape = index.bySkeleton.get(e.skeleton);
    if (sameShape) sameShape.push(e);
    else index.bySkeleton.set(e.skeleton, [e]);
    if (e.generic || index.byLabel.has(e.label)) continue; // amazon.de adds nothing to amazon.com here
    index.byLabel.set(e.label, e);
    if (editLimit(e) > 0) {
      const bucket = index.byLength.get(e.skeleton.length);
      if (bucket) bucket.push(e);
      else index.byLength.set(e.skeleton.length, [e]);
    }
    if (e.label.length >= 4) {
      if (!index.byToken.has(e.label)) index.byToken.set(e.label, e);
      if (!index.byToken.has(e.skeleton)) index.byToken.set(e.skeleton, e);
    }
    if (e.label.length >= 6) longNames.add(e.label).add(e.skeleton);
  }
  if (longNames.size)
    index.longNames = new RegExp([...longNames].sort((a, b) => b.length - a.length).join('|'));
  return index;
}

const brandIndex = indexEntries(
  BRANDS.flatMap((brand) =>
    brand.domains.map((domain) => {
      const label = domain.slice(0, domain.indexOf('.'));
      return entry(
        domain,
        brand.name,
        false,
        label.length < 3 || (brand.genericLabels ?? []).includes(label),
      );
    }),
  ),
);

export function protectedDomains(organizationDomains: string[]): ProtectedDomains {
  const organization = new Set<string>();
  for (const domain of organizationDomains) {
    const registrable = registrableDomain(domain.trim().toLowerCase());
    if (registrable) organization.add(registrable);
  }
  const organizationEntries = [...organization].map((d) => entry(d, 'your organisation', true, false));
  return {
    organization,
    organizationEntries,
    organizationIndex: indexEntries(organizationEntries),
    key: [...organization].sort().join(','),
  };
}

interface HostParts {
  host: string;
  registrable: string;
  /** The registrable domain's first label as shown (punycode decoded). */
  label: string;
  labelSkeleton: string;
  /** Labels left of the registrable domain. */
  subdomain: string;
  labelTokens: string[];
  subdomainTokens: string[];
  shown: string;
}

function hostParts(host: string, registrable: string): HostParts {
  const shown = host.includes('xn--') ? domainToUnicode(host) || host : host;
  const shownRegistrable = registrable.includes('xn--')
    ? domainToUnicode(registrable) || registrable
    : registrable;
  const label = shownRegistrable.slice(0, shownRegistrable.indexOf('.'));
  const subdomain =
    host.length > registrable.length ? host.slice(0, host.length - registrable.length - 1) : '';
  return {
    host,
    registrable,
    label,
    labelSkeleton: skeleton(label),
    subdomain,
    labelTokens: nameTokens(label),
    subdomainTokens: subdomain ? nameTokens(subdomain) : [],
    shown,
  };
}

function confusable(parts: HostParts, index: EntryIndex): LookalikeMatch | null {
  for (const e of index.bySkeleton.get(parts.labelSkeleton) ?? []) {
    if (e.label === parts.label || e.label.length < 3) continue;
    return {
      code: 'confusable_domain',
      severity: 'high',
      imitates: e.domain,
      owner: e.owner,
      method: /[\u0080-\uffff]/.test(parts.label) ? 'homoglyph' : 'character_substitution',
      shown: parts.shown,
    };
  }
  return null;
}

/** The whole protected domain planted in an unrelated one: paypal.com.secure-login.xyz, paypal.com-help.net. */
function protectedSubdomain(parts: HostParts, index: EntryIndex): LookalikeMatch | null {
  const host = parts.host;
  if (host.length === parts.registrable.length) return null;
  // Every run of whole labels that ends where a dot or a hyphen follows.
  for (let start = 0; start < host.length; start = host.indexOf('.', start) + 1) {
    for (let end = start; end < host.length; end++) {
      const char = host[end];
      if (char !== '.' && char !== '-') continue;
      const e = index.byDomain.get(host.slice(start, end));
      if (e)
        return {
          code: 'brand_embedded_domain',
          severity: 'high',
          imitates: e.domain,
          owner: e.owner,
          method: 'subdomain',
          shown: parts.shown,
        };
    }
    if (host.indexOf('.', start) < 0) break;
  }
  return null;
}

function nearMiss(parts: HostParts, index: EntryIndex): LookalikeMatch | null {
  const sameName = index.byLabel.get(parts.label);
  if (sameName)
    // Same name, other suffix (paypal.support): a brand's country domains were accepted as its own.
    return {
      code: 'lookalike_domain',
      severity: sameName.organization ? 'high' : 'medium',
      imitates: sameName.domain,
      owner: sameName.owner,
      method: 'other_suffix',
      shown: parts.shown,
    };
  let best: LookalikeMatch | null = null;
  const length = parts.labelSkeleton.length;
  for (let other = length - 2; other <= length + 2; other++) {
    for (const e of index.byLength.get(other) ?? []) {
      const limit = editLimit(e);
      const distance = editDistance(parts.labelSkeleton, e.skeleton, limit);
      if (distance === 0 || distance > limit) continue;
      const severity: ThreatSeverity = e.organization || distance === 1 ? 'high' : 'medium';
      if (best && (best.severity === 'high' || severity !== 'high')) continue;
      best = {
        code: 'lookalike_domain',
        severity,
        imitates: e.domain,
        owner: e.owner,
        method: 'edit_distance',
        shown: parts.shown,
        distance,
      };
    }
  }
  return best;
}

/** Tokens of a name as written (split at digits too: dhl24-express) and as read (paypa1-help → paypal). */
function nameTokens(name: string): string[] {
  return [...name.split(/[.\-_0-9]+/), ...skeleton(name).split(/[.\-_]+/)];
}

const SEVERITY_RANK: Record<ThreatSeverity, number> = { low: 1, medium: 2, high: 3 };

/**
 * The protected name inside an unrelated domain: paypal-resolution.com, paypalsupport.com. In the
 * subdomain alone (northwind.atlassian.net, microsoft.github.io) it is how SaaS tenants and project
 * pages are named, so it counts for little.
 */
function embeddedName(parts: HostParts, index: EntryIndex): LookalikeMatch | null {
  const inLabel = new Set<ProtectedEntry>();
  const inSubdomain = new Set<ProtectedEntry>();
  for (const token of parts.labelTokens) {
    const e = index.byToken.get(token);
    if (e) inLabel.add(e);
  }
  if (index.longNames) {
    for (const text of [parts.label, parts.labelSkeleton]) {
      const found = index.longNames.exec(text)?.[0];
      const e = found === undefined ? undefined : index.byToken.get(found);
      if (e) inLabel.add(e);
    }
  }
  for (const token of parts.subdomainTokens) {
    const e = index.byToken.get(token);
    if (e) inSubdomain.add(e);
  }
  let best: LookalikeMatch | null = null;
  for (const e of new Set([...inLabel, ...inSubdomain])) {
    // Spelled with look-alike characters (micrоsoft-365, paypa1-help): made to deceive, not a reseller's name.
    const disguised = !parts.label.includes(e.label) && !parts.subdomain.includes(e.label);
    const severity: ThreatSeverity = disguised ? 'high' : inLabel.has(e) ? 'medium' : 'low';
    if (best && SEVERITY_RANK[best.severity] >= SEVERITY_RANK[severity]) continue;
    best = {
      code: disguised ? 'confusable_domain' : 'brand_embedded_domain',
      severity,
      imitates: e.domain,
      owner: e.owner,
      method: disguised
        ? /[\u0080-\uffff]/.test(parts.label)
          ? 'homoglyph'
          : 'character_substitution'
        : 'embedded_name',
      shown: parts.shown,
    };
  }
  return best;
}

/** Latin mixed with Cyrillic or Greek in one label: browsers refuse to show such names decoded. */
function mixedScript(parts: HostParts): LookalikeMatch | null {
  const label = parts.label;
  if (!/[\u0080-\uffff]/.test(label) || !/[a-z]/.test(label) || !/[\u0370-\u03ff\u0400-\u04ff]/.test(label))
    return null;
  return {
    code: 'confusable_domain',
    severity: 'medium',
    imitates: parts.labelSkeleton,
    owner: 'no known brand',
    method: 'mixed_script',
    shown: parts.shown,
  };
}

interface BrandAnswer {
  /** The host taken apart, or null when it is a brand's own or cannot resolve. */
  parts: HostParts | null;
  brand: LookalikeMatch | null;
}

// The brand half of an answer depends on the host alone, and mail repeats its senders and link hosts.
const brandAnswers = new Map<string, BrandAnswer>();
const BRAND_ANSWERS_KEPT = 20_000;

function brandAnswer(host: string, registrable: string): BrandAnswer {
  let answer = brandAnswers.get(host);
  if (answer) return answer;
  // A suffix outside the public list (yahoo.comm, a typo) resolves nowhere: nobody can be lured there.
  if (brandOwning(registrable) || !parse(registrable).isIcann) answer = { parts: null, brand: null };
  else {
    const parts = hostParts(host, registrable);
    const brand =
      protectedSubdomain(parts, brandIndex) ??
      confusable(parts, brandIndex) ??
      nearMiss(parts, brandIndex) ??
      embeddedName(parts, brandIndex) ??
      mixedScript(parts);
    answer = { parts, brand };
  }
  if (brandAnswers.size >= BRAND_ANSWERS_KEPT) brandAnswers.clear();
  brandAnswers.set(host, answer);
  return answer;
}

// Whole answers per organisation and host, in one bounded cache however many organisations there are.
const answers = new Map<string, LookalikeMatch | null>();
const ANSWERS_KEPT = 50_000;

/** How a host imitates a protected domain, or null. `host` is lower-case ASCII (punycode). */
export function findLookalike(host: string, guard: ProtectedDomains): LookalikeMatch | null {
  const key = `${guard.key}\u0000${host}`;
  let answer = answers.get(key);
  if (answer === undefined) {
    answer = lookalike(host, guard);
    if (answers.size >= ANSWERS_KEPT) answers.clear();
    answers.set(key, answer);
  }
  return answer;
}

function lookalike(host: string, guard: ProtectedDomains): LookalikeMatch | null {
  const registrable = registrableDomain(host);
  if (!registrable?.includes('.') || guard.organization.has(registrable)) return null;
  const { parts, brand } = brandAnswer(host, registrable);
  if (!parts) return null;
  if (guard.organizationEntries.length) {
    const own =
      protectedSubdomain(parts, guard.organizationIndex) ??
      confusable(parts, guard.organizationIndex) ??
      nearMiss(parts, guard.organizationIndex) ??
      embeddedName(parts, guard.organizationIndex);
    if (own) return own;
  }
  return brand;
}

const METHOD_WORDS: Record<string, string> = {
  homoglyph: 'with look-alike letters from another script',
  character_substitution: 'with look-alike characters',
  edit_distance: 'with a small spelling change',
  other_suffix: 'with the same name under another suffix',
  subdomain: 'by placing the real domain in front of an unrelated one',
  embedded_name: 'by embedding the name in an unrelated domain',
  mixed_script: 'by mixing Latin with Cyrillic or Greek letters',
};

/** The finding for a lookalike seen at `where` (the From address, a Reply-To address, a link). */
export function lookalikeFinding(match: LookalikeMatch, where: string, host: string): ThreatFinding {
  const shown = match.shown === host ? `"${host}"` : `"${match.shown}" (${host})`;
  const target =
    match.method === 'mixed_script'
      ? 'mixes scripts in one label, so it can pass for a Latin name'
      : `imitates ${match.imitates} (${match.owner}) ${METHOD_WORDS[match.method] ?? ''}`.trim();
  const detail: Record<string, string | number> = {
    where,
    domain: host,
    shown: match.shown,
    imitates: match.imitates,
    method: match.method,
  };
  if (match.distance !== undefined) detail.distance = match.distance;
  return {
    code: match.code,
    severity: match.severity,
    evidence: `${where} domain ${shown} ${target}`,
    detail,
  };
}
