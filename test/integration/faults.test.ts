// Faults under load on a real redis-server: paused (SIGSTOP) and stopped then restarted. Every answer
// stays a 200 within its deadline, degraded while Redis is away, and normal again within 2 s of its return;
// impressions are counted exactly once across the outage. Also: load shedding, start-up with no Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type LoadResult,
  lateAnswers,
  loadFromProcess,
  sleep,
  slowest,
  summarise,
} from "../helpers/load-process.ts";
import { type MainProcess, startSourceService } from "../helpers/main-process.ts";
import { freePort, type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { getJson, postJson, startService } from "../helpers/service.ts";

const ADMIN = "faults-admin-token-000001";
/** The shipped LOOKUP_BUDGET_MS: every answer waits for the store this long at most. */
const BUDGET_MS = 15;
/** The load's concurrent callers: at most this many answers are in flight at any moment. */
const CALLERS = 8;
/**
 * Time past the budget an answer may take, as its caller measures it. Measured cause: the service's own
 * garbage collection. `--trace-gc-nvp` on the service under this load showed young-generation collections
 * (scavenges) of 5-45 ms every second or so, each one stopping the event loop, so a deadline that expires
 * during one is served only when it ends; the caller's own process and loopback add a few ms on top.
 * An answer's time is taken less the load process's own stalls meanwhile (lateAnswers, load-process.ts):
 * an answer that came in time may have been read late, and that part measures the caller. Two suite runs saw such answers, not
 * degraded: 74-77 ms past the budget in one, and in another 87-114 ms here and 105-109 ms in the failover
 * test, both tests at once, in a run 20% slower than its neighbours; the load process did not record its
 * stalls then. On a quiet machine the slowest answers are 20-36 ms, and the load process stalls 20 ms now
 * and then, at the same moments.
 */
const MARGIN_MS = 70;

let redis: RedisServer;
let svc: MainProcess;
const USERS = ["fault-user"];

beforeAll(async () => {
  // AOF on, so that a stop and restart keeps the counters: the outage is of the server, not of the data. The
  // stop is a SIGTERM, whose shutdown writes and syncs the AOF, so the sync can be the background one
  // (everysec). With "always" each impression's write waits for an fsync on Redis' one thread: one CI run saw
  // 8 degraded answers after recovery, as many as the load has loops, which is one stall past
  // REDIS_COMMAND_TIMEOUT_MS failing every lookup in flight, on a disk shared with other tests' writes.
  redis = await startRedis(["--appendonly", "yes", "--appendfsync", "everysec"]);
  // The service in a process of its own, as it runs in production: its heap, garbage collection and event
  // loop are its own, not shared with the test runner's (where collections of 10-26 ms every few hundred
  // ms were measured, past the 15 ms budget). The shipped deadlines (LOOKUP_BUDGET_MS 15,
  // REDIS_COMMAND_TIMEOUT_MS 25), breaker and worker count. Two settings differ, so that every lookup and
  // every bid-time counter read reaches Redis: with the profile and counter caches on, a fault would be
  // answered from cache and not be seen (the caches' own behaviour is tested elsewhere).
  svc = await startSourceService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
    CACHE_TTL_MS: "0",
    CAP_COUNTERS_CACHE_MS: "0",
    // Impressions named by type and id, as a closed network sends them (the notice token is capping.test.ts's).
    EVENTS_OPEN: "true",
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
}, 60_000);
afterAll(async () => {
  await svc?.stop();
  await redis?.close();
});

/**
 * Answers of a window in which Redis was healthy that may be degraded: those in flight during one stall of
 * the service's event loop past the budget, at most one per caller. Measured cause: the service's garbage
 * collection (see MARGIN_MS), about once a second per worker, so a window of half a second sees one at
 * most. Anything else that degrades them (a flapping breaker, a slow Redis) fails the test.
 */
const STALL_ALLOWANCE = CALLERS;

describe("a paused Redis (SIGSTOP) under load", () => {
  it("answers 200 within the deadline, degraded while paused, normal within 2 s of its return; counts every impression once", async () => {
    const countedBefore = await counted();
    const { samples, impressions, stalls } = await loadFromProcess(
      {
        base: svc.base,
        users: USERS,
        durationMs: 3_500,
        callers: CALLERS,
        impressions: { id: "fault-user", campaign: "camp-f" },
      },
      [
        [500, () => redis.pause()],
        [1_200, () => redis.resume()],
      ],
    );
    const before = summarise(samples, 0, 450);
    const paused = summarise(samples, 600, 1_150);
    // Resumed at 1.2 s: from 3.2 s on (2 s later) every answer must be whole again.
    const after = summarise(samples, 3_200, 3_500);
    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(lateAnswers(samples, stalls, BUDGET_MS + MARGIN_MS), slowest(samples, stalls)).toEqual([]);
    expect(before.n).toBeGreaterThan(150);
    expect(before.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    expect(paused.n).toBeGreaterThan(150);
    expect(paused.degraded).toBe(paused.n);
    // Back within 2 s: every answer of the last 300 ms is complete again.
    expect(after.n).toBeGreaterThan(100);
    expect(after.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    const whole = samples.filter((s) => s.t >= 3_200 && s.degraded === false);
    expect(whole.length).toBeGreaterThan(100 - CALLERS);
    expect(whole.every((s) => s.segments.join() === "1001")).toBe(true);
    await expectCountedOnce(impressions, countedBefore);
  });
});

describe("a stopped and restarted Redis under load", () => {
  it("keeps answering, recovers within 2 s, and counts every impression exactly once across the outage", async () => {
    const countedBefore = await counted();
    const { samples, impressions, stalls } = await loadFromProcess(
      {
        base: svc.base,
        users: USERS,
        durationMs: 4_000,
        callers: CALLERS,
        impressions: { id: "fault-user", campaign: "camp-f" },
      },
      [
        [500, () => redis.stop()],
        [1_500, () => redis.restart()],
      ],
    );
    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(lateAnswers(samples, stalls, BUDGET_MS + MARGIN_MS), slowest(samples, stalls)).toEqual([]);
    const before = summarise(samples, 0, 450);
    expect(before.n).toBeGreaterThan(150);
    expect(before.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    const down = summarise(samples, 700, 1_450);
    expect(down.n).toBeGreaterThan(250);
    expect(down.degraded).toBe(down.n);
    // Restarted at 1.5 s (plus its own start-up): normal again within 2 s of that.
    const recovered = summarise(samples, 3_600, 4_000);
    expect(recovered.n).toBeGreaterThan(140);
    expect(recovered.degraded).toBeLessThanOrEqual(STALL_ALLOWANCE);
    expect(impressions?.refused).toBeGreaterThan(0);
    await expectCountedOnce(impressions, countedBefore);
  });
});

/** Impressions counted so far: the lifetime cap's remaining is 100,000 less them. */
async function counted(): Promise<number> {
  const { json } = await postJson(`${svc.base}/v1/lookup`, {
    ids: [{ type: "bu", id: "fault-user" }],
    campaigns: ["camp-f"],
  });
  expect(json.degraded).toBe(false);
  return 100_000 - json.remaining["camp-f"];
}

/** Every acknowledged impression counted exactly once since `before`. */
async function expectCountedOnce(impressions: LoadResult["impressions"], before: number): Promise<void> {
  expect(impressions?.unexpected).toEqual([]);
  expect((await counted()) - before).toBe(impressions?.acked);
}

describe("load shedding", () => {
  it("answers past MAX_IN_FLIGHT at once with 503 and Retry-After, and keeps /healthz answering", async () => {
    const shedding = await startService({
      REDIS_URL: redis.url,
      CACHE_TTL_MS: "0",
      MAX_IN_FLIGHT: "2",
      // Not the shipped deadlines: the two lookups let in must still be waiting on the paused Redis when the
      // other ten arrive, and twelve connections opened at once from this process can take longer than 15 ms
      // to land. The deadlines themselves are held to the shipped values by the tests above.
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
      // The shipped deadlines, which startService otherwise loosens.
      LOOKUP_BUDGET_MS: "15",
      REDIS_COMMAND_TIMEOUT_MS: "25",
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
