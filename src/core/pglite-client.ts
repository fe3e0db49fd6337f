// The embedded database as this thread sees it: the PGlite calls that Drizzle, pg-boss and the LISTEN
// wiring make (query, exec, transaction, listen), each sent to the database's own thread
// (pglite-thread.ts) and answered from there. What crosses is plain data: statements and parameters one
// way, rows, notifications and errors (with PostgreSQL's fields) the other.
import { Worker } from 'node:worker_threads';

export interface ThreadOptions {
  /** The data directory, or undefined for a database in memory. */
  dataDir: string | undefined;
  /** PostgreSQL's shared_buffers, e.g. `128MB`. */
  sharedBuffers: string;
}

export type Request =
  | {
      id: number;
      op: 'query';
      text: string;
      params?: unknown[];
      rowMode?: 'array' | 'object';
      /** Types whose values come back as their text (the parsers Drizzle brings are such). */
      identity?: number[];
      tx?: number;
    }
  | { id: number; op: 'exec'; text: string; tx?: number }
  /** One statement of a transaction by the simple query protocol; answered with the protocol's bytes. */
  | { id: number; op: 'raw'; text: string; tx: number; sizeHint?: number }
  /** Not answered: the transaction's statements and its end are. */
  | { id: number; op: 'begin'; tx: number }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'listen' | 'unlisten'; channel: string }
  | { id: number; op: 'close' };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export type Reply =
  | { id: number; result: unknown }
  | { id: number; error: { message: string; name: string; fields: Record<string, unknown> } };

type Notice = { notify: string; payload: string } | { ready: true };

interface Field {
  name: string;
  dataTypeID: number;
}

export interface Results<T = Record<string, unknown>> {
  rows: T[];
  fields: Field[];
  affectedRows?: number;
  rowCount?: number;
}

interface QueryOptions {
  rowMode?: 'array' | 'object';
  parsers?: Record<number, unknown>;
}

/** What runs statements: the database, or one open transaction. */
interface Session {
  query<T = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    options?: QueryOptions,
  ): Promise<Results<T>>;
  exec(text: string): Promise<Results[]>;
}

export interface EmbeddedTransaction extends Session {
  readonly closed: boolean;
  /**
   * The server's protocol messages for one statement, as bytes (RowDescription, DataRow…, CommandComplete,
   * ReadyForQuery), unparsed: for reading many rows, above all from a BINARY cursor, whose DataRows carry
   * values as bytes. They come from the database's thread without a copy. An error is thrown as by query.
   * `sizeHint`: the bytes expected, so that the answer is gathered without growing its buffer. Only in a
   * transaction: the statement bypasses PGlite's own queue, which the transaction holds.
   */
  raw(text: string, sizeHint?: number): Promise<Uint8Array>;
}

const BYTEA = 17;

export class EmbeddedClient implements Session {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  readonly #channels = new Map<string, Set<(payload: string) => void>>();
  /** The type lists of the parser sets callers bring, kept by set (Drizzle reuses its own). */
  readonly #identity = new WeakMap<object, number[]>();
  #nextId = 1;
  #nextTransaction = 1;
  #stopped: Error | null = null;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /** Starts the database's thread and resolves once the database is open. */
  static async open(options: ThreadOptions): Promise<EmbeddedClient> {
    const worker = new Worker(new URL('./pglite-thread.ts', import.meta.url), { workerData: options });
    const client = new EmbeddedClient(worker);
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      const exited = (code: number) => reject(new Error(`the embedded database stopped (exit code ${code})`));
      worker.once('error', failed);
      worker.once('exit', exited);
      worker.on('message', function ready(m: Notice) {
        if (!('ready' in m)) return;
        worker.off('message', ready);
        worker.off('error', failed);
        worker.off('exit', exited);
        resolve();
      });
    });
    worker.on('message', (m: Reply | Notice) => client.#receive(m));
    // Like an embedded database in this thread, the thread keeps the process alive only while a call
    // waits for it.
    worker.unref();
    worker.on('error', (err) => client.#stop(err));
    worker.on('exit', (code) => client.#stop(new Error(`the embedded database stopped (exit code ${code})`)));
    return client;
  }

  query<T = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    options?: QueryOptions,
  ): Promise<Results<T>> {
    return this.#query<T>(text, params, options, undefined);
  }

  exec(text: string): Promise<Results[]> {
    return this.#call({ op: 'exec', text }) as Promise<Results[]>;
  }

  /**
   * Runs `fn` in a transaction, committed when it resolves and rolled back when it throws. Statements
   * outside it wait until it ends, as PGlite has one session. Its number is chosen here, so its first
   * statement follows `begin` at once instead of waiting for an answer.
   */
  async transaction<T>(fn: (tx: EmbeddedTransaction) => Promise<T>): Promise<T> {
    if (this.#stopped) throw this.#stopped;
    const id = this.#nextTransaction++;
    this.#worker.postMessage({ id: 0, op: 'begin', tx: id } satisfies Request);
    let closed = false;
    const tx: EmbeddedTransaction = {
      query: (text, params, options) => {
        if (closed) return Promise.reject(new Error('Transaction is closed'));
        return this.#query(text, params, options, id);
      },
      exec: (text) => {
        if (closed) return Promise.reject(new Error('Transaction is closed'));
        return this.#call({ op: 'exec', text, tx: id }) as Promise<Results[]>;
      },
      raw: async (text, sizeHint) => {
        if (closed) throw new Error('Transaction is closed');
        return asBytes(await this.#call({ op: 'raw', text, tx: id, sizeHint }));
      },
      get closed() {
        return closed;
      },
    };
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      closed = true;
      await this.#call({ op: 'end', tx: id, commit: false }).catch(() => {});
      throw err;
    }
    closed = true;
    await this.#call({ op: 'end', tx: id, commit: true });
    return result;
  }

  /** Calls `onPayload` with each notification on `channel`; resolves to the function that stops it. */
  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
      await this.#call({ op: 'listen', channel });
    }
    set.add(onPayload);
    return async () => {
      const listening = this.#channels.get(channel);
      if (!listening?.delete(onPayload) || listening.size) return;
      this.#channels.delete(channel);
      await this.#call({ op: 'unlisten', channel });
    };
  }

  async close(): Promise<void> {
    if (this.#stopped) return;
    await this.#call({ op: 'close' });
    await this.#worker.terminate();
  }

  async #query<T>(
    text: string,
    params: unknown[] | undefined,
    options: QueryOptions | undefined,
    tx: number | undefined,
  ): Promise<Results<T>> {
    const results = (await this.#call({
      op: 'query',
      text,
      params,
      rowMode: options?.rowMode,
      identity: options?.parsers ? this.#identityOf(options.parsers) : undefined,
      tx,
    })) as Results<T>;
    asBuffers(results, options?.rowMode === 'array');
    return results;
  }

  #identityOf(parsers: Record<number, unknown>): number[] {
    let types = this.#identity.get(parsers);
    if (!types) {
      types = Object.keys(parsers).map(Number);
      this.#identity.set(parsers, types);
    }
    return types;
  }

  #call(request: DistributiveOmit<Request, 'id'>): Promise<unknown> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id });
    });
  }

  #receive(message: Reply | Notice): void {
    if ('notify' in message) {
      for (const onPayload of this.#channels.get(message.notify) ?? []) onPayload(message.payload);
      return;
    }
    if (!('id' in message)) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if ('error' in message) {
      const err = Object.assign(new Error(message.error.message), message.error.fields);
      err.name = message.error.name;
      pending.reject(err);
    } else pending.resolve(message.result);
  }

  #stop(err: Error): void {
    this.#stopped ??= err;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(err);
    }
  }
}

/** A `raw` answer: the buffer moved here from the database's thread, and how much of it is filled. */
function asBytes(result: unknown): Uint8Array {
  const { buffer, length } = result as { buffer: ArrayBuffer; length: number };
  return new Uint8Array(buffer, 0, length);
}

/** Bytes cross threads as plain Uint8Arrays; callers of a database expect Buffers. */
function asBuffers(results: Results<unknown>, arrayRows: boolean): void {
  const columns = results.fields?.flatMap((f, i) => (f.dataTypeID === BYTEA ? [arrayRows ? i : f.name] : []));
  if (!columns?.length) return;
  for (const row of results.rows as Record<string | number, unknown>[]) {
    for (const column of columns) {
      const value = row[column];
      if (value instanceof Uint8Array)
        row[column] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  }
}
