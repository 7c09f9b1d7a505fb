// Every sample's whole answer, exactly: each file of openrtb-samples/ is posted over HTTP, as it is, to the
// embedded demo and to a service on a real redis-server loaded with the demo data by the `audience` command,
// and both must give the answer in openrtb-samples/expected/ (written by scripts/sample-answers.ts and checked
// by hand against data/ and the privacy rules). A sample without an expected answer fails here, so a new
// sample cannot go untested, nor an expected answer outlive its sample.
//
// Nothing in these answers depends on the clock or on chance, so nothing is left out of the comparison: the
// demo has no cap rules, so no answer carries a notice token (the one field made of time and randomness), and
// the demo memberships that expire do so 30 days or more after they are loaded.
//
// The services run at the settings that ship but for startService's store deadlines (it says why).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_TCF_VENDOR_ID } from "../../src/config.ts";
import { DEMO_DATA_PATH, DEMO_DEALS_PATH, DEMO_TAXONOMY_PATH } from "../../src/service.ts";
import { audience } from "../helpers/cli.ts";
import { startRedis } from "../helpers/redis-server.ts";
import { filesOf, SAMPLES_DIR } from "../helpers/request-files.ts";
import { startService } from "../helpers/service.ts";

const EXPECTED_DIR = new URL("expected/", SAMPLES_DIR);
/** The exchange the demo data's user.id memberships (`xu:demo-exchange`) belong to. */
const EXCHANGE = "demo-exchange";

const samples = filesOf(SAMPLES_DIR);
const expectedName = (sample: string, route: "lookup" | "enrich"): string =>
  route === "lookup" ? sample : sample.replace(/\.json$/, ".enrich.json");

function expectedAnswer(sample: string, route: "lookup" | "enrich"): unknown {
  const file = expectedName(sample, route);
  const url = new URL(file, EXPECTED_DIR);
  expect(existsSync(url), `openrtb-samples/expected/${file} is missing (scripts/sample-answers.ts)`).toBe(
    true,
  );
  return JSON.parse(readFileSync(url, "utf8"));
}

async function post(base: string, route: "lookup" | "enrich", body: Buffer) {
  const res = await fetch(`${base}/v1/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-exchange": EXCHANGE },
    body,
  });
  return { status: res.status, json: (await res.json()) as unknown, headers: res.headers };
}

it("openrtb-samples/expected/ holds a lookup and an enrich answer for every sample, and nothing else", () => {
  expect(samples.length).toBeGreaterThanOrEqual(10);
  const wanted = samples.flatMap(({ name }) => [expectedName(name, "lookup"), expectedName(name, "enrich")]);
  expect(readdirSync(EXPECTED_DIR).sort()).toEqual(wanted.sort());
});

/** A running service: where it answers, and how to stop it with whatever it runs on. */
type Running = { readonly base: string; stop(): Promise<void> };

const backings: [string, () => Promise<Running>][] = [
  // No REDIS_URL: the embedded store, seeded with the demo data, answering as TCF vendor 1001.
  ["the embedded demo", () => startService()],
  [
    "a Redis loaded with the demo data",
    async () => {
      const redis = await startRedis();
      const env = { REDIS_URL: redis.url };
      // In the order an operator would: the taxonomy first, so that no membership names an unknown segment.
      for (const [what, file] of [
        ["taxonomy", DEMO_TAXONOMY_PATH],
        ["deals", DEMO_DEALS_PATH],
        ["memberships", DEMO_DATA_PATH],
      ]) {
        const r = await audience(["ingest", what as string, file as string], env);
        expect(r.stderr, `ingest ${what}`).toBe("");
        expect(r.code, `ingest ${what}`).toBe(0);
      }
      // The consent the demo's TC strings give is to vendor 1001: an operator serving the demo data from
      // Redis says so, as the embedded demo does by itself.
      const svc = await startService({ ...env, TCF_VENDOR_ID: String(DEMO_TCF_VENDOR_ID) });
      return {
        base: svc.base,
        stop: async () => {
          await svc.stop();
          await redis.close();
        },
      };
    },
  ],
];

describe.each(backings)("every sample's whole answer on %s", (_backing, start) => {
  let svc: Running;

  beforeAll(async () => {
    svc = await start();
  });
  afterAll(() => svc?.stop());

  it.each(samples.map((s) => [s.name, s.bytes] as const))("POST /v1/lookup %s", async (name, bytes) => {
    const expected = expectedAnswer(name, "lookup");
    const { status, json } = await post(svc.base, "lookup", bytes);
    expect(status).toBe(200);
    expect(json).toEqual(expected);
  });

  it.each(samples.map((s) => [s.name, s.bytes] as const))("POST /v1/enrich %s", async (name, bytes) => {
    const expected = expectedAnswer(name, "enrich");
    // What was withheld is the lookup's `withheld`: the same gate decides both.
    const { withheld } = expectedAnswer(name, "lookup") as { withheld: string[] };
    const { status, json, headers } = await post(svc.base, "enrich", bytes);
    expect(status).toBe(200);
    expect(json).toEqual(expected);
    expect(headers.get("x-audience-withheld")).toBe(withheld.length === 0 ? null : withheld.join(","));
    expect(headers.get("x-audience-warnings")).toBeNull();
    expect(headers.get("x-audience-degraded")).toBeNull();
  });
});
