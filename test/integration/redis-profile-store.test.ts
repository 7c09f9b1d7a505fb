// The store contract against a real redis-server started here, plus what only Redis does (TTLs, Lua, timeouts).
import { Redis } from "ioredis";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scopeKey } from "../../src/capping/cap-rule.ts";
import { counterWrite } from "../../src/capping/cap-windows.ts";
import { encodeProfile, type Profile } from "../../src/profiles/profile-codec.ts";
import { NotReplicatedError, profileKey, RedisProfileStore } from "../../src/profiles/redis-profile-store.ts";
import {
  add,
  capRule,
  describeProfileStoreContract,
  impression,
  writeOf,
} from "../contract/profile-store-contract.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";

let server: RedisServer;
const stores: RedisProfileStore[] = [];

async function openStore(url: string, commandTimeoutMs = 1_000): Promise<RedisProfileStore> {
  const store = new RedisProfileStore({ url, commandTimeoutMs, connectTimeoutMs: 1_000 });
  await store.connect();
  stores.push(store);
  return store;
}

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await server.close();
});

describeProfileStoreContract("redis", {
  fresh: async () => {
    const store = await openStore(server.url);
    await store.redis.flushdb();
    return store;
  },
  teardown: async () => {},
});

describe("RedisProfileStore specifics", () => {
  const now = () => Math.floor(Date.now() / 1000);

  it("stores under p:{<typed id>} with a TTL at the last membership's expiry, none when one never expires", async () => {
    const store = await openStore(server.url);
    const t = now();
    await store.applyMemberships(
      [add("bu:ttl", "1", t + 100), add("bu:ttl", "2", t + 500), add("bu:forever", "1")],
      t,
    );
    const ttl = await store.redis.ttl(profileKey("bu:ttl"));
    expect(ttl).toBeGreaterThan(400);
    expect(ttl).toBeLessThanOrEqual(500);
    expect(await store.redis.ttl(profileKey("bu:forever"))).toBe(-1);
    expect(profileKey("bu:ttl")).toBe("p:{bu:ttl}");
  });

  it("the Lua merge reads what the TypeScript codec wrote, and writes what it reads", async () => {
    const store = await openStore(server.url);
    const t = now();
    await store.redis.set(
      profileKey("bu:codec"),
      encodeProfile([{ segment: "a", expiresAt: t + 1000, source: "s", generation: 0 }]),
    );
    await store.applyMemberships([add("bu:codec", "b")], t);
    const [p] = await store.readProfiles(["bu:codec"], t);
    expect(p?.memberships).toEqual([
      { segment: "a", expiresAt: t + 1000, source: "s", generation: 0 },
      { segment: "b", expiresAt: 0, source: "", generation: 0 },
    ]);
  });

  it("refuses to merge into a profile of an unknown format version, leaving it untouched", async () => {
    const store = await openStore(server.url);
    const future = new Packr({ useRecords: false }).pack([4, { new: "layout" }]);
    await store.redis.set(profileKey("bu:v4"), future);
    await expect(store.applyMemberships([add("bu:v4", "1")], now())).rejects.toThrow(/AUD_ERR_CODEC/);
    expect(Buffer.compare((await store.redis.getBuffer(profileKey("bu:v4"))) as Buffer, future)).toBe(0);
    await expect(store.readProfiles(["bu:v4"], now())).rejects.toThrow(/unsupported profile format/);
  });

  it("reads all keys of a call in one MGET", async () => {
    const store = await openStore(server.url);
    const monitor = new Redis(server.url);
    const seen: string[] = [];
    const mon = await monitor.monitor();
    mon.on("monitor", (_time: string, args: string[]) => seen.push(args[0]?.toLowerCase() ?? ""));
    await store.readProfiles(["bu:m1", "bu:m2", "ifa:m3"], now());
    await new Promise((r) => setTimeout(r, 50));
    mon.disconnect();
    monitor.disconnect();
    expect(seen.filter((c) => c === "mget")).toHaveLength(1);
    expect(seen.filter((c) => c === "get")).toHaveLength(0);
  });

  it("rejects at once when Redis is down (no offline queue), and reads again after it returns", async () => {
    const own = await startRedis();
    try {
      const store = await openStore(own.url, 200);
      await store.applyMemberships([add("bu:down", "1")], now());
      await own.stop(true);
      const started = Date.now();
      await expect(store.readProfiles(["bu:down"], now())).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(await store.ping()).toBe(false);
      await own.restart();
      // Data is gone with the process (no persistence): the point is that the client reconnects by itself.
      await expect.poll(() => store.ping(), { timeout: 5_000 }).toBe(true);
      expect(await store.readProfiles(["bu:down"], now())).toEqual([null]);
    } finally {
      await own.close();
    }
  });
});

describe("impressions confirmed by a replica (IMPRESSION_REPLICAS)", () => {
  it("resolves once a replica has the count, and rejects when no replica confirms in time", async () => {
    const replica = await startRedis(["--replicaof", "127.0.0.1", String(server.port)]);
    const onReplica = new Redis(replica.port, "127.0.0.1");
    try {
      // Its first full sync waits for more replicas to come (repl-diskless-sync-delay) before it starts. After a
      // diskless sync the master starts streaming to a replica only on its first REPLCONF ACK, which replicas
      // send once a second, and WAIT counts acknowledged offsets: the replica's own master_link_status:up can
      // come up to a second before that, and a WAIT then finds no replica. So wait for the master to show an
      // acknowledged offset (offset > 0 in its INFO line for the replica).
      const onMaster = new Redis(server.port, "127.0.0.1");
      try {
        const acked = /slave0:.*state=online,offset=[1-9]/;
        for (let i = 0; i < 200 && !acked.test(await onMaster.info("replication")); i++)
          await new Promise((r) => setTimeout(r, 50));
      } finally {
        onMaster.disconnect();
      }
      const replicated = new RedisProfileStore({
        url: server.url,
        commandTimeoutMs: 1_000,
        connectTimeoutMs: 1_000,
        impressionReplicas: 1,
        impressionWaitMs: 500,
      });
      await replicated.connect();
      stores.push(replicated);
      const nowSec = Math.floor(Date.now() / 1000);
      const lifetime = (imp: string) => impression(imp, { lifetime: ["c|||L"], buckets: [] });
      expect(await replicated.recordImpression("bu:rep", lifetime("i1"), nowSec)).toBe("counted");
      expect(await replicated.recordImpression("bu:rep", lifetime("i1"), nowSec)).toBe("duplicate");
      expect(await onReplica.hget("fc:{bu:rep}", "c|||L")).toBe("1");

      // Two replicas wanted, one there: counted on the master but not confirmed, so not acknowledged; the
      // retry the caller makes is a duplicate there and still waits for the confirmation.
      const demanding = new RedisProfileStore({
        url: server.url,
        commandTimeoutMs: 1_000,
        connectTimeoutMs: 1_000,
        impressionReplicas: 2,
        impressionWaitMs: 30,
      });
      await demanding.connect();
      stores.push(demanding);
      expect(await replicated.replicaShortfall()).toEqual([]);
      expect(await demanding.replicaShortfall()).toEqual([`127.0.0.1:${server.port} has 1 of 2`]);
      const err = await demanding.recordImpression("bu:rep", lifetime("i2"), nowSec).catch((e) => e);
      expect(err).toBeInstanceOf(NotReplicatedError);
      expect(err).toMatchObject({ code: "AUD_ERR_NOT_REPLICATED", wanted: 2, acked: 1 });
      await expect(demanding.recordImpression("bu:rep", lifetime("i2"), nowSec)).rejects.toThrow(
        "write reached 1 of 2 replicas in time",
      );
      expect(await demanding.readCounters("bu:rep", nowSec)).toEqual(new Map([["c|||L", 2]]));
    } finally {
      onReplica.disconnect();
      await replica.close();
    }
  });
});

describe("reads of one event-loop turn", () => {
  it("leave as one MGET, each caller getting its own keys' profiles in order", async () => {
    const store = await openStore(server.url);
    const nowSec = Math.floor(Date.now() / 1000);
    await store.applyMemberships([add("bu:t1", "1"), add("bu:t2", "2"), add("bu:t3", "3")], nowSec);
    const mgets = async () =>
      Number(/cmdstat_mget:calls=(\d+)/.exec(await store.redis.info("commandstats"))?.[1] ?? 0);
    const before = await mgets();
    const [a, b, c] = await Promise.all([
      store.readProfiles(["bu:t3", "bu:none"], nowSec),
      store.readProfiles(["bu:t1"], nowSec),
      store.readProfiles(["bu:t2", "bu:t1"], nowSec),
    ]);
    expect(await mgets()).toBe(before + 1);
    const segs = (ps: (Profile | null)[]) =>
      ps.map((p) => p?.memberships.map((m) => m.segment).join() ?? null);
    expect(segs(a as (Profile | null)[])).toEqual(["3", null]);
    expect(segs(b as (Profile | null)[])).toEqual(["1"]);
    expect(segs(c as (Profile | null)[])).toEqual(["2", "1"]);

    // A burst of 1,500 keys goes as two MGETs (at most 1,000 keys each), no lookup split between them.
    const burstBefore = await mgets();
    const burst = await Promise.all(
      Array.from({ length: 30 }, (_, r) =>
        store.readProfiles(
          Array.from({ length: 50 }, (_, i) => (i === r ? "bu:t2" : `bu:absent-${r}-${i}`)),
          nowSec,
        ),
      ),
    );
    expect(await mgets()).toBe(burstBefore + 2);
    burst.forEach((ps, r) => {
      expect(segs(ps as (Profile | null)[]).filter((x) => x !== null)).toEqual(["2"]);
      expect(ps[r]).not.toBeNull();
    });
  });
});

/** Calls per command since `CONFIG RESETSTAT`, from INFO commandstats (scripts' commands included). */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await redis.info("commandstats")).matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm))
    out.set(m[1] as string, Number(m[2]));
  return out;
}

describe("impression writes on Redis: bounded, exact keys", () => {
  it("keeps a person's hash within its bound after 10,000 hostile impressions, without ever reading it whole", async () => {
    const store = await openStore(server.url);
    const admin = new Redis(server.url);
    try {
      const t = Math.floor(Date.now() / 1000);
      const rules = [capRule("r1", 3_600, 7 * 86_400, null), capRule("r2", 30 * 86_400)];
      let seed = 11;
      const rand = (n: number): number => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % n;
      };
      await admin.config("RESETSTAT");
      let written = 0;
      for (let i = 0; i < 10_000; i++) {
        const campaign = ["r1", "r2", `free-${rand(5_000)}`][rand(3)] as string;
        const ts = t - rand(90 * 86_400);
        const w = counterWrite([`${campaign}||`], (sc) => rules.filter((r) => scopeKey(r) === sc), ts, t);
        if (w === null) continue;
        await store.recordImpression("bu:hostile", impression(`h-${i}`, w), t);
        written++;
      }
      expect(written).toBeGreaterThan(3_000);
      // Fields: r1 lifetime, its minute buckets of the hour (61 at most) and hour buckets of the week (169),
      // r2's day buckets of 30 days (31), and one prune mark per (scope, granularity): 3.
      const hlen = await admin.hlen("fc:{bu:hostile}");
      expect(hlen).toBeLessThanOrEqual(1 + 61 + 169 + 31 + 3);
      const fields = await admin.hkeys("fc:{bu:hostile}");
      expect(fields.filter((f) => !f.startsWith("r1|||") && !f.startsWith("r2|||"))).toEqual([]);
      expect(fields.filter((f) => f.endsWith("|lo")).sort()).toEqual([
        "r1|||3600|lo",
        "r1|||60|lo",
        "r2|||86400|lo",
      ]);
      const calls = await commandCalls(admin);
      // Every impression ran the one script; none read the hash whole (the one HKEYS above came after).
      // (EVAL once where the server did not know the script yet, EVALSHA after.)
      expect((calls.get("evalsha") ?? 0) + (calls.get("eval") ?? 0)).toBe(written);
      expect(calls.get("hkeys")).toBe(1);
      expect(calls.has("hgetall")).toBe(false);
      expect(calls.has("scan")).toBe(false);
      // The markers: one sorted set, every id written.
      expect(await admin.zcard("im:{bu:hostile}")).toBe(written);
    } finally {
      admin.disconnect();
    }
  });

  it("erases by exact keys: an ID's opt-out leaves no key of it but its marker, and no other ID's", async () => {
    const store = await openStore(server.url);
    const admin = new Redis(server.url);
    try {
      const t = Math.floor(Date.now() / 1000);
      const w = writeOf([capRule("c", 3_600, null)], "c", t, t);
      const notice = { nonce: "n1", uses: 1, expiresAtSec: t + 3_600 };
      // "bu:ea" is a prefix of the others; the old `imp:{bu:ea}*` pattern matched "bu:ea}…" keys too.
      for (const id of ["bu:ea", "bu:eab", "bu:ea}:x"]) {
        expect(await store.recordImpression(id, impression("i1", w, notice), t)).toBe("counted");
      }
      await store.writeLinks([{ a: "bu:ea", b: "bu:eab", edge: { confidence: 1, source: "s" } }]);
      await store.applyMemberships([add("bu:ea", "1")], t);
      await admin.config("RESETSTAT");
      await store.optOut(["bu:ea"], t);
      const calls = await commandCalls(admin);
      expect(calls.has("scan")).toBe(false);
      expect(calls.has("keys")).toBe(false);
      const keys = (await admin.keys("*")).sort();
      expect(keys.filter((k) => /^[a-z]+:\{bu:ea\}$/.test(k))).toEqual(["o:{bu:ea}"]);
      for (const other of ["bu:eab", "bu:ea}:x"]) {
        for (const prefix of ["fc", "im", "nt"]) expect(keys).toContain(`${prefix}:{${other}}`);
      }
      expect(await admin.zscore("im:{bu:eab}", "i1")).not.toBeNull();
    } finally {
      admin.disconnect();
    }
  });

  it("drops the oldest impression markers past 10,000 per person", async () => {
    const store = await openStore(server.url);
    const admin = new Redis(server.url);
    try {
      const t = Math.floor(Date.now() / 1000);
      const w = writeOf([capRule("m", null)], "m", t, t);
      for (let i = 0; i < 10_005; i++) await store.recordImpression("bu:markers", impression(`m-${i}`, w), t);
      expect(await admin.zcard("im:{bu:markers}")).toBe(10_000);
    } finally {
      admin.disconnect();
    }
  });
});
