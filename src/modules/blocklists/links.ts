// The domains an organisation's mail links to. Domain blocklists (Spamhaus DBL, SURBL, URIBL) list the
// domains found in spam's links, and mailbox providers look up every URL of a message (image sources
// too): a listed link domain sinks mail from a clean sender. URLs are read from the text and HTML of
// recent outbound mail, and reduced to their registrable domain (the lists' unit) with the public
// suffix list.
import { simpleParser } from 'mailparser';
import { getDomain } from 'tldts';

const URL_HOST = /\bhttps?:\/\/([a-z0-9\u00a1-\uffff][a-z0-9\u00a1-\uffff.-]{0,252})/gi;

/** The registrable domains of the http(s) links in `text` (IP literals and bare suffixes left out). */
export function linkDomains(text: string, into: Set<string> = new Set()): Set<string> {
  for (const m of text.matchAll(URL_HOST)) {
    const domain = getDomain(m[1].replace(/\.+$/, ''), { allowPrivateDomains: false });
    if (domain) into.add(domain.toLowerCase());
  }
  return into;
}

/** The link domains of a raw message: its text and HTML parts, decoded. */
export async function messageLinkDomains(raw: Buffer, into: Set<string> = new Set()): Promise<Set<string>> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
  if (parsed.text) linkDomains(parsed.text, into);
  if (typeof parsed.html === 'string') linkDomains(parsed.html, into);
  return into;
}
