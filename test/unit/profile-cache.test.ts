import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Counters } from "../../src/capping/counters.ts";
import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import { unpackProfile } from "../../src/profiles/packed-profile.ts";
import {
  type ProfileBatch,
  ProfileCache,
  type ProfileCacheOptions,
} from "../../src/profiles/profile-cache.ts";
import type { MembershipOp, Profile } from "../../src/profiles/profile-codec.ts";
import type { ApplyResult, ProfileStore } from "../../src/profiles/profile-store.ts";

const T0_MS = 1_700_000_000_000;
const T0_S = T0_MS / 1000;

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A MemoryProfileStore that records each readProfiles call and can be made to hang or fail. */
class CountingStore implements ProfileStore {
  readonly kind = "memory";
  readonly inner = new MemoryProfileStore();
  readonly calls: { keys: string[]; nowSec: number }[] = [];
  /** While set, reads wait for it (resolve lets them answer, reject fails them). */
  gate: Deferred | null = null;
  /** While set, reads reject with it. */
  failWith: Error | null = null;

  get readCount(): number {
    return this.calls.length;
  }

  async readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]> {
    this.calls.push({ keys: [...keys], nowSec });
    const failure = this.failWith;
    if (this.gate !== null) await this.gate.promise;
    if (failure !== null) throw failure;
    return this.inner.readProfiles(keys, nowSec);
  }

  applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult> {
    return this.inner.applyMemberships(ops, nowSec);
  }

  readonly applyMembershipGroups = this.inner.applyMembershipGroups.bind(this.inner);

  ping(): Promise<boolean> {
    return this.inner.ping();
  }

  readonly addCounters = this.inner.addCounters.bind(this.inner);
  readonly deleteCounters = this.inner.deleteCounters.bind(this.inner);
  readonly readLinks = this.inner.readLinks.bind(this.inner);
  readonly writeLinks = this.inner.writeLinks.bind(this.inner);
  readonly putOrigins = this.inner.putOrigins.bind(this.inner);
  readonly setMembers = this.inner.setMembers.bind(this.inner);

  optOut(keys: readonly string[], nowSec: number): Promise<number> {
    return this.inner.optOut(keys, nowSec);
  }

  isOptedOut(key: string): Promise<boolean> {
    return this.inner.isOptedOut(key);
  }

  readonly recordImpression = this.inner.recordImpression.bind(this.inner);
  readonly readCounterState = this.inner.readCounterState.bind(this.inner);

  readCounters(personKey: string, nowSec: number): Promise<Counters> {
    return this.inner.readCounters(personKey, nowSec);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async add(key: string, segment: string): Promise<void> {
    await this.inner.applyMemberships(
      [{ key, op: "add", segment, expiresAt: 0, source: "t", generation: 0, minGeneration: 0 }],
      0,
    );
  }
}

/** A batch as the store's Profile objects: the cache holds them packed. */
const seen = (b: ProfileBatch) => ({
  profiles: b.profiles.map((p) => (p === null ? null : unpackProfile(p, b.kinds))),
  degraded: b.degraded,
  hits: b.hits,
  misses: b.misses,
});

const profileOf = (...segments: string[]): Profile => ({
  memberships: segments.map((segment) => ({ segment, expiresAt: 0, source: "t", generation: 0 })),
});

/**
 * lru-cache remembers its last clock reading for `ttlResolution` (1 ms) of real time; letting a real
 * timer run after moving the fake clock makes the cache read the clock again.
 */
const realTick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe("ProfileCache", () => {
  let store: CountingStore;
  let now: number;

  const makeCache = (opts: Partial<ProfileCacheOptions> = {}): ProfileCache =>
    new ProfileCache(store, {
      maxEntries: 1000,
      maxBytes: 1_000_000,
      ttlMs: 10_000,
      negativeTtlMs: 1_000,
      now: () => now,
      ...opts,
    });

  const advance = async (ms: number): Promise<void> => {
    now += ms;
    await realTick();
  };

  beforeEach(async () => {
    store = new CountingStore();
    now = T0_MS;
    await store.add("bu:a", "sports");
    await store.add("bu:b", "autos");
    await store.add("bu:c", "news");
  });

  it("reads all missing keys of one call from the store once, in the order asked", async () => {
    const cache = makeCache();
    const r = await cache.getMany(["bu:a", "bu:none", "bu:b"]);
    expect(seen(r)).toEqual({
      profiles: [profileOf("sports"), null, profileOf("autos")],
      degraded: false,
      hits: 0,
      misses: 3,
    });
    expect(store.calls).toEqual([{ keys: ["bu:a", "bu:none", "bu:b"], nowSec: T0_S }]);
  });

  it("answers a second call from cache without the store", async () => {
    const cache = makeCache();
    await cache.getMany(["bu:a", "bu:none"]);
    const r = await cache.getMany(["bu:a", "bu:none"]);
    expect(seen(r)).toEqual({ profiles: [profileOf("sports"), null], degraded: false, hits: 2, misses: 0 });
    expect(store.readCount).toBe(1);
    expect(cache.size).toBe(2);
  });

  it("sends only the missing keys of a call to the store", async () => {
    const cache = makeCache();
    await cache.getMany(["bu:a"]);
    const r = await cache.getMany(["bu:b", "bu:a", "bu:c"]);
    expect(seen(r).profiles).toEqual([profileOf("autos"), profileOf("sports"), profileOf("news")]);
    expect({ hits: r.hits, misses: r.misses }).toEqual({ hits: 1, misses: 2 });
    expect(store.calls.map((c) => c.keys)).toEqual([["bu:a"], ["bu:b", "bu:c"]]);
  });

  it("makes no store call for an empty key list", async () => {
    const cache = makeCache();
    expect(seen(await cache.getMany([]))).toEqual({ profiles: [], degraded: false, hits: 0, misses: 0 });
    expect(store.readCount).toBe(0);
  });

  it("remembers an absent ID for negativeTtlMs, then reads it again", async () => {
    const cache = makeCache({ ttlMs: 10_000, negativeTtlMs: 1_000 });
    await cache.getMany(["bu:new"]);
    await store.add("bu:new", "fresh");

    await advance(999);
    expect(seen(await cache.getMany(["bu:new"]))).toEqual({
      profiles: [null],
      degraded: false,
      hits: 1,
      misses: 0,
    });
    expect(store.readCount).toBe(1);

    await advance(2);
    expect(seen(await cache.getMany(["bu:new"]))).toEqual({
      profiles: [profileOf("fresh")],
      degraded: false,
      hits: 0,
      misses: 1,
    });
    expect(store.readCount).toBe(2);
  });

  it("does not remember absent IDs when negativeTtlMs is 0", async () => {
    const cache = makeCache({ negativeTtlMs: 0 });
    await cache.getMany(["bu:none"]);
    await cache.getMany(["bu:none"]);
    expect(store.readCount).toBe(2);
    expect(cache.size).toBe(0);
  });

  it("serves a profile for ttlMs, then shows the store's changed value", async () => {
    const cache = makeCache({ ttlMs: 10_000 });
    await cache.getMany(["bu:a"]);
    await store.add("bu:a", "travel");

    await advance(9_999);
    expect(seen(await cache.getMany(["bu:a"])).profiles).toEqual([profileOf("sports")]);
    expect(store.readCount).toBe(1);

    await advance(2);
    const r = await cache.getMany(["bu:a"]);
    expect(seen(r).profiles).toEqual([profileOf("sports", "travel")]);
    expect({ hits: r.hits, misses: r.misses }).toEqual({ hits: 0, misses: 1 });
    expect(store.calls.map((c) => c.nowSec)).toEqual([T0_S, T0_S + 10]);
  });

  it("expires an entry as soon as the injected clock passes ttlMs", async () => {
    const cache = makeCache({ ttlMs: 10_000 });
    await cache.getMany(["bu:a"]);
    expect((await cache.getMany(["bu:a"])).hits).toBe(1);
    await store.add("bu:a", "travel");
    // The clock is moved with no real time passing: the cache must use the clock it was given.
    now += 60_000;
    const r = await cache.getMany(["bu:a"]);
    expect({ hits: r.hits, misses: r.misses, reads: store.readCount }).toEqual({
      hits: 0,
      misses: 1,
      reads: 2,
    });
    expect(seen(r).profiles).toEqual([profileOf("sports", "travel")]);
  });

  it("invalidate() makes the next call read the store", async () => {
    const cache = makeCache();
    await cache.getMany(["bu:a", "bu:b"]);
    await store.add("bu:a", "travel");
    cache.invalidate(["bu:a"]);
    const r = await cache.getMany(["bu:a", "bu:b"]);
    expect(seen(r).profiles).toEqual([profileOf("sports", "travel"), profileOf("autos")]);
    expect(store.calls.map((c) => c.keys)).toEqual([["bu:a", "bu:b"], ["bu:a"]]);
  });

  it("concurrent calls for a key being fetched share one store read", async () => {
    const cache = makeCache();
    store.gate = deferred();
    const first = cache.getMany(["bu:a"]);
    const second = cache.getMany(["bu:a"]);
    const third = cache.getMany(["bu:a", "bu:b"]);
    expect(store.calls.map((c) => c.keys)).toEqual([["bu:a"], ["bu:b"]]);

    store.gate.resolve();
    const [r1, r2, r3] = await Promise.all([first, second, third]);
    expect(seen(r1)).toEqual({ profiles: [profileOf("sports")], degraded: false, hits: 0, misses: 1 });
    expect(seen(r2)).toEqual({ profiles: [profileOf("sports")], degraded: false, hits: 0, misses: 1 });
    expect(seen(r3)).toEqual({
      profiles: [profileOf("sports"), profileOf("autos")],
      degraded: false,
      hits: 0,
      misses: 2,
    });
    expect(store.readCount).toBe(2);

    expect((await cache.getMany(["bu:a", "bu:b"])).hits).toBe(2);
    expect(store.readCount).toBe(2);
  });

  it("concurrent waiters on an absent key get null", async () => {
    const cache = makeCache();
    store.gate = deferred();
    const first = cache.getMany(["bu:none"]);
    const second = cache.getMany(["bu:none"]);
    store.gate.resolve();
    expect(seen(await first).profiles).toEqual([null]);
    expect(seen(await second)).toEqual({ profiles: [null], degraded: false, hits: 0, misses: 1 });
    expect(store.readCount).toBe(1);
  });

  describe("when the store fails", () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    beforeEach(() => {
      unhandled.length = 0;
      process.on("unhandledRejection", onUnhandled);
    });
    afterEach(() => {
      process.off("unhandledRejection", onUnhandled);
    });

    it("answers degraded with null profiles and caches nothing", async () => {
      const cache = makeCache();
      await cache.getMany(["bu:b"]);
      store.failWith = new Error("redis timeout");
      const r = await cache.getMany(["bu:a", "bu:b"]);
      expect(seen(r)).toEqual({ profiles: [null, profileOf("autos")], degraded: true, hits: 1, misses: 1 });
      expect(cache.stats).toEqual({
        hits: 1,
        misses: 2,
        storeErrors: 1,
        deadlines: 0,
        breakerSkips: 0,
        evictions: 0,
      });

      store.failWith = null;
      const again = await cache.getMany(["bu:a"]);
      expect(seen(again)).toEqual({ profiles: [profileOf("sports")], degraded: false, hits: 0, misses: 1 });
      expect(store.readCount).toBe(3);
      await realTick();
      expect(unhandled).toEqual([]);
    });

    it("degrades concurrent waiters on the failed fetch too, with no unhandled rejection", async () => {
      const cache = makeCache();
      store.gate = deferred();
      const first = cache.getMany(["bu:a"]);
      const second = cache.getMany(["bu:a"]);
      const third = cache.getMany(["bu:a", "bu:b"]);
      store.gate.reject(new Error("connection reset"));

      const [r1, r2, r3] = await Promise.all([first, second, third]);
      expect(seen(r1)).toEqual({ profiles: [null], degraded: true, hits: 0, misses: 1 });
      expect(seen(r2)).toEqual({ profiles: [null], degraded: true, hits: 0, misses: 1 });
      expect(seen(r3)).toEqual({ profiles: [null, null], degraded: true, hits: 0, misses: 2 });
      // Two store reads (["bu:a"], ["bu:b"]), both failed; waiters are not counted as store errors.
      expect(store.readCount).toBe(2);
      expect(cache.stats).toEqual({
        hits: 0,
        misses: 4,
        storeErrors: 2,
        deadlines: 0,
        breakerSkips: 0,
        evictions: 0,
      });
      await realTick();
      expect(unhandled).toEqual([]);
    });
  });

  it("with ttlMs = 0 reads the store on every call", async () => {
    const cache = makeCache({ ttlMs: 0 });
    for (let i = 0; i < 3; i++) {
      expect(seen(await cache.getMany(["bu:a", "bu:none"]))).toEqual({
        profiles: [profileOf("sports"), null],
        degraded: false,
        hits: 0,
        misses: 2,
      });
    }
    expect(store.readCount).toBe(3);
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it("with ttlMs = 0 still shares a pending read", async () => {
    const cache = makeCache({ ttlMs: 0 });
    store.gate = deferred();
    const first = cache.getMany(["bu:a"]);
    const second = cache.getMany(["bu:a"]);
    store.gate.resolve();
    expect(seen(await first).profiles).toEqual([profileOf("sports")]);
    expect(seen(await second).profiles).toEqual([profileOf("sports")]);
    expect(store.readCount).toBe(1);
  });

  it("holds at most maxEntries, evicting the least recently used", async () => {
    const cache = makeCache({ maxEntries: 2 });
    await cache.getMany(["bu:a", "bu:b", "bu:c"]);
    expect(cache.size).toBe(2);

    const kept = await cache.getMany(["bu:b", "bu:c"]);
    expect({ hits: kept.hits, misses: kept.misses }).toEqual({ hits: 2, misses: 0 });
    expect(store.readCount).toBe(1);

    const evicted = await cache.getMany(["bu:a"]);
    expect({ hits: evicted.hits, misses: evicted.misses }).toEqual({ hits: 0, misses: 1 });
    expect(seen(evicted).profiles).toEqual([profileOf("sports")]);
    expect(store.calls.map((c) => c.keys)).toEqual([["bu:a", "bu:b", "bu:c"], ["bu:a"]]);
    expect(cache.size).toBe(2);
  });

  it("keeps the estimated bytes within maxBytes", async () => {
    const cache = makeCache({ maxBytes: 1024 });
    const keys = Array.from({ length: 20 }, (_, i) => `bu:k${i}`);
    for (const k of keys) await store.add(k, "s".repeat(40));
    await cache.getMany(keys);
    expect(cache.bytes).toBeGreaterThan(0);
    expect(cache.bytes).toBeLessThanOrEqual(1024);
    expect(cache.size).toBeLessThan(20);
  });

  it("counts hits, misses and store errors over its lifetime", async () => {
    const cache = makeCache();
    expect(cache.stats).toEqual({
      hits: 0,
      misses: 0,
      storeErrors: 0,
      deadlines: 0,
      breakerSkips: 0,
      evictions: 0,
    });
    await cache.getMany(["bu:a", "bu:b"]);
    await cache.getMany(["bu:a", "bu:b", "bu:c"]);
    expect(cache.stats).toEqual({
      hits: 2,
      misses: 3,
      storeErrors: 0,
      deadlines: 0,
      breakerSkips: 0,
      evictions: 0,
    });
    store.failWith = new Error("down");
    await cache.getMany(["bu:x"]);
    await cache.getMany(["bu:y"]);
    expect(cache.stats).toEqual({
      hits: 2,
      misses: 5,
      storeErrors: 2,
      deadlines: 0,
      breakerSkips: 0,
      evictions: 0,
    });
  });

  it("clear() empties the cache", async () => {
    const cache = makeCache();
    await cache.getMany(["bu:a"]);
    cache.clear();
    expect(cache.size).toBe(0);
    await cache.getMany(["bu:a"]);
    expect(store.readCount).toBe(2);
  });
});
