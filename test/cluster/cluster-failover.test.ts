// A master of a real local Redis Cluster killed under load. The service keeps answering every lookup with a
// 200 (degraded while the slot has no master), recovers by itself once the replica is promoted, and counts
// every acknowledged impression exactly once: an impression is acknowledged only after a replica has it.
// Users whose data lives on the other masters are answered in full throughout.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lateAnswers, loadFromProcess, slowest, summarise } from "../helpers/load-process.ts";
import { type MainProcess, startSourceService } from "../helpers/main-process.ts";
import { type RedisCluster, startRedisCluster } from "../helpers/redis-cluster.ts";
import { postJson } from "../helpers/service.ts";

const ADMIN = "failover-admin-token-00001";
/** The shipped LOOKUP_BUDGET_MS; the service runs at every shipped default (deadlines, breakers, workers). */
const BUDGET_MS = 15;
/**
 * As in test/integration/faults.test.ts: the service's young-generation collections (5-45 ms, measured
 * there). Here also the first tens of ms after the kill, before the master's breaker opens, when each of its
 * reads still makes the Cluster client refresh its slot map (seen in a CPU profile of the service). Measured
 * over 23 runs at these settings: at most 71 ms as the caller saw it; the service's own histogram had every
 * lookup under 50 ms. A stall of the load process itself excuses what it explains (lateAnswers).
 */
const MARGIN_MS = 70;
/** Concurrent callers of the load. */
const CALLERS = 8;
/** As in test/integration/faults.test.ts: the answers in flight during one stall of the service's event loop. */
const STALL_ALLOWANCE = CALLERS;
/** The user whose master is killed; a bystander on another master is found in beforeAll. */
const VICTIM = "fo-user";

let cluster: RedisCluster;
let svc: MainProcess;
let bystander = "";

beforeAll(async () => {
  cluster = await startRedisCluster();
  // In a process of its own, as in production (see test/integration/faults.test.ts for what the test
  // process's heap did to the deadlines); the shipped deadlines, breaker and worker count.
  svc = await startSourceService({
    REDIS_CLUSTER_NODES: cluster.env,
    ADMIN_TOKENS: `${ADMIN}=*`,
    CACHE_TTL_MS: "0",
    // Impressions named by type and id, as a closed network sends them (the notice token is capping.test.ts's).
    EVENTS_OPEN: "true",
    CAP_COUNTERS_CACHE_MS: "0",
  });
  const victimMaster = await cluster.masterOf(`p:{bu:${VICTIM}}`);
  for (let i = 0; bystander === ""; i++) {
    if ((await cluster.masterOf(`p:{bu:fo-other-${i}}`)) !== victimMaster) bystander = `fo-other-${i}`;
  }
  const admin = (method: string, path: string, body: string) =>
    fetch(`${svc.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
      body,
    });
  const rows = `type,id,segment\nbu,${VICTIM},1001\nbu,${bystander},2002\n`;
  expect((await admin("POST", "/v1/admin/memberships", rows)).status).toBe(200);
  expect(
    (await admin("PUT", "/v1/admin/caps", "campaign,window,max\ncamp-fo,lifetime,100000\n")).status,
  ).toBe(200);
}, 60_000);
afterAll(async () => {
  await svc?.stop();
  await cluster?.close();
});

describe("a Cluster master killed under load", () => {
  it("keeps answering, recovers on its own after the failover, and counts every impression exactly once", async () => {
    let killed = 0;
    const { samples, impressions, stalls } = await loadFromProcess(
      {
        base: svc.base,
        users: [VICTIM, bystander],
        durationMs: 11_000,
        callers: CALLERS,
        impressions: { id: VICTIM, campaign: "camp-fo" },
      },
      [
        [1_000, async () => (killed = await cluster.killMaster(`p:{bu:${VICTIM}}`))],
        // As an orchestrator would: the dead node comes back and rejoins as the new master's replica, so
        // that impressions (which wait for a replica) are taken again.
        [5_000, () => cluster.restart(killed)],
      ],
    );
    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(lateAnswers(samples, stalls, BUDGET_MS + MARGIN_MS), slowest(samples, stalls)).toEqual([]);
    const before = summarise(samples, 0, 900, 0);
    expect(before.n).toBeGreaterThan(20);
    expect(before.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    // Right after the kill the slot has no master: the victim's answers are degraded, not errors.
    const down = summarise(samples, 1_100, 1_900, 0);
    expect(down.n).toBeGreaterThan(10);
    expect(down.degraded).toBe(down.n);
    // The replica is promoted after the node timeout and election (2-3 s after the kill, measured); the
    // master's breaker probes every 200 ms, refreshing the slot map, and so finds it before the restart.
    const recovered = samples.find((s) => s.t > 1_100 && s.user === 0 && s.degraded === false);
    expect(recovered?.t).toBeLessThan(5_000);
    const after = summarise(samples, 8_000, 11_000, 0);
    expect(after.n).toBeGreaterThan(20);
    expect(after.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    const whole = samples.filter((s) => s.t >= 8_000 && s.user === 0 && !s.degraded);
    expect(whole.every((s) => s.segments.join() === "1001")).toBe(true);
    expect(impressions?.unexpected).toEqual([]);
    expect(impressions?.refused).toBeGreaterThan(0);

    const { json } = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: VICTIM }],
      campaigns: ["camp-fo"],
    });
    expect(json.degraded).toBe(false);
    expect(100_000 - json.remaining["camp-fo"]).toBe(impressions?.acked);
    // Another master's users did not notice: each master has its own breaker (node-gate.ts), so the dead
    // one's failures degrade only its own users, and the cluster (cluster-require-full-coverage no) keeps
    // serving the slots that still have a master. With one breaker for every master, 219 of 800 of them
    // were degraded in one run; with the dead master's reads sent and retried, its slot-map refreshes took
    // the CPU the others' answers needed. Left: the answers in flight during one stall of the service.
    const bystanderDuring = summarise(samples, 1_000, 5_000, 1);
    expect(bystanderDuring.n).toBeGreaterThan(50);
    expect(bystanderDuring.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
  }, 30_000);
});
