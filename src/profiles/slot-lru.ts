// The profile cache's LRU: entries in numbered slots of parallel arrays, a Map from key to slot, and a slot
// beside each value for what is worked out from it (live-segments.ts keeps the answer's view there).
// It replaced lru-cache on the bid path: lru-cache's get was about a tenth of a cache-hit lookup's JavaScript
// time in a CPU profile under load, its values needed a wrapper object to carry the view (a WeakMap before),
// and it allocates its arrays for `max` entries up front.

/** Slots the arrays start with; they double as entries arrive, up to maxEntries. */
const INITIAL_SLOTS = 1_024;

/**
 * Heap bytes per entry besides key and value: the Map's entry and its share of the hash table (about 30),
 * the key, value and memo slots (8 each), and in typed arrays expiry (8), the two links and the two sizes (4
 * each), with the room those arrays keep after doubling. What `bytes` counts, so that CACHE_MAX_BYTES follows
 * it: loadtest/sizing.ts measures 212 B a 10-segment profile with a 59-character key, the estimate says 231.
 */
export const ENTRY_OVERHEAD_BYTES = 92;

export class SlotLru<V> {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #onEvict: () => void;
  readonly #slots = new Map<string, number>();
  #keys: (string | undefined)[] = [];
  #vals: (V | undefined)[] = [];
  #memos: unknown[] = [];
  /** Epoch ms after which the entry is stale. */
  #expires: Float64Array;
  /** The entry's bytes, its memo's included; and the memo's alone. */
  #sizes: Uint32Array;
  #memoSizes: Uint32Array;
  /** Toward the least recently used (prev) and the most recently used (next); -1 ends the list. */
  #prev: Int32Array;
  #next: Int32Array;
  #newest = -1;
  #oldest = -1;
  /** Slots below this have been used; freed ones wait in #free. */
  #used = 0;
  #free: number[] = [];
  #bytes = 0;

  constructor(maxEntries: number, maxBytes: number, onEvict: () => void = () => {}) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
    this.#onEvict = onEvict;
    const n = Math.min(INITIAL_SLOTS, maxEntries);
    this.#expires = new Float64Array(n);
    this.#sizes = new Uint32Array(n);
    this.#memoSizes = new Uint32Array(n);
    this.#prev = new Int32Array(n);
    this.#next = new Int32Array(n);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Bytes of the typed arrays (expiry, sizes, links), which sit outside the JavaScript heap. */
  get arrayBytes(): number {
    return (
      this.#expires.byteLength +
      this.#sizes.byteLength +
      this.#memoSizes.byteLength +
      this.#prev.byteLength +
      this.#next.byteLength
    );
  }

  /** Estimated heap bytes of every entry (key, value, memo and bookkeeping). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The slot of `key` when it is held and not stale at `nowMs` (and makes it the most recently used), else -1.
   * A stale entry is dropped.
   */
  find(key: string, nowMs: number): number {
    const slot = this.#slots.get(key);
    if (slot === undefined) return -1;
    if (nowMs > (this.#expires[slot] as number)) {
      this.#remove(slot);
      return -1;
    }
    if (slot !== this.#newest) {
      this.#unlink(slot);
      this.#linkNewest(slot);
    }
    return slot;
  }

  value(slot: number): V {
    return this.#vals[slot] as V;
  }

  /** What was kept beside the slot's value, while the slot still holds `value` (a reused slot answers undefined). */
  memo(slot: number, value: V): unknown {
    return slot >= 0 && this.#vals[slot] === value ? this.#memos[slot] : undefined;
  }

  /** Keeps `memo` beside the slot's value (when it is still `value`), counting its bytes against the bound. */
  keepMemo(slot: number, value: V, memo: unknown, bytes: number): void {
    if (slot < 0 || this.#vals[slot] !== value) return;
    const delta = bytes - (this.#memoSizes[slot] as number);
    this.#memos[slot] = memo;
    this.#memoSizes[slot] = bytes;
    this.#sizes[slot] = (this.#sizes[slot] as number) + delta;
    this.#bytes += delta;
    this.#trim(slot);
  }

  /**
   * Holds `value` under `key` for `ttlMs` from `nowMs` as the most recently used, evicting the least recently
   * used beyond maxEntries or maxBytes. Resolves the slot, or -1 when the entry alone exceeds maxBytes.
   */
  set(key: string, value: V, bytes: number, ttlMs: number, nowMs: number): number {
    const total = bytes + ENTRY_OVERHEAD_BYTES;
    let slot = this.#slots.get(key);
    if (slot !== undefined) this.#remove(slot);
    if (total > this.#maxBytes) return -1;
    while (this.#slots.size >= this.#maxEntries) this.#evictOldest();
    slot = this.#take();
    this.#slots.set(key, slot);
    this.#keys[slot] = key;
    this.#vals[slot] = value;
    this.#memos[slot] = undefined;
    this.#memoSizes[slot] = 0;
    this.#expires[slot] = nowMs + ttlMs;
    this.#sizes[slot] = total;
    this.#bytes += total;
    this.#linkNewest(slot);
    this.#trim(slot);
    return slot;
  }

  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot !== undefined) this.#remove(slot);
  }

  clear(): void {
    this.#slots.clear();
    this.#keys = [];
    this.#vals = [];
    this.#memos = [];
    this.#free = [];
    this.#used = 0;
    this.#newest = -1;
    this.#oldest = -1;
    this.#bytes = 0;
  }

  /** Evicts the least recently used while over maxBytes, never `keep` (the entry just written). */
  #trim(keep: number): void {
    while (this.#bytes > this.#maxBytes && this.#oldest !== -1 && this.#oldest !== keep) this.#evictOldest();
  }

  #evictOldest(): void {
    this.#remove(this.#oldest);
    this.#onEvict();
  }

  #take(): number {
    const freed = this.#free.pop();
    if (freed !== undefined) return freed;
    const slot = this.#used++;
    if (slot >= this.#expires.length) this.#grow();
    return slot;
  }

  #grow(): void {
    const n = Math.min(this.#expires.length * 2, this.#maxEntries);
    const widen = <T extends Float64Array | Uint32Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.#expires = widen(this.#expires, (k) => new Float64Array(k));
    this.#sizes = widen(this.#sizes, (k) => new Uint32Array(k));
    this.#memoSizes = widen(this.#memoSizes, (k) => new Uint32Array(k));
    this.#prev = widen(this.#prev, (k) => new Int32Array(k));
    this.#next = widen(this.#next, (k) => new Int32Array(k));
  }

  #remove(slot: number): void {
    this.#slots.delete(this.#keys[slot] as string);
    this.#unlink(slot);
    this.#bytes -= this.#sizes[slot] as number;
    this.#keys[slot] = undefined;
    this.#vals[slot] = undefined;
    this.#memos[slot] = undefined;
    this.#memoSizes[slot] = 0;
    this.#free.push(slot);
  }

  #unlink(slot: number): void {
    const p = this.#prev[slot] as number;
    const n = this.#next[slot] as number;
    if (p === -1) this.#oldest = n;
    else this.#next[p] = n;
    if (n === -1) this.#newest = p;
    else this.#prev[n] = p;
  }

  #linkNewest(slot: number): void {
    this.#prev[slot] = this.#newest;
    this.#next[slot] = -1;
    if (this.#newest === -1) this.#oldest = slot;
    else this.#next[this.#newest] = slot;
    this.#newest = slot;
  }
}
