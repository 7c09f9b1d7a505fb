// `audience loadtest` run as a user runs it: a process of its own, loading a service started here (embedded store,
// demo data).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audience } from "../helpers/cli.ts";
import { freePort } from "../helpers/redis-server.ts";
import { startService, type TestService } from "../helpers/service.ts";

const SAMPLES = fileURLToPath(new URL("../../openrtb-samples/", import.meta.url));
/** The demo dataset's buyeruid of web-banner.json: segments 1001, 1002, 1003. */
const DEMO_BU = "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35";

let svc: TestService;
let dir: string;
beforeAll(async () => {
  svc = await startService();
  dir = mkdtempSync(join(tmpdir(), "audience-loadtest-"));
});
afterAll(async () => {
  await svc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const HEADER = /^ {22} +answers +req\/s +p50 ms +p90 ms +p99 ms +p99\.9 ms +max ms$/m;
const NUM = "(\\d+(?:\\.\\d+)?)";
const latencyRow = (label: string) =>
  new RegExp(`^${label} +(\\d+) +${NUM} +${NUM} +${NUM} +${NUM} +${NUM} +${NUM}$`, "m");
/** A count in the answers table. */
function count(stdout: string, label: string): number {
  const m = stdout.match(new RegExp(`^  ${label} +(\\d+)`, "m"));
  if (m === null) throw new Error(`no '${label}' row in:\n${stdout}`);
  return Number(m[1]);
}
function answered(stdout: string): number {
  const m = stdout.match(/^\d+\.\d s, (\d+) requests sent, (\d+) answered$/m);
  if (m === null) throw new Error(`no summary line in:\n${stdout}`);
  return Number(m[2]);
}

describe("audience loadtest", () => {
  it("loads the service for a second and prints the tables, passes, and writes a self-contained report", async () => {
    const report = join(dir, "flat.html");
    const r = await audience(
      ["loadtest", svc.base, "--duration", "1", "--connections", "2", "--report", report, "--seed", "11"],
      {},
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("  IDs:          random, never seen (no --ids): every user is unknown");
    expect(r.stdout).toMatch(HEADER);
    const row = r.stdout.match(latencyRow("latency from send"));
    expect(row).not.toBeNull();
    const n = answered(r.stdout);
    expect(n).toBeGreaterThan(0);
    expect(Number(row?.[1])).toBe(n);
    // p50 <= p90 <= p99 <= p99.9 <= max
    const ms = (row ?? []).slice(3, 8).map(Number);
    expect([...ms].sort((a, b) => a - b)).toEqual(ms);
    // Random IDs only: every answer is a 2xx without segments.
    expect(count(r.stdout, "2xx")).toBe(n);
    expect(count(r.stdout, "with segments")).toBe(0);
    expect(count(r.stdout, "non-2xx")).toBe(0);
    expect(count(r.stdout, "errors")).toBe(0);
    expect(r.stdout).toContain(`report: ${report}\nPASS: 0 non-2xx answers and 0 errors (--max-errors 0)\n`);
    const html = readFileSync(report, "utf8");
    expect(html.match(/<svg /g)?.length).toBe(3);
    expect(html).not.toContain("<script");
  }, 30_000);

  it("puts the known IDs of --ids in every request, or none with --unknown 1; on a fixed schedule", async () => {
    const bodies = join(dir, "bodies");
    mkdirSync(bodies);
    copyFileSync(join(SAMPLES, "web-banner.json"), join(bodies, "web-banner.json"));
    const ids = join(dir, "ids.csv");
    writeFileSync(ids, `type,id\nbu,${DEMO_BU}\n`);
    const args = (unknown: string) => [
      "loadtest",
      `${svc.base}/v1/lookup`,
      ...["--duration", "1", "--connections", "2", "--rate", "200", "--bodies", bodies, "--ids", ids],
      ...["--unknown", unknown, "--report", join(dir, `rate-${unknown}.html`)],
    ];
    const known = await audience(args("0"), {});
    expect(known.code).toBe(0);
    expect(known.stdout).toContain(
      `  IDs:          1 known from ${ids} (bu 1); 0.0% of requests with random IDs`,
    );
    expect(known.stdout).toMatch(latencyRow("latency from schedule"));
    expect(known.stdout).toMatch(latencyRow("latency from send"));
    expect(known.stdout).toContain("rate: asked 200/s, answered ");
    const n = answered(known.stdout);
    expect(n).toBeGreaterThan(0);
    expect(count(known.stdout, "with segments")).toBe(n);

    const unknown = await audience(args("1"), {});
    expect(unknown.code).toBe(0);
    expect(answered(unknown.stdout)).toBeGreaterThan(0);
    expect(count(unknown.stdout, "with segments")).toBe(0);
  }, 30_000);

  it("exits 1 when the answers are errors beyond --max-errors", async () => {
    const report = join(dir, "nope.html");
    const r = await audience(
      ["loadtest", svc.base, "--duration", "1", "--connections", "2", "--path", "/nope", "--report", report],
      {},
    );
    expect(r.code).toBe(1);
    const n = answered(r.stdout);
    expect(n).toBeGreaterThan(0);
    expect(count(r.stdout, "2xx")).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^  non-2xx +${n} +404 ${n}$`, "m"));
    expect(r.stdout).toContain(`FAIL: ${n} non-2xx answers and 0 errors, more than --max-errors 0\n`);
    expect(existsSync(report)).toBe(true);
  }, 30_000);

  it("refuses bad input with exit code 2, naming the file and line, before sending anything", async () => {
    const ids = join(dir, "bad-ids.csv");
    writeFileSync(ids, "bu,ok\nifa\n");
    const bad = await audience(["loadtest", svc.base, "--ids", ids], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      `${ids}:2: expected 2 fields (type,id), got 1\naudience: ${ids}: 1 malformed line; nothing sent\n`,
    );
    expect(bad.stdout).toBe("");
    const missing = await audience(["loadtest", svc.base, "--ids", join(dir, "none.csv")], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`audience: ${join(dir, "none.csv")}: no such file\n`);
    const port = await freePort();
    const down = await audience(["loadtest", `http://127.0.0.1:${port}`], {});
    expect(down.code).toBe(2);
    expect(down.stderr).toBe(`audience: cannot reach http://127.0.0.1:${port}/v1/lookup: ECONNREFUSED\n`);
    const help = await audience(["loadtest", "--help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--duration S          seconds to run (default 10)");
    expect(help.stdout).toContain(
      "--connections N       connections, each with one request in flight at most (default 32)",
    );
  }, 30_000);
});
