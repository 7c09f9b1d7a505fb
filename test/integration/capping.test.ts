// Frequency capping end to end on a real redis-server: rules in, impressions counted exactly once through
// the pixel (named by the lookup's notice token) and the batch route (named by a key with the `events`
// scope), `capped` and `remaining` at bid time, sliding-window edges, rule changes without a restart; and
// the attacks on the event routes replayed: anonymous batches, forged, expired and replayed tokens, hostile
// campaigns, timestamps and impression ids, events for an ID that opted out.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NoticeTokens } from "../../src/capping/notice-token.ts";
import { NoticeTokensV1 } from "../helpers/notice-token-v1.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { getJson, postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "capping-admin-token-000001";
const EVENTS = "capping-events-key-0000001";
const READER = "capping-caps-reader-000001";
const SECRET = "a-test-secret-of-at-least-32-characters";
let redis: RedisServer;
let client: Redis;
let svc: TestService;
const nowSec = () => Math.floor(Date.now() / 1000);

async function putCaps(csv: string, base = svc.base): Promise<void> {
  const res = await fetch(`${base}/v1/admin/caps`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
    body: `campaign,window,max\n${csv}\n`,
  });
  expect(res.status).toBe(200);
}

function pixel(params: Record<string, string | number>, base = svc.base): Promise<Response> {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  return fetch(`${base}/v1/events/imp?${q}`);
}

/** POST /v1/events with these lines, under the `events` key unless another (or none) is given. */
async function batch(lines: readonly object[], key: string | null = EVENTS, base = svc.base) {
  const res = await fetch(`${base}/v1/events`, {
    method: "POST",
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
    body: lines.map((l) => `${JSON.stringify(l)}\n`).join(""),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? null : JSON.parse(text) };
}

interface Answer {
  capped: string[];
  remaining?: Record<string, number | null>;
  degraded: boolean;
  token?: string;
}

async function lookup(id: string, campaigns?: string[]): Promise<Answer> {
  const { status, json } = await postJson(`${svc.base}/v1/lookup`, {
    ids: [{ type: "bu", id }],
    ...(campaigns === undefined ? {} : { campaigns }),
  });
  expect(status).toBe(200);
  return json as Answer;
}

/** What an exchange does: a lookup at bid time, then the pixel with the token the answer carried. */
async function notice(
  id: string,
  campaign: string,
  imp: string,
  extra: Record<string, string | number> = {},
) {
  const { token } = await lookup(id, [campaign]);
  expect(token).toBeDefined();
  return pixel({ token: token as string, campaign, imp, ...extra });
}

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  svc = await startService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*,${EVENTS}=events,${READER}=caps:read`,
    CAP_COUNTERS_CACHE_MS: "0",
    EVENT_TOKEN_SECRET: SECRET,
  });
});
afterAll(async () => {
  await svc?.stop();
  client?.disconnect();
  await redis?.close();
});

describe("impression events and bid-time caps", () => {
  it("caps a campaign once the person reaches its max, and says what candidates have left", async () => {
    await putCaps("camp-a,1h,3\ncamp-a,24h,5\ncamp-b,lifetime,10");
    expect(await lookup("p1", ["camp-a", "camp-b", "camp-free"])).toMatchObject({
      capped: [],
      remaining: { "camp-a": 3, "camp-b": 10, "camp-free": null },
    });
    for (let i = 0; i < 3; i++) expect((await notice("p1", "camp-a", `a-${i}`)).status).toBe(204);
    const after = await lookup("p1", ["camp-a", "camp-b"]);
    expect(after.capped).toEqual(["camp-a"]);
    expect(after.remaining).toEqual({ "camp-a": 0, "camp-b": 10 });
    expect(after.degraded).toBe(false);
  });

  it("counts an impression id once, however often and however it arrives", async () => {
    await putCaps("camp-d,24h,1000");
    const { token } = await lookup("p2", ["camp-d"]);
    // nurl and burl both fire, and retry: the same token and imp id, counted once.
    for (let i = 0; i < 50; i++) {
      expect((await pixel({ token: token as string, campaign: "camp-d", imp: "same-1" })).status).toBe(204);
    }
    const second = (await lookup("p2", ["camp-d"])).token as string;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? pixel({ token: second, campaign: "camp-d", imp: "same-2" })
          : batch([{ type: "bu", id: "p2", campaign: "camp-d", imp: "same-2" }]),
      ),
    );
    expect((await lookup("p2", ["camp-d"])).remaining).toEqual({ "camp-d": 998 });
  });

  it("counts 200 concurrent events for one person and campaign exactly", async () => {
    await putCaps("camp-c,1h,1000");
    const tokens = await Promise.all(Array.from({ length: 200 }, () => lookup("p3", ["camp-c"])));
    const results = await Promise.all(
      tokens.map(({ token }, i) => pixel({ token: token as string, campaign: "camp-c", imp: `c-${i}` })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(204));
    expect((await lookup("p3", ["camp-c"])).remaining).toEqual({ "camp-c": 800 });
  });

  it("takes NDJSON batches: counts, duplicates, ignored and rejected lines with the field named", async () => {
    await putCaps("camp-e,1h,10");
    const lines = [
      { type: "bu", id: "p4", campaign: "camp-e", imp: "e-1" },
      { type: "bu", id: "p4", campaign: "camp-e", imp: "e-1" },
      { type: "bu", id: "p4", campaign: "camp-e" },
      { type: "bu", id: "p4", campaign: "bad campaign", imp: "e-2" },
      { type: "bu", id: "p4", campaign: "no-rule", imp: "e-3" },
      { type: "email", id: "jane@example.com", campaign: "camp-e", imp: "e-4" },
    ].map((l) => JSON.stringify(l));
    const res = await fetch(`${svc.base}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${EVENTS}` },
      body: `${lines.join("\n")}\nnot json\n`,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { errors: { line: number; field: string }[] };
    expect(body).toMatchObject({ received: 7, counted: 1, duplicates: 1, ignored: 1, rejected: 4 });
    expect(body.errors.map((e) => [e.line, e.field])).toEqual([
      [3, "imp"],
      [4, "campaign"],
      [6, "type"],
      [7, ""],
    ]);
  });

  it("answers 400 naming the field for a bad pixel, and counts nothing", async () => {
    await putCaps("camp-f,1h,2");
    const { token } = await lookup("p5", ["camp-f"]);
    const missing = await pixel({ token: token as string, campaign: "camp-f" });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { field: string } }).error.field).toBe("imp");
    const badToken = await pixel({ token: "not-a-token", campaign: "camp-f", imp: "f-1" });
    expect(badToken.status).toBe(400);
    expect(((await badToken.json()) as { error: { field: string } }).error.field).toBe("token");
    expect((await lookup("p5", ["camp-f"])).remaining).toEqual({ "camp-f": 2 });
  });

  it("counts events named by the lookup's token toward the same person, and serves a GIF on request", async () => {
    await putCaps("camp-t,1h,2");
    const { token } = await lookup("p6", ["camp-t"]);
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
    await notice("p6", "camp-t", "t-2");
    expect((await lookup("p6", ["camp-t"])).capped).toEqual(["camp-t"]);
  });

  it("slides the window: impressions older than the window stop counting", async () => {
    await putCaps("camp-w,1h,2\ncamp-l,lifetime,2");
    const t = nowSec();
    const ev = (campaign: string, imp: string, ts: number) => ({ type: "bu", id: "p7", campaign, imp, ts });
    // Two impressions just outside the hour (with a bucket of margin, the documented bound): not counted,
    // and not even written (past the hour's retention): ignored.
    expect(
      (await batch([ev("camp-w", "w-1", t - 3_660), ev("camp-w", "w-2", t - 3_700)])).json,
    ).toMatchObject({
      counted: 0,
      ignored: 2,
    });
    expect((await lookup("p7", ["camp-w"])).remaining).toEqual({ "camp-w": 2 });
    // One well inside the hour counts.
    await batch([ev("camp-w", "w-3", t - 3_000)]);
    expect((await lookup("p7", ["camp-w"])).remaining).toEqual({ "camp-w": 1 });
    // Lifetime counts everything, however old (within the 90-day event horizon).
    await batch([ev("camp-l", "l-1", t - 60 * 86_400), ev("camp-l", "l-2", t - 5)]);
    expect((await lookup("p7", ["camp-l"])).capped).toContain("camp-l");
  });

  it("applies a changed rule without a restart", async () => {
    await putCaps("camp-r,1h,1");
    await notice("p8", "camp-r", "r-1");
    expect((await lookup("p8")).capped).toEqual(["camp-r"]);
    await putCaps("camp-r,1h,5");
    expect((await lookup("p8", ["camp-r"])).remaining).toEqual({ "camp-r": 4 });
    expect((await lookup("p8")).capped).toEqual([]);
  });

  it("refuses impressions with 503 while Redis is down, and counts the retry once when it is back", async () => {
    const own = await startRedis();
    const local = await startService({
      REDIS_URL: own.url,
      ADMIN_TOKENS: `${ADMIN}=*,${EVENTS}=events`,
      CAP_COUNTERS_CACHE_MS: "0",
    });
    try {
      await putCaps("camp-x,1h,5", local.base);
      const line = [{ type: "bu", id: "p9", campaign: "camp-x", imp: "x-1" }];
      await own.stop(true);
      const res = await fetch(`${local.base}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${EVENTS}` },
        body: `${JSON.stringify(line[0])}\n`,
      });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      await own.restart();
      await expect
        .poll(async () => (await getJson(`${local.base}/readyz`)).status, { timeout: 5_000 })
        .toBe(200);
      expect((await batch(line, EVENTS, local.base)).json).toMatchObject({ counted: 1 });
      expect((await batch(line, EVENTS, local.base)).json).toMatchObject({ duplicates: 1 });
      // A 1 h rule reads minute buckets only: one field, counted once.
      const counters = [...(await local.service.store.readCounters("bu:p9", nowSec()))];
      expect(counters).toEqual([[expect.stringMatching(/^camp-x\|\|\|60\|\d+$/), 1]]);
      expect((await getJson(`${local.base}/healthz`)).json.events).toEqual({
        counted: 1,
        duplicates: 1,
        ignored: 0,
        rejected: 0,
        refused: 1,
      });
    } finally {
      await local.stop();
      await own.close();
    }
  });
});

describe("POST /v1/events is credentialed", () => {
  const line = { type: "bu", id: "k1", campaign: "camp-k", imp: "k-1" };

  it("answers 401 without a key or with an unknown one, 403 with a key lacking `events`, and counts nothing", async () => {
    await putCaps("camp-k,1h,5");
    const none = await batch([line], null);
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe("AUD_ERR_UNAUTHORIZED");
    expect((await batch([line], "not-a-configured-key-0001")).status).toBe(401);
    const reader = await batch([line], READER);
    expect(reader.status).toBe(403);
    expect(reader.json.error.code).toBe("AUD_ERR_FORBIDDEN");
    expect(await client.exists("fc:{bu:k1}", "im:{bu:k1}")).toBe(0);
    expect((await batch([line], EVENTS)).json).toMatchObject({ received: 1, counted: 1 });
    expect((await batch([line], ADMIN)).json).toMatchObject({ received: 1, duplicates: 1 });
    expect((await lookup("k1", ["camp-k"])).remaining).toEqual({ "camp-k": 4 });
  });
});

describe("the pixel takes only a notice token the lookup issued", () => {
  const status = async (res: Response) => ({
    status: res.status,
    ...(res.status === 204 ? {} : ((await res.json()) as { error: { code: string; field: string } }).error),
  });

  it("refuses type and id (400 naming the field), so nobody counts impressions for an ID of their choosing", async () => {
    await putCaps("camp-n,1h,5");
    expect(await status(await pixel({ type: "bu", id: "n1", campaign: "camp-n", imp: "n-1" }))).toMatchObject(
      {
        status: 400,
        code: "AUD_ERR_BAD_FIELD",
        field: "type",
      },
    );
    expect(await status(await pixel({ campaign: "camp-n", imp: "n-1" }))).toMatchObject({
      status: 400,
      code: "AUD_ERR_MISSING_FIELD",
      field: "token",
    });
    expect(await client.exists("fc:{bu:n1}")).toBe(0);
  });

  it("refuses a forged, altered or expired token, and one from another secret", async () => {
    await putCaps("camp-n,1h,5");
    const { token } = await lookup("n2", ["camp-n"]);
    const t = token as string;
    const altered = `${t.slice(0, 30)}${t[30] === "A" ? "B" : "A"}${t.slice(31)}`;
    const other = new NoticeTokens("some-other-secret-of-32-characters-x", 3_600).issue(
      "bu:n2",
      null,
      1,
      nowSec(),
    );
    const expired = new NoticeTokens(SECRET, 3_600).issue("bu:n2", null, 1, nowSec() - 3_601);
    for (const bad of [altered, other, "forged-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]) {
      expect(await status(await pixel({ token: bad, campaign: "camp-n", imp: "n-2" }))).toMatchObject({
        status: 400,
        field: "token",
      });
    }
    expect(await status(await pixel({ token: expired, campaign: "camp-n", imp: "n-2" }))).toMatchObject({
      status: 403,
      code: "AUD_ERR_NOTICE_REFUSED",
      field: "token",
    });
    expect(await client.exists("fc:{bu:n2}", "im:{bu:n2}", "nt:{bu:n2}")).toBe(0);
    // The genuine one still counts.
    expect((await pixel({ token: t, campaign: "camp-n", imp: "n-2" })).status).toBe(204);
    expect((await lookup("n2", ["camp-n"])).remaining).toEqual({ "camp-n": 4 });
  });

  it("counts a version 1 token, issued before an upgrade and still in flight, as it was issued", async () => {
    await putCaps("camp-n,1h,5");
    const t = new NoticeTokensV1(SECRET, 3_600).issue("bu:n9", ["camp-n"], 2, nowSec());
    expect(Buffer.from(t, "base64url")[0]).toBe(1);
    expect((await pixel({ token: t, campaign: "camp-n", imp: "v1-1" })).status).toBe(204);
    expect((await pixel({ token: t, campaign: "camp-n", imp: "v1-2" })).status).toBe(204);
    expect(await status(await pixel({ token: t, campaign: "camp-n", imp: "v1-3" }))).toMatchObject({
      status: 403,
      code: "AUD_ERR_NOTICE_REFUSED",
      field: "token",
    });
    expect((await lookup("n9", ["camp-n"])).remaining).toEqual({ "camp-n": 3 });
    // What the service issues now is version 2.
    const { token } = await lookup("n9", ["camp-n"]);
    expect(Buffer.from(token as string, "base64url")[0]).toBe(2);
  });

  it("counts a token for at most as many impressions as its bid request had: a replay is refused", async () => {
    await putCaps("camp-n,1h,50");
    // The compact form: one impression.
    const { token } = await lookup("n3", ["camp-n"]);
    const t = token as string;
    expect((await pixel({ token: t, campaign: "camp-n", imp: "r-1" })).status).toBe(204);
    expect((await pixel({ token: t, campaign: "camp-n", imp: "r-1" })).status).toBe(204);
    expect(await status(await pixel({ token: t, campaign: "camp-n", imp: "r-2" }))).toMatchObject({
      status: 403,
      code: "AUD_ERR_NOTICE_REFUSED",
      field: "token",
    });
    // A bid request with three imp objects: three impressions.
    const { json } = await postJson(`${svc.base}/v1/lookup?campaigns=camp-n`, {
      id: "req-1",
      imp: [{ id: "1" }, { id: "2" }, { id: "3" }],
      user: { ext: { eids: [] } },
      device: { ifa: "5bcbe4a6-bb33-4f0e-b1de-4a1c0e8d8b41" },
    });
    expect(json.token).toBeDefined();
    const statuses = [];
    for (const imp of ["b-1", "b-2", "b-3", "b-1", "b-4"])
      statuses.push((await pixel({ token: json.token, campaign: "camp-n", imp })).status);
    expect(statuses).toEqual([204, 204, 204, 204, 403]);
    expect((await getJson(`${svc.base}/healthz`)).json.events.rejected).toBeGreaterThanOrEqual(2);
    const ifa = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "ifa", id: "5bcbe4a6-bb33-4f0e-b1de-4a1c0e8d8b41" }],
      campaigns: ["camp-n"],
    });
    expect(ifa.json.remaining).toEqual({ "camp-n": 47 });
    expect((await lookup("n3", ["camp-n"])).remaining).toEqual({ "camp-n": 49 });
  });

  it("refuses an event for a campaign the token was not issued for", async () => {
    await putCaps("camp-n,1h,5\ncamp-o,1h,5");
    const { token } = await lookup("n4", ["camp-n", "camp-free"]);
    expect(
      await status(await pixel({ token: token as string, campaign: "camp-o", imp: "o-1" })),
    ).toMatchObject({
      status: 403,
      code: "AUD_ERR_NOTICE_REFUSED",
      field: "campaign",
    });
    expect(await client.exists("fc:{bu:n4}")).toBe(0);
    // Without candidates, the token binds any campaign (the README says: send candidates to bind).
    const any = (await lookup("n4")).token as string;
    expect((await pixel({ token: any, campaign: "camp-o", imp: "o-1" })).status).toBe(204);
  });
});

describe("counters stay bounded under hostile events", () => {
  it("keeps one person's hash within its rules' bound after 10,000 hostile events, never scanning it", async () => {
    await putCaps("h-1,1h,5\nh-1,7d,50\nh-1,lifetime,500\nh-2,30d,100");
    const t = nowSec();
    let seed = 3;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const lines = Array.from({ length: 10_000 }, (_, i) => ({
      type: "bu",
      id: "victim",
      campaign: ["h-1", "h-2", `rnd-${rand(100_000)}`][rand(3)],
      line_item: `li-${rand(100_000)}`,
      creative: `cr-${rand(100_000)}`,
      imp: `hostile-${i}`,
      ts: t - rand(90 * 86_400 - 60),
    }));
    await client.config("RESETSTAT");
    // Five batches of 2,000: 10,000 lines at once would pass EVENTS_BODY_LIMIT_BYTES (1 MiB).
    const totals = { received: 0, counted: 0, ignored: 0, rejected: 0 };
    for (let b = 0; b < 5; b++) {
      const part = await batch(lines.slice(b * 2_000, (b + 1) * 2_000));
      expect(part.status).toBe(200);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += part.json[k];
    }
    const res = { json: totals };
    expect(res.json.received).toBe(10_000);
    expect(res.json.rejected).toBe(0);
    expect(res.json.counted + res.json.ignored).toBe(10_000);
    const stats = await client.info("commandstats");
    const calls = (cmd: string) =>
      Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, "m").exec(stats)?.[1] ?? 0);
    // No event read the counter hash whole: no HKEYS at all, and HGETALL only for a catalog reload (its 4
    // hashes) that may fall within the batch.
    expect(calls("hkeys")).toBe(0);
    expect(calls("hgetall")).toBeLessThanOrEqual(4);
    expect(calls("evalsha") + calls("eval")).toBe(res.json.counted);
    // Rules are per campaign only: line items and creatives make no field. h-1: lifetime, 61 minute buckets,
    // 169 hour buckets; h-2: 31 day buckets; and a prune mark per (scope, granularity): 3.
    const fields = await client.hkeys("fc:{bu:victim}");
    expect(fields.length).toBeLessThanOrEqual(1 + 61 + 169 + 31 + 3);
    expect(fields.filter((f) => !f.startsWith("h-1|||") && !f.startsWith("h-2|||"))).toEqual([]);
  }, 60_000);
});

describe("opt-out on the event path", () => {
  it("records nothing for an opted-out ID: no counters, no marker, no token; the lookup hands out neither", async () => {
    await putCaps("camp-q,1h,5");
    const { token } = await lookup("x", ["camp-q"]);
    const erase = await fetch(`${svc.base}/v1/admin/users/bu/x`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(erase.status).toBe(200);
    // The token issued before the opt-out: answered like an event that counts toward nothing.
    expect((await pixel({ token: token as string, campaign: "camp-q", imp: "q-1" })).status).toBe(204);
    expect((await batch([{ type: "bu", id: "x", campaign: "camp-q", imp: "q-2" }])).json).toMatchObject({
      counted: 0,
      ignored: 1,
    });
    expect(await client.exists("fc:{bu:x}", "im:{bu:x}", "nt:{bu:x}", "p:{bu:x}")).toBe(0);
    const after = await lookup("x", ["camp-q"]);
    expect(after.remaining).toBeUndefined();
    expect(after.token).toBeUndefined();
    expect(after.capped).toEqual([]);
  });
});

describe("EVENTS_OPEN=true: a closed network's events as before", () => {
  it("takes POST /v1/events without a key and the pixel with type and id", async () => {
    const open = await startService({
      REDIS_URL: redis.url,
      ADMIN_TOKENS: `${ADMIN}=*`,
      CAP_COUNTERS_CACHE_MS: "0",
      EVENTS_OPEN: "true",
    });
    try {
      await putCaps("camp-open,1h,5", open.base);
      const b = await batch([{ type: "bu", id: "o1", campaign: "camp-open", imp: "o-1" }], null, open.base);
      expect(b.status).toBe(200);
      expect(b.json).toMatchObject({ counted: 1 });
      expect(
        (await pixel({ type: "bu", id: "o1", campaign: "camp-open", imp: "o-2" }, open.base)).status,
      ).toBe(204);
      const { json } = await postJson(`${open.base}/v1/lookup`, {
        ids: [{ type: "bu", id: "o1" }],
        campaigns: ["camp-open"],
      });
      expect(json.remaining).toEqual({ "camp-open": 3 });
    } finally {
      await open.stop();
    }
  });
});
