// The counter cache as the bid path uses it: a read cached for long still evaluates its sliding windows at the
// lookup's clock (an impression that ages out of a window stops counting, however old the cached read), and
// what the invalidation bus asks of it: one person dropped, or everything, reads in flight included.
import { describe, expect, it } from "vitest";
import type { CapRule } from "../../src/capping/cap-rule.ts";
import { capsFor } from "../../src/capping/caps-at-bid.ts";
import { CounterCache } from "../../src/capping/counter-cache.ts";
import { fieldsFor, impressionScopes } from "../../src/capping/counters.ts";
import { CONFIG_SPEC } from "../../src/config.ts";
import type { CounterState, ProfileStore } from "../../src/profiles/profile-store.ts";
import { CatalogSnapshot } from "../../src/segments/catalog.ts";

const HOUR = 3_600;
/** Midnight UTC: a multiple of every bucket size, so the window edges below fall where the comments say. */
const T = 19_686 * 86_400;

/** Counters as the store holds them after one impression of `campaign` at each of `ts`. */
function countersAt(campaign: string, ts: readonly number[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of ts)
    for (const scope of impressionScopes(campaign, null, null))
      for (const f of fieldsFor(scope, t)) m.set(f, (m.get(f) ?? 0) + 1);
  return m;
}

/** A store that answers every counter read with `state()` and counts the reads; each resolves when released. */
function fakeStore(state: () => CounterState) {
  const waiting: (() => void)[] = [];
  const store = {
    reads: 0,
    held: false,
    release(): void {
      for (const r of waiting.splice(0)) r();
    },
    readCounterState(_key: string, _nowSec: number): Promise<CounterState> {
      store.reads++;
      const answer = state();
      if (!store.held) return Promise.resolve(answer);
      return new Promise((resolve) => waiting.push(() => resolve(answer)));
    },
  };
  return store;
}

const asStore = (s: ReturnType<typeof fakeStore>) => s as unknown as ProfileStore;
const snapshotOf = (rules: CapRule[]) => new CatalogSnapshot([], new Map(), rules);

describe("a cached counter read slides with the lookup's clock", () => {
  it("stops counting an impression that leaves a 1 h window, though the read was cached before it left", async () => {
    let nowMs = T * 1000;
    const store = fakeStore(() => ({
      counters: countersAt("c1", [T - 30, T - 20, T - 10]),
      optedOut: false,
    }));
    // Longer than any window it is evaluated over: whatever the TTL, the evaluation must slide.
    const cache = new CounterCache(asStore(store), {
      ttlMs: 2 * HOUR * 1000,
      maxEntries: 10,
      now: () => nowMs,
    });
    const snapshot = snapshotOf([
      { campaign: "c1", lineItem: null, creative: null, windows: [{ windowSec: HOUR, max: 3 }] },
    ]);
    const read = await cache.get("bu:p");
    expect(capsFor(snapshot, read.counters, ["c1"], T)).toEqual({ capped: ["c1"], remaining: { c1: 0 } });

    // Two minutes before the window's end: the three impressions are 58-59 min old, still counted.
    nowMs = (T + HOUR - 120) * 1000;
    const later = cache.get("bu:p");
    expect(later).toBe(read); // served from the cache, synchronously: no second store read
    expect(capsFor(snapshot, read.counters, ["c1"], T + HOUR - 120)).toEqual({
      capped: ["c1"],
      remaining: { c1: 0 },
    });
    // t + window: the same cached read, evaluated an hour after it was taken. Every impression is now over an
    // hour old and none counts.
    nowMs = (T + HOUR) * 1000;
    expect(cache.get("bu:p")).toBe(read);
    expect(capsFor(snapshot, read.counters, ["c1"], T + HOUR)).toEqual({ capped: [], remaining: { c1: 3 } });
    expect(store.reads).toBe(1);
    expect(cache.stats).toEqual({ hits: 2, reads: 1, clears: 0 });
  });

  it("at the longest CAP_COUNTERS_CACHE_MS, uncaps a 1 min window from a read cached before the impression left it", async () => {
    const longest = CONFIG_SPEC.capCountersCacheMs.schema.parse("3600000");
    expect(CONFIG_SPEC.capCountersCacheMs.schema.safeParse("3600001").success).toBe(false);
    // Read at t = T + 10, 5 s after the impression.
    const t = T + 10;
    let nowMs = t * 1000;
    const store = fakeStore(() => ({ counters: countersAt("c1", [T + 5]), optedOut: false }));
    const cache = new CounterCache(asStore(store), { ttlMs: longest, maxEntries: 10, now: () => nowMs });
    const snapshot = snapshotOf([
      { campaign: "c1", lineItem: null, creative: null, windows: [{ windowSec: 60, max: 1 }] },
    ]);
    const read = await cache.get("bu:p");
    expect(capsFor(snapshot, read.counters, ["c1"], t)).toEqual({ capped: ["c1"], remaining: { c1: 0 } });
    // 54 s old: still in the minute.
    nowMs = (T + 59) * 1000;
    expect(cache.get("bu:p")).toBe(read);
    expect(capsFor(snapshot, read.counters, ["c1"], T + 59)).toEqual({
      capped: ["c1"],
      remaining: { c1: 0 },
    });
    // 59 s after the read, the cached read still answers, and the impression (64 s old) no longer counts.
    nowMs = (t + 59) * 1000;
    expect(cache.get("bu:p")).toBe(read);
    expect(capsFor(snapshot, read.counters, ["c1"], t + 59)).toEqual({ capped: [], remaining: { c1: 1 } });
    // The TTL runs out: the store is read again.
    nowMs = t * 1000 + longest + 1;
    expect(cache.get("bu:p")).toBeInstanceOf(Promise);
    expect(store.reads).toBe(2);
  });
});

describe("dropping entries", () => {
  const empty = (): CounterState => ({ counters: new Map(), optedOut: false });

  it("invalidate drops one person: the next get reads the store, the others stay cached", async () => {
    const store = fakeStore(empty);
    const cache = new CounterCache(asStore(store), { ttlMs: 30_000, maxEntries: 10 });
    await cache.get("bu:a");
    await cache.get("bu:b");
    cache.invalidate("bu:a");
    expect(cache.size).toBe(1);
    expect(cache.get("bu:b")).not.toBeInstanceOf(Promise);
    const again = cache.get("bu:a");
    expect(again).toBeInstanceOf(Promise);
    await again;
    expect(store.reads).toBe(3);
    expect(cache.size).toBe(2);
    expect(cache.stats).toEqual({ hits: 1, reads: 3, clears: 0 });
  });

  it("clear drops every entry and does not cache a read that was in flight when it ran", async () => {
    const store = fakeStore(empty);
    const cache = new CounterCache(asStore(store), { ttlMs: 30_000, maxEntries: 10 });
    await cache.get("bu:a");
    await cache.get("bu:b");
    store.held = true;
    const inflight = cache.get("bu:c");
    expect(cache.size).toBe(2);
    cache.clear();
    expect(cache.size).toBe(0);
    store.release();
    await inflight;
    // Answered before the clear's cause may have been seen: not kept.
    expect(cache.size).toBe(0);
    store.held = false;
    await cache.get("bu:c");
    expect(cache.size).toBe(1);
    expect(cache.stats).toEqual({ hits: 0, reads: 4, clears: 1 });
  });
});
