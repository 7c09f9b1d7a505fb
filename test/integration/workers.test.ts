// WORKERS=N as a user runs it: the real entry point in its own process, N worker threads sharing one port.
// Connections land on every worker; a change made through one worker shows at once in every worker's cache
// (over Redis pub/sub, not after CACHE_TTL_MS), an impression in every worker's counter cache; SIGTERM stops them all gracefully (exit 0). The embedded
// store runs one worker whatever WORKERS says.
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fresh } from "../helpers/fresh-request.ts";
import { serviceAt } from "../helpers/openapi-check.ts";
import { freePort, type RedisServer, startRedis } from "../helpers/redis-server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ADMIN = "workers-admin-token-000001";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  readonly child: ChildProcess;
  readonly base: string;
  readonly port: number;
  readonly logs: string[];
  readonly exited: Promise<number | null>;
}

async function startMain(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const logs: string[] = [];
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffered = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    logs.push(...lines);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  child.once("exit", serviceAt(base));
  for (let i = 0; i < 300; i++) {
    if ((await fresh(port, "GET", "/readyz").catch(() => ({ status: 0 }))).status === 200) break;
    await sleep(50);
  }
  // The pool logs that it listens once every worker does, which may be after the first one answers.
  for (let i = 0; i < 100 && !logs.some((l) => l.includes("service listening")); i++) await sleep(20);
  return { child, base, port, logs, exited };
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});

describe("WORKERS=2 on Redis", () => {
  let main: Running | null = null;
  afterAll(() => {
    main?.child.kill("SIGKILL");
  });

  it("spreads connections over both workers, keeps their caches coherent, and stops them all on SIGTERM", async () => {
    main = await startMain({ REDIS_URL: redis.url, WORKERS: "2", ADMIN_TOKENS: `${ADMIN}=*` });
    const { port } = main;
    const listening = main.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === "audience lookup service listening");
    expect(listening).toMatchObject({ workers: 2, store: "redis", port });

    const seen = new Set<number>();
    for (let i = 0; i < 60 && seen.size < 2; i++) {
      const { json } = await fresh(port, "GET", "/healthz");
      expect(json.worker.count).toBe(2);
      seen.add(json.worker.index);
    }
    expect([...seen].sort()).toEqual([0, 1]);

    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" };
    const load = (rows: string) =>
      fresh(port, "POST", "/v1/admin/memberships", `type,id,segment\n${rows}\n`, admin);
    /** The segments 16 lookups on 16 new connections answer. */
    const lookups = async (): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < 16; i++) {
        const body = JSON.stringify({ ids: [{ type: "bu", id: "w-user" }] });
        out.push((await fresh(port, "POST", "/v1/lookup", body)).json.segments.join());
      }
      return out;
    };
    /** A /healthz figure of each worker, asking on new connections until both have answered. */
    // biome-ignore lint/suspicious/noExplicitAny: /healthz is read field by field
    const perWorker = async (pick: (health: any) => number): Promise<Map<number, number>> => {
      const out = new Map<number, number>();
      for (let i = 0; i < 60 && out.size < 2; i++) {
        const { json } = await fresh(port, "GET", "/healthz");
        out.set(json.worker.index, pick(json));
      }
      return out;
    };
    /** Cache entries per worker. */
    const cached = () => perWorker((h) => h.cache.entries);
    expect((await load("bu,w-user,1001")).status).toBe(200);
    // Both workers have read the profile and cached it, for CACHE_TTL_MS (30 s).
    expect(await lookups()).toEqual(Array(16).fill("1001"));
    expect(await cached()).toEqual(
      new Map([
        [0, 1],
        [1, 1],
      ]),
    );
    // A load through whichever worker takes it: every worker answers the new profile at once.
    expect((await load("bu,w-user,1002")).status).toBe(200);
    await sleep(100); // the pub/sub message's trip
    expect(await lookups()).toEqual(Array(16).fill("1001,1002"));
    expect((await fresh(port, "DELETE", "/v1/admin/users/bu/w-user", undefined, admin)).status).toBe(200);
    await sleep(100);
    expect(await lookups()).toEqual(Array(16).fill(""));

    // /metrics sums every worker's figures, whichever worker the scrape reaches: 48 lookups in all.
    const lookupsCounted = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        request({ host: "127.0.0.1", port, path: "/metrics", agent: false }, (res) => {
          let t = "";
          res.on("data", (c: Buffer) => {
            t += c.toString();
          });
          res.on("end", () => resolve(t));
        })
          .on("error", reject)
          .end();
      });
      lookupsCounted.add(
        /audience_http_requests_total\{route="\/v1\/lookup",status="200"\} (\d+)/.exec(text)?.[1] ?? "none",
      );
    }
    expect([...lookupsCounted]).toEqual(["48"]);

    // Without EVENT_TOKEN_SECRET the process makes one secret for all its workers: a notice token one worker
    // issued is taken by the other. 16 tokens from lookups on new connections, 16 pixels on new connections:
    // both workers take pixels, so (short of a 2^-16 chance) some tokens cross from one worker to the other.
    const capsCsv = { ...admin, "content-type": "text/csv" };
    expect(
      (await fresh(port, "PUT", "/v1/admin/caps", "campaign,window,max\nw-camp,1h,100\n", capsCsv)).status,
    ).toBe(200);
    const tokens: string[] = [];
    for (let i = 0; i < 200 && tokens.length < 16; i++) {
      const body = JSON.stringify({ ids: [{ type: "bu", id: "w-viewer" }], campaigns: ["w-camp"] });
      const { json } = await fresh(port, "POST", "/v1/lookup", body);
      if (typeof json.token === "string") tokens.push(json.token);
      else await sleep(20); // the cap rules reach each worker's catalog over pub/sub
    }
    expect(tokens).toHaveLength(16);
    const counted = () => perWorker((h) => h.events.counted);
    const before = await counted();
    const statuses = [];
    for (const [i, token] of tokens.entries()) {
      statuses.push(
        (await fresh(port, "GET", `/v1/events/imp?token=${token}&campaign=w-camp&imp=w-${i}`)).status,
      );
    }
    expect(statuses).toEqual(Array(16).fill(204));
    const after = await counted();
    expect((after.get(0) ?? 0) - (before.get(0) ?? 0) + (after.get(1) ?? 0) - (before.get(1) ?? 0)).toBe(16);
    expect((after.get(0) ?? 0) - (before.get(0) ?? 0)).toBeGreaterThan(0);
    expect((after.get(1) ?? 0) - (before.get(1) ?? 0)).toBeGreaterThan(0);

    // An impression recorded through one worker reaches the other's counter cache over pub/sub, long before
    // CAP_COUNTERS_CACHE_MS (30 s): both workers first cache the person's counters (84 left), then one takes
    // an event, and every answer must show 83.
    /** What `remaining` 16 lookups on 16 new connections answer. */
    const remaining = async (): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 16; i++) {
        const body = JSON.stringify({ ids: [{ type: "bu", id: "w-viewer" }], campaigns: ["w-camp"] });
        out.push((await fresh(port, "POST", "/v1/lookup", body)).json.remaining["w-camp"]);
      }
      return out;
    };
    // The 16 pixels above announced the person over pub/sub (coalesced for up to 25 ms): an announcement that
    // lands after a worker cached the counters drops them again. Asked until both hold them, each time exactly.
    let held = new Map<number, number>();
    for (let i = 0; i < 50; i++) {
      expect(await remaining()).toEqual(Array(16).fill(84));
      held = await perWorker((h) => h.counters.entries);
      if (held.get(0) === 1 && held.get(1) === 1) break;
      await sleep(20);
    }
    expect(held).toEqual(
      new Map([
        [0, 1],
        [1, 1],
      ]),
    );
    const event = `${JSON.stringify({ type: "bu", id: "w-viewer", campaign: "w-camp", imp: "w-extra" })}\n`;
    const recorded = await fresh(port, "POST", "/v1/events", event, { authorization: `Bearer ${ADMIN}` });
    expect(recorded.json).toMatchObject({ counted: 1 });
    // The message's trip is asynchronous (and coalesced for up to 25 ms): asked until it has arrived.
    let answers: number[] = [];
    for (let i = 0; i < 50; i++) {
      answers = await remaining();
      if (answers.every((n) => n === 83)) break;
      await sleep(20);
    }
    expect(answers).toEqual(Array(16).fill(83));

    main.child.kill("SIGTERM");
    expect(await main.exited).toBe(0);
    const stopped = main.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "stopped");
    expect(stopped.map((l) => l.worker).sort()).toEqual([0, 1]);
    main = null;
  }, 60_000);
});

describe("WORKERS with the embedded store", () => {
  it("runs one worker without a word when WORKERS is unset", async () => {
    const main = await startMain({ SHUTDOWN_DRAIN_MS: "0" });
    try {
      expect((await fresh(main.port, "GET", "/healthz")).json.worker).toEqual({ index: 0, count: 1 });
      expect(main.logs.filter((l) => l.includes("running 1 worker"))).toEqual([]);
      expect(main.logs.some((l) => l.includes("service listening"))).toBe(true);
    } finally {
      main.child.kill("SIGTERM");
      expect(await main.exited).toBe(0);
    }
  }, 30_000);

  it("runs one worker, saying why", async () => {
    const main = await startMain({ WORKERS: "3", SHUTDOWN_DRAIN_MS: "0" });
    try {
      const { json } = await fresh(main.port, "GET", "/healthz");
      expect(json.worker).toEqual({ index: 0, count: 1 });
      const warned = main.logs.map((l) => JSON.parse(l)).find((l) => l.reason === "the embedded store");
      expect(warned?.msg).toBe("running 1 worker: the embedded store needs a single thread");
    } finally {
      main.child.kill("SIGTERM");
      expect(await main.exited).toBe(0);
    }
  }, 30_000);
});
