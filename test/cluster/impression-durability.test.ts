// An acknowledged impression survives the failover of its Cluster master because the service acknowledges it
// only once a replica holds it (IMPRESSION_REPLICAS, Redis WAIT). Replication from the master is held back
// while impressions are sent, then the master is killed, so its replica is promoted without them. Two
// services take the same impressions for two people on that master: one at the shipped setting (WAIT for one
// replica), one with IMPRESSION_REPLICAS=0. The first refuses what no replica confirmed and counts the
// caller's retries exactly once; the second acknowledges the same impressions and loses them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../helpers/load-process.ts";
import { type RedisCluster, startRedisCluster } from "../helpers/redis-cluster.ts";
import { postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "durability-admin-token-0001";
const CAMPAIGN = "camp-dur";
const CAP = 1_000;
/** Impressions sent while the replica keeps up, then while replication is held back. */
const BEFORE = 4;
const HELD = 6;

interface Side {
  readonly svc: TestService;
  readonly id: string;
  /** Impressions answered 204 (each once). */
  readonly acked: Set<string>;
  /** Answers to the impressions sent while replication was held back, in order. */
  readonly whileHeld: number[];
  /** Impressions still owed a 204. */
  readonly refused: string[];
}

let cluster: RedisCluster;
const services: TestService[] = [];
let waiting: Side;
let trusting: Side;

const pixel = async (side: Side, imp: string): Promise<number> => {
  const q = new URLSearchParams({ type: "bu", id: side.id, campaign: CAMPAIGN, imp });
  const status = (await fetch(`${side.svc.base}/v1/events/imp?${q}`)).status;
  if (status === 204) side.acked.add(imp);
  else side.refused.push(imp);
  return status;
};

/** As a caller of the pixel does: a refused impression is sent again until it is stored. */
const retryRefused = async (side: Side): Promise<void> => {
  for (let i = 0; i < 500 && side.refused.length > 0; i++) {
    const imp = side.refused.shift() as string;
    if ((await pixel(side, imp)) !== 204) await sleep(20);
  }
  if (side.refused.length > 0) throw new Error(`${side.id}: ${side.refused.length} impressions never stored`);
};

/** The person's lifetime count, as a bid-time lookup reads it from the store. */
const counted = async (side: Side): Promise<number> => {
  for (let i = 0; i < 200; i++) {
    const { status, json } = await postJson(`${side.svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: side.id }],
      campaigns: [CAMPAIGN],
    });
    // A degraded answer (the store not reached within the budget) says nothing about the count.
    if (status === 200 && json.degraded === false) return CAP - json.remaining[CAMPAIGN];
    await sleep(50);
  }
  throw new Error(`${side.id}: no lookup reached the store`);
};

beforeAll(async () => {
  cluster = await startRedisCluster();
  const env = {
    REDIS_CLUSTER_NODES: cluster.env,
    ADMIN_TOKENS: `${ADMIN}=*`,
    // Impressions named by type and id, as a closed network sends them.
    EVENTS_OPEN: "true",
    // The shipped deadlines, which startService otherwise loosens.
    LOOKUP_BUDGET_MS: "15",
    REDIS_COMMAND_TIMEOUT_MS: "25",
    // Every count is read from the store, the one after the failover included.
    CAP_COUNTERS_CACHE_MS: "0",
  };
  // IMPRESSION_REPLICAS and IMPRESSION_WAIT_MS unset: 1 on a Cluster, 100 ms.
  const waitingSvc = await startService(env);
  services.push(waitingSvc);
  const trustingSvc = await startService({ ...env, IMPRESSION_REPLICAS: "0" });
  services.push(trustingSvc);
  // A service may start unready: the Cluster client's ready check (CLUSTER INFO) runs past the 25 ms
  // command timeout now and then on a busy machine, and the client reconnects.
  for (const svc of services) {
    let ready = 0;
    for (let i = 0; i < 200 && ready !== 200; i++) {
      if (i > 0) await sleep(50);
      ready = (await fetch(`${svc.base}/readyz`)).status;
    }
    expect(ready).toBe(200);
  }
  const id = "dur-waiting";
  const master = await cluster.masterOf(`p:{bu:${id}}`);
  let other = "";
  for (let i = 0; other === ""; i++) {
    if ((await cluster.masterOf(`p:{bu:dur-trusting-${i}}`)) === master) other = `dur-trusting-${i}`;
  }
  waiting = { svc: waitingSvc, id, acked: new Set(), whileHeld: [], refused: [] };
  trusting = { svc: trustingSvc, id: other, acked: new Set(), whileHeld: [], refused: [] };
  for (const svc of services) {
    const res = await fetch(`${svc.base}/v1/admin/caps`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
      body: `campaign,window,max\n${CAMPAIGN},lifetime,${CAP}\n`,
    });
    expect(res.status).toBe(200);
  }

  for (let i = 0; i < BEFORE; i++) for (const side of [waiting, trusting]) await pixel(side, `imp-${i}`);
  const replica = await cluster.replicaOf(master);
  await cluster.holdReplication(replica);
  for (let i = BEFORE; i < BEFORE + HELD; i++) {
    for (const side of [waiting, trusting]) side.whileHeld.push(await pixel(side, `imp-${i}`));
  }
  await cluster.killMaster(`p:{bu:${id}}`);
  // The replica was cut off for a few seconds only, far less than cluster-replica-validity-factor (10)
  // node timeouts plus repl-ping-replica-period (10 s): it is not too stale to be promoted.
  await cluster.releaseReplication(replica);
  let promoted = false;
  for (let i = 0; i < 400 && !promoted; i++) {
    promoted = await cluster.masterOf(`p:{bu:${id}}`).then(
      (port) => port === replica,
      () => false,
    );
    if (!promoted) await sleep(25);
  }
  expect(promoted).toBe(true);
  // As an orchestrator would: the dead node rejoins as the new master's replica, which the service that
  // waits for one needs before it takes impressions again.
  cluster.restart(master);
  await cluster.synced(replica);
  for (const side of [waiting, trusting]) await retryRefused(side);
}, 60_000);
afterAll(async () => {
  for (const svc of services) await svc.stop();
  await cluster?.close();
});

describe("impressions acknowledged before their Cluster master fails", () => {
  it("with WAIT (the shipped IMPRESSION_REPLICAS): each is counted exactly once after the failover", async () => {
    expect(waiting.acked.size).toBe(BEFORE + HELD);
    expect(await counted(waiting)).toBe(waiting.acked.size);
    // Counted on the master, but no replica confirmed them: refused, so the caller sent them again once
    // the new master had a replica, and the new master (without their dedup markers) counted them once.
    expect(waiting.whileHeld).toEqual(Array(HELD).fill(503));
  });

  it("without WAIT (IMPRESSION_REPLICAS=0): those acknowledged while replication was held back are lost", async () => {
    expect(trusting.whileHeld).toEqual(Array(HELD).fill(204));
    expect(trusting.acked.size).toBe(BEFORE + HELD);
    // Only what the replica held when replication was held back.
    expect(await counted(trusting)).toBe(BEFORE);
  });
});
