// A real local Redis Cluster for the tests: 3 masters with 1 replica each, redis-server processes on free
// ports with throw-away directories, joined with `redis-cli --cluster create`. Stopped and removed by close().
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import calculateSlot from "cluster-key-slot";
import { askRedis, freePort, localServerArgs } from "./redis-server.ts";

export interface RedisCluster {
  readonly nodes: readonly { host: string; port: number }[];
  /** REDIS_CLUSTER_NODES for the service. */
  readonly env: string;
  /**
   * Kills one master (SIGKILL), the one serving `key` when given: its replica is promoted after
   * cluster-node-timeout. Returns its port.
   */
  killMaster(key?: string): Promise<number>;
  /**
   * Starts a killed node again on its port, with its data and cluster state, as an orchestrator would: a
   * failed-over master rejoins as a replica of the node that replaced it.
   */
  restart(port: number): void;
  /** Moves `slots` hash slots, with their keys, from one master to another (`redis-cli --cluster reshard`). */
  reshard(slots: number): Promise<void>;
  /** Port of the master serving `key`'s slot, as a live node sees it. */
  masterOf(key: string): Promise<number>;
  /** Port of the replica of the master on `masterPort`, as a live node sees it. */
  replicaOf(masterPort: number): Promise<number>;
  /**
   * Holds back replication to the replica on `port`: once it holds everything its master has written, its
   * link is closed and every attempt to reopen it fails (a wrong masterauth), so nothing its master writes
   * from then on reaches it. Its cluster bus is left alone: it still fails over when its master dies.
   */
  holdReplication(port: number): Promise<void>;
  /** Lets the replica on `port` connect to its master again. */
  releaseReplication(port: number): Promise<void>;
  /** Resolves once the node on `port` is in sync: a replica with its link up, a master with a replica online. */
  synced(port: number): Promise<void>;
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

/** `replicas` per master: 1 for the tests (failover), 0 where only the masters' work matters (the bench). */
export async function startRedisCluster(masters = 3, replicas: 0 | 1 = 1): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "audience-cluster-"));
  const count = masters * (1 + replicas);
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const procs = new Map<number, ChildProcess>();
  const spawnNode = (port: number): void => {
    const proc = spawn(
      "redis-server",
      [
        ...localServerArgs(port, dir, `redis-${port}.log`),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `nodes-${port}.conf`,
        "--cluster-node-timeout",
        String(NODE_TIMEOUT_MS),
        // As the README recommends: a shard without a master refuses only its own slots, not the cluster's.
        "--cluster-require-full-coverage",
        "no",
        // Replicas sync at once rather than after the default 5 s wait for more replicas to join.
        "--repl-diskless-sync-delay",
        "0",
        "--appendonly",
        "yes",
        "--appendfilename",
        `appendonly-${port}.aof`,
        "--appenddirname",
        `aof-${port}`,
      ],
      { stdio: "ignore" },
    );
    procs.set(port, proc);
  };
  for (const port of ports) spawnNode(port);
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
      String(replicas),
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
    // And every replica holds its master's data: a failover test must not promote an empty replica.
    for (const port of replicas === 0 ? [] : ports) await synced(port);
  } catch (err) {
    await close();
    throw err;
  }
  const nodes = ports.map((port) => ({ host: "127.0.0.1", port }));
  return {
    nodes,
    env: nodes.map((n) => `${n.host}:${n.port}`).join(","),
    masterOf: (key) => masterOf(ports, procs, key),
    replicaOf: async (masterPort) => {
      const lines = (await clusterNodes(ports, procs)).split("\n").map((l) => l.split(" "));
      const id = lines.find((f) => nodePort(f) === masterPort)?.[0];
      const replica = lines.find((f) => (f[2] ?? "").includes("slave") && f[3] === id);
      if (id === undefined || replica === undefined) throw new Error(`no replica of ${masterPort}`);
      return nodePort(replica);
    },
    holdReplication: async (port) => {
      // What the replica has not received yet is what is held back: nothing written before this call.
      const written = await replicationOffset(port, "master_repl_offset", true);
      for (let i = 0; i < 400 && (await replicationOffset(port, "slave_repl_offset")) < written; i++)
        await new Promise((r) => setTimeout(r, 25));
      if ((await replicationOffset(port, "slave_repl_offset")) < written)
        throw new Error(`replica ${port} never caught up with its master`);
      // A master without a password refuses any AUTH, so the replica's handshake fails at every attempt.
      // (A stopped replica, SIGSTOP or DEBUG SLEEP, holds nothing back: its socket still takes in what the
      // master sends, and it applies that when it runs again, even after the master has died.)
      await askRedis(port, async (c) => {
        await c.config("SET", "masterauth", "held-back");
        await c.client("KILL", "TYPE", "master");
      });
      for (let i = 0; i < 400 && !(await linkDown(port)); i++) await new Promise((r) => setTimeout(r, 25));
      if (!(await linkDown(port))) throw new Error(`replica ${port} kept its link to its master`);
    },
    releaseReplication: async (port) => {
      await askRedis(port, (c) => c.config("SET", "masterauth", ""));
    },
    synced,
    restart: (port) => spawnNode(port),
    reshard: async (slots) => {
      const text =
        (await askRedis(ports[0] as number, async (c) => (await c.cluster("NODES")) as string)) ?? "";
      const masters = text
        .split("\n")
        .map((l) => l.split(" "))
        .filter((f) => (f[2] ?? "").includes("master") && !(f[2] ?? "").includes("fail") && f.length > 8)
        .map((f) => f[0] as string);
      await run("redis-cli", [
        "--cluster",
        "reshard",
        `127.0.0.1:${ports[0]}`,
        "--cluster-from",
        masters[0] as string,
        "--cluster-to",
        masters[1] as string,
        "--cluster-slots",
        String(slots),
        "--cluster-yes",
        "--cluster-pipeline",
        "10",
      ]);
    },
    killMaster: async (key) => {
      const port = await masterOf(ports, procs, key);
      procs.get(port)?.kill("SIGKILL");
      return port;
    },
    close,
  };
}

/** Resolves once the node on `port` is a replica with its link up, or a master with a replica online. */
async function synced(port: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const info = (await askRedis(port, async (c) => c.info("replication"))) ?? "";
    const ok = /role:master/.test(info)
      ? /slave0:.*state=online/.test(info)
      : /master_link_status:up/.test(info);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`cluster node ${port} never finished its replication sync`);
}

/** An offset from INFO replication of the replica on `port`, or (`ofMaster`) of its master. */
async function replicationOffset(port: number, field: string, ofMaster = false): Promise<number> {
  let info = (await askRedis(port, async (c) => c.info("replication"))) ?? "";
  if (ofMaster) {
    const masterPort = Number(/master_port:(\d+)/.exec(info)?.[1]);
    info = (await askRedis(masterPort, async (c) => c.info("replication"))) ?? "";
  }
  const offset = new RegExp(`${field}:(\\d+)`).exec(info)?.[1];
  if (offset === undefined) throw new Error(`no ${field} for ${port}`);
  return Number(offset);
}

async function linkDown(port: number): Promise<boolean> {
  return /master_link_status:down/.test((await askRedis(port, async (c) => c.info("replication"))) ?? "");
}

/**
 * CLUSTER NODES, as a node still running sees it. One just killed may not be known dead yet (its exit not
 * yet reported): the next is asked then.
 */
async function clusterNodes(ports: number[], procs: Map<number, ChildProcess>): Promise<string> {
  for (const port of ports) {
    const proc = procs.get(port);
    if (proc?.exitCode !== null || proc.signalCode !== null) continue;
    const text = await askRedis(port, async (c) => (await c.cluster("NODES")) as string);
    if (text !== null) return text;
  }
  throw new Error("no cluster node answers");
}

/** The port of a CLUSTER NODES line's node (its address is host:port@busport). */
const nodePort = (fields: string[]): number => Number((fields[1] ?? "").split(":")[1]?.split("@")[0]);

/** The master serving `key` (or any master), read from CLUSTER NODES of a node still running. */
async function masterOf(ports: number[], procs: Map<number, ChildProcess>, key?: string): Promise<number> {
  const slot = key === undefined ? null : calculateSlot(key);
  for (const f of (await clusterNodes(ports, procs)).split("\n").map((l) => l.split(" "))) {
    const flags = f[2] ?? "";
    if (!flags.includes("master") || flags.includes("fail")) continue;
    const serves = f.slice(8).some((range) => {
      const [lo, hi] = range.split("-").map(Number);
      return slot !== null && slot >= (lo as number) && slot <= (hi ?? lo ?? -1);
    });
    if (slot === null || serves) return nodePort(f);
  }
  throw new Error(`no live master serves ${key ?? "any slot"}`);
}
