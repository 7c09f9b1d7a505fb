// Lookups under load while faults are injected, every answer recorded with its time; and the impression
// caller that retries refused impressions, for the exactly-once checks of the fault and failover tests.
import { expect } from "vitest";
import { postJson } from "./service.ts";

export interface Sample {
  /** Milliseconds since the load began. */
  readonly t: number;
  readonly status: number;
  readonly ms: number;
  readonly degraded: boolean | null;
  readonly segments: string[];
  /** Which of the looked-up users this was (an index into `users`). */
  readonly user: number;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Lookups from 8 concurrent callers for `durationMs`, cycling through `users` (bu IDs), every one
 * recorded; `at` runs faults meanwhile, each at its offset in milliseconds.
 */
export async function underLoad(
  base: string,
  users: readonly string[],
  durationMs: number,
  at: [number, () => unknown][],
): Promise<Sample[]> {
  const samples: Sample[] = [];
  const start = performance.now();
  const end = start + durationMs;
  let n = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const user = n++ % users.length;
      const t0 = performance.now();
      let status = 0;
      let json: { degraded?: boolean; segments?: string[] } = {};
      try {
        const r = await postJson(`${base}/v1/lookup`, { ids: [{ type: "bu", id: users[user] }] });
        status = r.status;
        json = r.json;
      } catch {
        status = -1; // a connection error
      }
      samples.push({
        t: t0 - start,
        status,
        ms: performance.now() - t0,
        degraded: json.degraded ?? null,
        segments: json.segments ?? [],
        user,
      });
    }
  };
  const faults = at.map(async ([ms, f]) => {
    await sleep(ms);
    await f();
  });
  await Promise.all([...Array.from({ length: 8 }, loop), ...faults]);
  return samples;
}

/** Answers degraded although the store was there: a deadline missed now and then on a busy 2-core machine. */
export const stray = (n: number): number => Math.ceil(n * 0.01);

export function summarise(samples: readonly Sample[], from: number, to: number, user?: number) {
  const window = samples.filter((s) => s.t >= from && s.t < to && (user === undefined || s.user === user));
  return {
    n: window.length,
    errors: window.filter((s) => s.status !== 200).length,
    degraded: window.filter((s) => s.degraded === true).length,
    slowest: Math.max(0, ...window.map((s) => s.ms)),
  };
}

/**
 * A caller of the impression pixel for one bu ID and campaign: a new impression every few ms, retrying a
 * refused one (503, or no answer) until it is stored, and re-sending every tenth acknowledged one (as nurl
 * and burl both would) to prove it is not counted twice. Runs until stop() and then until nothing is owed.
 */
export function impressionCaller(base: string, id: string, campaign: string) {
  const acked = new Set<string>();
  const pending: string[] = [];
  let refused = 0;
  let next = 0;
  let stopping = false;
  const pixel = async (imp: string): Promise<number> => {
    const q = new URLSearchParams({ type: "bu", id, campaign, imp });
    try {
      return (await fetch(`${base}/v1/events/imp?${q}`)).status;
    } catch {
      return -1;
    }
  };
  const done = (async () => {
    while (!stopping || pending.length > 0) {
      const imp = pending.shift() ?? (stopping ? null : `imp-${next++}`);
      if (imp === null) break;
      const status = await pixel(imp);
      if (status === 204) {
        if (acked.has(imp)) continue;
        acked.add(imp);
        // A duplicate notice: whatever it is answered, it must not count.
        if (acked.size % 10 === 0) await pixel(imp);
      } else {
        expect([503, -1]).toContain(status);
        refused++;
        pending.push(imp);
        await sleep(20);
      }
    }
  })();
  return {
    /** Impressions the service acknowledged (each once). */
    acked,
    get refused() {
      return refused;
    },
    /** Stops sending new impressions; resolves once every refused one has been stored. */
    stop: async (): Promise<void> => {
      stopping = true;
      await done;
    },
  };
}
