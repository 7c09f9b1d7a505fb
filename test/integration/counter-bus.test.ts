// Counters cached as long as profiles, kept fresh across instances: two services on one real redis-server, at
// the CAP_COUNTERS_CACHE_MS that ships. Impressions recorded through one reach the other's counter cache over
// pub/sub (not after the TTL); a burst of them becomes a few coalesced messages naming every person; and a
// subscriber that was disconnected empties its counter cache once it is back, so a change made while it was
// away is not served stale.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COALESCE_MS } from "../../src/capping/counter-changes.ts";
import { CONFIG_SPEC } from "../../src/config.ts";
import type { CounterFigures } from "../../src/metrics.ts";
import { COUNTERS_CHANNEL } from "../../src/profiles/invalidation-bus.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { getJson, postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "counter-bus-admin-token-01";
const EVENTS = "counter-bus-events-key-001";
const SECRET = "a-counter-bus-secret-of-32-characters";
/** Far below the shipping CAP_COUNTERS_CACHE_MS: an answer that changes within it came over the bus. */
const BUS_WAIT_MS = 3_000;

let redis: RedisServer;
let client: Redis;
let a: TestService;
let b: TestService;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  // CAP_COUNTERS_CACHE_MS is left unset: both run at the default that ships.
  const env = {
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*,${EVENTS}=events`,
    EVENT_TOKEN_SECRET: SECRET,
  };
  a = await startService(env);
  b = await startService(env);
  await putCaps("bus-a,1h,3\nbus-b,24h,2\nbus-c,1h,5\nbus-r,1h,1");
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  client?.disconnect();
  await redis?.close();
});

async function putCaps(csv: string): Promise<void> {
  const res = await fetch(`${a.base}/v1/admin/caps`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
    body: `campaign,window,max\n${csv}\n`,
  });
  expect(res.status).toBe(200);
}

interface Answer {
  capped: string[];
  remaining?: Record<string, number | null>;
  token?: string;
}

async function lookup(svc: TestService, id: string, campaigns: string[]): Promise<Answer> {
  const { status, json } = await postJson(`${svc.base}/v1/lookup`, { ids: [{ type: "bu", id }], campaigns });
  expect(status).toBe(200);
  return json as Answer;
}

/** What a cap answer says, without the token (new each time). */
const caps = async (svc: TestService, id: string, campaigns: string[]) => {
  const { capped, remaining } = await lookup(svc, id, campaigns);
  return { capped, remaining };
};

async function batch(base: string, lines: readonly object[]) {
  const res = await fetch(`${base}/v1/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${EVENTS}` },
    body: lines.map((l) => `${JSON.stringify(l)}\n`).join(""),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { received: number; counted: number };
}

const figures = async (svc: TestService): Promise<CounterFigures> =>
  (await getJson(`${svc.base}/healthz`)).json.counters as CounterFigures;

describe("counters cached at the shipping default, invalidated over the bus", () => {
  it("ships a counter cache as long as the profile cache's", () => {
    expect(CONFIG_SPEC.capCountersCacheMs.defaultText).toBe("30000");
    expect(CONFIG_SPEC.capCountersCacheMs.defaultText).toBe(CONFIG_SPEC.cacheTtlMs.defaultText);
  });

  it("caps on instance B as soon as impressions recorded through instance A reach the cap", async () => {
    // The rules reach B's catalog over the bus too (asynchronously): until then B answers without them.
    await expect
      .poll(() => caps(b, "p1", ["bus-a", "bus-b"]), { timeout: BUS_WAIT_MS, interval: 20 })
      .toEqual({ capped: [], remaining: { "bus-a": 3, "bus-b": 2 } });
    // B now holds p1's counters: the next lookup is answered from its cache, without a store read.
    const before = await figures(b);
    expect(await caps(b, "p1", ["bus-a", "bus-b"])).toEqual({
      capped: [],
      remaining: { "bus-a": 3, "bus-b": 2 },
    });
    const cached = await figures(b);
    expect(cached.hits - before.hits).toBe(1);
    expect(cached.reads - before.reads).toBe(0);

    const announcedBefore = (await figures(a)).announced;
    // Through A: three pixels with notice tokens A issued (one impression each), and a batch of two.
    for (let i = 0; i < 3; i++) {
      const { token } = await lookup(a, "p1", ["bus-a"]);
      const q = new URLSearchParams({ token: token as string, campaign: "bus-a", imp: `a-${i}` });
      expect((await fetch(`${a.base}/v1/events/imp?${q}`)).status).toBe(204);
    }
    const counted = await batch(a.base, [
      { type: "bu", id: "p1", campaign: "bus-b", imp: "b-1" },
      { type: "bu", id: "p1", campaign: "bus-b", imp: "b-2" },
    ]);
    expect(counted).toMatchObject({ received: 2, counted: 2 });

    // Pub/sub is asynchronous (and A coalesces its messages for up to COALESCE_MS): B's cache is dropped
    // a few milliseconds after the events were acknowledged, not at once, so B is asked until it answers.
    // Within BUS_WAIT_MS, a tenth of the cache TTL, only the message can have dropped B's entry.
    await expect
      .poll(() => caps(b, "p1", ["bus-a", "bus-b"]), { timeout: BUS_WAIT_MS, interval: 10 })
      .toEqual({ capped: ["bus-a", "bus-b"], remaining: { "bus-a": 0, "bus-b": 0 } });
    const after = await figures(b);
    const sent = await figures(a);
    const announced = sent.announced - announcedBefore;
    expect(announced).toBeGreaterThanOrEqual(1);
    expect(sent.announceFailed).toBe(0);
    // B read p1's counters from the store again only after a message dropped them: at least once, and at most
    // once per message A sent meanwhile (the five events may have fallen into several intervals).
    expect(after.reads - cached.reads).toBeGreaterThanOrEqual(1);
    expect(after.reads - cached.reads).toBeLessThanOrEqual(announced);
    expect(after.clears).toBe(0);
  });

  it("coalesces a burst of events for distinct people into far fewer messages, naming every person once", async () => {
    const sub = new Redis(redis.url);
    const messages: string[][] = [];
    sub.on("message", (channel: string, text: string) => {
      if (channel !== COUNTERS_CHANNEL) return;
      const msg = JSON.parse(text) as { t: string; keys: string[] };
      expect(msg.t).toBe("counters");
      // The previous test's last announcement may still be on its way: only the burst's people are counted.
      if (msg.keys.some((k) => k.startsWith("bu:burst-"))) messages.push(msg.keys);
    });
    await sub.subscribe(COUNTERS_CHANNEL);
    try {
      const N = 600;
      const people = Array.from({ length: N }, (_, i) => `burst-${i}`);
      const started = performance.now();
      // Six batches at once, 100 people each: as an exchange's notices arrive, many in flight.
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, k) =>
          batch(
            a.base,
            people
              .slice(k * 100, (k + 1) * 100)
              .map((id, i) => ({ type: "bu", id, campaign: "bus-c", imp: `c-${k}-${i}` })),
          ),
        ),
      );
      expect(results.reduce((n, r) => n + r.counted, 0)).toBe(N);
      await expect
        .poll(() => messages.reduce((n, m) => n + m.length, 0), { timeout: BUS_WAIT_MS, interval: 10 })
        .toBe(N);
      const elapsedMs = performance.now() - started;
      const named = messages.flat();
      expect(named.length).toBe(N);
      expect(new Set(named)).toEqual(new Set(people.map((id) => `bu:${id}`)));
      // At most one message per COALESCE_MS while the burst lasted (a message goes sooner only for 1,000
      // people waiting), so far fewer than one per event.
      expect(messages.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / COALESCE_MS) + 1);
      expect(messages.length).toBeLessThanOrEqual(N / 5);
    } finally {
      sub.disconnect();
    }
  });

  it("empties B's counter cache when its subscriber is back, so a change made while it was away is seen", async () => {
    await expect
      .poll(() => caps(b, "p3", ["bus-r"]), { timeout: BUS_WAIT_MS, interval: 20 })
      .toEqual({ capped: [], remaining: { "bus-r": 1 } });
    const before = await figures(b);
    expect(before.clears).toBe(0);

    // Keep the subscribers out once disconnected: Redis refuses every connection past the current ones less
    // the subscribers' (ioredis reconnects within milliseconds otherwise, and the change below must fall
    // in the gap). The other connections of A, B and this test stay up.
    const maxclients = (await client.config("GET", "maxclients")) as string[];
    const all = ((await client.client("LIST")) as string).trim().split("\n").length;
    const subscribers = ((await client.call("CLIENT", "LIST", "TYPE", "pubsub")) as string)
      .trim()
      .split("\n").length;
    expect(subscribers).toBe(2);
    await client.config("SET", "maxclients", String(all - subscribers));
    try {
      expect(await client.client("KILL", "TYPE", "pubsub")).toBe(2);
      expect(await client.pubsub("NUMSUB", COUNTERS_CHANNEL)).toEqual([COUNTERS_CHANNEL, 0]);

      // Recorded through A while nobody listens: A's message is lost.
      expect(await batch(a.base, [{ type: "bu", id: "p3", campaign: "bus-r", imp: "r-1" }])).toMatchObject({
        counted: 1,
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(await client.pubsub("NUMSUB", COUNTERS_CHANNEL)).toEqual([COUNTERS_CHANNEL, 0]);
      // B still serves what it cached: nothing told it otherwise.
      expect(await caps(b, "p3", ["bus-r"])).toEqual({ capped: [], remaining: { "bus-r": 1 } });
    } finally {
      await client.config("SET", "maxclients", maxclients[1] as string);
    }

    // ioredis reconnects on its own back-off (at most 1 s between attempts) and subscribes again; then B
    // drops every cached counter and reads p3's again.
    await expect
      .poll(() => caps(b, "p3", ["bus-r"]), { timeout: BUS_WAIT_MS, interval: 20 })
      .toEqual({ capped: ["bus-r"], remaining: { "bus-r": 0 } });
    expect((await figures(b)).clears).toBe(1);
    expect(await client.pubsub("NUMSUB", COUNTERS_CHANNEL)).toEqual([COUNTERS_CHANNEL, 2]);
  });
});
