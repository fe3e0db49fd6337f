// CPU work in worker threads: a pool of threads that each load one task module and answer calls by task
// name. Parsing MIME and tokenising text for search are CPU work that would otherwise share the event
// loop with the MX and the API; on their own threads they use the cores the process has. With a size of
// 0 the tasks run inline on the calling thread (the same functions, without the messaging).
import { availableParallelism } from 'node:os';
import { type MessagePort, parentPort, Worker } from 'node:worker_threads';

/**
 * Threads for a pool unless MAILROOM_WORKER_THREADS says: one core fewer than the process has (1 to 4),
 * leaving the event loop a core, or every core (up to 4) when `allCores`. The signing pool takes every
 * core in a process that serves no mail connections (`mailroom api`): its loop mostly waits while
 * signing limits; on 2 cores the batch send API went 931 → 1,021 messages/s with 2 signing threads.
 * The parsing pool keeps the loop its core: a worker's processing is no faster with 2 parse threads
 * (1,902 messages/s with one, 1,667 with two, measured), as its loop reads, routes and commits.
 */
export function threadsFor(configured: number | null, allCores: boolean): number {
  if (configured !== null) return configured;
  return Math.max(1, Math.min(4, availableParallelism() - (allCores ? 0 : 1)));
}

/** A module's tasks: named functions of one structured-clonable argument. */
export type Tasks = Record<string, (input: any) => unknown>;

interface Call {
  id: number;
  task: string;
  input: unknown;
}

type Answer = { id: number; output: unknown } | { id: number; error: { message: string; stack?: string } };

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export class ThreadPool<T extends Tasks> {
  readonly #script: URL;
  readonly #inline: () => Promise<T>;
  readonly #threads: { worker: Worker; busy: number }[] = [];
  readonly #pending = new Map<number, Pending & { thread: number }>();
  #nextId = 1;
  #closed = false;
  #inlineTasks: Promise<T> | null = null;

  /**
   * `script` runs `serveTasks(tasks)` in each thread; `inline` loads the same tasks for a pool of size 0.
   * Threads are started when first used.
   */
  constructor(script: URL, size: number, inline: () => Promise<T>) {
    this.#script = script;
    this.#inline = inline;
    this.size = Math.max(0, Math.floor(size));
  }

  readonly size: number;

  /**
   * Runs `task` on the least busy thread (inline when the pool has none). `transfer` lists buffers of
   * `input` that move to the thread instead of being copied; the caller must not use them afterwards.
   */
  run<K extends keyof T & string>(
    task: K,
    input: Parameters<T[K]>[0],
    transfer: ArrayBuffer[] = [],
  ): Promise<Awaited<ReturnType<T[K]>>> {
    return this.#run(null, task, input, transfer);
  }

  /**
   * Runs `task` on thread `slot` modulo the pool's size, started if need be: for tasks that keep state
   * between calls (a second call must reach the thread that holds the first one's). A thread that died
   * meanwhile was replaced by one that holds nothing.
   */
  runOn<K extends keyof T & string>(
    slot: number,
    task: K,
    input: Parameters<T[K]>[0],
    transfer: ArrayBuffer[] = [],
  ): Promise<Awaited<ReturnType<T[K]>>> {
    return this.#run(slot, task, input, transfer);
  }

  async #run<K extends keyof T & string>(
    slot: number | null,
    task: K,
    input: Parameters<T[K]>[0],
    transfer: ArrayBuffer[],
  ): Promise<Awaited<ReturnType<T[K]>>> {
    if (this.#closed) throw new Error('thread pool closed');
    if (this.size === 0) {
      this.#inlineTasks ??= this.#inline();
      return (await (await this.#inlineTasks)[task](input)) as Awaited<ReturnType<T[K]>>;
    }
    const index = slot === null ? this.#pick() : this.#slot(slot);
    const thread = this.#threads[index];
    const id = this.#nextId++;
    thread.busy++;
    return new Promise<Awaited<ReturnType<T[K]>>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, thread: index });
      thread.worker.postMessage({ id, task, input } satisfies Call, transfer);
    });
  }

  /** Stops every thread; calls still running are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#threads.splice(0);
    await Promise.all(threads.map((t) => t.worker.terminate()));
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(new Error('thread pool closed'));
    }
  }

  #pick(): number {
    if (this.#threads.length < this.size) {
      const all = this.#threads.length === 0 || this.#threads.every((t) => t.busy > 0);
      if (all) return this.#start();
    }
    let best = 0;
    for (let i = 1; i < this.#threads.length; i++)
      if (this.#threads[i].busy < this.#threads[best].busy) best = i;
    return best;
  }

  #slot(slot: number): number {
    const index = Math.abs(Math.floor(slot)) % this.size;
    while (this.#threads.length <= index) this.#start();
    return index;
  }

  #start(): number {
    this.#threads.push({ worker: this.#spawn(this.#threads.length), busy: 0 });
    return this.#threads.length - 1;
  }

  #spawn(index: number): Worker {
    const worker = new Worker(this.#script);
    // A thread waiting for work must not keep the process alive.
    worker.unref();
    // Only the thread now in this slot speaks for it (a replaced one may still report its exit).
    const current = () => this.#threads[index]?.worker === worker;
    worker.on('message', (answer: Answer) => this.#answer(answer));
    worker.on('error', (err) => {
      if (current()) this.#fail(index, err);
    });
    worker.on('exit', (code) => {
      if (!this.#closed && current()) this.#fail(index, new Error(`worker thread exited with code ${code}`));
    });
    return worker;
  }

  #answer(answer: Answer): void {
    const pending = this.#pending.get(answer.id);
    if (!pending) return;
    this.#pending.delete(answer.id);
    const thread = this.#threads[pending.thread];
    if (thread) thread.busy--;
    if ('error' in answer) {
      const err = new Error(answer.error.message);
      if (answer.error.stack) err.stack = answer.error.stack;
      pending.reject(err);
    } else pending.resolve(answer.output);
  }

  /** A thread that died fails its calls and is replaced at once. */
  #fail(index: number, err: Error): void {
    for (const [id, p] of this.#pending) {
      if (p.thread !== index) continue;
      this.#pending.delete(id);
      p.reject(err);
    }
    const thread = this.#threads[index];
    if (!thread || this.#closed) return;
    void thread.worker.terminate();
    this.#threads[index] = { worker: this.#spawn(index), busy: 0 };
  }
}

/** Buffers that a task's result hands over to the caller's thread instead of copying (see transferring). */
const transfers = new WeakMap<object, ArrayBuffer[]>();

/**
 * Marks `buffers`, which `value` holds and nothing else uses, to be moved to the calling thread with it
 * rather than copied; the task must not touch them afterwards. Inline (a pool of size 0) it changes nothing.
 */
export function transferring<T extends object>(value: T, buffers: ArrayBuffer[]): T {
  transfers.set(value, buffers);
  return value;
}

/**
 * In a pool's thread: answers each call with the named task's result, one call at a time. Calls that
 * overlapped (a batch posted at once interleaves at every await of an async parser) kept every message's
 * half-built state alive together, and each young-generation collection copied all of it: serving them
 * in turn leaves a collection little but the current call's to copy.
 */
export function serveTasks(tasks: Tasks, port: MessagePort | null = parentPort): void {
  if (!port) throw new Error('serveTasks runs in a worker thread');
  const queue: Call[] = [];
  let serving = false;
  const answer = async (call: Call) => {
    try {
      const output = await tasks[call.task](call.input);
      const moved = output && typeof output === 'object' ? transfers.get(output) : undefined;
      port.postMessage({ id: call.id, output } satisfies Answer, moved ?? []);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ id: call.id, error: { message: e.message, stack: e.stack } } satisfies Answer);
    }
  };
  port.on('message', async (call: Call) => {
    queue.push(call);
    if (serving) return;
    serving = true;
    for (let next = queue.shift(); next; next = queue.shift()) await answer(next);
    serving = false;
  });
}
