// Recipients' time zones, for quiet hours. libphonenumber-js tells a number's country, not its zone, so
// this is a small table: one zone per country (for countries spanning several, the zone most of its
// people live in), and for North America the area codes of the zones other than Eastern. A country not
// in the table falls back to the organisation's time zone. docs/sms.md lists the choices.
import { addDays, localTime, zonedInstant } from '../../core/zoned-time.ts';

const COUNTRY_ZONES: Record<string, string> = {
  US: 'America/New_York',
  CA: 'America/Toronto',
  MX: 'America/Mexico_City',
  BR: 'America/Sao_Paulo',
  AR: 'America/Argentina/Buenos_Aires',
  CL: 'America/Santiago',
  CO: 'America/Bogota',
  PE: 'America/Lima',
  VE: 'America/Caracas',
  EC: 'America/Guayaquil',
  UY: 'America/Montevideo',
  PY: 'America/Asuncion',
  BO: 'America/La_Paz',
  PR: 'America/Puerto_Rico',
  DO: 'America/Santo_Domingo',
  JM: 'America/Jamaica',
  GT: 'America/Guatemala',
  CR: 'America/Costa_Rica',
  PA: 'America/Panama',
  GB: 'Europe/London',
  GG: 'Europe/Guernsey',
  JE: 'Europe/Jersey',
  IM: 'Europe/Isle_of_Man',
  IE: 'Europe/Dublin',
  PT: 'Europe/Lisbon',
  ES: 'Europe/Madrid',
  FR: 'Europe/Paris',
  BE: 'Europe/Brussels',
  NL: 'Europe/Amsterdam',
  LU: 'Europe/Luxembourg',
  DE: 'Europe/Berlin',
  CH: 'Europe/Zurich',
  AT: 'Europe/Vienna',
  IT: 'Europe/Rome',
  MT: 'Europe/Malta',
  DK: 'Europe/Copenhagen',
  NO: 'Europe/Oslo',
  SE: 'Europe/Stockholm',
  FI: 'Europe/Helsinki',
  IS: 'Atlantic/Reykjavik',
  PL: 'Europe/Warsaw',
  CZ: 'Europe/Prague',
  SK: 'Europe/Bratislava',
  HU: 'Europe/Budapest',
  SI: 'Europe/Ljubljana',
  HR: 'Europe/Zagreb',
  RS: 'Europe/Belgrade',
  BA: 'Europe/Sarajevo',
  RO: 'Europe/Bucharest',
  BG: 'Europe/Sofia',
  GR: 'Europe/Athens',
  CY: 'Asia/Nicosia',
  TR: 'Europe/Istanbul',
  UA: 'Europe/Kyiv',
  BY: 'Europe/Minsk',
  LT: 'Europe/Vilnius',
  LV: 'Europe/Riga',
  EE: 'Europe/Tallinn',
  MD: 'Europe/Chisinau',
  RU: 'Europe/Moscow',
  IL: 'Asia/Jerusalem',
  AE: 'Asia/Dubai',
  SA: 'Asia/Riyadh',
  QA: 'Asia/Qatar',
  KW: 'Asia/Kuwait',
  BH: 'Asia/Bahrain',
  OM: 'Asia/Muscat',
  JO: 'Asia/Amman',
  LB: 'Asia/Beirut',
  EG: 'Africa/Cairo',
  MA: 'Africa/Casablanca',
  DZ: 'Africa/Algiers',
  TN: 'Africa/Tunis',
  NG: 'Africa/Lagos',
  GH: 'Africa/Accra',
  KE: 'Africa/Nairobi',
  TZ: 'Africa/Dar_es_Salaam',
  UG: 'Africa/Kampala',
  ET: 'Africa/Addis_Ababa',
  ZA: 'Africa/Johannesburg',
  IN: 'Asia/Kolkata',
  PK: 'Asia/Karachi',
  BD: 'Asia/Dhaka',
  LK: 'Asia/Colombo',
  NP: 'Asia/Kathmandu',
  CN: 'Asia/Shanghai',
  HK: 'Asia/Hong_Kong',
  MO: 'Asia/Macau',
  TW: 'Asia/Taipei',
  JP: 'Asia/Tokyo',
  KR: 'Asia/Seoul',
  SG: 'Asia/Singapore',
  MY: 'Asia/Kuala_Lumpur',
  TH: 'Asia/Bangkok',
  VN: 'Asia/Ho_Chi_Minh',
  PH: 'Asia/Manila',
  ID: 'Asia/Jakarta',
  AU: 'Australia/Sydney',
  NZ: 'Pacific/Auckland',
};

// North American area codes outside the Eastern zone (the US and Canadian default above). Split
// codes go to the zone most of their numbers are in.
const NANP_ZONES: Record<string, string> = {};
const addCodes = (zone: string, codes: string) => {
  for (const code of codes.split(' ')) NANP_ZONES[code] = zone;
};
// Pacific: California, Washington, Oregon, Nevada, British Columbia.
addCodes(
  'America/Los_Angeles',
  '209 213 279 310 323 341 350 408 415 424 442 510 530 559 562 619 626 628 650 657 661 669 707 714 ' +
    '747 760 805 818 820 831 840 858 909 916 925 949 951 206 253 360 425 509 564 458 503 541 971 ' +
    '702 725 775',
);
addCodes('America/Vancouver', '236 250 604 672 778');
// Mountain: Colorado, Utah, New Mexico, Idaho, Montana, Wyoming, El Paso; Arizona keeps no DST.
addCodes('America/Denver', '303 719 720 970 983 385 435 801 505 575 208 986 406 307 915');
addCodes('America/Phoenix', '480 520 602 623 928');
addCodes('America/Edmonton', '368 403 587 780 825');
addCodes('America/Regina', '306 639');
// Central: Texas, Illinois, Minnesota, Wisconsin, Missouri, Louisiana, Oklahoma, Kansas, Iowa, Alabama,
// Mississippi, Arkansas, Middle and West Tennessee, Nebraska, the Dakotas, Manitoba.
addCodes(
  'America/Chicago',
  '210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830 832 903 936 940 945 ' +
    '956 972 979 217 224 309 312 331 447 464 618 630 708 773 779 815 847 872 218 320 507 612 651 763 ' +
    '952 262 274 414 534 608 715 920 314 417 557 573 636 660 816 225 318 337 504 985 405 539 572 580 ' +
    '918 316 620 785 913 319 515 563 641 712 205 251 256 334 659 938 228 601 662 769 479 501 870 615 ' +
    '629 731 901 931 308 402 531 605 701',
);
addCodes('America/Winnipeg', '204 431');
addCodes('America/Anchorage', '907');
addCodes('Pacific/Honolulu', '808');
addCodes('America/Halifax', '782 902');
addCodes('America/St_Johns', '709');

/** The recipient's zone: by area code in North America, by country elsewhere; null when unknown. */
export function zoneOf(e164: string, country: string | null): string | null {
  if (e164.startsWith('+1') && (country === 'US' || country === 'CA')) {
    const zone = NANP_ZONES[e164.slice(2, 5)];
    if (zone) return zone;
  }
  return country ? (COUNTRY_ZONES[country] ?? null) : null;
}

/** "HH:MM" → minutes since midnight. */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + m;
}

/**
 * When quiet hours that hold at `now` in `timeZone` end, or null when they do not hold. Quiet hours
 * from `start` to `end` local time; a start after the end spans midnight (21:00 to 08:00).
 */
export function quietUntil(now: Date, timeZone: string, start: string, end: string): Date | null {
  const from = minutesOf(start);
  const to = minutesOf(end);
  if (from === to) return null;
  const local = localTime(now, timeZone);
  const inside =
    from < to ? local.minutes >= from && local.minutes < to : local.minutes >= from || local.minutes < to;
  if (!inside) return null;
  // The end is today, or tomorrow when quiet hours began before midnight.
  const endDate = from > to && local.minutes >= from ? addDays(local.date, 1) : local.date;
  return new Date(Math.max(zonedInstant(endDate, to, timeZone).getTime(), now.getTime() + 60_000));
}

/** The local date (YYYY-MM-DD) in a zone: the day a daily limit counts. */
export function localDay(instant: Date, timeZone: string): string {
  return localTime(instant, timeZone).date;
}
