// Sizing figures for the README's guide, measured rather than assumed: bytes per profile in Redis (MEMORY
// USAGE of real stored profiles) and in the service's LRU cache (heap growth per cached profile, after GC),
// for profiles of 4, 10, 20 and 50 segments and a linked person; what they make for 100M and 1B IDs; and the
// stored format's size targets.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Redis } from "ioredis";
import { type LiveSegmentRules, liveView } from "../src/lookup/live-segments.ts";
import { type ProfileBatch, ProfileCache } from "../src/profiles/profile-cache.ts";
import { decodeProfile, encodeProfile, type Membership } from "../src/profiles/profile-codec.ts";
import type { ProfileStore } from "../src/profiles/profile-store.ts";
import { profileKey } from "../src/profiles/redis-profile-store.ts";
import { CatalogSnapshot } from "../src/segments/catalog.ts";
import { segmentDef } from "../test/helpers/segment-def.ts";
import { typedId } from "./users.ts";

/** Profiles written per class: enough that the heap measurement is not noise. */
const PER_CLASS = 50_000;
/** Segments per ID, and IDs per person (1: unlinked; 4: each ID carries its 3 others' memberships). */
const CLASSES = [
  { segments: 4, person: 1 },
  { segments: 20, person: 1 },
  { segments: 50, person: 1 },
  { segments: 20, person: 4 },
  // Last, so that the classes before it keep the IDs (and key lengths) they were measured with.
  { segments: 10, person: 1 },
] as const;

/** The size targets: a class's figure (Redis MEMORY USAGE per key, or cache heap per profile), at most. */
export const SIZING_TARGETS = [
  {
    segments: 10,
    person: 1,
    figure: "lruHeapBytes",
    maxBytes: 300,
    about: "cache heap per cached 10-segment profile, key and LRU bookkeeping included",
    how: "heap growth after GC, mean",
  },
  {
    segments: 10,
    person: 1,
    figure: "redisBytes",
    maxBytes: 160,
    about: "Redis bytes per 10-segment profile (30-day TTLs)",
    how: "MEMORY USAGE, mean",
  },
  {
    segments: 20,
    person: 4,
    figure: "redisBytes",
    maxBytes: 900,
    about: "Redis bytes per ID, linked person of 4 IDs x 20 segments",
    how: "MEMORY USAGE, mean",
  },
] as const;

export interface SizingClass {
  readonly segments: number;
  readonly person: number;
  /** MEMORY USAGE of a stored profile (key, value, dict entry), mean over the class. */
  readonly redisBytes: number;
  /** Heap growth per profile held in the LRU cache (decoded profile, key, LRU entry). */
  readonly lruHeapBytes: number;
  /** The cache's own estimate (what CACHE_MAX_BYTES is compared with), per profile. */
  readonly lruEstimateBytes: number;
  /** Heap added per cached profile once it has answered a lookup: its view (segments and their JSON). */
  readonly viewHeapBytes: number;
}

export interface SizingFigures {
  readonly classes: readonly SizingClass[];
  /** used_memory / keys of the bench's main Redis (its 2–6-segment users): whole-server overhead included. */
  readonly usedPerKey: number;
}

/**
 * The JavaScript heap and the cache's typed arrays, which live outside it (not process.memoryUsage's
 * arrayBuffers: that counts the Redis client's read buffers too, which come and go).
 */
const heapBytes = (cache: ProfileCache): number => process.memoryUsage().heapUsed + cache.arrayBytes;

/** Every segment the sizing profiles name, third-party and not sensitive: each membership is usable. */
const SIZING_SNAPSHOT = new CatalogSnapshot(
  Array.from({ length: 9000 }, (_, i) => segmentDef(String(1000 + i), { name: `segment ${1000 + i}` })),
  new Map(),
);

/**
 * A full collection. The function is fetched once: each runInNewContext makes a new context, megabytes of
 * heap of its own, which made the figures swing by more than a small profile's size.
 */
let gcFn: (() => void) | null = null;
const gc = (): void => {
  if (gcFn === null) {
    setFlagsFromString("--expose-gc");
    gcFn = runInNewContext("gc") as () => void;
  }
  gcFn();
  gcFn();
};

/** Collects after pending callbacks have run: promise chains of the last reads still hold their results. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
};

/** A realistic membership list: 4-digit taxonomy ids, a 30-day expiry each, a data source. */
function memberships(n: number, i: number, nowSec: number): Membership[] {
  return Array.from({ length: n }, (_, k) => ({
    segment: String(1000 + ((i * 7 + k * 13) % 9000)),
    expiresAt: nowSec + 30 * 86_400,
    source: "crm",
    generation: 0,
  }));
}

/** Reads profiles as the Redis store does (decodeProfile of the stored bytes), from a map in this process. */
function decodingStore(stored: ReadonlyMap<string, Buffer>): ProfileStore {
  const read = async (keys: readonly string[], nowSec: number) =>
    keys.map((k) => {
      const bytes = stored.get(k);
      return bytes === undefined ? null : decodeProfile(bytes, nowSec);
    });
  return { kind: "sizing", readProfiles: read } as unknown as ProfileStore;
}

export async function measureSizing(url: string): Promise<SizingFigures> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  const nowSec = Math.floor(Date.now() / 1000);
  const classes: SizingClass[] = [];
  try {
    const info = await redis.info("memory");
    const keys = await redis.dbsize();
    const usedPerKey = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / Math.max(1, keys);
    for (const [c, { segments, person }] of CLASSES.entries()) {
      // IDs shaped as the bench's (ifa UUIDs, buyer uids, UID2s) but of users never seeded.
      const ids = Array.from({ length: PER_CLASS }, (_, i) => typedId(50_000_000 + c * PER_CLASS + i));
      const profileOf = (i: number): Buffer => {
        const own = memberships(segments, i, nowSec);
        if (person === 1) return encodeProfile(own);
        const first = i - (i % person);
        const members = Array.from({ length: person }, (_, k) => first + k)
          .filter((u) => u !== i && u < ids.length)
          .map((u) => ({
            key: ids[u] as string,
            confidence: 1,
            version: 0,
            memberships: memberships(segments, u, nowSec),
          }));
        return encodeProfile(own, { version: 0, members });
      };
      for (let from = 0; from < ids.length; from += 1_000) {
        const pipe = redis.pipeline();
        for (let i = from; i < Math.min(ids.length, from + 1_000); i++) {
          // A linked ID's profile does not expire (identity-graph.ts); an unlinked one expires with its memberships.
          if (person === 1)
            pipe.set(profileKey(ids[i] as string), profileOf(i), "EXAT", nowSec + 30 * 86_400);
          else pipe.set(profileKey(ids[i] as string), profileOf(i));
        }
        await pipe.exec();
      }
      let redisTotal = 0;
      const sample = ids.filter((_, i) => i % 10 === 0);
      for (const id of sample)
        redisTotal += Number(await redis.memory("USAGE", profileKey(id), "SAMPLES", 0));

      // The cache is measured over a store that decodes the same stored bytes in this process: the Redis
      // client keeps reply buffers and pipelines alive for a while, which moved the heap by more than a
      // small profile's size (negative figures, once).
      const stored = new Map<string, Buffer>();
      for (let i = 0; i < ids.length; i++) stored.set(ids[i] as string, profileOf(i));
      const store = decodingStore(stored);
      const cache = new ProfileCache(store, {
        maxEntries: PER_CLASS * 2,
        maxBytes: 2 ** 40,
        ttlMs: 3_600_000,
        negativeTtlMs: 0,
      });
      // Keys made afresh per batch, as requests make them: the cache's own copies are what it holds.
      const keysFrom = (from: number, n: number): string[] =>
        Array.from({ length: Math.min(n, PER_CLASS - from) }, (_, j) =>
          typedId(50_000_000 + c * PER_CLASS + from + j),
        );
      await settle();
      const before = heapBytes(cache);
      for (let from = 0; from < PER_CLASS; from += 500) {
        const batch = await cache.getMany(keysFrom(from, 500));
        if (batch.degraded) throw new Error("sizing: a cache fill read failed");
      }
      await settle();
      const after = heapBytes(cache);
      if (cache.size !== PER_CLASS) throw new Error(`sizing: the cache holds ${cache.size} of ${PER_CLASS}`);
      const estimate = cache.bytes;
      // Then each profile answers once: the view kept beside it (live-segments.ts) is heap too.
      const rules: LiveSegmentRules = {
        snapshot: SIZING_SNAPSHOT,
        nowSec,
        expand: false,
        minConfidence: 0,
        scope: null,
      };
      for (let from = 0; from < PER_CLASS; from += 500) {
        const batch = (await cache.getMany(keysFrom(from, 500))) as ProfileBatch;
        batch.profiles.forEach((p, j) => {
          if (p !== null) liveView(p, batch.kinds, rules, true, cache, batch.slots[j] as number);
        });
      }
      await settle();
      const viewed = heapBytes(cache);
      classes.push({
        segments,
        person,
        redisBytes: redisTotal / sample.length,
        lruHeapBytes: (after - before) / PER_CLASS,
        lruEstimateBytes: estimate / PER_CLASS,
        viewHeapBytes: (viewed - after) / PER_CLASS,
      });
      cache.clear();
      for (let from = 0; from < ids.length; from += 1_000)
        await redis.del(...ids.slice(from, from + 1_000).map(profileKey));
    }
    return { classes, usedPerKey };
  } finally {
    redis.disconnect();
  }
}

const gib = (bytes: number): string =>
  `${(bytes / 2 ** 30).toLocaleString("en-US", { maximumFractionDigits: 0 })} GiB`;

/** One line per size target: the class's mean MEMORY USAGE, the target and the verdict. */
export function sizingTargetLines(s: SizingFigures): string[] {
  return SIZING_TARGETS.map((t) => {
    const want = `target <= ${t.maxBytes} B`;
    const c = s.classes.find((k) => k.segments === t.segments && k.person === t.person);
    if (c === undefined) return `${t.about} = n/a (not measured), ${want}: n/a`;
    // Judged as shown, to a tenth of a byte, so that the figure printed never contradicts its verdict.
    const shown = Math.round(c[t.figure] * 10) / 10;
    return `${t.about} = ${shown} B (${t.how}), ${want}: ${shown <= t.maxBytes ? "met" : "MISSED"}`;
  });
}

/** The lines of RESULTS.md's Sizing section: the size targets first, then every class, smallest first. */
export function sizingLines(s: SizingFigures): string[] {
  const lines = [
    ...sizingTargetLines(s),
    `Main Redis: used_memory / keys = ${Math.round(s.usedPerKey)} bytes per key (the bench's users: 2–6 segments, no expiry, whole-server overhead included)`,
  ];
  const ordered = [...s.classes].sort((a, b) => a.person - b.person || a.segments - b.segments);
  for (const c of ordered) {
    lines.push(
      `${c.segments} segments per ID (30-day expiry each)${c.person > 1 ? `, linked into persons of ${c.person} IDs (each carries its ${c.person - 1} others' memberships)` : ""}: Redis ${Math.round(c.redisBytes)} B per profile (MEMORY USAGE); LRU ${Math.round(c.lruHeapBytes)} B of heap per cached profile, key and bookkeeping included (the cache estimates ${Math.round(c.lruEstimateBytes)} B), ${Math.round(c.viewHeapBytes)} B more once it has answered (its view); 100M IDs: ${gib(c.redisBytes * 1e8)} in Redis, 1B IDs: ${gib(c.redisBytes * 1e9)} (one copy; a replica doubles it)`,
    );
  }
  return lines;
}
