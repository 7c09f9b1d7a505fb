// One suite, run against every ProfileStore implementation: what any store must do the same way.
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { fieldsFor } from "../../src/capping/counters.ts";
import type { MembershipOp } from "../../src/profiles/profile-codec.ts";
import type { ProfileStore } from "../../src/profiles/profile-store.ts";

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
      const fields = fieldsFor("camp||", t);
      const distinct = await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.recordImpression("bu:fc", `imp-${i}`, fields, 3_600, t)),
      );
      expect(distinct.filter(Boolean)).toHaveLength(200);
      const same = await Promise.all(
        Array.from({ length: 50 }, () => store.recordImpression("bu:fc", "imp-7", fields, 3_600, t)),
      );
      expect(same.filter(Boolean)).toHaveLength(0);
      expect(await store.recordImpression("bu:fc", "imp-new", fields, 3_600, t)).toBe(true);
      expect(await store.recordImpression("bu:fc", "imp-new", fields, 3_600, t)).toBe(false);
      const counters = await store.readCounters("bu:fc", t);
      expect([...counters.entries()].sort()).toEqual(fields.map((f) => [f, 201]).sort());
      expect(await store.readCounters("bu:nobody", t)).toEqual(new Map());
    });

    it("drops counter buckets past their retention and keeps lifetime counts", async () => {
      const t = now();
      await store.recordImpression("bu:old", "a", fieldsFor("c||", t), 60, t);
      const later = t + 2 * 86_400;
      await store.recordImpression("bu:old", "b", fieldsFor("c||", later), 60, later);
      const fields = [...(await store.readCounters("bu:old", later)).entries()].sort();
      // Minute buckets live a day: the first impression's is gone; its hour and day buckets stay.
      expect(fields).toEqual(
        [
          ["c|||L", 2],
          [`c|||60|${Math.floor(later / 60)}`, 1],
          [`c|||3600|${Math.floor(t / 3600)}`, 1],
          [`c|||3600|${Math.floor(later / 3600)}`, 1],
          [`c|||86400|${Math.floor(t / 86400)}`, 1],
          [`c|||86400|${Math.floor(later / 86400)}`, 1],
        ].sort(),
      );
    });

    it("erases a person's counters with the opt-out", async () => {
      const t = now();
      await store.recordImpression("bu:gone", "x", fieldsFor("c||", t), 60, t);
      await store.optOut(["bu:gone"], t);
      expect(await store.readCounters("bu:gone", t)).toEqual(new Map());
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
      await store.recordImpression("bu:c1", "i1", fieldsFor("c||", t), 60, t);
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
