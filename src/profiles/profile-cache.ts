// Read-through LRU in front of the store: hits never leave the process, all misses of one call go to the
// store in one round trip, concurrent misses for a key share one fetch, and absent IDs are remembered briefly.
import { LRUCache } from "lru-cache";
import { type CircuitBreaker, NEVER_OPEN } from "../reliability/circuit-breaker.ts";
import { withDeadline } from "../reliability/deadline.ts";
import type { Membership, Profile } from "./profile-codec.ts";
import type { ProfileStore } from "./profile-store.ts";

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
}

/** What one call found: the profiles in the order asked, and whether the store failed for any of them. */
export interface ProfileBatch {
  readonly profiles: (Profile | null)[];
  /** True when some profiles could not be read (store error or timeout); those are null. */
  degraded: boolean;
  hits: number;
  misses: number;
}

/** Remembers "the store has nothing for this ID" without a null (lru-cache stores no nullish values). */
const ABSENT: Profile = Object.freeze({ memberships: Object.freeze([]) });
/** Marks a shared fetch that failed, so that waiters degrade instead of seeing a rejection. */
const FAILED: Profile = Object.freeze({ memberships: Object.freeze([]) });

/**
 * Heap cost of a cached profile: key and strings as UTF-16, plus object overheads. The constants match what
 * `npm run bench` measures (loadtest/sizing.ts: heap growth per cached profile after GC) within 5%.
 */
function estimateBytes(key: string, p: Profile): number {
  let bytes = 96 + key.length * 2 + membershipBytes(p.memberships);
  // A linked ID carries its person: every other ID with a copy of its memberships.
  if (p.link !== undefined)
    for (const m of p.link.members) bytes += 580 + m.key.length * 2 + membershipBytes(m.memberships);
  return bytes;
}

function membershipBytes(list: readonly Membership[]): number {
  let bytes = 0;
  for (const m of list) bytes += 100 + (m.segment.length + m.source.length) * 2;
  return bytes;
}

export class ProfileCache {
  readonly #store: ProfileStore;
  readonly #lru: LRUCache<string, Profile> | null;
  readonly #inflight = new Map<string, Promise<Profile | null>>();
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #now: () => number;
  readonly #breaker: CircuitBreaker;
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
    this.#lru =
      opts.ttlMs === 0
        ? null
        : new LRUCache<string, Profile>({
            max: opts.maxEntries,
            maxSize: opts.maxBytes,
            sizeCalculation: (value, key) =>
              value === ABSENT ? 64 + key.length * 2 : estimateBytes(key, value),
            ttl: opts.ttlMs,
            // Expired entries are found and dropped on access; no timers per entry.
            ttlAutopurge: false,
            updateAgeOnGet: false,
            perf: { now: this.#now },
            // Read the clock on every check: the default caches it for 1 ms, which also hides an injected clock.
            ttlResolution: 0,
            dispose: (_v, _k, reason) => {
              if (reason === "evict") this.stats.evictions++;
            },
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

  /** Bytes held by the estimate lru-cache uses for its bound. */
  get bytes(): number {
    return this.#lru?.calculatedSize ?? 0;
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
    const n = keys.length;
    const batch: ProfileBatch = {
      profiles: new Array<Profile | null>(n).fill(null),
      degraded: false,
      hits: 0,
      misses: 0,
    };
    let missKeys: string[] | null = null;
    let missIdx: number[] | null = null;
    let waits: Promise<void>[] | null = null;
    for (let i = 0; i < n; i++) {
      const key = keys[i] as string;
      const hit = this.#lru?.get(key);
      if (hit !== undefined) {
        batch.hits++;
        batch.profiles[i] = hit === ABSENT ? null : hit;
        continue;
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
      return { profiles: batch.profiles.slice(), degraded: true, hits: batch.hits, misses: batch.misses };
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

  #settle(batch: ProfileBatch, i: number, p: Profile | null): void {
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
    fetched.then(
      () => {
        this.#breaker.record(true);
        this.#onStoreRead((performance.now() - t0) / 1000, true);
      },
      (err) => {
        this.#breaker.recordError(err);
        this.#onStoreRead((performance.now() - t0) / 1000, false);
      },
    );
    const shared = new Array<Promise<Profile | null>>(keys.length);
    for (let j = 0; j < keys.length; j++) {
      // Never rejects: concurrent callers waiting on this key see FAILED and degrade.
      const p = fetched.then(
        (arr) => arr[j] ?? null,
        () => FAILED,
      );
      shared[j] = p;
      this.#inflight.set(keys[j] as string, p);
    }
    let profiles: (Profile | null)[];
    try {
      profiles = await fetched;
    } catch {
      this.stats.storeErrors++;
      batch.degraded = true;
      for (let j = 0; j < keys.length; j++)
        this.#forget(keys[j] as string, shared[j] as Promise<Profile | null>);
      return;
    }
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j] as string;
      const p = profiles[j] ?? null;
      batch.profiles[idx[j] as number] = p;
      // Still ours: not invalidated (or cleared) while the read was under way, so the answer is current.
      if (this.#inflight.get(key) === shared[j]) {
        this.#inflight.delete(key);
        if (this.#lru === null) continue;
        if (p !== null) this.#lru.set(key, p, { ttl: this.#ttlMs });
        else if (this.#negativeTtlMs > 0) this.#lru.set(key, ABSENT, { ttl: this.#negativeTtlMs });
      }
    }
  }

  #forget(key: string, mine: Promise<Profile | null>): void {
    if (this.#inflight.get(key) === mine) this.#inflight.delete(key);
  }
}
