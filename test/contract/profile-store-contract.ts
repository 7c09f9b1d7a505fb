// One suite, run against every ProfileStore implementation: what any store must do the same way.
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { type CapRule, scopeKey } from "../../src/capping/cap-rule.ts";
import { type CounterWrite, counterWrite } from "../../src/capping/cap-windows.ts";
import { MAX_COUNTER_FIELDS } from "../../src/capping/counters.ts";
import type { MembershipOp } from "../../src/profiles/profile-codec.ts";
import type { ImpressionWrite, NoticeUse, ProfileStore } from "../../src/profiles/profile-store.ts";

export interface StoreHarness {
  /** A store with no data (called before each test). */
  fresh(): Promise<ProfileStore>;
  teardown(): Promise<void>;
}

/** A membership add as the loaders write it; the store tests beyond the contract build theirs with it too. */
export const add = (
  key: string,
  segment: string,
  expiresAt = 0,
  source = "",
  generation = 0,
  minGeneration = 0,
): MembershipOp => ({ key, op: "add", segment, expiresAt, source, generation, minGeneration });
const remove = (key: string, segment: string): MembershipOp => ({
  key,
  op: "remove",
  segment,
  expiresAt: 0,
  source: "",
  generation: 0,
  minGeneration: 0,
});

const HOUR = 3_600;
const DAY = 86_400;

/** A campaign-level rule with these windows (null = lifetime), each allowing 100. */
export const capRule = (campaign: string, ...windows: (number | null)[]): CapRule => ({
  campaign,
  lineItem: null,
  creative: null,
  windows: windows.map((windowSec) => ({ windowSec, max: 100 })),
});

/** What an impression of `campaign` at `ts` writes under `rules`, as the event route computes it. */
export const writeOf = (
  rules: readonly CapRule[],
  campaign: string,
  ts: number,
  nowSec: number,
): CounterWrite => {
  const w = counterWrite([`${campaign}||`], (s) => rules.filter((r) => scopeKey(r) === s), ts, nowSec);
  if (w === null) throw new Error("the rules read nothing this impression writes");
  return w;
};

export const impression = (
  imp: string,
  counters: CounterWrite,
  notice: NoticeUse | null = null,
  dedupTtlSec = 3_600,
): ImpressionWrite => ({ imp, counters, dedupTtlSec, notice });

const segmentsOf = (p: { memberships: readonly { segment: string }[] } | null): string[] | null =>
  p === null ? null : p.memberships.map((m) => m.segment).sort();

export function describeProfileStoreContract(name: string, harness: StoreHarness): void {
  describe(`ProfileStore contract: ${name}`, () => {
    let store: ProfileStore;
    // Real time: a Redis key's TTL follows the server clock, so memberships expire relative to it.
    const now = () => Math.floor(Date.now() / 1000);

    beforeEach(async () => {
      store = await harness.fresh();
    });
    afterAll(() => harness.teardown());

    it("reads null for unknown IDs, in the order asked", async () => {
      expect(await store.readProfiles(["bu:nobody", "ifa:none"], now())).toEqual([null, null]);
      expect(await store.readProfiles([], now())).toEqual([]);
    });

    it("returns what was written: segment, expiry and source, for many keys in one read", async () => {
      const t = now();
      await store.applyMemberships(
        [
          add("bu:a", "1001", t + 3600, "crm"),
          add("bu:a", "1002"),
          add("eid:uidapi.com:X/y+z=", "2001", 0, "uid2"),
        ],
        t,
      );
      const [a, missing, e] = await store.readProfiles(["bu:a", "bu:none", "eid:uidapi.com:X/y+z="], t);
      expect(missing).toBeNull();
      expect(a?.memberships).toEqual(
        expect.arrayContaining([
          { segment: "1001", expiresAt: t + 3600, source: "crm", generation: 0 },
          { segment: "1002", expiresAt: 0, source: "", generation: 0 },
        ]),
      );
      expect(a?.memberships).toHaveLength(2);
      expect(e?.memberships).toEqual([{ segment: "2001", expiresAt: 0, source: "uid2", generation: 0 }]);
    });

    it("merges later writes with earlier ones and replaces a segment's expiry", async () => {
      const t = now();
      await store.applyMemberships([add("ifa:1", "1001", t + 100)], t);
      await store.applyMemberships([add("ifa:1", "1002"), add("ifa:1", "1001", t + 5000)], t);
      const [p] = await store.readProfiles(["ifa:1"], t);
      expect(segmentsOf(p ?? null)).toEqual(["1001", "1002"]);
      expect(p?.memberships.find((m) => m.segment === "1001")?.expiresAt).toBe(t + 5000);
    });

    it("removes a membership, and the whole profile with its last one", async () => {
      const t = now();
      await store.applyMemberships([add("bu:r", "1"), add("bu:r", "2")], t);
      await store.applyMemberships([remove("bu:r", "1")], t);
      expect(segmentsOf((await store.readProfiles(["bu:r"], t))[0] ?? null)).toEqual(["2"]);
      await store.applyMemberships([remove("bu:r", "2"), remove("bu:r", "never-there")], t);
      expect(await store.readProfiles(["bu:r"], t)).toEqual([null]);
    });

    it("applies calls in the order made while earlier ones are still in flight", async () => {
      const t = now();
      // 3,000 IDs before bu:late in the first call: it lands far down that call's script calls. The second
      // call, made before the first settles, must still land after it.
      const groups = new Map<string, MembershipOp[]>();
      for (let i = 0; i < 3_000; i++) groups.set(`bu:pad-${i}`, [add(`bu:pad-${i}`, "1")]);
      groups.set("bu:late", [add("bu:late", "1"), add("bu:late", "2")]);
      const first = store.applyMembershipGroups(groups, t);
      const second = store.applyMembershipGroups(
        new Map([
          ["bu:late", [remove("bu:late", "1"), add("bu:late", "3")]],
          ["bu:pad-2999", [remove("bu:pad-2999", "1")]],
        ]),
        t,
      );
      expect(await first).toEqual({ skippedKeys: [], linkedKeys: [] });
      expect(await second).toEqual({ skippedKeys: [], linkedKeys: [] });
      const [late, last, pad] = await store.readProfiles(["bu:late", "bu:pad-2999", "bu:pad-1500"], t);
      expect(segmentsOf(late ?? null)).toEqual(["2", "3"]);
      expect(last).toBeNull();
      expect(segmentsOf(pad ?? null)).toEqual(["1"]);
    });

    it("reports each opted-out ID of a grouped call, whatever IDs share its writes", async () => {
      const t = now();
      await store.optOut(["bu:gone-7", "bu:gone-120"], t);
      const groups = new Map<string, MembershipOp[]>();
      for (let i = 0; i < 200; i++) {
        const key = i === 7 || i === 120 ? `bu:gone-${i}` : `bu:kept-${i}`;
        groups.set(key, [add(key, "1"), add(key, "2")]);
      }
      const result = await store.applyMembershipGroups(groups, t);
      expect([...result.skippedKeys].sort()).toEqual(["bu:gone-120", "bu:gone-7"]);
      expect(result.linkedKeys).toEqual([]);
      const read = await store.readProfiles(["bu:gone-7", "bu:kept-6", "bu:kept-8", "bu:gone-120"], t);
      expect(read.map((p) => segmentsOf(p ?? null))).toEqual([null, ["1", "2"], ["1", "2"], null]);
      expect(await store.isOptedOut("bu:gone-7")).toBe(true);
    });

    it("applies a key's ops in order within one batch", async () => {
      const t = now();
      await store.applyMemberships(
        [add("bu:o", "1"), remove("bu:o", "1"), add("bu:o", "1", t + 60), add("bu:o", "2")],
        t,
      );
      const [p] = await store.readProfiles(["bu:o"], t);
      expect(segmentsOf(p ?? null)).toEqual(["1", "2"]);
      expect(p?.memberships.find((m) => m.segment === "1")?.expiresAt).toBe(t + 60);
    });

    it("never returns an expired membership, and drops a profile whose memberships all expired", async () => {
      const t = now();
      await store.applyMemberships(
        [add("bu:x", "short", t + 10), add("bu:x", "long", t + 1000), add("bu:y", "s", t + 10)],
        t,
      );
      const [x, y] = await store.readProfiles(["bu:x", "bu:y"], t + 10);
      expect(segmentsOf(x ?? null)).toEqual(["long"]);
      expect(y).toBeNull();
    });

    it("treats an add whose expiry has passed as a remove", async () => {
      const t = now();
      await store.applyMemberships([add("bu:p", "1"), add("bu:p", "2")], t);
      await store.applyMemberships([add("bu:p", "1", t - 1)], t);
      expect(segmentsOf((await store.readProfiles(["bu:p"], t))[0] ?? null)).toEqual(["2"]);
    });

    it("keeps keys apart however similar they look", async () => {
      const t = now();
      await store.applyMemberships([add("xu:ex1:u", "1"), add("xu:ex2:u", "2"), add("eid:ex1:u", "3")], t);
      const got = await store.readProfiles(["xu:ex1:u", "xu:ex2:u", "eid:ex1:u"], t);
      expect(got.map((p) => segmentsOf(p))).toEqual([["1"], ["2"], ["3"]]);
    });

    it("keeps a replace's new generation beside the live one, and drops generations older than minGeneration", async () => {
      const t = now();
      await store.applyMemberships([add("bu:g", "S", 0, "", 3, 3), add("bu:g", "T", 0, "", 0, 0)], t);
      // A replace of S writes generation 7 while 3 is live: both rows stay until 7 is made live.
      await store.applyMemberships([add("bu:g", "S", 0, "", 7, 3)], t);
      const gens = async () =>
        ((await store.readProfiles(["bu:g"], t))[0]?.memberships ?? [])
          .map((m) => `${m.segment}@${m.generation}`)
          .sort();
      expect(await gens()).toEqual(["S@3", "S@7", "T@0"]);
      // Once 7 is live, the next write of S (minGeneration 7) drops the superseded row.
      await store.applyMemberships([add("bu:g", "S", 0, "", 7, 7)], t);
      expect(await gens()).toEqual(["S@7", "T@0"]);
      // A remove drops every generation of the segment.
      await store.applyMemberships([add("bu:g", "S", 0, "", 9, 7), remove("bu:g", "S")], t);
      expect(await gens()).toEqual(["T@0"]);
    });

    it("keeps every membership exactly, in order: numeric and other segment ids, expiries, sources, generations", async () => {
      const t = now();
      const m = (segment: string, expiresAt: number, source: string, generation: number) => ({
        segment,
        expiresAt,
        source,
        generation,
      });
      const written = [
        m("1001", t + 3_600, "crm", 0),
        m("007", t + 3_600, "crm", 0),
        m("0", t + 3_600, "crm", 0),
        m("00", 0, "dmp", 2),
        m("1234567890", 0, "dmp", 2),
        m("999999999", t + 7_200, "", 2),
        m("sports", t + 60, "partner|x", 9),
        m("-5", t + 60, "crm", 0),
        m(" 12", 0, "crm", 0),
        m("ünïcode", t + 3_600, "crm", 0),
      ];
      await store.applyMemberships(
        written.map((x) => add("bu:exact", x.segment, x.expiresAt, x.source, x.generation, x.generation)),
        t,
      );
      const [p] = await store.readProfiles(["bu:exact"], t);
      expect(p).toEqual({ memberships: written });
      // A later write keeps the rest exactly, wherever the earliest expiry (the stored base) moves.
      await store.applyMemberships(
        [add("bu:exact", "1", t + 30, "new", 1), remove("bu:exact", "sports"), remove("bu:exact", "-5")],
        t,
      );
      const [q] = await store.readProfiles(["bu:exact"], t);
      expect(q).toEqual({
        memberships: [...written.slice(0, 6), written[8], written[9], m("1", t + 30, "new", 1)],
      });
      // As the earliest expires, the others stay as written.
      const [r] = await store.readProfiles(["bu:exact"], t + 30);
      expect(r).toEqual({ memberships: [...written.slice(0, 6), written[8], written[9]] });
    });

    it("keeps a person's copies exactly beside the own memberships, whichever holds the earliest expiry", async () => {
      const t = now();
      const m = (segment: string, expiresAt: number, source: string, generation = 0) => ({
        segment,
        expiresAt,
        source,
        generation,
      });
      await store.applyMemberships(
        [add("bu:base", "1001", t + 5_000, "crm"), add("bu:base", "own", 0, "")],
        t,
      );
      const ifa = [m("1001", t + 100, "crm"), m("1002", t + 100, "crm"), m("007", 0, "graph", 3)];
      const hem = [m("x", t + 9_000, "dmp", 1), m("2", t + 50, "crm")];
      await store.setMembers(
        [
          {
            key: "bu:base",
            members: [
              { key: "ifa:b1", confidence: 1, version: 1, memberships: ifa },
              { key: "hem:b2", confidence: 0.5, version: 4, memberships: hem },
            ],
          },
        ],
        t,
      );
      const own = [m("1001", t + 5_000, "crm"), m("own", 0, "")];
      const person = (ifaRows: typeof ifa, hemRows: typeof hem, ifaVersion = 1) => [
        { key: "ifa:b1", confidence: 1, version: ifaVersion, memberships: ifaRows },
        { key: "hem:b2", confidence: 0.5, version: 4, memberships: hemRows },
      ];
      expect((await store.readProfiles(["bu:base"], t))[0]).toEqual({
        memberships: own,
        link: { version: 0, members: person(ifa, hem) },
      });
      // An own membership earlier than every copy's.
      await store.applyMemberships([add("bu:base", "soon", t + 10, "crm")], t);
      expect((await store.readProfiles(["bu:base"], t))[0]).toEqual({
        memberships: [...own, m("soon", t + 10, "crm")],
        link: { version: 1, members: person(ifa, hem) },
      });
      // A newer copy from a member, later than the rest.
      const later = [m("9", t + 20_000, "crm"), m("10", 0, "crm")];
      await store.putOrigins([{ target: "bu:base", origin: "ifa:b1", version: 2, memberships: later }], t);
      expect((await store.readProfiles(["bu:base"], t))[0]).toEqual({
        memberships: [...own, m("soon", t + 10, "crm")],
        link: { version: 1, members: person(later, hem, 2) },
      });
      // Read once the earliest rows (own and a copy's) have expired.
      expect((await store.readProfiles(["bu:base"], t + 50))[0]).toEqual({
        memberships: own,
        link: { version: 1, members: person(later, [hem[0] as (typeof hem)[number]], 2) },
      });
    });

    it("erases opted-out IDs, reports them, and skips them in later writes", async () => {
      const t = now();
      await store.applyMemberships([add("bu:o1", "1"), add("bu:o2", "1")], t);
      expect(await store.optOut(["bu:o1", "bu:never-seen"], t)).toBe(1);
      expect(await store.readProfiles(["bu:o1", "bu:o2"], t)).toEqual([null, expect.anything()]);
      expect(await store.isOptedOut("bu:o1")).toBe(true);
      expect(await store.isOptedOut("bu:never-seen")).toBe(true);
      expect(await store.isOptedOut("bu:o2")).toBe(false);
      const result = await store.applyMemberships(
        [add("bu:o1", "2"), add("bu:o2", "2"), add("bu:never-seen", "3")],
        t,
      );
      expect([...result.skippedKeys].sort()).toEqual(["bu:never-seen", "bu:o1"]);
      expect(await store.readProfiles(["bu:o1", "bu:never-seen"], t)).toEqual([null, null]);
      expect(segmentsOf((await store.readProfiles(["bu:o2"], t))[0] ?? null)).toEqual(["1", "2"]);
    });

    it("counts an impression once per impression id, atomically, even under concurrency", async () => {
      const t = now();
      const rules = [capRule("camp", HOUR, DAY, null)];
      const w = writeOf(rules, "camp", t, t);
      const distinct = await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.recordImpression("bu:fc", impression(`imp-${i}`, w), t)),
      );
      expect(distinct.filter((o) => o === "counted")).toHaveLength(200);
      const same = await Promise.all(
        Array.from({ length: 50 }, () => store.recordImpression("bu:fc", impression("imp-7", w), t)),
      );
      expect(same.every((o) => o === "duplicate")).toBe(true);
      expect(await store.recordImpression("bu:fc", impression("imp-new", w), t)).toBe("counted");
      expect(await store.recordImpression("bu:fc", impression("imp-new", w), t)).toBe("duplicate");
      // Only what the rules read: lifetime, the minute bucket (1 h window), the hour bucket (24 h window).
      expect([...(await store.readCounters("bu:fc", t)).entries()].sort()).toEqual(
        [
          ["camp|||L", 201],
          [`camp|||60|${Math.floor(t / 60)}`, 201],
          [`camp|||3600|${Math.floor(t / 3600)}`, 201],
        ].sort(),
      );
      expect(await store.readCounters("bu:nobody", t)).toEqual(new Map());
    });

    it("writes only the buckets rules read, never one past its retention, and prunes as it writes", async () => {
      const t = Math.floor(now() / 60) * 60 + 30;
      const rules = [capRule("c", HOUR, 7 * DAY)];
      // Two days old: past the hour's retention (not written), within the week's (written).
      const old = t - 2 * DAY;
      expect(await store.recordImpression("bu:old", impression("a", writeOf(rules, "c", old, t)), t)).toBe(
        "counted",
      );
      expect([...(await store.readCounters("bu:old", t)).entries()]).toEqual([
        [`c|||3600|${Math.floor(old / 3600)}`, 1],
      ]);
      // Nothing a rule reads at all (no lifetime window, every bucket past retention): nothing to write.
      expect(counterWrite(["c||"], (s) => rules.filter((r) => scopeKey(r) === s), t - 8 * DAY, t)).toBeNull();
      await store.recordImpression("bu:old", impression("b", writeOf(rules, "c", t, t)), t);
      // Two hours on: the first minute bucket is past the hour (and its one bucket of margin): pruned as the
      // next impression is written; the week's buckets stay.
      const later = t + 2 * HOUR;
      await store.recordImpression("bu:old", impression("c", writeOf(rules, "c", later, later)), later);
      expect([...(await store.readCounters("bu:old", later)).entries()].sort()).toEqual(
        [
          [`c|||3600|${Math.floor(old / 3600)}`, 1],
          [`c|||3600|${Math.floor(t / 3600)}`, 1],
          [`c|||3600|${Math.floor(later / 3600)}`, 1],
          [`c|||60|${Math.floor(later / 60)}`, 1],
        ].sort(),
      );
      // Eight days on, only the newest week's bucket and minute survive.
      const week = later + 8 * DAY;
      await store.recordImpression("bu:old", impression("d", writeOf(rules, "c", week, week)), week);
      expect([...(await store.readCounters("bu:old", week)).entries()].sort()).toEqual(
        [
          [`c|||3600|${Math.floor(week / 3600)}`, 1],
          [`c|||60|${Math.floor(week / 60)}`, 1],
        ].sort(),
      );
    });

    it("keeps 10,000 hostile impressions on one person within the bound its rules give", async () => {
      const t = now();
      const rules = [capRule("r1", HOUR, 7 * DAY, null), capRule("r2", 30 * DAY)];
      let seed = 7;
      const rand = (n: number): number => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % n;
      };
      for (let i = 0; i < 10_000; i++) {
        const campaign = ["r1", "r2", `free-${rand(1_000)}`][rand(3)] as string;
        const ts = t - rand(90 * DAY);
        const w = counterWrite([`${campaign}||`], (s) => rules.filter((r) => scopeKey(r) === s), ts, t);
        if (w !== null) await store.recordImpression("bu:hostile", impression(`h-${i}`, w), t);
      }
      const fields = [...(await store.readCounters("bu:hostile", t)).keys()];
      // r1: lifetime, at most 60 + 1 minute buckets, 7 * 24 + 1 hour buckets; r2: 30 + 1 day buckets.
      expect(fields.length).toBeLessThanOrEqual(1 + 61 + 169 + 31);
      expect(fields.filter((f) => !f.startsWith("r1|") && !f.startsWith("r2|"))).toEqual([]);
    });

    it("refuses an impression that would grow the counters past the bound, writing nothing", async () => {
      const t = now();
      const many = (n: number, from = 0): CounterWrite => ({
        lifetime: Array.from({ length: n }, (_, i) => `c${from + i}|||L`),
        buckets: [],
      });
      expect(await store.recordImpression("bu:full", impression("a", many(MAX_COUNTER_FIELDS - 1)), t)).toBe(
        "counted",
      );
      expect(await store.recordImpression("bu:full", impression("b", many(2, MAX_COUNTER_FIELDS)), t)).toBe(
        "full",
      );
      expect((await store.readCounters("bu:full", t)).size).toBe(MAX_COUNTER_FIELDS - 1);
      // Not remembered either: once it fits, the same impression id counts.
      expect(await store.recordImpression("bu:full", impression("b", many(1, 0)), t)).toBe("counted");
    });

    it("spends a notice token's uses in the same step: same imp again a duplicate, one more a replay", async () => {
      const t = now();
      const w = writeOf([capRule("n", null)], "n", t, t);
      const token: NoticeUse = { nonce: "nonce-one", uses: 2, expiresAtSec: t + HOUR };
      const record = (imp: string, notice: NoticeUse = token) =>
        store.recordImpression("bu:tok", impression(imp, w, notice), t);
      expect(await record("i1")).toBe("counted");
      expect(await record("i1")).toBe("duplicate");
      expect(await record("i2")).toBe("counted");
      expect(await record("i3")).toBe("replayed");
      // Concurrent replays of a fresh one-use token: exactly one counts.
      const once: NoticeUse = { nonce: "nonce-two", uses: 1, expiresAtSec: t + HOUR };
      const raced = await Promise.all(Array.from({ length: 20 }, (_, i) => record(`r-${i}`, once)));
      expect(raced.filter((o) => o === "counted")).toHaveLength(1);
      expect(raced.filter((o) => o === "replayed")).toHaveLength(19);
      expect((await store.readCounters("bu:tok", t)).get("n|||L")).toBe(3);
    });

    it("records nothing for an opted-out ID: no counters, no marker, no token use", async () => {
      const t = now();
      const w = writeOf([capRule("c", HOUR, null)], "c", t, t);
      const token: NoticeUse = { nonce: "n-out", uses: 1, expiresAtSec: t + HOUR };
      await store.recordImpression("bu:gone", impression("x", w, token), t);
      await store.optOut(["bu:gone"], t);
      expect(await store.readCounters("bu:gone", t)).toEqual(new Map());
      expect(await store.recordImpression("bu:gone", impression("y", w), t)).toBe("opted_out");
      expect(await store.recordImpression("bu:gone", impression("x", w, token), t)).toBe("opted_out");
      expect(await store.readCounters("bu:gone", t)).toEqual(new Map());
      expect(await store.readCounterState("bu:gone", t)).toEqual({ counters: new Map(), optedOut: true });
      await store.addCounters(["bu:gone"], new Map([["c|||L", 5]]));
      expect(await store.readCounters("bu:gone", t)).toEqual(new Map());
    });

    it("refuses a link that touches an opted-out ID, on both sides", async () => {
      await store.optOut(["bu:lo-out"], now());
      const change = { a: "bu:lo-in", b: "bu:lo-out", edge: { confidence: 1, source: "login" } };
      expect(await store.writeLinks([change])).toEqual([change]);
      const links = await store.readLinks(["bu:lo-in", "bu:lo-out"]);
      expect(links.get("bu:lo-in")).toEqual(new Map());
      expect(links.get("bu:lo-out")).toEqual(new Map());
      // Removals still go through.
      expect(await store.writeLinks([{ ...change, edge: null }])).toEqual([]);
    });

    it("keeps links on both sides of an edge, and drops them with the opt-out", async () => {
      await store.writeLinks([
        { a: "bu:l1", b: "ifa:l2", edge: { confidence: 1, source: "login" } },
        { a: "bu:l1", b: "hem:l3", edge: { confidence: 0.5, source: "vendor|x" } },
      ]);
      const links = await store.readLinks(["bu:l1", "ifa:l2", "bu:none"]);
      expect(links.get("bu:l1")).toEqual(
        new Map([
          ["ifa:l2", { confidence: 1, source: "login" }],
          ["hem:l3", { confidence: 0.5, source: "vendor|x" }],
        ]),
      );
      expect(links.get("ifa:l2")).toEqual(new Map([["bu:l1", { confidence: 1, source: "login" }]]));
      expect(links.get("bu:none")).toEqual(new Map());
      await store.writeLinks([{ a: "ifa:l2", b: "bu:l1", edge: null }]);
      expect((await store.readLinks(["bu:l1"])).get("bu:l1")).toEqual(
        new Map([["hem:l3", { confidence: 0.5, source: "vendor|x" }]]),
      );
      await store.optOut(["bu:l1"], now());
      expect((await store.readLinks(["bu:l1"])).get("bu:l1")).toEqual(new Map());
    });

    it("holds a person under a linked ID: own memberships, members' copies, versions guarded", async () => {
      const t = now();
      await store.applyMemberships([add("bu:p1", "own")], t);
      const copy = { segment: "theirs", expiresAt: 0, source: "s", generation: 0 };
      await store.setMembers(
        [{ key: "bu:p1", members: [{ key: "ifa:p2", confidence: 0.9, version: 3, memberships: [copy] }] }],
        t,
      );
      let [p] = await store.readProfiles(["bu:p1"], t);
      expect(segmentsOf(p ?? null)).toEqual(["own"]);
      expect(p?.link?.members).toEqual([{ key: "ifa:p2", confidence: 0.9, version: 3, memberships: [copy] }]);
      // A load on a linked ID says so, bumps its own version and keeps its person.
      const applied = await store.applyMemberships([add("bu:p1", "own2"), add("bu:solo", "x")], t);
      expect(applied.linkedKeys).toEqual(["bu:p1"]);
      [p] = await store.readProfiles(["bu:p1"], t);
      expect(p?.link?.version).toBe(1);
      expect(p?.link?.members.map((m) => m.key)).toEqual(["ifa:p2"]);
      // An older copy never replaces a newer one; a newer one does; an unknown origin adds nobody.
      const newer = { ...copy, segment: "newer" };
      await store.putOrigins(
        [
          { target: "bu:p1", origin: "ifa:p2", version: 2, memberships: [newer] },
          { target: "bu:p1", origin: "ifa:stranger", version: 9, memberships: [newer] },
        ],
        t,
      );
      [p] = await store.readProfiles(["bu:p1"], t);
      expect(p?.link?.members).toEqual([{ key: "ifa:p2", confidence: 0.9, version: 3, memberships: [copy] }]);
      await store.putOrigins([{ target: "bu:p1", origin: "ifa:p2", version: 4, memberships: [newer] }], t);
      // setMembers with an older copy keeps the newer one held.
      await store.setMembers(
        [{ key: "bu:p1", members: [{ key: "ifa:p2", confidence: 1, version: 1, memberships: [] }] }],
        t,
      );
      [p] = await store.readProfiles(["bu:p1"], t);
      expect(p?.link?.members).toEqual([{ key: "ifa:p2", confidence: 1, version: 4, memberships: [newer] }]);
      // A linked ID with nothing of its own still reads (its person does).
      await store.applyMemberships([remove("bu:p1", "own"), remove("bu:p1", "own2")], t);
      [p] = await store.readProfiles(["bu:p1"], t);
      expect(p?.memberships).toEqual([]);
      expect(p?.link?.members.length).toBe(1);
      // An empty person unlinks: an ID with nothing left reads as absent.
      await store.setMembers([{ key: "bu:p1", members: [] }], t);
      expect(await store.readProfiles(["bu:p1"], t)).toEqual([null]);
    });

    it("adds and drops counters under many keys", async () => {
      const t = now();
      await store.recordImpression(
        "bu:c1",
        impression("i1", writeOf([capRule("c", HOUR, null)], "c", t, t)),
        t,
      );
      const delta = await store.readCounters("bu:c1", t);
      await store.addCounters(["bu:c1", "bu:c2"], delta);
      const doubled = await store.readCounters("bu:c1", t);
      for (const [f, n] of delta) expect(doubled.get(f)).toBe(n * 2);
      expect(await store.readCounters("bu:c2", t)).toEqual(delta);
      await store.deleteCounters(["bu:c1", "bu:c2"]);
      expect(await store.readCounters("bu:c1", t)).toEqual(new Map());
    });

    it("answers ping", async () => {
      expect(await store.ping()).toBe(true);
    });
  });
}
