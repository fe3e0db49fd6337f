// A stand-in for the Cloudflare API v4 on loopback: the token check, accounts, zone lookup and creation
// and the DNS record calls Mailroom makes, answered in Cloudflare's envelope with Cloudflare's status codes and error codes, so
// the real SDK talks to it over a real socket and a test can inspect what was stored and what was asked.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { txtStrings } from '../../src/core/txt.ts';
import type { TestRecords } from './dns-server.ts';
import type { AddressInfo } from 'node:net';

const API_PREFIX = '/client/v4';
const SUPPORTED_TYPES = new Set(['TXT', 'MX', 'CNAME', 'A', 'AAAA']);
const PROXIABLE_TYPES = new Set(['CNAME', 'A', 'AAAA']);
const MAX_TXT_STRING_BYTES = 255;
const MAX_TXT_CONTENT_CHARS = 2048;
// The free plan's limit on a record comment.
const MAX_COMMENT_CHARS = 100;
const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

export interface CloudflareZone {
  id: string;
  name: string;
}

/** A record as stored: what the client sent, plus what Cloudflare adds. */
export interface CloudflareRecord extends RecordInput {
  id: string;
  created_on: string;
  modified_on: string;
}

/** A record put straight into the store (something the account already had). */
export interface SeedRecord {
  type: string;
  /** Relative to the zone, `@`, or fully qualified. */
  name: string;
  content: string;
  ttl?: number;
  priority?: number;
  proxied?: boolean;
  comment?: string | null;
}

export interface LoggedRequest {
  method: string;
  /** Path below `/client/v4`, e.g. `/zones/<id>/dns_records`. */
  path: string;
  query: Record<string, string>;
}

export interface CloudflareServer {
  /** `http://127.0.0.1:<port>/client/v4`, the SDK's baseURL. */
  baseURL: string;
  /** The only API token the server accepts. */
  token: string;
  /** Every request received, in order (rate-limited and refused ones too). */
  requests: LoggedRequest[];
  addZone(name: string): string;
  /** The names of zones created through the API (POST /zones), in order. */
  createdZones: string[];
  /** The account the token belongs to (zones are created in it). */
  accountId: string;
  addRecord(zoneName: string, record: SeedRecord): CloudflareRecord;
  /** Copies of the stored records, of one zone or of all. */
  records(zoneName?: string): CloudflareRecord[];
  /** The next `count` requests get 429 with `Retry-After: retryAfterSeconds`. */
  rateLimitNext(count: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

interface CloudflareErrorItem {
  code: number;
  message: string;
  error_chain?: { code: number; message: string }[];
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface StoredZone extends CloudflareZone {
  created_on: string;
  records: Map<string, CloudflareRecord>;
}

/** A request refused before it reached the store. */
class ApiFailure extends Error {
  readonly status: number;
  readonly errors: CloudflareErrorItem[];

  constructor(status: number, errors: CloudflareErrorItem[]) {
    super(errors.map((e) => e.message).join('; '));
    this.status = status;
    this.errors = errors;
  }
}

function validationFailure(code: number, message: string): ApiFailure {
  return new ApiFailure(400, [
    { code: 1004, message: 'DNS Validation Error', error_chain: [{ code, message }] },
  ]);
}

function noRoute(path: string): ApiFailure {
  return new ApiFailure(400, [
    { code: 7003, message: `Could not route to ${path}, perhaps your object identifier is invalid?` },
    { code: 7000, message: 'No route for that URI' },
  ]);
}

function success(result: unknown, resultInfo?: unknown): Reply {
  return {
    status: 200,
    body: {
      success: true,
      errors: [],
      messages: [],
      result,
      ...(resultInfo ? { result_info: resultInfo } : {}),
    },
  };
}

function failure(status: number, errors: CloudflareErrorItem[], headers?: Record<string, string>): Reply {
  return { status, body: { success: false, errors, messages: [], result: null }, headers };
}

const newId = () => randomBytes(16).toString('hex');
const now = () => new Date().toISOString();
const isId = (value: string) => /^[0-9a-f]{32}$/.test(value);

/** Cloudflare's page/per_page pagination over an already filtered list. */
function paginate<T>(items: T[], query: URLSearchParams, defaultPerPage: number, maxPerPage: number) {
  const page = Math.max(1, Number.parseInt(query.get('page') ?? '1', 10) || 1);
  const requested = Number.parseInt(query.get('per_page') ?? String(defaultPerPage), 10) || defaultPerPage;
  const perPage = Math.min(maxPerPage, Math.max(5, requested));
  const slice = items.slice((page - 1) * perPage, page * perPage);
  return {
    slice,
    info: {
      page,
      per_page: perPage,
      count: slice.length,
      total_count: items.length,
      total_pages: Math.max(1, Math.ceil(items.length / perPage)),
    },
  };
}

/** The strings of quoted TXT content (`"a" "b"`), or null when the quoting is broken. */
function quotedStrings(content: string): string[] | null {
  const strings: string[] = [];
  const pattern = /\s*"((?:[^"\\]|\\.)*)"\s*/y;
  let match = pattern.exec(content);
  while (match) {
    strings.push(match[1].replace(/\\(.)/g, '$1'));
    if (pattern.lastIndex === content.length) return strings;
    match = pattern.exec(content);
  }
  return null;
}

function fqdn(name: string, zoneName: string): string {
  const lower = name.trim().toLowerCase().replace(/\.$/, '');
  if (lower === '@' || lower === zoneName) return zoneName;
  // Like Cloudflare, a name outside the zone is taken as relative to it.
  return lower.endsWith(`.${zoneName}`) ? lower : `${lower}.${zoneName}`;
}

function validateContent(type: string, content: string): void {
  switch (type) {
    case 'A':
      if (!/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(content))
        throw validationFailure(9005, 'Content for A record must be a valid IPv4 address.');
      return;
    case 'AAAA':
      if (!/^[0-9a-f:.]+$/i.test(content) || !content.includes(':'))
        throw validationFailure(9006, 'Content for AAAA record must be a valid IPv6 address.');
      return;
    case 'CNAME':
      if (!HOSTNAME.test(content.toLowerCase().replace(/\.$/, '')))
        throw validationFailure(9007, 'Content for CNAME record is invalid.');
      return;
    case 'MX':
      if (content !== '.' && !HOSTNAME.test(content.toLowerCase().replace(/\.$/, '')))
        throw validationFailure(9008, 'Content for MX record must be a hostname.');
      return;
    case 'TXT': {
      if (content.length > MAX_TXT_CONTENT_CHARS)
        throw validationFailure(
          9009,
          `Content for TXT record must be at most ${MAX_TXT_CONTENT_CHARS} characters.`,
        );
      // Unquoted content is taken as one value (Cloudflare splits it when serving); quoted content
      // is already split, so each string must fit a DNS character-string.
      if (!content.trimStart().startsWith('"')) return;
      const strings = quotedStrings(content);
      if (!strings) throw validationFailure(9010, 'Content for TXT record has unbalanced quotes.');
      if (strings.some((s) => Buffer.byteLength(s, 'utf8') > MAX_TXT_STRING_BYTES))
        throw validationFailure(
          9011,
          `Each quoted TXT string must be at most ${MAX_TXT_STRING_BYTES} bytes.`,
        );
      return;
    }
  }
}

interface RecordInput {
  type: string;
  /** Fully qualified, lower case. */
  name: string;
  /** As written by the client (TXT keeps its quotes). */
  content: string;
  ttl: number;
  /** MX only. */
  priority?: number;
  proxied: boolean;
  comment: string | null;
}

/** Checks a record body as Cloudflare does and returns its stored form (name fully qualified). */
function parseRecord(body: Record<string, unknown>, zoneName: string): RecordInput {
  const { type, name, content, ttl, priority, proxied, comment } = body;
  if (typeof type !== 'string' || !SUPPORTED_TYPES.has(type))
    throw validationFailure(9004, 'DNS record type is invalid or not supported.');
  if (typeof name !== 'string' || name.trim() === '') throw validationFailure(9000, 'DNS name is invalid.');
  const recordName = fqdn(name, zoneName);
  if (!HOSTNAME.test(recordName)) throw validationFailure(9000, 'DNS name is invalid.');
  if (typeof content !== 'string' || content === '')
    throw validationFailure(9002, `Content for ${type} record is required.`);
  validateContent(type, content);
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || (ttl !== 1 && (ttl < 60 || ttl > 86400)))
    throw validationFailure(9021, 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.');
  if (type === 'MX') {
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 65535)
      throw validationFailure(9100, 'Priority must be set for MX records, between 0 and 65535.');
  }
  if (proxied !== undefined && typeof proxied !== 'boolean')
    throw validationFailure(9003, 'proxied must be a boolean.');
  if (proxied === true && !PROXIABLE_TYPES.has(type))
    throw validationFailure(9004, `${type} records cannot be proxied.`);
  if (comment !== undefined && comment !== null && typeof comment !== 'string')
    throw validationFailure(9101, 'comment must be a string.');
  if (typeof comment === 'string' && comment.length > MAX_COMMENT_CHARS)
    throw validationFailure(9102, `Comment must be at most ${MAX_COMMENT_CHARS} characters.`);
  return {
    type,
    name: recordName,
    // Hostnames are stored without the trailing dot, as Cloudflare shows them.
    content: type === 'TXT' ? content : content.replace(/(.)\.$/, '$1'),
    ttl,
    ...(type === 'MX' ? { priority: priority as number } : {}),
    proxied: proxied === true,
    comment: typeof comment === 'string' && comment !== '' ? comment : null,
  };
}

/** Cloudflare's rules for records sharing a name: CNAME stands alone, and no exact duplicates. */
function checkConflicts(zone: StoredZone, record: RecordInput, replacingId?: string): void {
  const others = [...zone.records.values()].filter((r) => r.name === record.name && r.id !== replacingId);
  if (record.type === 'CNAME' && others.length > 0)
    throw new ApiFailure(400, [
      { code: 81053, message: 'An A, AAAA, or CNAME record with that host already exists.' },
    ]);
  if (record.type !== 'CNAME' && others.some((r) => r.type === 'CNAME'))
    throw new ApiFailure(400, [{ code: 81054, message: 'A CNAME record with that host already exists.' }]);
  const identical = others.some(
    (r) => r.type === record.type && r.content === record.content && r.priority === record.priority,
  );
  if (identical) throw new ApiFailure(400, [{ code: 81058, message: 'An identical record already exists.' }]);
}

function recordView(record: CloudflareRecord) {
  return {
    id: record.id,
    name: record.name,
    type: record.type,
    content: record.content,
    proxiable: PROXIABLE_TYPES.has(record.type),
    proxied: record.proxied,
    ttl: record.ttl,
    ...(record.priority !== undefined ? { priority: record.priority } : {}),
    settings: {},
    meta: {},
    comment: record.comment,
    tags: [],
    created_on: record.created_on,
    modified_on: record.modified_on,
  };
}

function matchesName(recordName: string, query: URLSearchParams): boolean {
  const exact = query.get('name.exact') ?? query.get('name');
  if (exact !== null && recordName !== exact.toLowerCase().replace(/\.$/, '')) return false;
  const contains = query.get('name.contains');
  if (contains !== null && !recordName.includes(contains.toLowerCase())) return false;
  const startsWith = query.get('name.startswith');
  if (startsWith !== null && !recordName.startsWith(startsWith.toLowerCase())) return false;
  const endsWith = query.get('name.endswith');
  if (endsWith !== null && !recordName.endsWith(endsWith.toLowerCase())) return false;
  return true;
}

export async function startCloudflareServer(options: { token?: string } = {}): Promise<CloudflareServer> {
  const token = options.token ?? randomBytes(30).toString('base64url');
  const tokenId = newId();
  const zones = new Map<string, StoredZone>();
  const requests: LoggedRequest[] = [];
  let rateLimited = { remaining: 0, retryAfterSeconds: 0 };

  const accountId = newId();
  const createdZones: string[] = [];
  const zoneView = (z: StoredZone) => ({
    id: z.id,
    name: z.name,
    status: 'active',
    paused: false,
    type: 'full',
    name_servers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
    created_on: z.created_on,
    modified_on: z.created_on,
  });

  const zoneByName = (name: string) => {
    const lower = name.toLowerCase();
    const zone = [...zones.values()].find((z) => z.name === lower);
    if (!zone) throw new Error(`no zone ${name} on the test Cloudflare server`);
    return zone;
  };

  function store(zone: StoredZone, input: RecordInput): CloudflareRecord {
    const at = now();
    const record: CloudflareRecord = { id: newId(), ...input, created_on: at, modified_on: at };
    zone.records.set(record.id, record);
    return record;
  }

  function authenticate(header: string | undefined, path: string): void {
    if (!header)
      throw new ApiFailure(400, [
        { code: 9106, message: 'Missing X-Auth-Key, X-Auth-Email or Authorization headers' },
      ]);
    const match = /^Bearer ([A-Za-z0-9_-]+)$/.exec(header);
    if (!match)
      throw new ApiFailure(400, [
        {
          code: 6003,
          message: 'Invalid request headers',
          error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }],
        },
      ]);
    if (match[1] === token) return;
    if (path === '/user/tokens/verify')
      throw new ApiFailure(401, [{ code: 1000, message: 'Invalid API Token' }]);
    throw new ApiFailure(403, [{ code: 9109, message: 'Invalid access token' }]);
  }

  function readJson(req: http.IncomingMessage, raw: string): Record<string, unknown> {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (contentType !== 'application/json')
      throw new ApiFailure(400, [
        {
          code: 6003,
          message: 'Invalid request headers',
          error_chain: [
            {
              code: 6105,
              message: 'Invalid Content-Type header, valid values are application/json,multipart/form-data',
            },
          ],
        },
      ]);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new ApiFailure(400, [{ code: 6007, message: 'Malformed JSON in request body' }]);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiFailure(400, [{ code: 9207, message: 'Request body is invalid.' }]);
    return body as Record<string, unknown>;
  }

  function route(req: http.IncomingMessage, path: string, query: URLSearchParams, raw: string): Reply {
    const method = req.method ?? 'GET';
    const segments = path.split('/').filter(Boolean);

    if (method === 'GET' && path === '/user/tokens/verify')
      return {
        status: 200,
        body: {
          success: true,
          errors: [],
          messages: [{ code: 10000, message: 'This API Token is valid and active', type: null }],
          result: { id: tokenId, status: 'active' },
        },
      };

    if (method === 'GET' && path === '/zones') {
      const name = query.get('name')?.toLowerCase();
      const matching = [...zones.values()]
        .filter((z) => name === undefined || z.name === name)
        .sort((a, b) => a.name.localeCompare(b.name));
      const { slice, info } = paginate(matching, query, 20, 50);
      return success(slice.map(zoneView), info);
    }

    if (method === 'GET' && path === '/accounts')
      return success([{ id: accountId, name: 'Mailroom test account', type: 'standard' }], {
        page: 1,
        per_page: 20,
        count: 1,
        total_count: 1,
        total_pages: 1,
      });

    // Create Zone: `{name, account: {id}, type?}`; a name held by a zone already is code 1061.
    if (method === 'POST' && path === '/zones') {
      const body = readJson(req, raw);
      const name = typeof body.name === 'string' ? body.name.toLowerCase().replace(/\.$/, '') : '';
      const account = body.account as { id?: unknown } | undefined;
      if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/.test(name) || name.length > 253)
        throw new ApiFailure(400, [{ code: 1097, message: 'Invalid domain name' }]);
      if (typeof account?.id !== 'string' || account.id !== accountId)
        throw new ApiFailure(400, [{ code: 1002, message: 'Invalid or missing account' }]);
      if (
        body.type !== undefined &&
        !['full', 'partial', 'secondary', 'internal'].includes(String(body.type))
      )
        throw new ApiFailure(400, [{ code: 1001, message: 'Invalid zone type' }]);
      if ([...zones.values()].some((z) => z.name === name))
        throw new ApiFailure(400, [{ code: 1061, message: `${name} already exists` }]);
      const zone: StoredZone = { id: newId(), name, created_on: now(), records: new Map() };
      zones.set(zone.id, zone);
      createdZones.push(name);
      return success({ ...zoneView(zone), status: 'pending', account: { id: accountId } });
    }

    if (segments[0] !== 'zones' || segments[2] !== 'dns_records' || segments.length > 4) throw noRoute(path);
    if (!isId(segments[1])) throw noRoute(path);
    const zone = zones.get(segments[1]);
    if (!zone)
      throw new ApiFailure(404, [
        { code: 7003, message: `Could not route to ${path}, perhaps your object identifier is invalid?` },
        { code: 7000, message: 'No route for that URI' },
      ]);

    if (segments.length === 3) {
      if (method === 'GET') {
        const type = query.get('type')?.toUpperCase();
        const matching = [...zone.records.values()]
          .filter((r) => (type === undefined || r.type === type) && matchesName(r.name, query))
          .sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name));
        const { slice, info } = paginate(matching, query, 100, 5_000_000);
        return success(
          slice.map((r) => recordView(r)),
          info,
        );
      }
      if (method === 'POST') {
        const input = parseRecord(readJson(req, raw), zone.name);
        checkConflicts(zone, input);
        return success(recordView(store(zone, input)));
      }
      throw noRoute(path);
    }

    if (!isId(segments[3])) throw noRoute(path);
    const existing = zone.records.get(segments[3]);
    if (!existing) throw new ApiFailure(404, [{ code: 81044, message: 'Record does not exist.' }]);

    if (method === 'GET') return success(recordView(existing));
    if (method === 'DELETE') {
      zone.records.delete(existing.id);
      return success({ id: existing.id });
    }
    if (method === 'PUT' || method === 'PATCH') {
      const body = readJson(req, raw);
      // PATCH changes the fields given; PUT overwrites the record (absent fields revert to defaults).
      const merged = method === 'PATCH' ? { ...existing, ...body } : body;
      const input = parseRecord(merged, zone.name);
      checkConflicts(zone, input, existing.id);
      const updated: CloudflareRecord = {
        id: existing.id,
        ...input,
        created_on: existing.created_on,
        modified_on: now(),
      };
      zone.records.set(existing.id, updated);
      return success(recordView(updated));
    }
    throw noRoute(path);
  }

  function handle(req: http.IncomingMessage, raw: string): Reply {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.startsWith(`${API_PREFIX}/`)
      ? url.pathname.slice(API_PREFIX.length)
      : url.pathname;
    requests.push({ method: req.method ?? 'GET', path, query: Object.fromEntries(url.searchParams) });
    if (rateLimited.remaining > 0) {
      rateLimited.remaining--;
      return failure(
        429,
        [{ code: 971, message: 'Please wait and consider throttling your request speed' }],
        {
          'Retry-After': String(rateLimited.retryAfterSeconds),
        },
      );
    }
    try {
      if (!url.pathname.startsWith(`${API_PREFIX}/`)) throw noRoute(url.pathname);
      authenticate(req.headers.authorization, path);
      return route(req, path, url.searchParams, raw);
    } catch (error) {
      if (error instanceof ApiFailure) return failure(error.status, error.errors);
      throw error;
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let reply: Reply;
      try {
        reply = handle(req, Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        reply = failure(500, [{ code: 10001, message: `test server error: ${(error as Error).message}` }]);
      }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}${API_PREFIX}`,
    token,
    requests,
    createdZones,
    accountId,
    addZone(name) {
      const zone: StoredZone = {
        id: newId(),
        name: name.toLowerCase().replace(/\.$/, ''),
        created_on: now(),
        records: new Map(),
      };
      zones.set(zone.id, zone);
      return zone.id;
    },
    addRecord(zoneName, seed) {
      const zone = zoneByName(zoneName);
      return {
        ...store(zone, {
          type: seed.type,
          name: fqdn(seed.name, zone.name),
          content: seed.content,
          ttl: seed.ttl ?? 1,
          ...(seed.type === 'MX' ? { priority: seed.priority ?? 10 } : {}),
          proxied: seed.proxied ?? false,
          comment: seed.comment ?? null,
        }),
      };
    },
    records(zoneName) {
      const selected = zoneName === undefined ? [...zones.values()] : [zoneByName(zoneName)];
      return selected.flatMap((z) => [...z.records.values()].map((r) => ({ ...r })));
    },
    rateLimitNext(count, retryAfterSeconds) {
      rateLimited = { remaining: count, retryAfterSeconds };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the Cloudflare account stores at `name`, as an authoritative server would serve it. */
export function servedBy(cf: CloudflareServer) {
  return (name: string): TestRecords | undefined => {
    const here = cf.records().filter((r) => r.name === name);
    if (here.length === 0) return undefined;
    const records: TestRecords = {};
    for (const r of here) {
      if (r.type === 'TXT') {
        records.TXT = [...(records.TXT ?? []), txtStrings(r.content)];
      }
      if (r.type === 'MX')
        records.MX = [...(records.MX ?? []), { exchange: r.content, priority: r.priority ?? 0 }];
      if (r.type === 'CNAME') records.CNAME = r.content;
    }
    return records;
  };
}
