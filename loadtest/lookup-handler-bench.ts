// Micro-benchmark: the /v1/lookup route handler as it ships (metrics wrapper, admission, the handler), called
// directly with the openrtb-samples bodies on the embedded demo data, every profile cached: what a cache-hit
// lookup costs in our own code, without HTTP. For A/B of one change: run it on each side, several times, and
// compare the medians (a shared machine drifts; the rounds spread says by how much).
//   npx tsx loadtest/lookup-handler-bench.ts        (ROUNDS=41, PER_ROUND_MS=50; CAMPAIGNS=c1,c2 adds caps)
import { readdirSync, readFileSync } from "node:fs";
import { loadConfig } from "../src/config.ts";
import type { HttpAnswer, HttpRequestData } from "../src/http/http-types.ts";
import { createLogger } from "../src/logger.ts";
import { createService } from "../src/service.ts";
import { nsPerItem, quantile } from "./micro-timer.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 41);
const PER_ROUND_MS = Number(process.env.PER_ROUND_MS ?? 50);
const CAMPAIGNS = process.env.CAMPAIGNS ?? "";

const dir = new URL("../openrtb-samples/", import.meta.url);
const bodies = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => Buffer.from(JSON.stringify(JSON.parse(readFileSync(new URL(f, dir), "utf8")))));

const config = loadConfig({ LOG_LEVEL: "error" });
const service = await createService(config, createLogger("error"), {
  backend: { name: "uWebSockets.js", native: true, detail: "not listening: handler called directly" },
});
if (CAMPAIGNS !== "") {
  // The load test's rules for (e): 1 h, 24 h and lifetime windows per campaign.
  await service.data.putCapRules(
    CAMPAIGNS.split(",").map((campaign) => ({
      campaign,
      lineItem: null,
      creative: null,
      windows: [
        { windowSec: 3_600, max: 3 },
        { windowSec: 86_400, max: 10 },
        { windowSec: null, max: 50 },
      ],
    })),
  );
  await service.catalog.reload();
}
const route = service.routes.find((r) => r.method === "POST" && r.path === "/v1/lookup");
if (route === undefined) throw new Error("no POST /v1/lookup route");
const requests: HttpRequestData[] = bodies.map((body) => ({
  method: "POST",
  path: "/v1/lookup",
  params: [],
  query: CAMPAIGNS === "" ? "" : `campaigns=${CAMPAIGNS}`,
  exchange: "",
  accept: "",
  contentType: "application/json",
  contentEncoding: "",
  authorization: "",
  body,
  stream: null,
}));

let sink = 0;
let answered = 0;
async function call(req: HttpRequestData): Promise<HttpAnswer> {
  const a = route?.handler(req) as HttpAnswer | Promise<HttpAnswer>;
  return a instanceof Promise ? await a : a;
}
// Warm: every profile into the cache, every answer checked once.
for (let i = 0; i < 3; i++)
  for (const r of requests) {
    const a = await call(r);
    if (a.status !== 200) throw new Error(`answer ${a.status}: ${String(a.body)}`);
  }

const perRound: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  perRound.push(
    nsPerItem(PER_ROUND_MS, () => {
      for (const r of requests) {
        const a = route.handler(r);
        // Every profile is cached: an answer that waits would be measuring the store, not this code.
        if (a instanceof Promise) throw new Error("a cached lookup waited");
        sink += a.body.length;
        answered++;
      }
      return requests.length;
    }),
  );
}
const q = (f: number): string => quantile(perRound, f).toFixed(0);
console.log(
  `lookup handler, cache hits, ${bodies.length} bodies${CAMPAIGNS === "" ? "" : `, campaigns=${CAMPAIGNS}`}: ` +
    `${q(0.5)} ns per lookup (median of ${ROUNDS} rounds; fastest ${q(0)}, quartiles ${q(0.25)}-${q(0.75)}), ` +
    `answers of ${(sink / answered).toFixed(0)} bytes on average`,
);
await service.close();
