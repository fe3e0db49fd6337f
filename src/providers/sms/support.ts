// Small pieces the SMS adapters share: reading webhook headers and a gateway's Retry-After.

/** One header's value from a Node-style header record (names in any case; a repeated header's first). */
export function headerValue(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted) continue;
    return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/** Milliseconds from a Retry-After value (delta-seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null | undefined, now: Date): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now.getTime());
}

/** A provider's message with any of the secrets cut out, for errors that may be logged. */
export function redactor(...secrets: (string | undefined)[]): (text: string) => string {
  const present = secrets.filter((s): s is string => !!s && s.length >= 4);
  return (text) => present.reduce((out, secret) => out.replaceAll(secret, '[redacted]'), text);
}
