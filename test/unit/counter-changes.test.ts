// Announcing changed counters: coalesced into at most one message per COALESCE_MS unless MAX_WAITING people
// wait first, a failed send counted and never thrown; and what each bus message drops from this instance's
// caches (cache-invalidation.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { afterMissedMessages, dropChanged } from "../../src/cache-invalidation.ts";
import {
  COALESCE_MS,
  CounterChanges,
  MAX_WAITING,
  throttledWarning,
} from "../../src/capping/counter-changes.ts";
import type { Invalidation, InvalidationBus } from "../../src/profiles/invalidation-bus.ts";

/** A bus that records what is published; `fail` makes the next sends reject. */
function recordingBus() {
  const sent: Invalidation[] = [];
  const bus = {
    sent,
    fail: false,
    async publish(msg: Invalidation): Promise<void> {
      if (bus.fail) throw new Error("Connection is closed.");
      sent.push(msg);
    },
    async subscribe(): Promise<void> {},
    async close(): Promise<void> {},
  };
  return bus;
}
const asBus = (b: ReturnType<typeof recordingBus>) => b as InvalidationBus;

describe("CounterChanges", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends the people of one interval as one message, each once, no sooner than the interval", async () => {
    expect(COALESCE_MS).toBe(25);
    const bus = recordingBus();
    const errors: Error[] = [];
    const changes = new CounterChanges(asBus(bus), { onError: (e) => errors.push(e) });
    changes.add(["bu:a"]);
    await vi.advanceTimersByTimeAsync(10);
    changes.add(["bu:b", "bu:a"]);
    changes.add(["bu:c"]);
    await vi.advanceTimersByTimeAsync(COALESCE_MS - 11);
    expect(bus.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(bus.sent).toEqual([{ t: "counters", keys: ["bu:a", "bu:b", "bu:c"] }]);
    // The next interval starts with the next change, not before.
    await vi.advanceTimersByTimeAsync(100);
    expect(bus.sent).toHaveLength(1);
    changes.add(["bu:d"]);
    await vi.advanceTimersByTimeAsync(COALESCE_MS);
    expect(bus.sent[1]).toEqual({ t: "counters", keys: ["bu:d"] });
    expect(changes.stats).toEqual({ published: 2, failed: 0 });
    expect(errors).toEqual([]);
  });

  it("sends at once when MAX_WAITING people wait, and the rest after the interval", async () => {
    const bus = recordingBus();
    const changes = new CounterChanges(asBus(bus), { onError: () => {} });
    const keys = Array.from({ length: MAX_WAITING + 5 }, (_, i) => `bu:p${i}`);
    changes.add(keys.slice(0, 10));
    changes.add(keys.slice(10, MAX_WAITING));
    await vi.advanceTimersByTimeAsync(0);
    expect(bus.sent).toEqual([{ t: "counters", keys: keys.slice(0, MAX_WAITING) }]);
    changes.add(keys.slice(MAX_WAITING));
    await vi.advanceTimersByTimeAsync(COALESCE_MS - 1);
    expect(bus.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(bus.sent[1]).toEqual({ t: "counters", keys: keys.slice(MAX_WAITING) });
  });

  it("counts and reports a failed send without throwing, and sends the next interval's people", async () => {
    const bus = recordingBus();
    const errors: string[] = [];
    const changes = new CounterChanges(asBus(bus), { onError: (e) => errors.push(e.message) });
    bus.fail = true;
    expect(() => changes.add(["bu:a"])).not.toThrow();
    await vi.advanceTimersByTimeAsync(COALESCE_MS);
    expect(changes.stats).toEqual({ published: 0, failed: 1 });
    expect(errors).toEqual(["Connection is closed."]);
    bus.fail = false;
    changes.add(["bu:b"]);
    await vi.advanceTimersByTimeAsync(COALESCE_MS);
    // The failed message is not sent again: CAP_COUNTERS_CACHE_MS bounds what it costs.
    expect(bus.sent).toEqual([{ t: "counters", keys: ["bu:b"] }]);
    expect(changes.stats).toEqual({ published: 1, failed: 1 });
  });

  it("close sends what waits at once and waits for it", async () => {
    const bus = recordingBus();
    const changes = new CounterChanges(asBus(bus), { onError: () => {} });
    changes.add(["bu:a"]);
    await changes.close();
    expect(bus.sent).toEqual([{ t: "counters", keys: ["bu:a"] }]);
    await vi.advanceTimersByTimeAsync(COALESCE_MS);
    expect(bus.sent).toHaveLength(1);
  });
});

describe("throttledWarning", () => {
  it("warns at most once per interval, saying how many it left out", () => {
    let t = 0;
    const lines: { err: string; suppressed: number }[] = [];
    const warn = throttledWarning(
      (f) => lines.push(f),
      10_000,
      () => t,
    );
    for (let i = 0; i < 5; i++) warn(new Error(`e${i}`));
    t = 9_999;
    warn(new Error("e5"));
    t = 10_000;
    warn(new Error("e6"));
    expect(lines).toEqual([
      { err: "e0", suppressed: 0 },
      { err: "e6", suppressed: 5 },
    ]);
  });
});

describe("what a bus message drops", () => {
  function targets() {
    const calls: string[] = [];
    return {
      calls,
      profiles: { invalidate: (keys: Iterable<string>) => calls.push(`profiles ${[...keys].join(",")}`) },
      counters: {
        invalidate: (key: string) => calls.push(`counters ${key}`),
        clear: () => calls.push("counters cleared"),
      },
      reloadCatalog: () => calls.push("catalog reloaded"),
    };
  }

  it("counters: only the named people's counters, never their profiles", () => {
    const t = targets();
    dropChanged(t, { t: "counters", keys: ["bu:a", "ifa:b"] });
    expect(t.calls).toEqual(["counters bu:a", "counters ifa:b"]);
  });

  it("keys: the named IDs' profiles and counters", () => {
    const t = targets();
    dropChanged(t, { t: "keys", keys: ["bu:a", "ifa:b"] });
    expect(t.calls).toEqual(["profiles bu:a,ifa:b", "counters bu:a", "counters ifa:b"]);
  });

  it("catalog: a reload; a type from a later version: nothing", () => {
    const t = targets();
    dropChanged(t, { t: "catalog" });
    dropChanged(t, { t: "later", keys: ["bu:a"] } as unknown as Invalidation);
    expect(t.calls).toEqual(["catalog reloaded"]);
  });

  it("after missed messages: every counter; no profile", () => {
    const t = targets();
    afterMissedMessages(t);
    expect(t.calls).toEqual(["counters cleared"]);
  });
});
