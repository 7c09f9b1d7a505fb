// A membership load on a real redis-server, its rows in no order: with several batches in flight and an
// ID's rows spread over many of them, or merged in the window, every ID ends exactly as applying its rows
// one by one in file order leaves it; opted-out IDs stay skipped and bad rows keep their lines.
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadMemberships, type RejectedRow } from "../../src/ingest/load-memberships.ts";
import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import type { Profile } from "../../src/profiles/profile-codec.ts";
import { RedisProfileStore } from "../../src/profiles/redis-profile-store.ts";
import { CatalogSnapshot } from "../../src/segments/catalog.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";

const NOW = Math.floor(Date.now() / 1000);
const IDS = 600;
const OPTED_OUT = [3, 77, 598];

let server: RedisServer;
let store: RedisProfileStore;

beforeAll(async () => {
  server = await startRedis();
  store = new RedisProfileStore({ url: server.url, commandTimeoutMs: 5_000, connectTimeoutMs: 2_000 });
  await store.connect();
});
afterAll(async () => {
  await store?.close();
  await server?.close();
});

/**
 * 12,000 rows over 600 IDs in a shuffled order: adds and removes of 6 segments, some with an expiry, some
 * already expired, every 97th row bad. Deterministic.
 */
function shuffledFile(): { text: string; badLines: number[] } {
  let seed = 0x2545f491;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const lines = ["type,id,segment,op,expires_at"];
  const badLines: number[] = [];
  for (let i = 0; i < 12_000; i++) {
    const line = lines.length + 1;
    if (i % 97 === 50) {
      badLines.push(line);
      lines.push(`bu,u-${i % IDS},bad segment!,,`);
      continue;
    }
    const id = Math.floor(rand() * IDS);
    const segment = `s${Math.floor(rand() * 6)}`;
    const op = rand() < 0.3 ? "remove" : "add";
    const r = rand();
    const expires =
      r < 0.2 ? String(NOW + 3_600 + Math.floor(rand() * 1_000)) : r < 0.25 ? String(NOW - 5) : "";
    lines.push(`bu,u-${id},${segment},${op},${expires}`);
  }
  return { text: lines.join("\n"), badLines };
}

const input = (text: string): Readable =>
  // Small chunks: many reads, so that batches go out while the file is still being read.
  Readable.from(text.match(/[\s\S]{1,4096}/g) ?? [], { objectMode: false });

/** Memberships as compared: order does not matter, every field does. */
const sorted = (p: Profile | null | undefined) =>
  p === null || p === undefined
    ? null
    : [...p.memberships].sort((a, b) => a.segment.localeCompare(b.segment) || a.generation - b.generation);

describe("a load of shuffled rows on Redis", () => {
  const { text, badLines } = shuffledFile();
  const keys = Array.from({ length: IDS }, (_, i) => `bu:u-${i}`);
  const optedOut = OPTED_OUT.map((i) => `bu:u-${i}`);

  /** The reference: the same file applied one row at a time, each row its own write. */
  async function reference(): Promise<{ profiles: (Profile | null)[]; skipped: number }> {
    const memory = new MemoryProfileStore();
    await memory.optOut(optedOut, NOW);
    const summary = await loadMemberships(memory, input(text), "csv", {
      nowSec: NOW,
      catalog: CatalogSnapshot.empty(),
      batchSize: 1,
      windowRows: 1,
    });
    return { profiles: await memory.readProfiles(keys, NOW), skipped: summary.skipped };
  }

  it.each([
    // Each batch written as soon as full: an ID's rows spread over up to 24 batches, 4 in flight.
    ["every batch written at once", { batchSize: 50, windowRows: 50 }],
    // Rows merged in the window before they are written.
    ["rows merged in a window", { batchSize: 50, windowRows: 3_000 }],
    // The whole file in one window: one write per ID.
    ["the whole file in the window", { batchSize: 5_000, windowRows: 20_000 }],
  ])("ends every ID as rows applied one by one would (%s)", async (_, sizes) => {
    await store.redis.flushdb();
    await store.optOut(optedOut, NOW);
    const ref = await reference();
    const rejected: RejectedRow[] = [];
    const written = new Set<string>();
    const summary = await loadMemberships(store, input(text), "csv", {
      nowSec: NOW,
      catalog: CatalogSnapshot.empty(),
      ...sizes,
      onRejected: (r) => rejected.push(r),
      onApplied: (k) => {
        for (const key of k) written.add(key);
      },
    });
    expect(rejected).toEqual(
      badLines.map((line) => ({
        line,
        reason: "segment must be 1-64 letters, digits, '.', '_', ':' or '-'",
      })),
    );
    expect(summary.read).toBe(12_000);
    expect(summary.rejected).toBe(badLines.length);
    // The opted-out IDs' rows, counted as skipped, whatever the batches.
    expect(summary.skipped).toBe(ref.skipped);
    expect(summary.skipped).toBeGreaterThan(0);
    expect(summary.loaded).toBe(12_000 - badLines.length - ref.skipped);
    expect(written).toEqual(new Set(keys));
    const got = await store.readProfiles(keys, NOW);
    expect(got.map(sorted)).toEqual(ref.profiles.map(sorted));
    for (const key of optedOut) {
      expect(await store.isOptedOut(key)).toBe(true);
      expect(await store.redis.exists(`p:{${key}}`)).toBe(0);
    }
  });
});
