import { describe, expect, it } from "vitest";
import { IdentityGraph, widestPaths } from "../../src/identity/identity-graph.ts";
import { hashEmail } from "../../src/identity/typed-id.ts";
import { toLinkOps } from "../../src/ingest/link-rows.ts";
import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import { decodeProfile, encodeProfile } from "../../src/profiles/profile-codec.ts";
import type { LinkEdge } from "../../src/profiles/profile-store.ts";

const edge = (confidence: number): LinkEdge => ({ confidence, source: "" });

describe("widestPaths", () => {
  it("rates each ID by the weakest link of its strongest path", () => {
    // a -1- b -0.5- c, and a -0.8- d -0.9- c: c is reached at 0.8 through d, not 0.5 through b.
    const c = new Map([
      [
        "a",
        new Map([
          ["b", edge(1)],
          ["d", edge(0.8)],
        ]),
      ],
      [
        "b",
        new Map([
          ["a", edge(1)],
          ["c", edge(0.5)],
        ]),
      ],
      [
        "c",
        new Map([
          ["b", edge(0.5)],
          ["d", edge(0.9)],
        ]),
      ],
      [
        "d",
        new Map([
          ["a", edge(0.8)],
          ["c", edge(0.9)],
        ]),
      ],
    ]);
    expect(widestPaths(c, "a")).toEqual(
      new Map([
        ["a", 1],
        ["b", 1],
        ["d", 0.8],
        ["c", 0.8],
      ]),
    );
    expect(widestPaths(c, "b").get("c")).toBe(0.8);
  });
});

describe("linked profile format", () => {
  it("round-trips version 2 and keeps version 1 for unlinked IDs", () => {
    const m = { segment: "s", expiresAt: 0, source: "x", generation: 0 };
    expect(decodeProfile(encodeProfile([m]), 0)).toEqual({ memberships: [m] });
    const link = { version: 7, members: [{ key: "ifa:a", confidence: 0.75, version: 2, memberships: [m] }] };
    expect(decodeProfile(encodeProfile([m], link), 0)).toEqual({ memberships: [m], link });
    // Expired copies are dropped on read like own memberships.
    const old = { ...m, expiresAt: 10 };
    const p = decodeProfile(
      encodeProfile([], {
        version: 0,
        members: [{ key: "k", confidence: 1, version: 0, memberships: [old] }],
      }),
      20,
    );
    expect(p.link?.members[0]?.memberships).toEqual([]);
  });
});

describe("links file rows", () => {
  it("reads edges and groups, hashing e-mails, with defaults", () => {
    expect(toLinkOps({ type_a: "bu", id_a: "1", type_b: "email", id_b: " A@B.com " })).toEqual([
      { op: "add", a: "bu:1", b: `hem:${hashEmail("a@b.com")}`, confidence: 1, source: "" },
    ]);
    expect(
      toLinkOps({
        ids: [
          { type: "bu", id: "1" },
          { type: "ifa", id: "AB" },
          { type: "hem", id: "f".repeat(64) },
        ],
        confidence: 0.7,
        source: "v",
        op: "remove",
      }),
    ).toEqual([
      { op: "remove", a: "bu:1", b: "ifa:ab", confidence: 0.7, source: "v" },
      { op: "remove", a: "bu:1", b: `hem:${"f".repeat(64)}`, confidence: 0.7, source: "v" },
    ]);
  });

  it("names what is wrong", () => {
    expect(toLinkOps({ ids: [{ type: "bu", id: "1" }] })).toBe("ids must be an array of at least 2 IDs");
    expect(toLinkOps({ ids: [{ type: "bu", id: "1" }, 3] })).toBe("ids[1] must be an object {type, id}");
    expect(toLinkOps({ type_a: "bu", id_a: "1", type_b: "bu", id_b: "2", confidence: "0" })).toBe(
      "confidence must be a number in (0, 1]",
    );
    expect(toLinkOps({ type_a: "bu", id_a: "1", type_b: "zz", id_b: "2" })).toBe(
      "id_b: unknown id type 'zz'",
    );
    expect(toLinkOps({ type_a: "bu", id_a: "1", type_b: "bu", id_b: "2", op: "merge" })).toBe(
      "op must be add or remove, got 'merge'",
    );
  });
});

describe("IdentityGraph on the in-process store", () => {
  it("merges persons, splits them back on unlink and keeps counts with the larger side", async () => {
    const store = new MemoryProfileStore();
    const g = new IdentityGraph(store, 3, () => 1_000_000);
    await store.applyMemberships(
      [
        { key: "bu:a", op: "add", segment: "A", expiresAt: 0, source: "", generation: 0, minGeneration: 0 },
        { key: "bu:c", op: "add", segment: "C", expiresAt: 0, source: "", generation: 0, minGeneration: 0 },
      ],
      1000,
    );
    await store.addCounters(["bu:c"], new Map([["f", 2]]));
    expect((await g.link("bu:a", "bu:b", 1, "")).outcome).toBe("linked");
    expect((await g.link("bu:b", "bu:c", 1, "")).outcome).toBe("linked");
    expect((await g.link("bu:c", "bu:d", 1, "")).outcome).toBe("too_large");
    expect((await g.link("bu:a", "bu:b", 1, "")).outcome).toBe("unchanged");
    const [b] = await store.readProfiles(["bu:b"], 1000);
    expect(b?.link?.members.map((m) => [m.key, m.memberships.map((x) => x.segment)])).toEqual([
      ["bu:a", ["A"]],
      ["bu:c", ["C"]],
    ]);
    expect(await store.readCounters("bu:a", 1000)).toEqual(new Map([["f", 2]]));
    // Cutting c off: {a, b} is the larger side and keeps the counts; c starts again.
    expect((await g.unlink("bu:b", "bu:c")).outcome).toBe("unlinked");
    expect(await store.readCounters("bu:a", 1000)).toEqual(new Map([["f", 2]]));
    expect(await store.readCounters("bu:c", 1000)).toEqual(new Map());
    const [c] = await store.readProfiles(["bu:c"], 1000);
    expect(c).toEqual({ memberships: [{ segment: "C", expiresAt: 0, source: "", generation: 0 }] });
    expect((await g.unlink("bu:b", "bu:c")).outcome).toBe("absent");
  });
});
