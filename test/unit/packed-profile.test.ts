// Packed profiles: what the cache holds must give back exactly the memberships it was made from.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addLive, type LiveSegmentRules } from "../../src/lookup/live-segments.ts";
import {
  type CachedProfile,
  cachedBytes,
  MembershipKinds,
  packMemberships,
  packProfile,
  stringBytes,
  unpackMemberships,
  unpackProfile,
} from "../../src/profiles/packed-profile.ts";
import { ProfileCache } from "../../src/profiles/profile-cache.ts";
import type { Membership, Profile } from "../../src/profiles/profile-codec.ts";
import { CatalogSnapshot } from "../../src/segments/catalog.ts";
import { segmentDef } from "../helpers/segment-def.ts";

const membership = fc.record({
  segment: fc.string({ unit: "binary", maxLength: 8 }),
  expiresAt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffff_ffff })),
  source: fc.constantFrom("", "crm", "partner-a", "lookalike"),
  generation: fc.oneof(fc.constant(0), fc.nat()),
});

describe("packed memberships", () => {
  it("unpack to exactly the memberships packed, in order", () => {
    const kinds = new MembershipKinds();
    fc.assert(
      fc.property(fc.array(membership, { maxLength: 30 }), (list) => {
        expect(unpackMemberships(packMemberships(list, kinds), kinds)).toEqual(list);
      }),
      { numRuns: 3_000 },
    );
  });

  it("round-trip a linked profile with its person's copies", () => {
    const kinds = new MembershipKinds();
    const m = (segment: string, expiresAt: number): Membership => ({
      segment,
      expiresAt,
      source: "crm",
      generation: 2,
    });
    const p: Profile = {
      memberships: [m("1", 0)],
      link: {
        version: 7,
        members: [
          { key: "ifa:x", confidence: 0.8, version: 3, memberships: [m("2", 1_800_000_000), m("1", 0)] },
          { key: "bu:y", confidence: 1, version: 0, memberships: [] },
        ],
      },
    };
    expect(unpackProfile(packProfile(p, kinds), kinds)).toEqual(p);
    expect(kinds.size).toBe(2);
  });

  it("take three chars a membership below 32,768 kinds, and four above, which bid time reads too", () => {
    const kinds = new MembershipKinds();
    const ten = Array.from({ length: 10 }, (_, i) => ({
      segment: String(1000 + i),
      expiresAt: 1_800_000_000,
      source: "crm",
      generation: 0,
    }));
    const packed = packMemberships(ten, kinds);
    expect(packed.length).toBe(30);
    // Expiries above 0xff make it a two-byte string: 16 B header + 60 B.
    expect(stringBytes(packed)).toBe(80);
    expect(cachedBytes(packed)).toBe(80);

    for (let i = 0; i < 40_000; i++) kinds.kindOf(`filler-${i}`, "", 0);
    const late = [{ segment: "late", expiresAt: 1_800_000_000, source: "crm", generation: 0 }];
    const wide = packMemberships(late, kinds);
    expect(wide.length).toBe(4);
    expect(unpackMemberships(wide, kinds)).toEqual(late);
    const snapshot = new CatalogSnapshot([segmentDef("late", { party: "first" })], new Map());
    const rules: LiveSegmentRules = {
      snapshot,
      nowSec: 1_700_000_000,
      expand: false,
      minConfidence: 0,
      scope: null,
    };
    const found = new Set<string>();
    expect(addLive(wide + packed, kinds, found, rules, true)).toBe(true);
    expect([...found].sort()).toEqual([
      "1000",
      "1001",
      "1002",
      "1003",
      "1004",
      "1005",
      "1006",
      "1007",
      "1008",
      "1009",
      "late",
    ]);
  });

  it("read an expiry past 2106 as 2106 and drop fractions of a second", () => {
    const kinds = new MembershipKinds();
    const packed = packMemberships(
      [
        { segment: "a", expiresAt: 2 ** 40, source: "", generation: 0 },
        { segment: "b", expiresAt: 1_800_000_000.75, source: "", generation: 0 },
      ],
      kinds,
    );
    expect(unpackMemberships(packed, kinds).map((m) => m.expiresAt)).toEqual([0xffff_ffff, 1_800_000_000]);
  });
});

describe("ProfileCache kinds table", () => {
  it("starts afresh when full: the cache is emptied and what it reads next is packed against the new table", async () => {
    const profiles = new Map<string, Profile>();
    for (let i = 0; i < 6; i++)
      profiles.set(`bu:${i}`, {
        memberships: [{ segment: `s${i}`, expiresAt: 0, source: "crm", generation: 0 }],
      });
    let reads = 0;
    const store = {
      kind: "fake",
      async readProfiles(keys: readonly string[]) {
        reads++;
        return keys.map((k) => profiles.get(k) ?? null);
      },
    };
    const cache = new ProfileCache(store as never, {
      maxEntries: 100,
      maxBytes: 1e9,
      ttlMs: 60_000,
      negativeTtlMs: 0,
      maxKinds: 4,
    });
    const first = await cache.getMany(["bu:0", "bu:1", "bu:2"]);
    expect(first.kinds.size).toBe(3);
    expect((await cache.getMany(["bu:0"])).hits).toBe(1);
    expect((await cache.getMany(["bu:3"])).kinds).toBe(first.kinds);
    expect(first.kinds.size).toBe(4);
    // The table is full: the next call starts a new one and reads again.
    const next = await cache.getMany(["bu:0", "bu:4"]);
    expect(next.kinds).not.toBe(first.kinds);
    expect({ hits: next.hits, misses: next.misses, reads, size: cache.size }).toEqual({
      hits: 0,
      misses: 2,
      reads: 3,
      size: 2,
    });
    expect(next.profiles.map((p) => (p === null ? null : unpackProfile(p, next.kinds)))).toEqual([
      profiles.get("bu:0"),
      profiles.get("bu:4"),
    ]);
    // A batch of the old table finds no memo, and keeps none, even where a slot holds an equal string now.
    const p = next.profiles[0] as CachedProfile;
    const slot = next.slots[0] as number;
    cache.keepMemo(slot, p, first.kinds, "memo of the old table", 10);
    expect(cache.memo(slot, p, next.kinds)).toBeUndefined();
    cache.keepMemo(slot, p, next.kinds, "memo", 10);
    expect(cache.memo(slot, p, next.kinds)).toBe("memo");
    expect(cache.memo(slot, p, first.kinds)).toBeUndefined();
  });
});
