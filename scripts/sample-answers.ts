// Writes openrtb-samples/expected/: each sample's answer from the embedded demo (no REDIS_URL, demo data, every
// other setting as shipped), over HTTP as a bidder gets it. `<name>.json` is the POST /v1/lookup answer and
// `<name>.enrich.json` the POST /v1/enrich answer's body, both for the sample's file sent as it is with
// `x-exchange: demo-exchange`, the exchange the demo data's user.id memberships belong to.
// What it writes is read and checked by hand before it is committed: the test holds the service to these
// files, so a wrong answer written here would be a wrong answer blessed.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config.ts";
import { startHttpServer } from "../src/http/start-server.ts";
import { detectUwsBackend } from "../src/http/uws-server.ts";
import { createLogger } from "../src/logger.ts";
import { createService } from "../src/service.ts";

const SAMPLES = new URL("../openrtb-samples/", import.meta.url);
const EXPECTED = new URL("expected/", SAMPLES);

const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent" });
const service = await createService(config, createLogger(config.logLevel), { backend: detectUwsBackend() });
const server = await startHttpServer(config, service.routes, () => {});
const base = `http://127.0.0.1:${server.port}`;

async function answer(route: string, body: Buffer): Promise<unknown> {
  const res = await fetch(`${base}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-exchange": "demo-exchange" },
    body,
  });
  if (res.status !== 200) throw new Error(`${route} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

mkdirSync(EXPECTED, { recursive: true });
const written: string[] = [];
try {
  for (const file of readdirSync(SAMPLES).filter((f) => f.endsWith(".json"))) {
    const body = readFileSync(new URL(file, SAMPLES));
    const name = file.slice(0, -".json".length);
    for (const [route, out] of [
      ["/v1/lookup", `${name}.json`],
      ["/v1/enrich", `${name}.enrich.json`],
    ] as const) {
      const path = fileURLToPath(new URL(out, EXPECTED));
      writeFileSync(path, `${JSON.stringify(await answer(route, body), null, 2)}\n`);
      written.push(path);
    }
  }
} finally {
  server.close();
  await service.close();
}
// Laid out as Biome lays out the samples, so that `biome check .` passes on what was written.
execFileSync(
  fileURLToPath(new URL("../node_modules/.bin/biome", import.meta.url)),
  ["format", "--write", ...written],
  {
    stdio: "inherit",
  },
);
process.stdout.write(`${written.length} answers written to ${fileURLToPath(EXPECTED)}\n`);
