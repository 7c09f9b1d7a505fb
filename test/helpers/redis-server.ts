// Starts a throw-away redis-server on a free port with its own temp directory; never touches any other Redis.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL when `crash`), keeping the directory for a restart on the same port. */
  stop(crash?: boolean): Promise<void>;
  /** Starts it again on the same port (after stop). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void;
  /** Lets a paused process go on (SIGCONT). */
  resume(): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Asks the Redis on `port` one thing over a connection of its own; null when it does not answer. */
export async function askRedis<T>(port: number, ask: (client: Redis) => Promise<T>): Promise<T | null> {
  const client = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return await ask(client);
  } catch {
    return null; // not up (yet)
  } finally {
    client.disconnect();
  }
}

async function waitForPing(port: number, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if ((await askRedis(port, (c) => c.ping())) === "PONG") return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer within ${deadlineMs} ms`);
}

/** Extra redis-server arguments can set e.g. maxmemory; persistence is off. */
/** What every redis-server of the tests runs with: its port on loopback, its own directory and log, no RDB. */
export function localServerArgs(port: number, dir: string, logName: string): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--logfile",
    join(dir, logName),
  ];
}

export async function startRedis(extraArgs: readonly string[] = [], onPort?: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "audience-redis-"));
  const port = onPort ?? (await freePort());
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    const args = [
      ...localServerArgs(port, dir, "redis.log"),
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      ...extraArgs,
    ];
    const proc = spawn("redis-server", args, { stdio: "ignore" });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      proc.once("error", (err) =>
        reject(
          new Error(`cannot start redis-server (is the redis-server package installed?): ${err.message}`),
        ),
      );
      proc.once("spawn", () => resolve());
    });
    await waitForPing(port, proc, 10_000);
  };

  const stop = async (crash = false): Promise<void> => {
    const proc = child;
    if (proc === null || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once("exit", () => resolve());
      proc.kill(crash ? "SIGKILL" : "SIGTERM");
    });
    child = null;
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    restart: launch,
    pause: () => {
      (child as ChildProcess | null)?.kill("SIGSTOP");
    },
    resume: () => {
      (child as ChildProcess | null)?.kill("SIGCONT");
    },
    close: async () => {
      (child as ChildProcess | null)?.kill("SIGCONT");
      await stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
