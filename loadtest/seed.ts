// Seeds a Redis with the synthetic users of users.ts, in MSET batches, and checks a sample reads back.
import { Redis } from "ioredis";
import { decodeProfile, encodeProfile } from "../src/profiles/profile-codec.ts";
import { profileKey } from "../src/profiles/redis-profile-store.ts";
import { segmentsOf, typedId } from "./users.ts";

const BATCH = 1000;
const IN_FLIGHT = 16;

export interface SeedSummary {
  readonly users: number;
  readonly ms: number;
  readonly usedMemoryBytes: number;
}

/** Writes profiles for users 0..users-1; resolves once every write is acknowledged and a sample verified. */
export async function seedUsers(url: string, users: number): Promise<SeedSummary> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const started = performance.now();
    const pending = new Set<Promise<unknown>>();
    for (let from = 0; from < users; from += BATCH) {
      const to = Math.min(users, from + BATCH);
      const args: (string | Buffer)[] = new Array((to - from) * 2);
      for (let i = from, k = 0; i < to; i++, k += 2) {
        args[k] = profileKey(typedId(i));
        args[k + 1] = encodeProfile(
          segmentsOf(i).map((segment) => ({ segment, expiresAt: 0, source: "", generation: 0 })),
        );
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
      const got = raw === null ? null : decodeProfile(raw, 0).memberships.map((m) => m.segment);
      if (got === null || got.join() !== segmentsOf(i).join()) {
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
