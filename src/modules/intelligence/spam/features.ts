// The tokens the spam classifier weighs, read from one parsed message: words of the subject and body, the
// sender's and Reply-To's domains, the domains its links point to, and a few structural facts (HTML only,
// many links, the share of capitals, charset, the mailer that wrote it). Each feature is a short string
// with a prefix naming where it came from ("subj:free", "url:example.com", "links:8+"), so the same word
// in the subject and in the body weighs separately, and a feature explains itself in `topFeatures`.
//
// Left out on purpose, because they are artefacts of how the SpamAssassin public corpus (the shipped
// model's training data) was collected and would teach the model nothing true about real mail:
// - the mbox "From " separator line, Delivered-To, Return-Path and every Received hop (the collector's
//   own hops through dogma.slashnull.org, taint.org, netnoteinc.com and a localhost fetchmail are in
//   every message, ham and spam alike, but in different proportions);
// - recipient addresses (To/Cc were rewritten to zzzz@..., yyyy@..., jm@..., qqqqqqqqqq-...@
//   spamassassin.taint.org), and any word, address or link that names the collector's domains
//   (taint.org, netnoteinc.com, slashnull.org, jmason.org) or the rewrite markers (zzzz, yyyy, qqqq);
// - X-Spam-* headers (X-Spam-Status, X-Spam-Level ...) that SpamAssassin itself added to some messages;
// - dates: the Date header, and years in the text (the corpus is from 2002; mail is not);
// - mailing-list headers (List-Id, List-Unsubscribe, Precedence, X-Beenthere, Sender): most of the
//   corpus's ham came through the collector's mailing lists, so in it "has a List-Id" means ham, while in
//   real mail it just as often means a newsletter.
// Pure numbers are dropped for the same reason as years (times, IDs, phone numbers, zip codes are unique
// to one message and mostly noise); amounts of money and percentages become the tokens "#money" and
// "#percent".
import { getDomain } from 'tldts';
import type { AnalysisInput } from '../input.ts';

/** How much of a long message is read: the start of a message says what it is, and time is bounded. */
const MAX_TEXT_CHARS = 30_000;
const MAX_HTML_CHARS = 60_000;
const SHAPE_SAMPLE_CHARS = 4_000;
const MAX_LINK_HOSTS = 40;
const MIN_WORD_LENGTH = 3;
const MAX_WORD_LENGTH = 24;

const COLLECTOR_DOMAINS = ['taint.org', 'netnoteinc.com', 'slashnull.org', 'jmason.org'];
const CORPUS_ARTEFACT = /zzzz|yyyy|qqqq|taint\.org|netnoteinc|slashnull|jmason/;

const WORD = /[\p{L}\p{M}\p{N}$€£%'’-]+/gu;
const URL_HOST = /\b(?:https?:\/\/|www\.)([a-z0-9\u00a1-\uffff][a-z0-9\u00a1-\uffff.-]{0,252})(:\d+)?/gi;
const LINK_START = /https?:\/\/|www\./g;
const TELLING_TAG = /<(img|form|script|iframe)\b/gi;
const SCRIPTS: Array<[string, RegExp]> = [
  ['han', /\p{Script=Han}/u],
  ['hangul', /\p{Script=Hangul}/u],
  ['hiragana', /\p{Script=Hiragana}|\p{Script=Katakana}/u],
  ['cyrillic', /\p{Script=Cyrillic}/u],
  ['arabic', /\p{Script=Arabic}/u],
  ['thai', /\p{Script=Thai}/u],
];

/**
 * Headers the sender's own software writes (threading, the client's organisation and options), whose
 * presence is worth a feature; every other header is left out (see the list of artefacts above).
 */
const CLIENT_HEADERS = new Set([
  'in-reply-to',
  'references',
  'organization',
  'x-msmail-priority',
  'importance',
  'x-mimeole',
  'thread-index',
  'x-originating-ip',
  'mail-followup-to',
  'x-face',
  'x-operating-system',
  'x-accept-language',
]);

function isCollectorDomain(domain: string): boolean {
  return COLLECTOR_DOMAINS.some((d) => domain === d || domain.endsWith(`.${d}`));
}

// The public suffix lookup is the costliest step per link; the same few domains recur in every message.
const registrableCache = new Map<string, string | null>();
function registrableDomain(host: string): string | null {
  let domain = registrableCache.get(host);
  if (domain === undefined) {
    domain = getDomain(host, { allowPrivateDomains: false })?.toLowerCase() ?? null;
    if (registrableCache.size >= 20_000) registrableCache.clear();
    registrableCache.set(host, domain);
  }
  return domain;
}

function isSpace(code: number): boolean {
  return code <= 32 || code === 0xa0 || code === 0x3000;
}

/**
 * `lower` with every whitespace-delimited run that holds an address ("@") or a link blanked out: they get
 * features of their own, and their pieces ("com", "mailto", tracking IDs) are not words. Found with
 * indexOf rather than one regex, which was the slowest step of extraction.
 */
function withoutAddressesAndLinks(lower: string): string {
  const spans: Array<[number, number]> = [];
  const blank = (at: number) => {
    let start = at;
    while (start > 0 && !isSpace(lower.charCodeAt(start - 1))) start--;
    let end = at;
    while (end < lower.length && !isSpace(lower.charCodeAt(end))) end++;
    spans.push([start, end]);
    return end;
  };
  let at = lower.indexOf('@');
  while (at >= 0) at = lower.indexOf('@', blank(at));
  for (const match of lower.matchAll(LINK_START)) blank(match.index);
  if (spans.length === 0) return lower;
  spans.sort((a, b) => a[0] - b[0]);
  let result = '';
  let kept = 0;
  for (const [start, end] of spans) {
    if (start > kept) result += `${lower.slice(kept, start)} `;
    kept = Math.max(kept, end);
  }
  return result + lower.slice(kept);
}

const QUOTE = 39;
const RIGHT_QUOTE = 0x2019;
const DASH = 45;
const isEdgePunctuation = (code: number) => code === QUOTE || code === RIGHT_QUOTE || code === DASH;

/**
 * Word tokens of `text` under `prefix`, each once; addresses and links are taken out first (they have
 * features of their own). Pushed to an array: the prefix makes them distinct from every other feature.
 */
function addWords(out: string[], prefix: string, text: string): void {
  const lower = withoutAddressesAndLinks(text.toLowerCase());
  const mayHoldArtefacts = CORPUS_ARTEFACT.test(lower);
  const seen = new Set<string>();
  for (let word of lower.match(WORD) ?? []) {
    if (seen.size === seen.add(word).size) continue;
    // Quotes and dashes around a word are punctuation, not part of it.
    if (isEdgePunctuation(word.charCodeAt(0)) || isEdgePunctuation(word.charCodeAt(word.length - 1))) {
      let start = 0;
      let end = word.length;
      while (start < end && isEdgePunctuation(word.charCodeAt(start))) start++;
      while (end > start && isEdgePunctuation(word.charCodeAt(end - 1))) end--;
      word = word.slice(start, end);
      if (seen.size === seen.add(word).size) continue;
    }
    let letters = 0;
    let digits = 0;
    let currency = false;
    let percent = false;
    for (let i = 0; i < word.length; i++) {
      const code = word.charCodeAt(i);
      if (code >= 48 && code <= 57) digits++;
      else if (code === 36 || code === 0x20ac || code === 0xa3) currency = true;
      else if (code === 37) percent = true;
      else if (!isEdgePunctuation(code)) letters++;
    }
    // Shapes rather than words are written with a "#", which no word contains.
    let token = word;
    if (letters === 0) {
      // Amounts and percentages are telling; other numbers (years, times, IDs, phone numbers) are not.
      if (currency && digits > 0) token = '#money';
      else if (percent && digits > 0) token = '#percent';
      else if (digits > 0 || word.length < MIN_WORD_LENGTH) continue;
    } else if (word.length < MIN_WORD_LENGTH || (mayHoldArtefacts && CORPUS_ARTEFACT.test(word))) {
      continue;
    } else if (word.length > MAX_WORD_LENGTH) {
      // Long runs are unsegmented scripts, encoded blobs or glued words: their length is the signal.
      token = `#long:${Math.min(10, Math.floor(word.length / 10))}`;
    }
    if (token !== word && seen.size === seen.add(token).size) continue;
    out.push(prefix + token);
  }
}

function bucket(n: number, edges: number[]): string {
  let i = 0;
  while (i < edges.length && n >= edges[i]) i++;
  return i === 0
    ? `<${edges[0]}`
    : i === edges.length
      ? `${edges[i - 1]}+`
      : `${edges[i - 1]}-${edges[i] - 1}`;
}

function header(input: AnalysisInput, name: string): string | null {
  for (const h of input.headers) if (h.name === name) return h.value;
  return null;
}

function addLinks(out: Set<string>, text: string, html: string | null): void {
  const hosts = new Set<string>();
  let links = 0;
  for (const source of html === null ? [text] : [text, html]) {
    for (const match of source.matchAll(URL_HOST)) {
      links++;
      if (hosts.size >= MAX_LINK_HOSTS) continue;
      const host = match[1].toLowerCase().replace(/\.+$/, '');
      hosts.add(host);
      if (match[2]) out.add('url:port');
    }
  }
  for (const host of hosts) {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) {
      out.add('url:ip-address');
      continue;
    }
    const domain = registrableDomain(host);
    if (domain === null || isCollectorDomain(domain)) continue;
    out.add(`url:${domain}`);
  }
  out.add(`links:${bucket(links, [1, 2, 4, 8, 16])}`);
  if (hosts.size > 0) out.add(`link-hosts:${bucket(hosts.size, [1, 2, 4, 8])}`);
}

function addSender(out: Set<string>, words: string[], input: AnalysisInput): void {
  const from = input.from;
  let fromDomain: string | null = null;
  if (from === null) {
    out.add('from:missing');
  } else {
    const at = from.address.lastIndexOf('@');
    const local = at < 0 ? from.address : from.address.slice(0, at);
    const host = at < 0 ? '' : from.address.slice(at + 1);
    fromDomain = host ? registrableDomain(host) : null;
    if (fromDomain !== null && !isCollectorDomain(fromDomain)) {
      out.add(`from:${fromDomain}`);
      out.add(`from-tld:${fromDomain.slice(fromDomain.lastIndexOf('.') + 1)}`);
    }
    if (/\d{3,}/.test(local)) out.add('from-local:digits');
    if (from.name === '') out.add('from-name:none');
    else if (!CORPUS_ARTEFACT.test(from.name.toLowerCase())) addWords(words, 'from-name:', from.name);
  }
  for (const replyTo of input.replyTo.slice(0, 3)) {
    const host = replyTo.address.slice(replyTo.address.lastIndexOf('@') + 1);
    const domain = registrableDomain(host);
    if (domain === null || isCollectorDomain(domain)) continue;
    out.add(`reply-to:${domain}`);
    if (fromDomain !== null && domain !== fromDomain) out.add('reply-to:other-domain');
  }
  if (input.to.length === 0 && input.cc.length === 0) out.add('to:missing');
}

function addSubject(out: Set<string>, words: string[], subject: string): void {
  if (subject.trim() === '') {
    out.add('subj-shape:empty');
    return;
  }
  addWords(words, 'subj:', subject);
  const letters = subject.replace(/[^\p{L}]/gu, '');
  if (letters.length >= 6) {
    const upper = letters.replace(/[^\p{Lu}]/gu, '').length / letters.length;
    if (upper > 0.7) out.add('subj-shape:mostly-capitals');
  }
  if (subject.includes('!')) out.add('subj-shape:exclamation');
  if (/[$€£]/.test(subject)) out.add('subj-shape:currency');
  if (/^\s*(?:re|aw|sv)\s*:/i.test(subject)) out.add('subj-shape:reply');
  if (/^\s*(?:fwd?|fw)\s*:/i.test(subject)) out.add('subj-shape:forward');
  // Spam tools pad the subject and append a per-recipient tag to defeat duplicate detection.
  if (/\s{4,}\S+\s*$/.test(subject)) out.add('subj-shape:padded-tag');
}

function addStructure(out: Set<string>, input: AnalysisInput): void {
  const contentType = header(input, 'content-type') ?? 'text/plain';
  const mime = contentType.split(';')[0].trim().toLowerCase();
  out.add(`ctype:${mime}`);
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType);
  if (charset) out.add(`charset:${charset[1].toLowerCase()}`);

  if (input.html !== null) {
    if (mime === 'text/html') out.add('html:only');
    else if (mime === 'multipart/alternative') out.add('html:with-text');
    else out.add('html:in-multipart');
    const html = input.html.length > MAX_HTML_CHARS ? input.html.slice(0, MAX_HTML_CHARS) : input.html;
    // Only a few tags get a feature. Layout tags (table, font, td, br ...) come together in every HTML
    // message, and naive Bayes, counting each as independent evidence, over-weighs them: in
    // cross-validation on the training split they cost 6 points of recall at 99% precision.
    for (const match of html.matchAll(TELLING_TAG)) out.add(`tag:${match[1].toLowerCase()}`);
    if (/display\s*:\s*none|visibility\s*:\s*hidden/i.test(html)) out.add('html:hidden-text');
    if (/<img\b/i.test(html) && input.text.trim().length < 200) out.add('html:image-mostly');
  }

  // The share of capitals and the scripts in use are clear from the first few thousand characters.
  const text = input.text;
  const sample = text.length > SHAPE_SAMPLE_CHARS ? text.slice(0, SHAPE_SAMPLE_CHARS) : text;
  let upper = 0;
  let lower = 0;
  let blank = 0;
  let beyondLatin = false;
  for (let i = 0; i < sample.length; i++) {
    const c = sample.charCodeAt(i);
    if (c >= 65 && c <= 90) upper++;
    else if (c >= 97 && c <= 122) lower++;
    else if (c <= 32) blank++;
    else if (c >= 0x370) beyondLatin = true;
  }
  if (upper + lower >= 40) out.add(`upper:${Math.floor((10 * upper) / (upper + lower))}`);
  // Visible characters, extrapolated from the sample for a longer text.
  const visible =
    sample.length === 0 ? 0 : Math.round((text.length * (sample.length - blank)) / sample.length);
  out.add(`text-length:${bucket(visible, [1, 100, 300, 1000, 3000, 10000])}`);
  if (beyondLatin)
    for (const [script, pattern] of SCRIPTS) if (pattern.test(sample)) out.add(`script:${script}`);
  if (/^>/m.test(sample)) out.add('text:quotes');

  const mailer = header(input, 'x-mailer') ?? header(input, 'user-agent');
  if (mailer !== null) {
    const family = /[a-z]+(?:[ -][a-z]+)?/i.exec(mailer.toLowerCase().replace(/\(.*?\)/g, ''));
    if (family) out.add(`mailer:${family[0]}`);
  } else {
    out.add('mailer:none');
  }
  const encoding = header(input, 'content-transfer-encoding');
  if (encoding !== null) out.add(`encoding:${encoding.trim().toLowerCase()}`);
  for (const h of input.headers) if (CLIENT_HEADERS.has(h.name)) out.add(`header:${h.name}`);
  if (header(input, 'mime-version') === null) out.add('header:no-mime-version');
  if (header(input, 'message-id') === null) out.add('header:no-message-id');
  const priority = header(input, 'x-priority');
  if (priority !== null) out.add(`priority:${priority.trim().slice(0, 1)}`);

  for (const attachment of input.attachments.slice(0, 10)) {
    out.add(`attachment:${attachment.contentType}`);
    const ext = attachment.filename ? /\.([a-z0-9]{1,5})$/i.exec(attachment.filename) : null;
    if (ext) out.add(`attachment-ext:${ext[1].toLowerCase()}`);
  }
}

/** The distinct features of one message, in no particular order. */
export function extractSpamFeatures(input: AnalysisInput): string[] {
  const out = new Set<string>();
  const words: string[] = [];
  addSubject(out, words, input.subject);
  addSender(out, words, input);
  const text = input.text.length > MAX_TEXT_CHARS ? input.text.slice(0, MAX_TEXT_CHARS) : input.text;
  const html =
    input.html === null
      ? null
      : input.html.length > MAX_HTML_CHARS
        ? input.html.slice(0, MAX_HTML_CHARS)
        : input.html;
  addWords(words, 'body:', text);
  addLinks(out, text, html);
  addStructure(out, input);
  for (const feature of out) words.push(feature);
  return words;
}
