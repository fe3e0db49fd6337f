// Answers kept for a short time in this process. The promise is what is kept, so concurrent askers share
// one load; a failed load is forgotten at once; past `maxEntries` everything is dropped, which is cheaper
// than tracking use and costs only a reload. Callers clear it when what it caches changes.
export class TtlCache<T = unknown> {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { until: number; value: Promise<T> }>();

  constructor(ttlMs: number, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  get<V extends T>(key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && hit.until > now) return hit.value as Promise<V>;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    const value = load();
    this.#entries.set(key, { until: now + this.#ttlMs, value });
    value.catch(() => this.#entries.delete(key));
    return value;
  }

  clear(): void {
    this.#entries.clear();
  }
}
