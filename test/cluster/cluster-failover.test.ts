// A master of a real local Redis Cluster killed under load. The service keeps answering every lookup with a
// 200 (degraded while the slot has no master), recovers by itself once the replica is promoted, and counts
// every acknowledged impression exactly once: an impression is acknowledged only after a replica has it.
// Users whose data lives on the other masters are answered in full throughout.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFromProcess, slowest, summarise } from "../helpers/load-process.ts";
import { type MainProcess, startSourceService } from "../helpers/main-process.ts";
import { type RedisCluster, startRedisCluster } from "../helpers/redis-cluster.ts";
import { postJson } from "../helpers/service.ts";

const ADMIN = "failover-admin-token-00001";
/**
 * Not yet the shipped deadlines (15 ms budget, 25 ms command timeout, breaker of 5 failures open for 1 s).
 * At those, twelve runs of this test measured two things that are open: answers right after the kill took up
 * to 137 ms (mostly the victim's, degraded; in one run the bystander's too, up to 129 ms; the service's own
 * latency histogram puts them past 50 ms, so the time is spent in the service), and the bystander was
 * answered degraded in up to 262 of about 2,000 answers while the victim's master was down (in 3 of the 12
 * runs; the one breaker for every node, opened by the dead node's timeouts, is the suspect).
 * Until both are explained and fixed, the test keeps the settings it had: a 100 ms budget, a 250 ms command
 * timeout (only a real stall counts towards the breaker) and a breaker of 3 failures open for 200 ms.
 */
const BUDGET_MS = 100;
/** The service's garbage collection, measured in test/integration/faults.test.ts; a failover's slot refresh. */
const MARGIN_MS = 150;
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
    LOOKUP_BUDGET_MS: String(BUDGET_MS),
    REDIS_COMMAND_TIMEOUT_MS: "250",
    BREAKER_FAILURES: "3",
    BREAKER_OPEN_MS: "200",
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
    const { samples, impressions } = await loadFromProcess(
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
    expect(Math.max(...samples.map((s) => s.ms)), slowest(samples)).toBeLessThan(BUDGET_MS + MARGIN_MS);
    const before = summarise(samples, 0, 900, 0);
    expect(before.n).toBeGreaterThan(20);
    expect(before.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    // Right after the kill the slot has no master: the victim's answers are degraded, not errors.
    const down = summarise(samples, 1_100, 1_900, 0);
    expect(down.n).toBeGreaterThan(10);
    expect(down.degraded).toBe(down.n);
    // The replica is promoted after the node timeout; the client finds it by itself, before the restart.
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
    // Another master's users hardly noticed: the breaker counts timeouts, not one node's refusals, and the
    // cluster (cluster-require-full-coverage no) keeps serving the slots that still have a master. (With
    // the breaker counting refusals and full coverage required, 12% of them were degraded.) The allowance is
    // not yet explained; see BUDGET_MS.
    const bystanderDuring = summarise(samples, 1_000, 5_000, 1);
    expect(bystanderDuring.n).toBeGreaterThan(50);
    expect(bystanderDuring.degraded).toBeLessThanOrEqual(Math.ceil(bystanderDuring.n * 0.03));
  }, 30_000);
});
