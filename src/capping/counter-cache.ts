// A cache of people's impression counters in front of the store. Counters change with every impression: an
// impression recorded through this instance drops its person's entry at once, one recorded through another
// instance drops it when that instance's message arrives (invalidation-bus.ts, `counters`), and the whole
// cache is emptied when the subscriber comes back after missing messages. `ttlMs` is the safety net for a
// message lost all the same.
import { LRUCache } from "lru-cache";
import type { ProfileStore } from "../profiles/profile-store.ts";
import { type CircuitBreaker, NEVER_OPEN } from "../reliability/circuit-breaker.ts";
import { withDeadline } from "../reliability/deadline.ts";
import { CounterIndex } from "./cap-windows.ts";

const EMPTY = new CounterIndex(new Map());
const FAILED_READ: CounterRead = Object.freeze({ counters: EMPTY, failed: true, optedOut: false });

/**
 * What a read found: the counters (indexed once here, so every lookup served from cache reuses the index),
 * or empty ones with `failed` when the store could not answer.
 */
export interface CounterRead {
  readonly counters: CounterIndex;
  readonly failed: boolean;
  /** The person's ID opted out (read with the counters): no caps state and no notice token for it. */
  readonly optedOut: boolean;
}

export class CounterCache {
  readonly #store: ProfileStore;
  readonly #lru: LRUCache<string, CounterRead> | null;
  readonly #inflight = new Map<string, Promise<CounterRead>>();
  readonly #now: () => number;

  readonly #breaker: CircuitBreaker;
  /** Lookups answered from the cache, reads sent to the store, and times the whole cache was emptied. */
  readonly stats = { hits: 0, reads: 0, clears: 0 };

  constructor(
    store: ProfileStore,
    opts: { ttlMs: number; maxEntries: number; now?: () => number; breaker?: CircuitBreaker },
  ) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#breaker = opts.breaker ?? NEVER_OPEN;
    this.#lru =
      opts.ttlMs === 0
        ? null
        : new LRUCache<string, CounterRead>({
            max: opts.maxEntries,
            ttl: opts.ttlMs,
            ttlResolution: 0,
            perf: { now: this.#now },
          });
  }

  /**
   * Synchronous on a hit; otherwise one store read, shared by concurrent callers for the same person, waited
   * for `waitMs` at most (then: failed, so the answer says degraded).
   */
  get(personKey: string, waitMs?: number): CounterRead | Promise<CounterRead> {
    const hit = this.#lru?.get(personKey);
    if (hit !== undefined) {
      this.stats.hits++;
      return hit;
    }
    const pending = this.#inflight.get(personKey) ?? this.#read(personKey);
    if (!(pending instanceof Promise) || waitMs === undefined) return pending;
    return withDeadline(pending, waitMs, () => FAILED_READ);
  }

  #read(personKey: string): CounterRead | Promise<CounterRead> {
    if (!this.#breaker.allow()) return FAILED_READ;
    this.stats.reads++;
    const p = this.#store.readCounterState(personKey, Math.floor(this.#now() / 1000)).then(
      (state): CounterRead => {
        this.#breaker.record(true);
        const read: CounterRead = {
          counters: new CounterIndex(state.counters),
          failed: false,
          optedOut: state.optedOut,
        };
        if (this.#inflight.get(personKey) === p) {
          this.#inflight.delete(personKey);
          this.#lru?.set(personKey, read);
        }
        return read;
      },
      (err): CounterRead => {
        this.#breaker.recordError(err);
        if (this.#inflight.get(personKey) === p) this.#inflight.delete(personKey);
        return FAILED_READ;
      },
    );
    this.#inflight.set(personKey, p);
    return p;
  }

  /**
   * After an impression recorded for this person (here or elsewhere): the next read goes to the store. A read
   * already in flight may have been answered before the impression: it is not cached.
   */
  invalidate(personKey: string): void {
    this.#lru?.delete(personKey);
    this.#inflight.delete(personKey);
  }

  /** Drops every entry and every read in flight: after messages may have been missed. */
  clear(): void {
    this.#lru?.clear();
    this.#inflight.clear();
    this.stats.clears++;
  }

  /** Entries held (expired ones included until they are next touched or evicted). */
  get size(): number {
    return this.#lru?.size ?? 0;
  }
}
