// The profile cache's LRU against a plain model of what an LRU with TTLs and a byte bound must do.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ENTRY_OVERHEAD_BYTES, SlotLru } from "../../src/profiles/slot-lru.ts";

interface ModelEntry {
  key: string;
  value: string;
  expires: number;
  bytes: number;
  memo: unknown;
  memoBytes: number;
}

/** Entries from least to most recently used; evicts from the front. */
class Model {
  entries: ModelEntry[] = [];
  evictions = 0;
  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
  ) {}

  get bytes(): number {
    return this.entries.reduce((a, e) => a + e.bytes + ENTRY_OVERHEAD_BYTES + e.memoBytes, 0);
  }

  find(key: string, now: number): ModelEntry | undefined {
    const i = this.entries.findIndex((e) => e.key === key);
    if (i < 0) return undefined;
    const e = this.entries[i] as ModelEntry;
    this.entries.splice(i, 1);
    if (now > e.expires) return undefined;
    this.entries.push(e);
    return e;
  }

  set(key: string, value: string, bytes: number, ttl: number, now: number): boolean {
    this.entries = this.entries.filter((e) => e.key !== key);
    if (bytes + ENTRY_OVERHEAD_BYTES > this.maxBytes) return false;
    while (this.entries.length >= this.maxEntries) this.#evict();
    const e = { key, value, expires: now + ttl, bytes, memo: undefined, memoBytes: 0 };
    this.entries.push(e);
    this.#trim(e);
    return true;
  }

  keepMemo(key: string, memo: unknown, bytes: number): void {
    const e = this.entries.find((x) => x.key === key);
    if (e === undefined) return;
    e.memo = memo;
    e.memoBytes = bytes;
    this.#trim(e);
  }

  #trim(keep: ModelEntry): void {
    while (this.bytes > this.maxBytes && this.entries[0] !== undefined && this.entries[0] !== keep)
      this.#evict();
  }

  #evict(): void {
    this.entries.shift();
    this.evictions++;
  }
}

const op = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    key: fc.integer({ min: 0, max: 12 }),
    bytes: fc.integer({ min: 0, max: 300 }),
    ttl: fc.integer({ min: 0, max: 50 }),
  }),
  fc.record({ kind: fc.constant("find" as const), key: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 12 }) }),
  fc.record({
    kind: fc.constant("memo" as const),
    key: fc.integer({ min: 0, max: 12 }),
    bytes: fc.integer({ min: 0, max: 200 }),
  }),
  fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 20 }) }),
);

describe("SlotLru", () => {
  it("behaves as an LRU with per-entry TTLs, an entry bound and a byte bound, for any sequence of operations", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 200, max: 2_000 }),
        fc.array(op, { maxLength: 120 }),
        (maxEntries, maxBytes, ops) => {
          let evicted = 0;
          const lru = new SlotLru<string>(maxEntries, maxBytes, () => evicted++);
          const model = new Model(maxEntries, maxBytes);
          let now = 1_000;
          let version = 0;
          for (const o of ops) {
            if (o.kind === "tick") now += o.ms;
            else if (o.kind === "set") {
              const value = `v${version++}`;
              const slot = lru.set(`k${o.key}`, value, o.bytes, o.ttl, now);
              expect(slot >= 0).toBe(model.set(`k${o.key}`, value, o.bytes, o.ttl, now));
            } else if (o.kind === "find") {
              const slot = lru.find(`k${o.key}`, now);
              const want = model.find(`k${o.key}`, now);
              expect(slot >= 0 ? lru.value(slot) : undefined).toBe(want?.value);
              if (want !== undefined) expect(lru.memo(slot, want.value)).toBe(want.memo);
            } else if (o.kind === "delete") {
              lru.delete(`k${o.key}`);
              model.entries = model.entries.filter((e) => e.key !== `k${o.key}`);
            } else {
              // A memo is kept through the slot find gave, as the cache's callers do.
              const slot = lru.find(`k${o.key}`, now);
              const e = model.find(`k${o.key}`, now);
              if (slot >= 0 && e !== undefined) {
                const memo = { of: e.value };
                lru.keepMemo(slot, e.value, memo, o.bytes);
                model.keepMemo(e.key, memo, o.bytes);
              }
            }
            expect(lru.size).toBe(model.entries.length);
            expect(lru.bytes).toBe(model.bytes);
            expect(evicted).toBe(model.evictions);
          }
          // The order of use is the model's: finding every key from the newest keeps them all.
          for (const e of [...model.entries].reverse())
            expect(lru.value(lru.find(e.key, Math.min(now, e.expires)))).toBe(e.value);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it("is stale only after its TTL has passed: at now = set + ttl it is still served", () => {
    const lru = new SlotLru<string>(10, 10_000);
    lru.set("a", "x", 10, 100, 1_000);
    expect(lru.find("a", 1_100)).toBeGreaterThanOrEqual(0);
    expect(lru.find("a", 1_101)).toBe(-1);
    expect(lru.size).toBe(0);
    expect(lru.bytes).toBe(0);
  });

  it("answers no memo for a slot that has since been given to another value", () => {
    const lru = new SlotLru<string>(1, 10_000);
    const slot = lru.set("a", "first", 10, 1_000, 0);
    lru.keepMemo(slot, "first", "memo of first", 50);
    expect(lru.memo(slot, "first")).toBe("memo of first");
    // The only slot is reused for "b": the old value's memo is gone, and asking with the old value finds nothing.
    expect(lru.set("b", "second", 10, 1_000, 0)).toBe(slot);
    expect(lru.memo(slot, "second")).toBeUndefined();
    expect(lru.memo(slot, "first")).toBeUndefined();
    lru.keepMemo(slot, "first", "stale", 50);
    expect(lru.memo(slot, "second")).toBeUndefined();
    expect(lru.bytes).toBe(10 + ENTRY_OVERHEAD_BYTES);
  });

  it("grows its arrays past the first thousand slots and keeps every entry", () => {
    const lru = new SlotLru<string>(5_000, 1e12);
    for (let i = 0; i < 5_000; i++) lru.set(`k${i}`, `v${i}`, 8, 1_000, 0);
    expect(lru.size).toBe(5_000);
    for (let i = 0; i < 5_000; i++) expect(lru.value(lru.find(`k${i}`, 0))).toBe(`v${i}`);
    lru.set("one more", "v", 8, 1_000, 0);
    // k0 was found first, so it is the least recently used now.
    expect(lru.find("k0", 0)).toBe(-1);
    expect(lru.size).toBe(5_000);
  });
});
