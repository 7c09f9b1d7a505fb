// A real local Redis Cluster for the tests: 3 masters with 1 replica each, redis-server processes on free
// ports with throw-away directories, joined with `redis-cli --cluster create`. Stopped and removed by close().
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { askRedis, freePort } from "./redis-server.ts";

export interface RedisCluster {
  readonly nodes: readonly { host: string; port: number }[];
  /** REDIS_CLUSTER_NODES for the service. */
  readonly env: string;
  /** Kills one master (SIGKILL): its replica is promoted after cluster-node-timeout. Returns its port. */
  killMaster(): Promise<number>;
  close(): Promise<void>;
}

const NODE_TIMEOUT_MS = 1_000;

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`))
        : resolve(stdout),
    );
  });
}

async function clusterInfo(port: number): Promise<string> {
  return (await askRedis(port, async (c) => (await c.cluster("INFO")) as string)) ?? "";
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "audience-cluster-"));
  const count = masters * 2;
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const procs = new Map<number, ChildProcess>();
  for (const port of ports) {
    const proc = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        String(NODE_TIMEOUT_MS),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfilename",
        `appendonly-${port}.aof`,
        "--appenddirname",
        `aof-${port}`,
        "--logfile",
        join(dir, `redis-${port}.log`),
      ],
      { stdio: "ignore" },
    );
    procs.set(port, proc);
  }
  const close = async (): Promise<void> => {
    await Promise.all(
      [...procs.values()].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once("exit", () => resolve());
            p.kill("SIGKILL");
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      for (let i = 0; i < 200 && (await clusterInfo(port)) === ""; i++)
        await new Promise((r) => setTimeout(r, 25));
    }
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    ]);
    // Ready when every node sees every slot served.
    for (const port of ports) {
      let ok = false;
      for (let i = 0; i < 400 && !ok; i++) {
        ok = /cluster_state:ok/.test(await clusterInfo(port));
        if (!ok) await new Promise((r) => setTimeout(r, 25));
      }
      if (!ok) throw new Error(`cluster node ${port} never reached cluster_state:ok`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const nodes = ports.map((port) => ({ host: "127.0.0.1", port }));
  return {
    nodes,
    env: nodes.map((n) => `${n.host}:${n.port}`).join(","),
    killMaster: async () => {
      const r = new Redis({ port: ports[0] as number, host: "127.0.0.1" });
      const text = (await r.cluster("NODES")) as string;
      r.disconnect();
      const master = text
        .split("\n")
        .map((l) => l.split(" "))
        .find((f) => (f[2] ?? "").includes("master") && !(f[2] ?? "").includes("fail"));
      const port = Number((master?.[1] ?? "").split(":")[1]?.split("@")[0]);
      procs.get(port)?.kill("SIGKILL");
      return port;
    },
    close,
  };
}
