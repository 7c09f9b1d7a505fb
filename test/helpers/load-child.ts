// The load of the fault and failover tests, in its own process as real callers are: lookups from
// concurrent callers at a fixed rate and, when asked, an impression caller. Run by load-process.ts, which reads its stdout:
// a "start" line when the load begins (the time the faults are scheduled from), then one line with the
// results. A load sent from the test's own process would share the service's event loop and stall it.
import type { LoadPlan, LoadResult, Sample, Stall } from "./load-process.ts";

const plan = JSON.parse(process.argv[2] as string) as LoadPlan;
/** Rounds of one lookup per caller before the load begins. */
const WARM_UP_LOOKUPS = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Warm-up, not recorded: the first answers a fresh load process saw took 150-240 ms (its own module
// loading and first connections, and the service's first run of its lookup code), which is neither a fault
// nor the service under load.
const warmBodies = plan.users.map((id) => JSON.stringify({ ids: [{ type: "bu", id }] }));
for (let i = 0; i < WARM_UP_LOOKUPS; i++) {
  // Every user: on a Cluster each one's first read also opens its node's connection.
  await Promise.all(
    Array.from({ length: plan.callers }, async (_, k) => {
      const body = warmBodies[(i * plan.callers + k) % warmBodies.length];
      const r = await fetch(`${plan.base}/v1/lookup`, { method: "POST", body });
      await r.arrayBuffer();
    }),
  );
}

const samples: Sample[] = [];
const start = performance.now();
const end = start + plan.durationMs;

/**
 * This process's own stalls: a timer every STALL_TICK_MS, and each time it fires at least STALL_MS late, the
 * gap. An answer that arrives while this process is stalled is read late, and its time measures the caller.
 */
const STALL_TICK_MS = 5;
const STALL_MS = 20;
const stalls: Stall[] = [];
let lastTick = start;
const ticker = setInterval(() => {
  const now = performance.now();
  const late = now - lastTick - STALL_TICK_MS;
  if (late >= STALL_MS) stalls.push({ t: now - late - start, ms: late });
  lastTick = now;
}, STALL_TICK_MS);

async function lookups(): Promise<void> {
  let n = 0;
  const body = plan.users.map((id) => JSON.stringify({ ids: [{ type: "bu", id }] }));
  // Each caller sends at its own fixed pace, the callers staggered: the whole load is `rate` a second at most.
  const period = (1000 * plan.callers) / plan.rate;
  const loop = async (k: number): Promise<void> => {
    let next = start + (k * 1000) / plan.rate;
    for (;;) {
      const now = performance.now();
      if (next > now) await sleep(next - now);
      if (performance.now() >= end) break;
      // Late (an answer slower than the period): send now, without a burst to catch up.
      next = Math.max(next + period, performance.now());
      const user = n++ % plan.users.length;
      const t0 = performance.now();
      let status = 0;
      let json: { degraded?: boolean; segments?: string[] } = {};
      try {
        const r = await fetch(`${plan.base}/v1/lookup`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: body[user],
        });
        status = r.status;
        json = (await r.json()) as typeof json;
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
  await Promise.all(Array.from({ length: plan.callers }, (_, k) => loop(k)));
}

/**
 * A new impression every few ms until the load ends, retrying a refused one (503, or no answer) until it
 * is stored, and re-sending every tenth acknowledged one (as nurl and burl both would) to prove it is not
 * counted twice. Goes on after the load until nothing is owed.
 */
async function impressions(id: string, campaign: string): Promise<LoadResult["impressions"]> {
  const acked = new Set<string>();
  const pending: string[] = [];
  const unexpected: number[] = [];
  let refused = 0;
  let next = 0;
  const pixel = async (imp: string): Promise<number> => {
    const q = new URLSearchParams({ type: "bu", id, campaign, imp });
    try {
      const r = await fetch(`${plan.base}/v1/events/imp?${q}`);
      await r.arrayBuffer();
      return r.status;
    } catch {
      return -1;
    }
  };
  for (;;) {
    const stopping = performance.now() >= end;
    // Named by this process, so that a later load on the same person is not taken for duplicates.
    const imp = pending.shift() ?? (stopping ? null : `imp-${process.pid}-${next++}`);
    if (imp === null) break;
    const status = await pixel(imp);
    if (status === 204) {
      if (acked.has(imp)) continue;
      acked.add(imp);
      // A duplicate notice: whatever it is answered, it must not count.
      if (acked.size % 10 === 0) await pixel(imp);
    } else {
      if (status !== 503 && status !== -1) unexpected.push(status);
      refused++;
      pending.push(imp);
      await sleep(20);
    }
  }
  return { acked: acked.size, refused, unexpected };
}

process.stdout.write("start\n");
const [, imps] = await Promise.all([
  lookups(),
  plan.impressions === undefined ? null : impressions(plan.impressions.id, plan.impressions.campaign),
]);
clearInterval(ticker);
const result: LoadResult = { samples, impressions: imps, stalls };
process.stdout.write(`${JSON.stringify(result)}\n`);
