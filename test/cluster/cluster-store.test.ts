// The store contract on a real local Redis Cluster (3 masters, 1 replica each), and the service end to end
// on it: ingest, lookup, capping, identity links and erasure across slots and nodes.
import calculateSlot from "cluster-key-slot";
import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { profileKey, RedisProfileStore } from "../../src/profiles/redis-profile-store.ts";
import { add, describeProfileStoreContract } from "../contract/profile-store-contract.ts";
import { type RedisCluster, startRedisCluster } from "../helpers/redis-cluster.ts";
import { postJson, startService, type TestService } from "../helpers/service.ts";

let cluster: RedisCluster;
const stores: RedisProfileStore[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  for (const s of stores) await s.close();
  await cluster?.close();
});

/** A store on the test cluster, closed after the file. */
async function openStore(): Promise<RedisProfileStore> {
  const store = new RedisProfileStore({
    clusterNodes: cluster.nodes,
    commandTimeoutMs: 2_000,
    connectTimeoutMs: 2_000,
  });
  await store.connect();
  stores.push(store);
  return store;
}

async function flushAll(store: RedisProfileStore): Promise<void> {
  const c = store.redis as Cluster;
  await Promise.all(c.nodes("master").map((n) => n.flushdb()));
}

describeProfileStoreContract("redis cluster", {
  fresh: async () => {
    const store = await openStore();
    expect(store.kind).toBe("redis-cluster");
    await flushAll(store);
    return store;
  },
  teardown: async () => {},
});

describe("connecting to a Cluster", () => {
  it("leaves a connection open to every master, so that no first read waits for one", async () => {
    const store = await openStore();
    const masters = (store.redis as Cluster).nodes("master");
    expect(masters.map((n) => n.status)).toEqual(["ready", "ready", "ready"]);
  });
});

describe("the service on a Redis Cluster", () => {
  const ADMIN = "cluster-admin-token-000001";
  let svc: TestService;
  beforeAll(async () => {
    svc = await startService({
      REDIS_CLUSTER_NODES: cluster.env,
      ADMIN_TOKENS: `${ADMIN}=*`,
      CACHE_TTL_MS: "0",
      // Impressions named by type and id, as a closed network sends them (the notice token is capping.test.ts's).
      EVENTS_OPEN: "true",
    });
  }, 30_000);
  afterAll(() => svc?.stop());

  const admin = (method: string, path: string, body?: string) =>
    fetch(`${svc.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
      ...(body === undefined ? {} : { body }),
    });

  it("loads, looks up, caps, links and erases across slots and nodes", async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `c-user-${i}`);
    const rows = ids.flatMap((id, i) => [`bu,${id},${1000 + (i % 5)}`, `bu,${id},2000`]);
    expect(
      (await admin("POST", "/v1/admin/memberships", `type,id,segment\n${rows.join("\n")}\n`)).status,
    ).toBe(200);
    // Many IDs of many slots in one lookup: one round trip per node.
    const { json } = await postJson(`${svc.base}/v1/lookup`, {
      ids: ids.slice(0, 20).map((id) => ({ type: "bu", id })),
    });
    expect(json.degraded).toBe(false);
    expect(json.segments).toEqual(["1000", "1001", "1002", "1003", "1004", "2000"]);

    expect((await admin("PUT", "/v1/admin/caps", "campaign,window,max\nc-camp,1h,1\n")).status).toBe(200);
    const pixel = await fetch(`${svc.base}/v1/events/imp?type=bu&id=c-user-1&campaign=c-camp&imp=i1`);
    expect(pixel.status).toBe(204);
    const capped = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "c-user-1" }],
      campaigns: ["c-camp"],
    });
    expect(capped.json.capped).toEqual(["c-camp"]);

    expect(
      (await admin("POST", "/v1/admin/links", "type_a,id_a,type_b,id_b\nbu,c-user-1,bu,c-user-2\n")).status,
    ).toBe(200);
    const linked = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "c-user-2" }],
      campaigns: ["c-camp"],
    });
    expect(linked.json.segments).toEqual(["1001", "1002", "2000"]);
    expect(linked.json.capped).toEqual(["c-camp"]);

    expect((await admin("DELETE", "/v1/admin/users/bu/c-user-1")).status).toBe(200);
    const after = await postJson(`${svc.base}/v1/lookup`, { ids: [{ type: "bu", id: "c-user-2" }] });
    expect(after.json.segments).toEqual(["1002", "2000"]);
  });
});

describe("two instances on one Cluster", () => {
  it("see each other's changes at once over the Cluster's pub/sub, not after the cache TTL", async () => {
    const ADMIN = "cluster-admin-token-000002";
    const env = { REDIS_CLUSTER_NODES: cluster.env, ADMIN_TOKENS: `${ADMIN}=*`, CACHE_TTL_MS: "600000" };
    const a = await startService(env);
    const b = await startService(env);
    try {
      const load = (rows: string) =>
        fetch(`${a.base}/v1/admin/memberships`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
          body: `type,id,segment\n${rows}\n`,
        });
      const segmentsOnB = async () =>
        (await postJson(`${b.base}/v1/lookup`, { ids: [{ type: "bu", id: "two-1" }] })).json.segments;
      expect((await load("bu,two-1,1001")).status).toBe(200);
      // B reads it once and then holds it for the cache TTL (10 minutes)...
      expect(await segmentsOnB()).toEqual(["1001"]);
      expect((await load("bu,two-1,1002")).status).toBe(200);
      // ...unless told: the change made through A reaches B's cache.
      let seen: string[] = [];
      for (let i = 0; i < 50 && seen.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
        seen = await segmentsOnB();
      }
      expect(seen).toEqual(["1001", "1002"]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("see each other's impressions at once: counters B cached are dropped over the Cluster's pub/sub", async () => {
    const ADMIN = "cluster-admin-token-000003";
    // CAP_COUNTERS_CACHE_MS at the default that ships (30 s).
    const env = { REDIS_CLUSTER_NODES: cluster.env, ADMIN_TOKENS: `${ADMIN}=*` };
    const a = await startService(env);
    const b = await startService(env);
    try {
      const put = await fetch(`${a.base}/v1/admin/caps`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
        body: "campaign,window,max\ncl-camp,1h,2\n",
      });
      expect(put.status).toBe(200);
      const capsOnB = async () => {
        const { json } = await postJson(`${b.base}/v1/lookup`, {
          ids: [{ type: "bu", id: "two-caps" }],
          campaigns: ["cl-camp"],
        });
        return { capped: json.capped, remaining: json.remaining };
      };
      // The rule reaches B's catalog over pub/sub; then B holds the person's counters.
      await expect
        .poll(capsOnB, { timeout: 3_000, interval: 20 })
        .toEqual({ capped: [], remaining: { "cl-camp": 2 } });
      const events = await fetch(`${a.base}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}` },
        body: ["c-1", "c-2"]
          .map((imp) => `${JSON.stringify({ type: "bu", id: "two-caps", campaign: "cl-camp", imp })}\n`)
          .join(""),
      });
      expect(await events.json()).toMatchObject({ counted: 2 });
      // Asked until A's message (coalesced for up to 25 ms) has reached B: pub/sub is asynchronous.
      await expect
        .poll(capsOnB, { timeout: 3_000, interval: 20 })
        .toEqual({ capped: ["cl-camp"], remaining: { "cl-camp": 0 } });
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe("membership writes on a Cluster", () => {
  /** Script calls the masters have run (EVAL and EVALSHA), from their command statistics. */
  async function scriptCalls(store: RedisProfileStore): Promise<number> {
    let calls = 0;
    for (const node of (store.redis as Cluster).nodes("master")) {
      const stats = await node.info("commandstats");
      for (const m of stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)) calls += Number(m[1]);
    }
    return calls;
  }

  it("merges the IDs of one slot in one script call, each with its own outcome", async () => {
    const store = await openStore();
    await flushAll(store);
    // Three IDs of one slot (found by searching), and three of slots of their own.
    const bySlot = new Map<number, string[]>();
    let shared: string[] = [];
    for (let i = 0; shared.length < 3; i++) {
      const id = `bu:slot-${i}`;
      const slot = calculateSlot(profileKey(id));
      const list = [...(bySlot.get(slot) ?? []), id];
      bySlot.set(slot, list);
      if (list.length === 3) shared = list;
    }
    const sharedSlot = calculateSlot(profileKey(shared[0] as string));
    const alone = ["bu:alone-a", "bu:alone-b", "bu:alone-c"];
    expect(new Set([sharedSlot, ...alone.map((id) => calculateSlot(profileKey(id)))]).size).toBe(4);
    const t = Math.floor(Date.now() / 1000);
    await store.optOut([shared[1] as string], t);
    const groups = new Map([...shared, ...alone].map((id) => [id, [add(id, "1"), add(id, "2")]]));
    const before = await scriptCalls(store);
    const result = await store.applyMembershipGroups(groups, t);
    expect((await scriptCalls(store)) - before).toBe(4);
    expect(result).toEqual({ skippedKeys: [shared[1]], linkedKeys: [] });
    const read = await store.readProfiles([...shared, ...alone], t);
    expect(read.map((p) => p?.memberships.map((m) => m.segment).sort() ?? null)).toEqual([
      ["1", "2"],
      null,
      ["1", "2"],
      ["1", "2"],
      ["1", "2"],
      ["1", "2"],
    ]);
  });
});

describe("a reshard under load", () => {
  it("moves slots while reads and writes go on: none fails, every read is right", async () => {
    const store = await openStore();
    await flushAll(store);
    const nowSec = Math.floor(Date.now() / 1000);
    const keys = Array.from({ length: 2_000 }, (_, i) => `bu:move-${i}`);
    await store.applyMemberships(
      keys.map((k) => add(k, "1")),
      nowSec,
    );
    let moving = true;
    const failures: string[] = [];
    let reads = 0;
    let wrong = 0;
    let rounds = 0;
    const increments = new Map<string, number>();
    const reader = async (): Promise<void> => {
      for (let n = 0; moving; n++) {
        // 40 keys of many slots per read: on the moving master and off it.
        const batch = Array.from({ length: 40 }, (_, j) => keys[(n * 40 + j * 7) % keys.length] as string);
        try {
          const got = await store.readProfiles(batch, nowSec);
          reads++;
          if (!got.every((p) => p?.memberships.some((m) => m.segment === "1"))) wrong++;
        } catch (err) {
          failures.push(`read: ${(err as Error).message}`);
        }
      }
    };
    const writer = async (): Promise<void> => {
      for (let n = 0; moving; n++) {
        const batch = keys.slice((n * 100) % keys.length, ((n * 100) % keys.length) + 100);
        try {
          await store.applyMemberships(
            batch.map((k) => add(k, "2")),
            nowSec,
          );
          await store.addCounters(batch, new Map([["l:c", 1]]));
          rounds++;
          for (const k of batch) increments.set(k, (increments.get(k) ?? 0) + 1);
        } catch (err) {
          failures.push(`write: ${(err as Error).message}`);
        }
      }
    };
    const load = [reader(), reader(), reader(), writer()];
    await cluster.reshard(2_000);
    moving = false;
    await Promise.all(load);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(wrong).toBe(0);
    expect(reads).toBeGreaterThan(50);
    expect(rounds).toBeGreaterThan(5);
    // Every counter increment landed exactly once, wherever its slot went.
    const counted = await Promise.all(keys.map((k) => store.readCounters(k, nowSec)));
    expect(keys.filter((k, i) => (counted[i]?.get("l:c") ?? 0) !== (increments.get(k) ?? 0))).toEqual([]);
  }, 60_000);
});
