// What ships runs: `npm run build`'s output, laid out as the Docker image has it (dist/, data/, openrtb-samples/, bin/,
// no src/), started with plain `node` and no tsx. The other tests run the sources; only this one would see a compiled import that still
// names a .ts file, a worker thread entry that is not the .js one, or data/ not found from dist/.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fresh } from "../helpers/fresh-request.ts";
import { serviceAt } from "../helpers/openapi-check.ts";
import { freePort, type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { startService, type TestService } from "../helpers/service.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SAMPLES = join(ROOT, "openrtb-samples");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The image's layout in a folder of its own, so that the test neither reads nor rewrites the checkout's dist/. It
 * sits inside the checkout (.tmp/ is ignored by git): node finds node_modules and package.json's "type": "module"
 * by walking up from dist/, as it does in the image.
 */
let image: string;

beforeAll(async () => {
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  image = mkdtempSync(join(ROOT, ".tmp", "compiled-"));
  // The package's own build script, into this folder: the same compiler and tsconfig.build.json as `npm start`.
  const dist = join(image, "dist");
  await promisify(execFile)(
    "npm",
    ["run", "--silent", "build", "--", "--outDir", dist, "--tsBuildInfoFile", join(dist, ".tsbuildinfo")],
    { cwd: ROOT },
  );
  cpSync(join(ROOT, "data"), join(image, "data"), { recursive: true });
  cpSync(SAMPLES, join(image, "openrtb-samples"), { recursive: true });
  cpSync(join(ROOT, "bin"), join(image, "bin"), { recursive: true });
}, 180_000);

afterAll(() => {
  if (image !== undefined) rmSync(image, { recursive: true, force: true });
});

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly logs: string[];
  readonly exited: Promise<number | null>;
}

/** `node dist/main.js` with only the environment given (none inherited: no REDIS_URL from the caller's shell). */
async function startCompiled(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const logs: string[] = [];
  const child = spawn(process.execPath, [join(image, "dist", "main.js")], {
    cwd: image,
    env: { PATH: process.env.PATH ?? "", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffered = "";
  const keep = (chunk: Buffer): void => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    logs.push(...lines);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.once("exit", serviceAt(`http://127.0.0.1:${port}`));
  // The pool logs that it listens once every worker does; a single instance once it does.
  for (let i = 0; i < 600 && !logs.some((l) => l.includes("service listening")); i++) {
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  if (!logs.some((l) => l.includes("service listening"))) {
    child.kill("SIGKILL");
    throw new Error(`node dist/main.js did not start:\n${logs.join("\n")}`);
  }
  return { child, port, logs, exited };
}

async function stopCompiled(r: Running): Promise<number | null> {
  r.child.kill("SIGTERM");
  return r.exited;
}

describe("the compiled service (node dist/main.js)", () => {
  let compiled: Running | undefined;
  let source: TestService | undefined;
  afterAll(async () => {
    compiled?.child.kill("SIGKILL");
    await source?.stop();
  });

  it("starts on the embedded store with the demo data and answers every sample as the sources do", async () => {
    compiled = await startCompiled({});
    expect(compiled.logs.some((l) => l.includes("embedded store seeded with demo data"))).toBe(true);
    source = await startService({});

    const banner = await fresh(
      compiled.port,
      "POST",
      "/v1/lookup",
      readFileSync(join(SAMPLES, "web-banner.json"), "utf8"),
    );
    expect(banner.status).toBe(200);
    expect(banner.json.segments).toEqual(["1001", "1002", "1003"]);
    expect(banner.json.matched).toEqual(["bu"]);

    const samples = readdirSync(SAMPLES).filter((n) => n.endsWith(".json"));
    expect(samples.length).toBeGreaterThan(5);
    for (const name of samples) {
      const body = readFileSync(join(SAMPLES, name), "utf8");
      const fromDist = await fresh(compiled.port, "POST", "/v1/lookup", body);
      const res = await fetch(`${source.base}/v1/lookup`, { method: "POST", body });
      expect(fromDist.status, name).toBe(200);
      expect(fromDist, name).toEqual({ status: res.status, json: await res.json() });
      if (name !== "coppa.json") expect(fromDist.json.segments.length, name).toBeGreaterThan(0);
    }

    // The status page is served from the compiled module too.
    const page = await fetch(`http://127.0.0.1:${compiled.port}/status`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);

    expect(await stopCompiled(compiled)).toBe(0);
  }, 60_000);

  it("is loaded by the compiled `audience loadtest`, with the samples shipped beside dist/", async () => {
    compiled = await startCompiled({});
    const report = join(image, "loadtest-report.html");
    const run = await promisify(execFile)(
      process.execPath,
      [
        join(image, "bin", "audience.mjs"),
        ...["loadtest", `http://127.0.0.1:${compiled.port}`, "--duration", "1", "--connections", "2"],
      ],
      { cwd: image, env: { PATH: process.env.PATH ?? "" } },
    );
    expect(run.stderr).toBe("");
    expect(run.stdout).toContain(
      `  bodies:       13 of 13 templates in ${join(image, "openrtb-samples")}/\n`,
    );
    expect(run.stdout).toMatch(/^latency from send +\d+ /m);
    expect(run.stdout).toContain(
      `report: ${report}\nPASS: 0 non-2xx answers and 0 errors (--max-errors 0)\n`,
    );
    expect(readFileSync(report, "utf8")).toContain("<svg ");
    expect(await stopCompiled(compiled)).toBe(0);
  }, 60_000);
});

describe("the compiled service with WORKERS=2 on Redis, loaded by the compiled `audience` command", () => {
  let redis: RedisServer | undefined;
  let compiled: Running | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    compiled?.child.kill("SIGKILL");
    await redis?.close();
  });

  it("starts both worker threads from dist/worker-main.js; every connection gets the loaded segment", async () => {
    const r = redis as RedisServer;
    // bin/audience.mjs without src/ beside it, as in the image: it runs dist/cli.js.
    const csv = join(image, "m.csv");
    writeFileSync(csv, "type,id,segment\nbu,compiled-buyer-1,4242\n");
    const ingest = await promisify(execFile)(
      process.execPath,
      [join(image, "bin", "audience.mjs"), "ingest", "memberships", csv],
      { env: { PATH: process.env.PATH ?? "", REDIS_URL: r.url } },
    );
    expect(ingest.stdout).toMatch(/read 1, loaded 1, rejected 0/);

    compiled = await startCompiled({ REDIS_URL: r.url, WORKERS: "2" });
    const body = JSON.stringify({
      id: "compiled-1",
      imp: [{ id: "1", banner: { w: 300, h: 250 } }],
      user: { buyeruid: "compiled-buyer-1" },
    });
    const seen = new Set<number>();
    for (let i = 0; i < 60 && seen.size < 2; i++) {
      const health = await fresh(compiled.port, "GET", "/healthz");
      expect(health.status).toBe(200);
      expect(health.json.worker.count).toBe(2);
      seen.add(health.json.worker.index);
      const answer = await fresh(compiled.port, "POST", "/v1/lookup", body);
      expect(answer.status).toBe(200);
      expect(answer.json.segments).toEqual(["4242"]);
      expect(answer.json.degraded).toBe(false);
    }
    expect([...seen].sort()).toEqual([0, 1]);

    expect(await stopCompiled(compiled)).toBe(0);
  }, 60_000);
});
