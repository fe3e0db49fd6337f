// How many parts (segments) a body takes. GSM 03.38 (3GPP TS 23.038) when every character is in the
// default alphabet or its extension table (whose characters take an escape septet too, so count twice);
// otherwise UCS-2, in UTF-16 code units (an emoji outside the BMP takes two). One part holds 160 septets
// or 70 units; a concatenated message loses 7 septets or 3 units per part to the user data header. As
// handsets do, an escape pair or a surrogate pair is never split across two parts.

export interface Measure {
  encoding: 'gsm7' | 'ucs2';
  /** Characters as people count them (code points). */
  characters: number;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  units: number;
  parts: number;
}

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENSION = '\f^{}\\[~]|€';

const BASIC = new Set(GSM_BASIC);
const EXTENSION = new Set(GSM_EXTENSION);

const LIMITS = {
  gsm7: { single: 160, part: 153 },
  ucs2: { single: 70, part: 67 },
} as const;

export function measure(body: string): Measure {
  // Units of each character, in order: what packing into parts needs.
  const sizes: number[] = [];
  let gsm = true;
  for (const ch of body) {
    if (BASIC.has(ch)) sizes.push(1);
    else if (EXTENSION.has(ch)) sizes.push(2);
    else {
      gsm = false;
      break;
    }
  }
  const encoding = gsm ? 'gsm7' : 'ucs2';
  if (!gsm) {
    sizes.length = 0;
    for (const ch of body) sizes.push(ch.length);
  }
  const units = sizes.reduce((a, b) => a + b, 0);
  const limit = LIMITS[encoding];
  return { encoding, characters: sizes.length, units, parts: partsOf(sizes, units, limit) };
}

function partsOf(sizes: number[], units: number, limit: { single: number; part: number }): number {
  if (units <= limit.single) return 1;
  let parts = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > limit.part) {
      parts++;
      used = 0;
    }
    used += size;
  }
  return parts;
}
