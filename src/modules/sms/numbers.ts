// Phone numbers: parsed and normalised to E.164 with libphonenumber-js (its full metadata, so a number
// of the right length but an unused range is refused too), relative to the organisation's default
// region when written without a country code.
import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { AppError } from '../../core/errors.ts';

/** A number that is not a valid phone number for its (or the default) region: a 422 naming it. */
export function invalidNumber(raw: string, field = 'to'): AppError {
  const message = `"${raw}" is not a valid phone number`;
  return new AppError(422, 'invalid_number', `${field}: ${message}`, {
    errors: [{ field, message }],
    extensions: { number: raw },
  });
}

export function isRegion(region: string): region is CountryCode {
  return isSupportedCountry(region);
}

/** The number in E.164 (`+14155550100`), or null when it is not a valid number. */
export function parseNumber(
  raw: string,
  defaultRegion: string,
): { e164: string; country: string | null } | null {
  if (raw.length > 40) return null;
  const region = isRegion(defaultRegion) ? defaultRegion : undefined;
  const parsed = parsePhoneNumberFromString(raw, region);
  if (!parsed?.isValid()) return null;
  return { e164: parsed.number, country: parsed.country ?? null };
}

/** E.164, or a 422 naming the number. */
export function normalizeNumber(raw: string, defaultRegion: string, field = 'to'): string {
  const parsed = parseNumber(raw.trim(), defaultRegion);
  if (!parsed) throw invalidNumber(raw, field);
  return parsed.e164;
}

/** The country (ISO 3166 alpha-2) an E.164 number belongs to, or null. */
export function countryOf(e164: string): string | null {
  return parsePhoneNumberFromString(e164)?.country ?? null;
}
