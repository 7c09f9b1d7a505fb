// Read-through LRU in front of the store: hits never leave the process, all misses of one call go to the
// store in one round trip, concurrent misses for a key share one fetch, and absent IDs are remembered briefly.
import { type CircuitBreaker, NEVER_OPEN } from "../reliability/circuit-breaker.ts";
import { withDeadline } from "../reliability/deadline.ts";
import {
  type CachedProfile,
  cachedBytes,
  flatCopy,
  MAX_KINDS,
  MembershipKinds,
  packProfile,
  stringBytes,
} from "./packed-profile.ts";
import type { Profile } from "./profile-codec.ts";
import type { ProfileStore } from "./profile-store.ts";
import { SlotLru } from "./slot-lru.ts";

export interface ProfileCacheOptions {
  /** Most entries (profiles plus known-absent markers). */
  readonly maxEntries: number;
  /** Upper bound on estimated bytes held. */
  readonly maxBytes: number;
  /** How long a profile read from the store is served from cache. 0 disables caching entirely. */
  readonly ttlMs: number;
  /** How long an ID the store does not have is remembered as absent. */
  readonly negativeTtlMs: number;
  /** Clock in epoch milliseconds (injectable for tests). */
  readonly now?: () => number;
  /** Around store reads: open, no read is attempted and the batch is degraded at once. */
  readonly breaker?: CircuitBreaker;
  /** Told of each store round trip (seconds, success), for the latency metric. */
  readonly onStoreRead?: (seconds: number, ok: boolean) => void;
  /** Kinds one table holds before the cache starts afresh (packed-profile.ts MAX_KINDS; lower in tests). */
  readonly maxKinds?: number;
}

/**
 * What one call found: the profiles in the order asked (packed: read them with `kinds`), and whether the store
 * failed for any of them.
 */
export interface ProfileBatch {
  readonly profiles: (CachedProfile | null)[];
  /** Where each profile is held in the cache (for memo and keepMemo), or -1. */
  readonly slots: number[];
  /** The kinds table the profiles are packed against. */
  readonly kinds: MembershipKinds;
  /** True when some profiles could not be read (store error or timeout); those are null. */
  degraded: boolean;
  hits: number;
  misses: number;
}

/** Marks a shared fetch that failed, so that waiters degrade instead of seeing a rejection. */
const FAILED: unique symbol = Symbol("failed");
type Fetched = CachedProfile | null | typeof FAILED;

export class ProfileCache {
  readonly #store: ProfileStore;
  /** null when CACHE_TTL_MS is 0: nothing is kept. A known-absent ID is held as null. */
  readonly #lru: SlotLru<CachedProfile | null> | null;
  readonly #inflight = new Map<string, Promise<Fetched>>();
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #now: () => number;
  readonly #breaker: CircuitBreaker;
  #kinds = new MembershipKinds();
  readonly #maxKinds: number;
  /** Lifetime counters, for /healthz and the benchmark's hit ratio. */
  readonly stats = { hits: 0, misses: 0, storeErrors: 0, deadlines: 0, breakerSkips: 0, evictions: 0 };
  readonly #onStoreRead: (seconds: number, ok: boolean) => void;

  constructor(store: ProfileStore, opts: ProfileCacheOptions) {
    this.#store = store;
    this.#ttlMs = opts.ttlMs;
    this.#negativeTtlMs = opts.negativeTtlMs;
    this.#now = opts.now ?? Date.now;
    this.#breaker = opts.breaker ?? NEVER_OPEN;
    this.#onStoreRead = opts.onStoreRead ?? (() => {});
    this.#maxKinds = opts.maxKinds ?? MAX_KINDS;
    this.#lru =
      opts.ttlMs === 0
        ? null
        : new SlotLru<CachedProfile | null>(opts.maxEntries, opts.maxBytes, () => {
            this.stats.evictions++;
          });
  }

  /** Whether profiles are kept at all (CACHE_TTL_MS > 0): what is worked out from one may be kept with it. */
  get holds(): boolean {
    return this.#lru !== null;
  }

  /** Entries held now (for metrics and tests). */
  get size(): number {
    return this.#lru?.size ?? 0;
  }

  /** Estimated heap bytes held (what CACHE_MAX_BYTES bounds): keys, packed profiles, memos and bookkeeping. */
  get bytes(): number {
    return this.#lru?.bytes ?? 0;
  }

  /** Bytes of the cache's bookkeeping arrays outside the JavaScript heap (for sizing). */
  get arrayBytes(): number {
    return this.#lru?.arrayBytes ?? 0;
  }

  /**
   * What was kept beside a batch's profile (its `slots` entry), while the cache still holds that profile
   * packed against the same kinds: after the cache has started afresh an equal string may mean other
   * memberships.
   */
  memo(slot: number, p: CachedProfile, kinds: MembershipKinds): unknown {
    return this.#lru === null || kinds !== this.#kinds ? undefined : this.#lru.memo(slot, p);
  }

  /** Keeps `memo` (of `bytes` heap) beside the profile in `slot`, for as long as the profile is held. */
  keepMemo(slot: number, p: CachedProfile, kinds: MembershipKinds, memo: unknown, bytes: number): void {
    if (kinds === this.#kinds) this.#lru?.keepMemo(slot, p, memo, bytes);
  }

  /**
   * Forgets these keys. A read of them already under way will not put its (possibly older) answer back:
   * dropping the in-flight entry tells #fetch not to cache it.
   */
  invalidate(keys: Iterable<string>): void {
    for (const k of keys) {
      this.#lru?.delete(k);
      this.#inflight.delete(k);
    }
  }

  /** Forgets everything, including what reads under way would otherwise put back. */
  clear(): void {
    this.#lru?.clear();
    this.#inflight.clear();
  }

  /**
   * Profiles for `keys` (which must be distinct), from cache where possible and one store call for the rest.
   * Answers synchronously when everything was cached: a hit costs no promise and no trip through the
   * event loop, so the HTTP layer can write the answer inside the same uWS callback.
   * With `waitMs`, the store is waited for that long at most: then the batch answers with what the cache
   * held, degraded (the read goes on and fills the cache for the next request).
   */
  getMany(keys: readonly string[], waitMs?: number): ProfileBatch | Promise<ProfileBatch> {
    const nowMs = this.#now();
    // A full kinds table starts afresh, with nothing packed against the old one left in the cache.
    if (this.#kinds.size >= this.#maxKinds) {
      this.clear();
      this.#kinds = new MembershipKinds();
    }
    const n = keys.length;
    const batch: ProfileBatch = {
      profiles: new Array<CachedProfile | null>(n).fill(null),
      slots: new Array<number>(n).fill(-1),
      kinds: this.#kinds,
      degraded: false,
      hits: 0,
      misses: 0,
    };
    const lru = this.#lru;
    let missKeys: string[] | null = null;
    let missIdx: number[] | null = null;
    let waits: Promise<void>[] | null = null;
    for (let i = 0; i < n; i++) {
      const key = keys[i] as string;
      if (lru !== null) {
        const slot = lru.find(key, nowMs);
        if (slot >= 0) {
          batch.hits++;
          batch.profiles[i] = lru.value(slot);
          batch.slots[i] = slot;
          continue;
        }
      }
      batch.misses++;
      const pending = this.#inflight.get(key);
      if (pending !== undefined) {
        if (waits === null) waits = [];
        waits.push(pending.then((p) => this.#settle(batch, i, p)));
        continue;
      }
      if (missKeys === null || missIdx === null) {
        missKeys = [];
        missIdx = [];
      }
      missKeys.push(key);
      missIdx.push(i);
    }
    this.stats.hits += batch.hits;
    this.stats.misses += batch.misses;
    if (missKeys === null && waits === null) return batch;
    const work = this.#complete(batch, missKeys, missIdx, waits);
    if (waitMs === undefined) return work;
    return withDeadline(work, waitMs, () => {
      this.stats.deadlines++;
      // A copy: the read still under way must not change an answer already given.
      return {
        profiles: batch.profiles.slice(),
        slots: batch.slots.slice(),
        kinds: batch.kinds,
        degraded: true,
        hits: batch.hits,
        misses: batch.misses,
      };
    });
  }

  async #complete(
    batch: ProfileBatch,
    missKeys: string[] | null,
    missIdx: number[] | null,
    waits: Promise<void>[] | null,
  ): Promise<ProfileBatch> {
    if (missKeys !== null && missIdx !== null) await this.#fetch(batch, missKeys, missIdx);
    if (waits !== null) await Promise.all(waits);
    return batch;
  }

  #settle(batch: ProfileBatch, i: number, p: Fetched): void {
    if (p === FAILED) batch.degraded = true;
    else batch.profiles[i] = p;
  }

  async #fetch(batch: ProfileBatch, keys: string[], idx: number[]): Promise<void> {
    if (!this.#breaker.allow()) {
      // The store has been failing: do not wait for it again until the breaker lets a probe through.
      this.stats.breakerSkips++;
      batch.degraded = true;
      return;
    }
    const t0 = performance.now();
    const fetched = this.#store.readProfiles(keys, Math.floor(this.#now() / 1000));
    const kinds = batch.kinds;
    const packed = fetched.then(
      (arr) => {
        this.#breaker.record(true);
        this.#onStoreRead((performance.now() - t0) / 1000, true);
        // Packed once, for this batch, the cache and every waiter on these keys.
        const out = new Array<CachedProfile | null>(arr.length);
        for (let j = 0; j < arr.length; j++) {
          const p = arr[j] as Profile | null;
          out[j] = p == null ? null : packProfile(p, kinds);
        }
        return out;
      },
      (err) => {
        this.#breaker.recordError(err);
        this.#onStoreRead((performance.now() - t0) / 1000, false);
        throw err;
      },
    );
    const shared = new Array<Promise<Fetched>>(keys.length);
    for (let j = 0; j < keys.length; j++) {
      // Never rejects: concurrent callers waiting on this key see FAILED and degrade.
      const p = packed.then(
        (arr) => arr[j] ?? null,
        (): Fetched => FAILED,
      );
      shared[j] = p;
      this.#inflight.set(keys[j] as string, p);
    }
    let profiles: (CachedProfile | null)[];
    try {
      profiles = await packed;
    } catch {
      this.stats.storeErrors++;
      batch.degraded = true;
      for (let j = 0; j < keys.length; j++) this.#forget(keys[j] as string, shared[j] as Promise<Fetched>);
      return;
    }
    const lru = this.#lru;
    const nowMs = this.#now();
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j] as string;
      const p = profiles[j] ?? null;
      const i = idx[j] as number;
      batch.profiles[i] = p;
      // Still ours: not invalidated (or cleared) while the read was under way, so the answer is current.
      if (this.#inflight.get(key) === shared[j]) {
        this.#inflight.delete(key);
        if (lru === null || kinds !== this.#kinds) continue;
        // Its own flat copy of the key (packed-profile.ts flatCopy): a typed key is a cons string.
        const held = flatCopy(key);
        if (p !== null)
          batch.slots[i] = lru.set(held, p, stringBytes(held) + cachedBytes(p), this.#ttlMs, nowMs);
        else if (this.#negativeTtlMs > 0) lru.set(held, null, stringBytes(held), this.#negativeTtlMs, nowMs);
      }
    }
  }

  #forget(key: string, mine: Promise<Fetched>): void {
    if (this.#inflight.get(key) === mine) this.#inflight.delete(key);
  }
}
