// TXT record values: DNS carries a TXT value as one or more character-strings of at most 255 bytes
// (RFC 1035 §3.3.14); receivers join them. Every output that shows a long value (API, zone files,
// provider writes) shows it split, so what a person pastes is what DNS can hold.

const MAX_STRING_BYTES = 255;

/** The value cut into strings of at most 255 bytes, never inside a UTF-8 character. */
export function splitTxt(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length === 0) return [''];
  const strings: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + MAX_STRING_BYTES, bytes.length);
    // Back off continuation bytes (10xxxxxx) so a character is never cut in two.
    while (end < bytes.length && end > start && (bytes[end] & 0xc0) === 0x80) end--;
    strings.push(bytes.subarray(start, end).toString('utf8'));
    start = end;
  }
  return strings;
}

/** The zone-file form: each string quoted, `"` and `\` escaped, separated by spaces. */
export function quoteTxt(value: string): string {
  return splitTxt(value)
    .map((s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`)
    .join(' ');
}

/**
 * The logical value of TXT content as a provider or a person wrote it: quoted strings
 * (`"a" "b"`) are unescaped and joined; unquoted content is taken as it is.
 */
export function unquoteTxt(content: string): string {
  return txtStrings(content).join('');
}

/** The character-strings of TXT content: each quoted string unescaped, or the unquoted content whole. */
export function txtStrings(content: string): string[] {
  const text = content.trim();
  if (!text.startsWith('"')) return [text];
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, '$1'));
}
