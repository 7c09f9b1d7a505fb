// The stored profile format across its writers and readers: profiles stored by earlier versions read and
// rewritten by the Redis scripts, and the scripts writing what the TypeScript codec writes.
import fc from "fast-check";
import { unpack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import {
  encodeProfile,
  type LinkedMember,
  type Membership,
  type MembershipOp,
  type Profile,
} from "../../src/profiles/profile-codec.ts";
import { profileKey, RedisProfileStore } from "../../src/profiles/redis-profile-store.ts";
import { add } from "../contract/profile-store-contract.ts";
import { profileFixtures } from "../helpers/profile-fixtures.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";

let server: RedisServer;
let store: RedisProfileStore;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  server = await startRedis();
  store = new RedisProfileStore({ url: server.url, commandTimeoutMs: 2_000, connectTimeoutMs: 1_000 });
  await store.connect();
});
afterAll(async () => {
  await store?.close();
  await server?.close();
});

const stored = async (key: string): Promise<unknown[]> =>
  unpack((await store.redis.getBuffer(profileKey(key))) as Buffer) as unknown[];

/** A profile as a reader gets it, with memberships appended to its own. */
const withOwn = (p: Profile, more: Membership[], linkVersionStep = 0): Profile =>
  p.link === undefined
    ? { memberships: [...p.memberships, ...more] }
    : {
        memberships: [...p.memberships, ...more],
        link: { version: p.link.version + linkVersionStep, members: p.link.members },
      };

describe("profiles stored in format 1 and 2, through the Redis store", () => {
  const fixtures = profileFixtures([1, 2]);
  const added: Membership = { segment: "2001", expiresAt: 0, source: "ingest", generation: 1 };

  it.each(fixtures.map((f) => [f.file, f] as const))(
    "%s reads as expected, and a load merges into it and rewrites it in format 3",
    async (_file, f) => {
      const key = `bu:fixture-${f.file}`;
      await store.redis.set(profileKey(key), f.bytes);
      const t = now();
      expect(await store.readProfiles([key], t)).toStrictEqual([f.expected]);
      const applied = await store.applyMemberships([add(key, "2001", 0, "ingest", 1)], t);
      expect(applied).toEqual({ skippedKeys: [], linkedKeys: f.expected.link === undefined ? [] : [key] });
      expect((await stored(key))[0]).toBe(3);
      expect(await store.readProfiles([key], t)).toStrictEqual([withOwn(f.expected, [added], 1)]);
      // The expired rows went with the rewrite: what is stored is the codec's encoding of what is left, to
      // the byte where no confidence is in it (cmsgpack writes 0.5 as a float32, msgpackr as a float64).
      const left = (await store.readProfiles([key], t))[0] as Profile;
      const bytes = (await store.redis.getBuffer(profileKey(key))) as Buffer;
      const codec = encodeProfile(left.memberships, left.link);
      expect(unpack(bytes)).toStrictEqual(unpack(codec));
      if (left.link === undefined) expect(bytes.toString("hex")).toBe(codec.toString("hex"));
    },
  );

  it("a linked profile of format 2 takes a newer copy from a member, and a new person, in format 3", async () => {
    const f = fixtures.find((x) => x.file === "linked-person.v2");
    if (f === undefined || f.expected.link === undefined) throw new Error("no linked-person.v2 fixture");
    const t = now();
    const [first, second] = f.expected.link.members as [LinkedMember, LinkedMember];
    const copy: Membership[] = [{ segment: "5005", expiresAt: t + 600, source: "crm", generation: 0 }];

    await store.redis.set(profileKey("bu:put-origin"), f.bytes);
    await store.putOrigins(
      [{ target: "bu:put-origin", origin: first.key, version: first.version + 1, memberships: copy }],
      t,
    );
    expect((await stored("bu:put-origin"))[0]).toBe(3);
    expect(await store.readProfiles(["bu:put-origin"], t)).toStrictEqual([
      {
        memberships: f.expected.memberships,
        link: {
          version: f.expected.link.version,
          members: [{ ...first, version: first.version + 1, memberships: copy }, second],
        },
      },
    ]);

    await store.redis.set(profileKey("bu:set-members"), f.bytes);
    const stale: LinkedMember = { ...second, version: second.version - 1, memberships: copy };
    const joined: LinkedMember = { key: "xu:ex:j", confidence: 0.25, version: 0, memberships: copy };
    await store.setMembers([{ key: "bu:set-members", members: [stale, joined] }], t);
    expect((await stored("bu:set-members"))[0]).toBe(3);
    // The copy held is newer than the one given: it stays.
    expect(await store.readProfiles(["bu:set-members"], t)).toStrictEqual([
      {
        memberships: f.expected.memberships,
        link: { version: f.expected.link.version, members: [second, joined] },
      },
    ]);
  });
});

describe("the Redis scripts and the TypeScript codec agree", () => {
  const SEGMENTS = ["0", "7", "007", "1001", "1234567890", "999999999", "sports", "-1", "ünï"];
  const SOURCES = ["", "crm", "dmp"];

  /** Ops on a few IDs, each expiry live, never, or already past (a remove). */
  const ops = (keys: readonly string[], t: number): fc.Arbitrary<MembershipOp[]> =>
    fc.array(
      fc.record({
        key: fc.constantFrom(...keys),
        op: fc.constantFrom<"add" | "remove">("add", "add", "add", "remove"),
        segment: fc.constantFrom(...SEGMENTS),
        expiresAt: fc.constantFrom(0, t - 5, t + 1_000, t + 1_000, t + 2_000, t + 70_000),
        source: fc.constantFrom(...SOURCES),
        generation: fc.nat(3),
        minGeneration: fc.nat(2),
      }),
      { maxLength: 25 },
    );

  const membership = (t: number): fc.Arbitrary<Membership> =>
    fc.record({
      segment: fc.constantFrom(...SEGMENTS),
      expiresAt: fc.constantFrom(0, t - 5, t + 500, t + 3_000),
      source: fc.constantFrom(...SOURCES),
      generation: fc.nat(3),
    });

  it("loads give the same profiles on memory and Redis, and Redis stores exactly the codec's bytes", async () => {
    const t = now();
    const keys = ["bu:g1", "ifa:g2", "hem:g3"];
    await fc.assert(
      fc.asyncProperty(fc.array(ops(keys, t), { minLength: 1, maxLength: 3 }), async (batches) => {
        await store.redis.flushdb();
        const memory = new MemoryProfileStore();
        for (const batch of batches) {
          expect(await store.applyMemberships(batch, t)).toEqual(await memory.applyMemberships(batch, t));
        }
        const fromRedis = await store.readProfiles(keys, t);
        expect(fromRedis).toStrictEqual(await memory.readProfiles(keys, t));
        for (const [i, key] of keys.entries()) {
          const p = fromRedis[i];
          const bytes = await store.redis.getBuffer(profileKey(key));
          expect(bytes?.toString("hex") ?? null).toBe(
            p == null ? null : encodeProfile(p.memberships).toString("hex"),
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  it("persons set, copied and loaded give the same profiles on memory and Redis", async () => {
    const t = now();
    const keys = ["bu:h1", "ifa:h2"];
    const member = fc.record({
      key: fc.constantFrom("ifa:m1", "hem:m2", "bu:m3"),
      confidence: fc.constantFrom(1, 0.5, 0.85),
      version: fc.nat(4),
      memberships: fc.array(membership(t), { maxLength: 6 }),
    });
    const step = fc.oneof(
      ops(keys, t).map((o) => ({ kind: "apply" as const, ops: o })),
      fc.record({
        kind: fc.constant("set" as const),
        key: fc.constantFrom(...keys),
        members: fc.uniqueArray(member, { selector: (e) => e.key, maxLength: 3 }),
      }),
      fc.record({
        kind: fc.constant("put" as const),
        target: fc.constantFrom(...keys),
        origin: fc.constantFrom("ifa:m1", "hem:m2", "bu:m3"),
        version: fc.nat(6),
        memberships: fc.array(membership(t), { maxLength: 6 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
        await store.redis.flushdb();
        const memory = new MemoryProfileStore();
        for (const s of steps) {
          for (const target of [store, memory]) {
            if (s.kind === "apply") await target.applyMemberships(s.ops, t);
            else if (s.kind === "set") await target.setMembers([{ key: s.key, members: s.members }], t);
            else await target.putOrigins([s], t);
          }
        }
        expect(await store.readProfiles(keys, t)).toStrictEqual(await memory.readProfiles(keys, t));
        for (const key of keys) {
          const bytes = await store.redis.getBuffer(profileKey(key));
          if (bytes !== null) expect((unpack(bytes) as unknown[])[0]).toBe(3);
        }
      }),
      { numRuns: 150 },
    );
  });
});
