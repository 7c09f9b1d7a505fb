// Frequency capping end to end on a real redis-server: rules in, impressions counted exactly once through
// the pixel and the batch route, `capped` and `remaining` at bid time, sliding-window edges, rule changes
// without a restart.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { getJson, postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "capping-admin-token-000001";
let redis: RedisServer;
let svc: TestService;
let nowSec = () => Math.floor(Date.now() / 1000);

async function putCaps(csv: string): Promise<void> {
  const res = await fetch(`${svc.base}/v1/admin/caps`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
    body: `campaign,window,max\n${csv}\n`,
  });
  expect(res.status).toBe(200);
}

function pixel(params: Record<string, string | number>): Promise<Response> {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  return fetch(`${svc.base}/v1/events/imp?${q}`);
}

async function lookup(id: string, campaigns?: string[]) {
  const { status, json } = await postJson(`${svc.base}/v1/lookup`, {
    ids: [{ type: "bu", id }],
    ...(campaigns === undefined ? {} : { campaigns }),
  });
  expect(status).toBe(200);
  return json as {
    capped: string[];
    remaining?: Record<string, number | null>;
    degraded: boolean;
    token?: string;
  };
}

beforeAll(async () => {
  redis = await startRedis();
  svc = await startService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
    CAP_COUNTERS_CACHE_MS: "0",
    EVENT_TOKEN_SECRET: "a-test-secret-of-at-least-32-characters",
  });
  nowSec = () => Math.floor(Date.now() / 1000);
});
afterAll(async () => {
  await svc?.stop();
  await redis?.close();
});

describe("impression events and bid-time caps", () => {
  it("caps a campaign once the person reaches its max, and says what candidates have left", async () => {
    await putCaps("camp-a,1h,3\ncamp-a,24h,5\ncamp-b,lifetime,10");
    expect(await lookup("p1", ["camp-a", "camp-b", "camp-free"])).toMatchObject({
      capped: [],
      remaining: { "camp-a": 3, "camp-b": 10, "camp-free": null },
    });
    for (let i = 0; i < 3; i++) {
      const res = await pixel({ type: "bu", id: "p1", campaign: "camp-a", imp: `a-${i}` });
      expect(res.status).toBe(204);
    }
    const after = await lookup("p1", ["camp-a", "camp-b"]);
    expect(after.capped).toEqual(["camp-a"]);
    expect(after.remaining).toEqual({ "camp-a": 0, "camp-b": 10 });
    expect(after.degraded).toBe(false);
  });

  it("counts an impression id once, however often and however it arrives", async () => {
    await putCaps("camp-d,24h,1000");
    for (let i = 0; i < 50; i++) {
      expect((await pixel({ type: "bu", id: "p2", campaign: "camp-d", imp: "same-1" })).status).toBe(204);
    }
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? pixel({ type: "bu", id: "p2", campaign: "camp-d", imp: "same-2" })
          : fetch(`${svc.base}/v1/events`, {
              method: "POST",
              body: `${JSON.stringify({ type: "bu", id: "p2", campaign: "camp-d", imp: "same-2" })}\n`,
            }),
      ),
    );
    expect((await lookup("p2", ["camp-d"])).remaining).toEqual({ "camp-d": 998 });
  });

  it("counts 200 concurrent events for one person and campaign exactly", async () => {
    await putCaps("camp-c,1h,1000");
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        pixel({ type: "bu", id: "p3", campaign: "camp-c", imp: `c-${i}` }),
      ),
    );
    expect(results.every((r) => r.status === 204)).toBe(true);
    expect((await lookup("p3", ["camp-c"])).remaining).toEqual({ "camp-c": 800 });
  });

  it("takes NDJSON batches: counts, duplicates and rejected lines with the field named", async () => {
    const lines = [
      { type: "bu", id: "p4", campaign: "camp-e", imp: "e-1" },
      { type: "bu", id: "p4", campaign: "camp-e", imp: "e-1" },
      { type: "bu", id: "p4", campaign: "camp-e" },
      { type: "bu", id: "p4", campaign: "bad campaign", imp: "e-2" },
    ].map((l) => JSON.stringify(l));
    const res = await fetch(`${svc.base}/v1/events`, {
      method: "POST",
      body: `${lines.join("\n")}\nnot json\n`,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      received: number;
      counted: number;
      duplicates: number;
      rejected: number;
      errors: { line: number; field: string }[];
    };
    expect(body).toMatchObject({ received: 5, counted: 1, duplicates: 1, rejected: 3 });
    expect(body.errors.map((e) => [e.line, e.field])).toEqual([
      [3, "imp"],
      [4, "campaign"],
      [5, ""],
    ]);
  });

  it("answers 400 naming the field for a bad pixel, and counts nothing", async () => {
    await putCaps("camp-f,1h,2");
    const missing = await pixel({ type: "bu", id: "p5", campaign: "camp-f" });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { field: string } }).error.field).toBe("imp");
    const badToken = await pixel({ token: "not-a-token", campaign: "camp-f", imp: "f-1" });
    expect(badToken.status).toBe(400);
    expect(((await badToken.json()) as { error: { field: string } }).error.field).toBe("token");
    expect((await lookup("p5", ["camp-f"])).remaining).toEqual({ "camp-f": 2 });
  });

  it("counts events named by the lookup's token toward the same person, and serves a GIF on request", async () => {
    await putCaps("camp-t,1h,2");
    const { token } = await lookup("p6");
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    // Opaque: neither the token nor the bytes it encodes carry the ID in the clear.
    expect(Buffer.from(token as string, "base64url").toString("latin1")).not.toContain("bu:p6");
    expect(token).not.toContain("bu:p6");
    const gif = await pixel({ token: token as string, campaign: "camp-t", imp: "t-1", format: "gif" });
    expect(gif.status).toBe(200);
    expect(gif.headers.get("content-type")).toBe("image/gif");
    expect(
      Buffer.from(await gif.arrayBuffer())
        .subarray(0, 6)
        .toString(),
    ).toBe("GIF89a");
    await pixel({ token: token as string, campaign: "camp-t", imp: "t-2" });
    expect((await lookup("p6", ["camp-t"])).capped).toEqual(["camp-t"]);
  });

  it("slides the window: impressions older than the window stop counting", async () => {
    await putCaps("camp-w,1h,2\ncamp-l,lifetime,2");
    const t = nowSec();
    // Two impressions just outside the hour (with a bucket of margin, the documented bound): not counted.
    await pixel({ type: "bu", id: "p7", campaign: "camp-w", imp: "w-1", ts: t - 3_600 });
    await pixel({ type: "bu", id: "p7", campaign: "camp-w", imp: "w-2", ts: t - 3_700 });
    expect((await lookup("p7", ["camp-w"])).remaining).toEqual({ "camp-w": 2 });
    // One well inside the hour counts.
    await pixel({ type: "bu", id: "p7", campaign: "camp-w", imp: "w-3", ts: t - 3_000 });
    expect((await lookup("p7", ["camp-w"])).remaining).toEqual({ "camp-w": 1 });
    // Lifetime counts everything, however old (within the 90-day event horizon).
    await pixel({ type: "bu", id: "p7", campaign: "camp-l", imp: "l-1", ts: t - 60 * 86_400 });
    await pixel({ type: "bu", id: "p7", campaign: "camp-l", imp: "l-2", ts: t - 5 });
    expect((await lookup("p7", ["camp-l"])).capped).toContain("camp-l");
  });

  it("applies a changed rule without a restart", async () => {
    await putCaps("camp-r,1h,1");
    await pixel({ type: "bu", id: "p8", campaign: "camp-r", imp: "r-1" });
    expect((await lookup("p8")).capped).toEqual(["camp-r"]);
    await putCaps("camp-r,1h,5");
    expect((await lookup("p8", ["camp-r"])).remaining).toEqual({ "camp-r": 4 });
    expect((await lookup("p8")).capped).toEqual([]);
  });

  it("refuses impressions with 503 while Redis is down, and counts the retry once when it is back", async () => {
    const own = await startRedis();
    const local = await startService({
      REDIS_URL: own.url,
      ADMIN_TOKENS: `${ADMIN}=*`,
      CAP_COUNTERS_CACHE_MS: "0",
    });
    try {
      const url = `${local.base}/v1/events/imp?type=bu&id=p9&campaign=camp-x&imp=x-1`;
      await own.stop(true);
      const refused = await fetch(url);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("1");
      await own.restart();
      await expect
        .poll(async () => (await getJson(`${local.base}/readyz`)).status, { timeout: 5_000 })
        .toBe(200);
      expect((await fetch(url)).status).toBe(204);
      expect((await fetch(url)).status).toBe(204);
      const counters = await local.service.store.readCounters("bu:p9", nowSec());
      expect(counters.get("camp-x|||L")).toBe(1);
      expect((await getJson(`${local.base}/healthz`)).json.events).toEqual({
        counted: 1,
        duplicates: 1,
        rejected: 0,
        refused: 1,
      });
    } finally {
      await local.stop();
      await own.close();
    }
  });
});
