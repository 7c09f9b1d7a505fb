// Runs load-child.ts in its own process against a service, running the faults at their offsets from the
// moment the load began, and returns every answer with its time.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface Sample {
  /** Milliseconds since the load began. */
  readonly t: number;
  readonly status: number;
  /** As the caller saw it: from sending the request to reading the whole answer. */
  readonly ms: number;
  readonly degraded: boolean | null;
  readonly segments: string[];
  /** Which of the looked-up users this was (an index into `users`). */
  readonly user: number;
}

/** A stall of the load process's own event loop: from `t` (ms since the load began), `ms` long. */
export interface Stall {
  readonly t: number;
  readonly ms: number;
}

export interface LoadPlan {
  readonly base: string;
  /** bu IDs, looked up in turn. */
  readonly users: readonly string[];
  readonly durationMs: number;
  /** Concurrent lookup callers. */
  readonly callers: number;
  /**
   * Lookups a second, all callers together. A fixed rate, as bidders send, that leaves the machine's two
   * cores room: a load sent flat out from a second process takes the CPU the service needs to meet its
   * 15 ms budget, and the test would measure the contention instead of the service.
   */
  readonly rate: number;
  /** An impression caller for this person and campaign, alongside the lookups. */
  readonly impressions?: { id: string; campaign: string };
}

export interface LoadResult {
  readonly samples: Sample[];
  readonly impressions: {
    /** Impressions the service acknowledged (204), each once. */
    acked: number;
    /** Answers 503 or no answer, each retried until stored. */
    refused: number;
    /** Any other status an impression got (none expected). */
    unexpected: number[];
  } | null;
  /** The load process's own stalls of 20 ms or more (load-child.ts). */
  readonly stalls: Stall[];
}

const CHILD = fileURLToPath(new URL("./load-child.ts", import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The load of `plan`, from its own process; `at` runs faults meanwhile, each at its offset in ms. */
export async function loadFromProcess(
  plan: Omit<LoadPlan, "callers" | "rate"> & { callers?: number; rate?: number },
  at: [number, () => unknown][] = [],
): Promise<LoadResult> {
  const full: LoadPlan = { callers: 8, rate: 400, ...plan };
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(full)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout });
  let faults: Promise<unknown> = Promise.resolve();
  let result: LoadResult | null = null;
  for await (const line of lines) {
    if (line === "start")
      faults = Promise.all(
        at.map(async ([ms, f]) => {
          await sleep(ms);
          await f();
        }),
      );
    else result = JSON.parse(line) as LoadResult;
  }
  await faults;
  const code = await exited;
  if (result === null || code !== 0) throw new Error(`the load process ended with ${code} and no result`);
  return result;
}

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
 * The answers that took `boundMs` or more, less the stalls of the load process itself while they were under
 * way: an answer may have come in time and been read late, and that part of its time measures the caller.
 */
export function lateAnswers(samples: readonly Sample[], stalls: readonly Stall[], boundMs: number): Sample[] {
  return samples.filter((s) => {
    if (s.ms < boundMs) return false;
    let stalled = 0;
    for (const st of stalls) {
      const overlap = Math.min(s.t + s.ms, st.t + st.ms) - Math.max(s.t, st.t);
      if (overlap > 0) stalled += overlap;
    }
    return s.ms - stalled >= boundMs;
  });
}

/** The slowest answers, with their times and users, to say where a slow one fell; and the caller's stalls. */
export function slowest(samples: readonly Sample[], stalls: readonly Stall[] = []): string {
  const own = stalls.map((st) => `${Math.round(st.ms)} ms at ${Math.round(st.t)}`).join(", ");
  return `${JSON.stringify(
    [...samples]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((s) => ({ t: Math.round(s.t), ms: Math.round(s.ms), user: s.user, degraded: s.degraded })),
  )}; the load process's own stalls: ${own === "" ? "none" : own}`;
}
