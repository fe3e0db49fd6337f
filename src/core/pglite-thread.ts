// The embedded database's own thread. PGlite is PostgreSQL compiled to WebAssembly: it runs every
// statement on the thread that calls it, and on the event loop of the MX and the API it took half the
// time of an all-in-one process. Here it has a thread of its own, and the process's other threads only
// send it statements (pglite-client.ts holds the other end of the protocol).
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Results, type Transaction, types } from '@electric-sql/pglite';
import { binaryTextArray } from './pg-binary.ts';
import type { Reply, Request, ThreadOptions } from './pglite-client.ts';

const PG_TYPE = {
  bytea: 17,
  text: 25,
  json: 114,
  varchar: 1043,
  jsonb: 3802,
  textArray: 1009,
  byteaArray: 1001,
  tsvectorArray: 3643,
};
/** Below this many characters a text parameter is cheaper to send as text. */
const LONG_TEXT = 1024;

/**
 * PGlite measures and encodes a text parameter in JavaScript, character by character; a long one (a
 * message's text, a batch's rows as JSON) goes instead as a binary parameter (for text and json the
 * UTF-8 bytes, for jsonb those after a version byte), which Node encodes natively. Bytes go as they
 * are. (PGlite's types say a serializer gives a string; its bind sends bytes as a binary parameter.)
 */
const SERIALIZERS: Record<number, (value: unknown) => unknown> = {
  [PG_TYPE.bytea]: (value) => (ArrayBuffer.isView(value) ? value : Buffer.from(String(value))),
  [PG_TYPE.text]: (value) => longTextAsBytes(String(value)),
  [PG_TYPE.varchar]: (value) => longTextAsBytes(String(value)),
  [PG_TYPE.json]: (value) => longTextAsBytes(typeof value === 'string' ? value : JSON.stringify(value)),
  [PG_TYPE.jsonb]: (value) => {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (text.length < LONG_TEXT) return text;
    const bytes = Buffer.allocUnsafe(1 + Buffer.byteLength(text));
    bytes[0] = 1;
    bytes.write(text, 1);
    return bytes;
  },
};

function longTextAsBytes(text: string): string | Buffer {
  return text.length < LONG_TEXT ? text : Buffer.from(text);
}

/**
 * A text[] whose strings are long (a batch's message texts) in the binary array format: dimensions, then
 * each element's length and UTF-8 bytes, which PostgreSQL reads without parsing a literal.
 */
function textArray(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return value; // already binary (core/pg-binary.ts)
  const list = value as unknown[];
  let chars = 0;
  for (const item of list) {
    if (item !== null && typeof item !== 'string')
      return types.arraySerializer(list, types.serializers[PG_TYPE.text], PG_TYPE.textArray);
    chars += item?.length ?? 0;
  }
  if (chars < LONG_TEXT)
    return types.arraySerializer(list, types.serializers[PG_TYPE.text], PG_TYPE.textArray);
  return binaryTextArray(list as (string | null)[]);
}

/** The array types of the element types serialized above. */
const ARRAY_TYPES_OF: Record<number, number> = { 17: 1001, 25: 1009, 114: 199, 1043: 1015, 3802: 3807 };

/** bool, bytea, char, name, int8, int2, int4, text, oid, json, inet, float4, float8, varchar, date,
 * timestamp, timestamptz, interval, numeric, uuid, jsonb. */
const ARRAY_ELEMENT_TYPES = [
  16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 869, 700, 701, 1043, 1082, 1114, 1184, 1186, 1700, 2950, 3802,
];

/**
 * PGlite keeps a parser for the array type of every type in the catalogue (over 300, most of them arrays
 * of the row types of system catalogues) and copies the whole map for every query that brings parsers of
 * its own, as every Drizzle query does: about 0.1 ms a query. Only arrays of the types the schema uses
 * keep theirs; any other array would come back as its text.
 */
async function keepArrayParsersOfUsedTypes(pglite: PGlite): Promise<void> {
  const { rows } = await pglite.query<{ oid: number }>(
    `select a.oid from pg_type a where a.typcategory = 'A' and a.typelem <> all($1::oid[])`,
    [ARRAY_ELEMENT_TYPES],
  );
  for (const { oid } of rows) delete pglite.parsers[oid];
}

const options = workerData as ThreadOptions;
const port = parentPort;
if (!port) throw new Error('pglite-thread runs as a worker thread');

// Pages beyond shared_buffers are read again through the WASM file system on every use, which is what a
// list over 100,000 tickets spent its time on at 32 MB (MAILROOM_PGLITE_SHARED_BUFFERS; docs/decisions.md).
const pglite = await PGlite.create(options.dataDir, {
  startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${options.sharedBuffers}`],
  // PGlite's own bytea conversion walks every byte in JavaScript (a string per byte).
  parsers: { [PG_TYPE.bytea]: (value: string) => Buffer.from(value.slice(2), 'hex') },
  serializers: SERIALIZERS as Record<number, (value: unknown) => string>,
});
await keepArrayParsersOfUsedTypes(pglite);
// PGlite's array serializers call the element type's serializer and expect text: arrays of the types
// above get PGlite's own element serializers back, and text[] its binary form.
for (const [element, array] of Object.entries(ARRAY_TYPES_OF)) {
  pglite.serializers[array] = (value: unknown) =>
    types.arraySerializer(value, types.serializers[Number(element)], array);
}
pglite.serializers[PG_TYPE.textArray] = textArray as (value: unknown) => string;
// Search vectors and batches of blobs come already in the binary array format (core/pg-binary.ts).
for (const type of [PG_TYPE.tsvectorArray, PG_TYPE.byteaArray]) {
  const serialize = pglite.serializers[type];
  pglite.serializers[type] = ((value: unknown) =>
    ArrayBuffer.isView(value) ? value : serialize ? serialize(value) : String(value)) as (
    value: unknown,
  ) => string;
}

/** Parsers that hand back the text of the given types (Drizzle maps dates itself), by type list. */
const identityParsers = new Map<string, Record<number, (value: string) => string>>();
function parsersFor(types: number[]): Record<number, (value: string) => string> {
  const key = types.join(',');
  let parsers = identityParsers.get(key);
  if (!parsers) {
    parsers = Object.fromEntries(types.map((t) => [t, (value: string) => value]));
    identityParsers.set(key, parsers);
  }
  return parsers;
}

/**
 * Open transactions by the client's number, and how each is ended. A transaction is registered when its
 * `begin` arrives, and its statements wait until PGlite has started it (after any other transaction).
 */
const transactions = new Map<
  number,
  { tx: Promise<Transaction>; end: (commit: boolean, id: number) => void }
>();
const listeners = new Map<string, () => Promise<void>>();
/** Thrown out of a transaction's callback to make PGlite roll it back. */
const ROLLBACK = Symbol('rollback');

function reply(message: Reply): void {
  port?.postMessage(message);
}

/** An error as plain data: PostgreSQL's fields (code, detail, constraint…) survive the crossing. */
function failure(id: number, err: unknown): void {
  const e = err as Error & Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e ?? {})) {
    if (k !== 'queryOptions' && k !== 'params' && typeof v !== 'function') fields[k] = v;
  }
  reply({ id, error: { message: e?.message ?? String(err), name: e?.name ?? 'Error', fields } });
}

async function runner(txId: number | undefined): Promise<Pick<Transaction, 'query' | 'exec'>> {
  if (txId === undefined) return pglite;
  const open = transactions.get(txId);
  if (!open) throw new Error('Transaction is closed');
  return open.tx;
}

/** Starts transaction `txId`; it commits or rolls back when its `end` arrives, answered with `end`'s id. */
function begin(txId: number): void {
  let started!: (tx: Transaction) => void;
  let failed!: (err: unknown) => void;
  const tx = new Promise<Transaction>((resolve, reject) => {
    started = resolve;
    failed = reject;
  });
  tx.catch(() => {}); // a transaction that could not start fails its statements, not the thread
  let ended!: (commit: boolean) => void;
  const decided = new Promise<boolean>((resolve) => {
    ended = resolve;
  });
  let endId = 0;
  transactions.set(txId, {
    tx,
    end: (commit, id) => {
      endId = id;
      ended(commit);
    },
  });
  pglite
    .transaction(async (open) => {
      started(open);
      if (!(await decided)) throw ROLLBACK;
    })
    .then(
      () => reply({ id: endId, result: null }),
      async (err) => {
        failed(err);
        if (!endId) await decided; // it failed before its end arrived: answer the end when it does
        if (err === ROLLBACK) reply({ id: endId, result: null });
        else failure(endId, err);
      },
    )
    .finally(() => transactions.delete(txId));
}

/**
 * One statement by the simple query protocol, its answer as the protocol's bytes: PGlite copies each
 * piece of output out of the engine's memory once, into one growing buffer (no row objects, no
 * strings), which then moves to the caller's thread without a copy. An ErrorResponse is thrown with
 * PostgreSQL's fields, as query throws it.
 */
async function rawQuery(text: string, sizeHint = 0): Promise<{ buffer: ArrayBuffer; length: number }> {
  const sql = Buffer.from(text);
  const message = Buffer.alloc(sql.length + 6);
  message[0] = 0x51; // 'Q'
  message.writeInt32BE(sql.length + 5, 1);
  sql.copy(message, 5);
  let out = new Uint8Array(Math.max(64 * 1024, Math.min(sizeHint, 1024 * 1024 * 1024)));
  let length = 0;
  await pglite.execProtocolRawStream(message, {
    onRawData: (piece: Uint8Array) => {
      if (length + piece.length > out.length) {
        const grown = new Uint8Array(Math.max(out.length * 2, length + piece.length));
        grown.set(out.subarray(0, length));
        out = grown;
      }
      out.set(piece, length);
      length += piece.length;
    },
  });
  const bytes = Buffer.from(out.buffer, 0, length);
  for (let at = 0; at + 5 <= length; at += 1 + Math.max(4, bytes.readInt32BE(at + 1)))
    if (bytes[at] === 0x45) throw errorResponse(bytes.subarray(at + 5, at + 1 + bytes.readInt32BE(at + 1)));
  return { buffer: out.buffer, length };
}

/** An ErrorResponse's fields (code, message, detail…) as the error PGlite's query would throw. */
function errorResponse(body: Buffer): Error {
  const names: Record<string, string> = {
    S: 'severity',
    C: 'code',
    D: 'detail',
    H: 'hint',
    P: 'position',
    s: 'schema',
    t: 'table',
    c: 'column',
    n: 'constraint',
  };
  const fields: Record<string, string> = {};
  let message = 'database error';
  for (let at = 0; at < body.length && body[at] !== 0; ) {
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    const value = body.toString('utf8', at + 1, end);
    const key = String.fromCharCode(body[at]);
    if (key === 'M') message = value;
    else if (names[key]) fields[names[key]] = value;
    at = end + 1;
  }
  return Object.assign(new Error(message), fields);
}

async function handle(request: Request): Promise<void> {
  switch (request.op) {
    case 'query': {
      const result = await (await runner(request.tx)).query(request.text, request.params, {
        rowMode: request.rowMode,
        parsers: request.identity ? parsersFor(request.identity) : undefined,
      });
      reply({ id: request.id, result: result as Results });
      return;
    }
    case 'exec':
      reply({ id: request.id, result: await (await runner(request.tx)).exec(request.text) });
      return;
    case 'raw': {
      // Once its transaction has begun, which keeps every other statement waiting: this one does not
      // go through PGlite's queue, and runs at once.
      await runner(request.tx);
      const { buffer, length } = await rawQuery(request.text, request.sizeHint);
      port?.postMessage({ id: request.id, result: { buffer, length } } satisfies Reply, [buffer]);
      return;
    }
    case 'begin':
      begin(request.tx);
      return;
    case 'end': {
      const open = transactions.get(request.tx);
      if (!open) throw new Error('Transaction is closed');
      open.end(request.commit, request.id);
      return;
    }
    case 'listen':
      if (!listeners.has(request.channel)) {
        const channel = request.channel;
        listeners.set(
          channel,
          await pglite.listen(channel, (payload) => port?.postMessage({ notify: channel, payload })),
        );
      }
      reply({ id: request.id, result: null });
      return;
    case 'unlisten':
      await listeners.get(request.channel)?.();
      listeners.delete(request.channel);
      reply({ id: request.id, result: null });
      return;
    case 'close':
      await pglite.close();
      reply({ id: request.id, result: null });
      port?.close();
      return;
  }
}

port.on('message', (request: Request) => {
  handle(request).catch((err) => failure(request.id, err));
});
port.postMessage({ ready: true });
