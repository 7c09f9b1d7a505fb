// `npm run bench -- fault`: the lookup under autocannon load while its Redis is paused (SIGSTOP), then stopped
// and restarted; meanwhile a probe samples answers (status, latency, degraded) and a pixel caller records
// impressions with notice tokens fetched before the load, retrying refused ones. Prints, per phase, the 5xx
// count, latencies against the deadline, the degraded share, how long recovery took, and whether every
// impression was counted exactly once; writes loadtest/FAULT-RESULTS.md.

import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { MAX_TOKEN_USES } from "../src/capping/notice-token.ts";
import { freePort, type RedisServer, startRedis } from "../test/helpers/redis-server.ts";
import { buildPool, loadTemplates } from "./bodies.ts";
import { postRequests, RequestFeed, runLoad } from "./cannon.ts";
import { SERVICE_ENTRY, sleep, startServer } from "./children.ts";
import { alignedTable, machineLines } from "./report.ts";
import { seedUsers } from "./seed.ts";

const USERS = 100_000;
const CONNECTIONS = 32;
const BUDGET_MS = 15;
/** The timeline, in ms from the start of the load. */
const PAUSE_AT = 3_000;
const RESUME_AT = 6_000;
const STOP_AT = 9_000;
const RESTART_AT = 12_000;
const END_AT = 16_000;
const ADMIN = "fault-bench-admin-token-01";
/** The person and the campaign of the pixel caller's impressions. */
const PIXEL_PERSON = "fault-bench-person";
const PIXEL_CAMPAIGN = "fault-camp";
/**
 * Notice tokens fetched before the load, each from a bid request with MAX_TOKEN_USES imp objects and so good
 * for as many impressions: 4,096 in all, about four times what the pixel caller sends in a run. (One person
 * holds at most 1,024 tokens in use: a run's 1,000 or so one-impression tokens would come close to it, and a
 * faster machine pass it.)
 */
const PIXEL_TOKENS = 256;

interface Probe {
  readonly t: number;
  readonly status: number;
  readonly ms: number;
  readonly degraded: boolean;
}

const PHASES: [string, number, number][] = [
  ["normal", 0, PAUSE_AT],
  ["Redis paused (SIGSTOP)", PAUSE_AT, RESUME_AT],
  ["after resume", RESUME_AT, STOP_AT],
  ["Redis stopped", STOP_AT, RESTART_AT],
  ["after restart", RESTART_AT, END_AT],
];

export async function runFaultBench(
  root: string,
  log: (line: string) => void,
  uwsDetail: string,
): Promise<number> {
  const redis: RedisServer = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    await seedUsers(redis.url, USERS);
    const port = await freePort();
    server = await startServer({
      name: "lookup service",
      cwd: root,
      script: SERVICE_ENTRY,
      env: {
        REDIS_URL: redis.url,
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        CACHE_TTL_MS: "0",
        LOOKUP_BUDGET_MS: String(BUDGET_MS),
        CAP_COUNTERS_CACHE_MS: "0",
        ADMIN_TOKENS: `${ADMIN}=*`,
      },
      port,
      readyPath: "/readyz",
    });
    const base = server.baseUrl;
    const caps = await fetch(`${base}/v1/admin/caps`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
      body: "campaign,window,max\nfault-camp,lifetime,1000000\n",
    });
    if (caps.status !== 200) throw new Error(`PUT /v1/admin/caps answered ${caps.status}`);
    await sleep(300);
    const tokens = await fetchPixelTokens(base);

    const pool = buildPool(loadTemplates(join(root, "openrtb-samples")), {
      size: 20_000,
      knownUsers: USERS,
      users: USERS,
      unknownUsers: USERS,
      unknownShare: 0.1,
      seed: 7,
    });
    const feed = new RequestFeed(
      postRequests(
        base,
        "/v1/lookup",
        pool.map((b) => b.bytes),
      ),
    );
    log(
      `fault: ${USERS.toLocaleString("en-US")} users seeded; load: ${CONNECTIONS} connections, no cache (every lookup reads Redis), LOOKUP_BUDGET_MS=${BUDGET_MS}; ${tokens.length} notice tokens fetched for the pixel caller`,
    );

    const started = performance.now();
    const now = (): number => performance.now() - started;
    const probes: Probe[] = [];
    const probeLoop = async (): Promise<void> => {
      let i = 0;
      while (now() < END_AT) {
        const body = (pool[i++ % pool.length] as { bytes: Buffer }).bytes;
        const t0 = now();
        let status = -1;
        let degraded = false;
        try {
          const r = await fetch(`${base}/v1/lookup`, { method: "POST", body });
          status = r.status;
          degraded = ((await r.json()) as { degraded?: boolean }).degraded === true;
        } catch {
          // a connection error: status -1
        }
        probes.push({ t: t0, status, ms: now() - t0, degraded });
        await sleep(5);
      }
    };
    // The pixel caller: a new impression every few ms, impression n with token n / MAX_TOKEN_USES (so no
    // token is asked for more impressions than its bid request had); a refused one (503) is retried with the
    // same token until stored, and every tenth acknowledged one is sent again (a duplicate notice) to show it
    // is not counted twice.
    const acked = new Set<string>();
    let refused = 0;
    let duplicates = 0;
    let made = 0;
    const pixelLoop = async (): Promise<void> => {
      const retry: { imp: string; token: string }[] = [];
      const fresh = (): { imp: string; token: string } | null => {
        const token = tokens[Math.floor(made / MAX_TOKEN_USES)];
        if (now() >= END_AT || token === undefined) return null;
        return { imp: `fault-imp-${made++}`, token };
      };
      while (now() < END_AT + 3_000 && (now() < END_AT || retry.length > 0)) {
        const next = retry.shift() ?? fresh();
        if (next === null) {
          // The tokens ran out before the end of the load: only retries are left to send.
          await sleep(25);
          continue;
        }
        const { imp, token } = next;
        const q = new URLSearchParams({ token, campaign: PIXEL_CAMPAIGN, imp });
        let status = -1;
        try {
          status = (await fetch(`${base}/v1/events/imp?${q}`)).status;
        } catch {
          // refused by the network: retried like a 503
        }
        if (status === 204) {
          acked.add(imp);
          if (acked.size % 10 === 0) {
            duplicates++;
            await fetch(`${base}/v1/events/imp?${q}`).catch(() => undefined);
          }
        } else {
          refused++;
          retry.push(next);
          await sleep(25);
        }
        await sleep(2);
      }
    };
    const faults = (async () => {
      await sleep(PAUSE_AT - now());
      redis.pause();
      await sleep(RESUME_AT - now());
      redis.resume();
      await sleep(STOP_AT - now());
      await redis.stop();
      await sleep(RESTART_AT - now());
      await redis.restart();
    })();
    const load = runLoad({ url: base, feed, connections: CONNECTIONS, durationS: END_AT / 1000 });
    const [stats] = await Promise.all([load, probeLoop(), pixelLoop(), faults]);
    const cannon = stats.summary();

    const check = await fetch(`${base}/v1/lookup`, {
      method: "POST",
      body: JSON.stringify({ ids: [{ type: "bu", id: PIXEL_PERSON }], campaigns: [PIXEL_CAMPAIGN] }),
    });
    const answer = (await check.json()) as { remaining?: Record<string, number>; degraded?: boolean };
    const counted = 1_000_000 - (answer.remaining?.[PIXEL_CAMPAIGN] ?? Number.NaN);
    const tokensUsed = Math.ceil(made / MAX_TOKEN_USES);

    const recovery = (from: number): number | null => {
      // The first moment after `from` from which 20 probe answers in a row are whole again (a deadline
      // missed now and then under this load is not the fault).
      const after = probes.filter((p) => p.t >= from);
      for (let i = 0; i + RUN <= after.length; i++) {
        if (after.slice(i, i + RUN).every((p) => !p.degraded && p.status === 200)) {
          return (after[i] as Probe).t - from;
        }
      }
      return null;
    };
    const rows = PHASES.map(([name, from, to]) => {
      const w = probes.filter((p) => p.t >= from && p.t < to);
      const ms = w.map((p) => p.ms).sort((a, b) => a - b);
      return {
        name,
        n: w.length,
        fivexx: w.filter((p) => p.status >= 500 || p.status < 0).length,
        degraded: w.length === 0 ? 0 : w.filter((p) => p.degraded).length / w.length,
        p99: ms[Math.floor(ms.length * 0.99)] ?? 0,
        max: ms[ms.length - 1] ?? 0,
      };
    });
    const fivexx = [...cannon.statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    const lines = [
      `Machine: ${machineLines(uwsDetail).join("; ")}`,
      `Load: autocannon, ${CONNECTIONS} connections for ${END_AT / 1000} s, no cache (every lookup reads Redis), ${USERS.toLocaleString("en-US")} users; \`LOOKUP_BUDGET_MS=${BUDGET_MS}\`, breaker, command timeout and \`WORKERS\` (${availableParallelism()}, one per core) at their defaults`,
      `Timeline: Redis paused (SIGSTOP) at ${PAUSE_AT / 1000} s, resumed at ${RESUME_AT / 1000} s; stopped at ${STOP_AT / 1000} s, restarted at ${RESTART_AT / 1000} s (with its AOF)`,
      `autocannon: ${Math.round(cannon.rps).toLocaleString("en-US")} req/s, p50 ${cannon.p50.toFixed(2)} ms, p99 ${cannon.p99.toFixed(2)} ms, statuses ${[...cannon.statuses].map(([s, c]) => `${s}: ${c.toLocaleString("en-US")}`).join(", ")}, 5xx ${fivexx}, connection errors ${cannon.errors}, timeouts ${cannon.timeouts}`,
      "",
      `Probe: one lookup at a time besides the load, its latency and \`degraded\` recorded; bodies without an ID the privacy gate lets through (COPPA) need no store and are never degraded, which is why a fault phase stays below 100%`,
      "",
      ...alignedTable(
        ["phase", "probe answers", "5xx or errors", "degraded", "p99 ms", "max ms"],
        rows.map((r) => [
          r.name,
          String(r.n),
          String(r.fivexx),
          `${(r.degraded * 100).toFixed(0)}%`,
          r.p99.toFixed(1),
          r.max.toFixed(1),
        ]),
      ).split("\n"),
      "",
      `Recovery (${RUN} probe answers in a row whole again): ${fmt(recovery(RESUME_AT))} after the resume, ${fmt(recovery(RESTART_AT))} after the restart (target: within 2 s of Redis being back)`,
      `Impressions: ${acked.size.toLocaleString("en-US")} acknowledged (204), each with a notice token (${tokensUsed} of the ${PIXEL_TOKENS} fetched before the load, ${MAX_TOKEN_USES} impressions each${made >= PIXEL_TOKENS * MAX_TOKEN_USES ? "; they ran out before the end of the load" : ""}), ${refused.toLocaleString("en-US")} refusals (503 or no connection) retried until stored, ${duplicates} duplicate notices sent; counted by the service: ${counted.toLocaleString("en-US")} — ${counted === acked.size ? "exact" : "NOT EXACT"}`,
    ];
    log("");
    for (const l of lines) log(l.replaceAll("`", ""));
    writeFileSync(
      join(root, "loadtest", "FAULT-RESULTS.md"),
      `# Fault test results\n\nDate: ${new Date().toISOString()}. Written by \`npm run bench -- fault\`; overwritten on each run.\n\n${lines.map((l) => (l === "" || l.startsWith("|") ? l : `- ${l}`)).join("\n")}\n`,
    );
    log("\nwrote loadtest/FAULT-RESULTS.md");
    return fivexx === 0 && counted === acked.size ? 0 : 1;
  } finally {
    redis.resume();
    await server?.stop();
    await redis.close();
  }
}

/**
 * PIXEL_TOKENS notice tokens for PIXEL_PERSON, as a bidder gets them: from bid requests naming the person
 * (user.buyeruid) with MAX_TOKEN_USES imp objects, and PIXEL_CAMPAIGN as the candidate (`?campaigns=`).
 * Throws unless every answer carries a token of its own and the campaign's `remaining`.
 */
async function fetchPixelTokens(base: string): Promise<string[]> {
  const imp = Array.from({ length: MAX_TOKEN_USES }, (_, k) => ({ id: String(k + 1) }));
  const tokens = new Set<string>();
  for (let i = 0; i < PIXEL_TOKENS; i++) {
    const r = await fetch(`${base}/v1/lookup?campaigns=${PIXEL_CAMPAIGN}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: `fault-bid-${i}`, imp, user: { buyeruid: PIXEL_PERSON } }),
      signal: AbortSignal.timeout(5_000),
    });
    const a = (await r.json()) as { token?: string; remaining?: Record<string, number | null> };
    if (
      r.status !== 200 ||
      typeof a.token !== "string" ||
      tokens.has(a.token) ||
      !(PIXEL_CAMPAIGN in (a.remaining ?? {}))
    )
      throw new Error(`lookup for a notice token answered ${r.status} ${JSON.stringify(a).slice(0, 300)}`);
    tokens.add(a.token);
  }
  return [...tokens];
}

/** Whole answers in a row that count as recovered. */
const RUN = 20;
const fmt = (ms: number | null): string => (ms === null ? "never" : `${(ms / 1000).toFixed(2)} s`);
