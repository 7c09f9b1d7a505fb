// Faults under load on a real redis-server: paused (SIGSTOP) and stopped then restarted. Every answer
// stays a 200 within its deadline, degraded while Redis is away, and normal again within 2 s of its return;
// impressions are counted exactly once across the outage. Also: load shedding, start-up with no Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { getJson, postJson, startService, type TestService } from "../helpers/service.ts";
import { impressionCaller, sleep, stray, summarise, underLoad } from "../helpers/under-load.ts";

const ADMIN = "faults-admin-token-000001";
/** Roomy enough that a loaded CI machine does not miss it in the normal phases; the faults must hit it. */
const BUDGET_MS = 100;
/** Scheduling room on top of the deadline: a loaded 2-core machine, the client in the same process. */
const MARGIN_MS = 150;

let redis: RedisServer;
let svc: TestService;
const USERS = ["fault-user"];

beforeAll(async () => {
  // AOF on, so that a stop and restart keeps the counters: the outage is of the server, not of the data. The
  // stop is a SIGTERM, whose shutdown writes and syncs the AOF, so the sync can be the background one
  // (everysec). With "always" each impression's write waits for an fsync on Redis' one thread: one CI run saw
  // 8 degraded answers after recovery, as many as the load has loops, which is one stall past
  // REDIS_COMMAND_TIMEOUT_MS failing every lookup in flight, on a disk shared with other tests' writes.
  redis = await startRedis(["--appendonly", "yes", "--appendfsync", "everysec"]);
  svc = await startService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
    CACHE_TTL_MS: "0",
    LOOKUP_BUDGET_MS: String(BUDGET_MS),
    REDIS_COMMAND_TIMEOUT_MS: "50",
    // Impressions named by type and id, as a closed network sends them (the notice token is capping.test.ts's).
    EVENTS_OPEN: "true",
    BREAKER_FAILURES: "3",
    BREAKER_OPEN_MS: "200",
    CAP_COUNTERS_CACHE_MS: "0",
  });
  const up = await fetch(`${svc.base}/v1/admin/memberships`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
    body: "type,id,segment\nbu,fault-user,1001\n",
  });
  expect(up.status).toBe(200);
  const caps = await fetch(`${svc.base}/v1/admin/caps`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
    body: "campaign,window,max\ncamp-f,lifetime,100000\n",
  });
  expect(caps.status).toBe(200);
});
afterAll(async () => {
  await svc?.stop();
  await redis?.close();
});

describe("a paused Redis (SIGSTOP) under load", () => {
  it("answers 200 within the deadline, degraded while paused, normal within 2 s of its return", async () => {
    const samples = await underLoad(svc.base, USERS, 3_500, [
      [500, () => redis.pause()],
      [1_200, () => redis.resume()],
    ]);
    const before = summarise(samples, 0, 450);
    const paused = summarise(samples, 600, 1_150);
    // Resumed at 1.2 s: from 3.2 s on (2 s later) every answer must be whole again.
    const after = summarise(samples, 3_200, 3_500);
    expect(before.errors + paused.errors + after.errors).toBe(0);
    expect(samples.every((s) => s.status === 200)).toBe(true);
    expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(BUDGET_MS + MARGIN_MS);
    expect(before.degraded).toBeLessThanOrEqual(stray(before.n));
    expect(paused.n).toBeGreaterThan(20);
    expect(paused.degraded).toBe(paused.n);
    // Back within 2 s: every answer of the last half second is complete again.
    expect(after.n).toBeGreaterThan(10);
    expect(after.degraded).toBeLessThanOrEqual(stray(after.n));
    const whole = samples.filter((s) => s.t >= 3_200 && !s.degraded);
    expect(whole.length).toBeGreaterThan(10);
    expect(whole.every((s) => s.segments.join() === "1001")).toBe(true);
  });
});

describe("a stopped and restarted Redis under load", () => {
  it("keeps answering, recovers within 2 s, and counts every impression exactly once across the outage", async () => {
    const caller = impressionCaller(svc.base, "fault-user", "camp-f");
    const samples = await underLoad(svc.base, USERS, 4_000, [
      [500, () => redis.stop()],
      [1_500, () => redis.restart()],
    ]);
    await caller.stop();

    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(BUDGET_MS + MARGIN_MS);
    const down = summarise(samples, 700, 1_450);
    expect(down.n).toBeGreaterThan(20);
    expect(down.degraded).toBe(down.n);
    // Restarted at 1.5 s (plus its own start-up): normal again within 2 s of that.
    const recovered = summarise(samples, 3_600, 4_000);
    expect(recovered.n).toBeGreaterThan(10);
    expect(recovered.degraded).toBeLessThanOrEqual(stray(recovered.n));
    expect(caller.refused).toBeGreaterThan(0);

    const { json } = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "fault-user" }],
      campaigns: ["camp-f"],
    });
    expect(json.degraded).toBe(false);
    expect(100_000 - json.remaining["camp-f"]).toBe(caller.acked.size);
  });
});

describe("load shedding", () => {
  it("answers past MAX_IN_FLIGHT at once with 503 and Retry-After, and keeps /healthz answering", async () => {
    const shedding = await startService({
      REDIS_URL: redis.url,
      CACHE_TTL_MS: "0",
      MAX_IN_FLIGHT: "2",
      LOOKUP_BUDGET_MS: "300",
      REDIS_COMMAND_TIMEOUT_MS: "1000",
      BREAKER_FAILURES: "1000",
    });
    try {
      redis.pause();
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          fetch(`${shedding.base}/v1/lookup`, {
            method: "POST",
            body: JSON.stringify({ ids: [{ type: "bu", id: `shed-${i}` }] }),
          }).then(async (r) => ({
            status: r.status,
            retry: r.headers.get("retry-after"),
            body: (await r.json()) as { error?: { code?: string } },
          })),
        ),
      );
      const health = await getJson(`${shedding.base}/healthz`);
      redis.resume();
      const shed = answers.filter((a) => a.status === 503);
      expect(answers.filter((a) => a.status === 200).length).toBe(2);
      expect(shed.length).toBe(10);
      expect(shed.every((a) => a.retry === "1" && a.body.error?.code === "AUD_ERR_OVERLOADED")).toBe(true);
      expect(health.status).toBe(200);
      expect(health.json.load.shed).toBe(10);
    } finally {
      redis.resume();
      await shedding.stop();
    }
  });
});

describe("start-up with Redis unreachable", () => {
  it("starts, reports unready, answers degraded, and becomes ready when Redis appears", async () => {
    const port = await freePort();
    const early = await startService({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      REDIS_CONNECT_TIMEOUT_MS: "200",
    });
    let late: RedisServer | null = null;
    try {
      expect((await getJson(`${early.base}/readyz`)).status).toBe(503);
      const { status, json } = await postJson(`${early.base}/v1/lookup`, { ids: [{ type: "bu", id: "x" }] });
      expect(status).toBe(200);
      expect(json.degraded).toBe(true);
      late = await startRedis([], port);
      let ready = 0;
      for (let i = 0; i < 100 && ready !== 200; i++) {
        await sleep(50);
        ready = (await getJson(`${early.base}/readyz`)).status;
      }
      expect(ready).toBe(200);
    } finally {
      await early.stop();
      await late?.close();
    }
  });
});
