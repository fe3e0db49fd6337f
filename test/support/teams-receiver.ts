// A Microsoft Teams Workflows incoming webhook on loopback: it accepts what the "When a Teams webhook
// request is received" trigger accepts (a message with one Adaptive Card attachment) and answers 400 with
// the reasons otherwise, checking the Adaptive Card rules that decide whether Teams can render a card:
// content type, card type and version, known body elements with their required properties, and
// Action.OpenUrl actions with a title and an absolute URL. It can be told to fail a number of times.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedCard {
  path: string;
  headers: http.IncomingHttpHeaders;
  json: any;
  /** The Adaptive Card (attachments[0].content). */
  card: any;
}

export interface TeamsReceiver {
  port: number;
  url(path?: string): string;
  /** Accepted cards, in arrival order. */
  cards: ReceivedCard[];
  /** Requests refused as invalid, with the reasons. */
  rejected: { body: string; errors: string[] }[];
  /** Requests answered with a scripted failure. */
  failed: number;
  /** Answer the next `n` valid requests (to paths under `path`, when given) with `status` (default 503). */
  failNext(n: number, status?: number, path?: string): void;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedCard[]>;
  close(): Promise<void>;
}

const KNOWN_ELEMENTS = new Set([
  'TextBlock',
  'FactSet',
  'ColumnSet',
  'Container',
  'Image',
  'RichTextBlock',
  'ActionSet',
]);

/** Every violation of the Adaptive Card rules that matter for Teams, as readable messages. */
export function validateTeamsMessage(json: any): string[] {
  const errors: string[] = [];
  if (!json || typeof json !== 'object') return ['the body is not a JSON object'];
  if (json.type !== 'message') errors.push('type must be "message"');
  if (!Array.isArray(json.attachments) || json.attachments.length !== 1)
    return [...errors, 'attachments must hold exactly one card'];
  const attachment = json.attachments[0];
  if (attachment?.contentType !== 'application/vnd.microsoft.card.adaptive')
    errors.push('attachments[0].contentType must be application/vnd.microsoft.card.adaptive');
  if (
    !('contentUrl' in attachment) ||
    (attachment.contentUrl !== null && typeof attachment.contentUrl !== 'string')
  )
    errors.push('attachments[0].contentUrl must be null or a string');
  const card = attachment?.content;
  if (!card || typeof card !== 'object') return [...errors, 'attachments[0].content must be an object'];
  if (card.type !== 'AdaptiveCard') errors.push('content.type must be "AdaptiveCard"');
  if (typeof card.version !== 'string' || !/^1\.[0-6]$/.test(card.version))
    errors.push('content.version must be a version string 1.0 to 1.6');
  if (card.$schema !== undefined && card.$schema !== 'http://adaptivecards.io/schemas/adaptive-card.json')
    errors.push('content.$schema must be the Adaptive Card schema URL');
  if (!Array.isArray(card.body) || card.body.length === 0)
    errors.push('content.body must be a non-empty array');
  else card.body.forEach((e: any, i: number) => void checkElement(e, `body[${i}]`, errors));
  if (card.actions !== undefined) {
    if (!Array.isArray(card.actions)) errors.push('content.actions must be an array');
    else card.actions.forEach((a: any, i: number) => void checkAction(a, `actions[${i}]`, errors));
  }
  return errors;
}

function checkElement(e: any, at: string, errors: string[]): void {
  if (!e || typeof e !== 'object' || !KNOWN_ELEMENTS.has(e.type)) {
    errors.push(`${at}: unknown element type ${JSON.stringify(e?.type)}`);
    return;
  }
  switch (e.type) {
    case 'TextBlock':
      if (typeof e.text !== 'string' || e.text === '')
        errors.push(`${at}: TextBlock.text must be a non-empty string`);
      if (e.wrap !== undefined && typeof e.wrap !== 'boolean')
        errors.push(`${at}: TextBlock.wrap must be a boolean`);
      if (e.size !== undefined && !['Default', 'Small', 'Medium', 'Large', 'ExtraLarge'].includes(e.size))
        errors.push(`${at}: TextBlock.size is not a size`);
      if (e.weight !== undefined && !['Default', 'Lighter', 'Bolder'].includes(e.weight))
        errors.push(`${at}: TextBlock.weight is not a weight`);
      if (
        e.color !== undefined &&
        !['Default', 'Dark', 'Light', 'Accent', 'Good', 'Warning', 'Attention'].includes(e.color)
      )
        errors.push(`${at}: TextBlock.color is not a color`);
      break;
    case 'FactSet':
      if (!Array.isArray(e.facts) || e.facts.length === 0)
        errors.push(`${at}: FactSet.facts must be a non-empty array`);
      else
        e.facts.forEach((f: any, i: number) => {
          if (typeof f?.title !== 'string' || typeof f?.value !== 'string')
            errors.push(`${at}.facts[${i}]: title and value must be strings`);
        });
      break;
    case 'ColumnSet':
      if (e.columns !== undefined && !Array.isArray(e.columns))
        errors.push(`${at}: ColumnSet.columns must be an array`);
      for (const [i, c] of (e.columns ?? []).entries()) {
        if (c?.type !== 'Column') errors.push(`${at}.columns[${i}]: must be a Column`);
        for (const [j, x] of (c?.items ?? []).entries())
          checkElement(x, `${at}.columns[${i}].items[${j}]`, errors);
      }
      break;
    case 'Container':
      if (!Array.isArray(e.items)) errors.push(`${at}: Container.items must be an array`);
      else e.items.forEach((x: any, j: number) => void checkElement(x, `${at}.items[${j}]`, errors));
      break;
    case 'Image':
      if (typeof e.url !== 'string') errors.push(`${at}: Image.url must be a string`);
      break;
  }
}

function checkAction(a: any, at: string, errors: string[]): void {
  if (a?.type !== 'Action.OpenUrl') {
    errors.push(`${at}: only Action.OpenUrl is expected, got ${JSON.stringify(a?.type)}`);
    return;
  }
  if (typeof a.title !== 'string' || a.title === '')
    errors.push(`${at}: Action.OpenUrl.title must be a string`);
  try {
    const u = new URL(a.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    errors.push(`${at}: Action.OpenUrl.url must be an absolute http(s) URL`);
  }
}

export async function startTeamsReceiver(): Promise<TeamsReceiver> {
  const waiters: { count: number; resolve: () => void }[] = [];
  let failures: { left: number; status: number; path: string } = { left: 0, status: 503, path: '' };
  const receiver: TeamsReceiver = {
    port: 0,
    url: (path = '/workflows/abc123/triggers/manual/paths/invoke?api-version=1&sig=s3cr3tsig') =>
      `http://127.0.0.1:${receiver.port}${path}`,
    cards: [],
    rejected: [],
    failed: 0,
    failNext(n, status = 503, path = '') {
      failures = { left: n, status, path };
    },
    waitFor(count, timeoutMs = 20_000) {
      if (receiver.cards.length >= count) return Promise.resolve(receiver.cards);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `expected ${count} cards, got ${receiver.cards.length} (rejected: ${JSON.stringify(receiver.rejected)})`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(receiver.cards);
          },
        });
      });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.method !== 'POST') return answer(405, { error: 'POST only' });
      if (!String(req.headers['content-type']).startsWith('application/json'))
        return answer(415, { error: 'application/json only' });
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        receiver.rejected.push({ body, errors: ['not JSON'] });
        return answer(400, { error: 'not JSON' });
      }
      const errors = validateTeamsMessage(json);
      if (errors.length) {
        receiver.rejected.push({ body, errors });
        return answer(400, { error: { code: 'InvalidRequestContent', message: errors.join('; ') } });
      }
      if (failures.left > 0 && (req.url ?? '').startsWith(failures.path)) {
        failures.left--;
        receiver.failed++;
        return answer(failures.status, { error: 'scripted failure' });
      }
      receiver.cards.push({
        path: req.url ?? '',
        headers: req.headers,
        json,
        card: json.attachments[0].content,
      });
      for (const w of waiters.splice(0)) {
        if (receiver.cards.length >= w.count) w.resolve();
        else waiters.push(w);
      }
      // What a Workflows trigger answers: 202 Accepted, no body.
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  return receiver;
}
