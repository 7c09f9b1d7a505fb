// The Redis password never reaches the start-up log or a configuration error: the real entry point, in its
// own process, against a redis-server that requires the password (an ACL user of its own).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type RedisServer, startRedis } from "../helpers/redis-server.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PASSWORD = "s3cr3t-redis-pa55word";

/** Runs src/main.ts until it logs `until` (then stops it) or exits; its stdout and stderr, and the exit code. */
function runMain(
  env: Record<string, string>,
  until: string | null,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      env: { ...process.env, HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      if (until !== null && stdout.includes(until)) child.kill("SIGTERM");
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

let redis: RedisServer;
beforeAll(async () => {
  // The default user stays open for the helpers; the service logs in as `app`, which needs the password.
  redis = await startRedis(["--user", "app", "on", `>${PASSWORD}`, "~*", "&*", "+@all"]);
});
afterAll(async () => {
  await redis?.close();
});

describe("the Redis password", () => {
  it("is redacted in the start-up configuration line, while the service connects with it", async () => {
    const port = await freePort();
    const url = `redis://app:${PASSWORD}@127.0.0.1:${redis.port}/0`;
    const run = await runMain({ PORT: String(port), REDIS_URL: url, WORKERS: "1" }, "service listening");
    const lines = run.stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l));
    // It did log in: a wrong or missing password would have logged "Redis not reachable" instead.
    expect(lines.some((l) => l.msg === "connected to Redis")).toBe(true);
    const listening = lines.find((l) => l.msg === "audience lookup service listening");
    expect(listening.config.redisUrl).toBe(`redis://app:***@127.0.0.1:${redis.port}/0`);
    expect(run.stdout).not.toContain(PASSWORD);
    expect(run.stderr).not.toContain(PASSWORD);
  }, 30_000);

  it("is not echoed when REDIS_URL is malformed", async () => {
    const run = await runMain({ REDIS_URL: `redis://app:${PASSWORD}@127.0.0.1 6379` }, null);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "invalid configuration:\n  REDIS_URL must be redis://host:port[/db], rediss://host:port[/db] or redis-cluster://host:port[,host:port...], got 'redis://app:***@127.0.0.1 6379'\n",
    );
    expect(run.stdout).not.toContain(PASSWORD);
  }, 30_000);
});
