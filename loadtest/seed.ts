// Seeds a Redis with the synthetic users of users.ts, in MSET batches, and checks a sample reads back.
import { Cluster, Redis } from "ioredis";
import { decodeProfile, encodeProfile, type Membership } from "../src/profiles/profile-codec.ts";
import { profileKey } from "../src/profiles/redis-profile-store.ts";
import { personOf, segmentsOf, typedId } from "./users.ts";

const BATCH = 1000;
const IN_FLIGHT = 16;

export interface SeedSummary {
  readonly users: number;
  readonly ms: number;
  readonly usedMemoryBytes: number;
}

const membershipsOf = (i: number): Membership[] =>
  segmentsOf(i).map((segment) => ({ segment, expiresAt: 0, source: "", generation: 0 }));

/**
 * The stored profile of user i: its own memberships, and with `linked`, its person as the identity graph
 * writes it (every other ID of the person with a copy of its memberships, format 2).
 */
function profileOf(i: number, linked: boolean): Buffer {
  if (!linked) return encodeProfile(membershipsOf(i));
  const members = personOf(i)
    .filter((u) => u !== i)
    .map((u) => ({ key: typedId(u), confidence: 1, version: 0, memberships: membershipsOf(u) }));
  return encodeProfile(membershipsOf(i), { version: 0, members });
}

/**
 * Writes profiles for users 0..users-1 (linked into persons of 4 with `linked`); resolves once every write
 * is acknowledged and a sample verified.
 */
export async function seedUsers(url: string, users: number, linked = false): Promise<SeedSummary> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const started = performance.now();
    const pending = new Set<Promise<unknown>>();
    for (let from = 0; from < users; from += BATCH) {
      const to = Math.min(users, from + BATCH);
      const args: (string | Buffer)[] = new Array((to - from) * 2);
      for (let i = from, k = 0; i < to; i++, k += 2) {
        args[k] = profileKey(typedId(i));
        args[k + 1] = profileOf(i, linked);
      }
      const p = redis.mset(args).finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= IN_FLIGHT) await Promise.race(pending);
    }
    await Promise.all(pending);
    const ms = performance.now() - started;

    const count = await redis.dbsize();
    if (count < users) throw new Error(`seeded ${users} users but Redis holds ${count} keys`);
    const step = Math.max(1, Math.floor(users / 100));
    for (let i = 0; i < users; i += step) {
      const raw = await redis.getBuffer(profileKey(typedId(i)));
      const p = raw === null ? null : decodeProfile(raw, 0);
      const got = p === null ? null : p.memberships.map((m) => m.segment);
      if (got === null || got.join() !== segmentsOf(i).join() || (linked && p?.link?.members.length !== 3)) {
        throw new Error(`user ${i} reads back as ${JSON.stringify(got)}, expected ${segmentsOf(i).join()}`);
      }
    }
    const info = await redis.info("memory");
    const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    return { users, ms, usedMemoryBytes: used };
  } finally {
    redis.disconnect();
  }
}

/** The redis-server's process id, to sample its CPU time. */
export async function redisPid(url: string): Promise<number | null> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const info = await redis.info("server");
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } finally {
    redis.disconnect();
  }
}

/** The same users on a Redis Cluster: one SET per key (MSET may not span slots), auto-pipelined per node. */
export async function seedCluster(
  nodes: readonly { host: string; port: number }[],
  users: number,
): Promise<SeedSummary> {
  const cluster = new Cluster([...nodes], {
    enableAutoPipelining: true,
    redisOptions: { maxRetriesPerRequest: 1 },
  });
  try {
    const started = performance.now();
    for (let from = 0; from < users; from += BATCH * 10) {
      const sets: Promise<unknown>[] = [];
      for (let i = from; i < Math.min(users, from + BATCH * 10); i++)
        sets.push(cluster.set(profileKey(typedId(i)), profileOf(i, false)));
      await Promise.all(sets);
    }
    const ms = performance.now() - started;
    let count = 0;
    let used = 0;
    for (const node of cluster.nodes("master")) {
      count += await node.dbsize();
      used += Number(/used_memory:(\d+)/.exec(await node.info("memory"))?.[1] ?? 0);
    }
    if (count < users) throw new Error(`seeded ${users} users but the cluster holds ${count} keys`);
    const step = Math.max(1, Math.floor(users / 100));
    for (let i = 0; i < users; i += step) {
      const raw = await cluster.getBuffer(profileKey(typedId(i)));
      const got = raw === null ? null : decodeProfile(raw, 0)?.memberships.map((m) => m.segment);
      if (got?.join() !== segmentsOf(i).join())
        throw new Error(`user ${i} reads back as ${JSON.stringify(got)}`);
    }
    return { users, ms, usedMemoryBytes: used };
  } finally {
    cluster.disconnect();
  }
}
