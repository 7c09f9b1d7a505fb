// Scenario (f): pixel URLs (GET /v1/events/imp), each with its own impression id and its own notice token
// (fetched from batch lookups before the load), and their checks.
import { CAP_CAMPAIGNS, CAP_WINDOWS, eventPerson } from "./caps.ts";
import { typedId } from "./users.ts";

/** One planned impression: the person (for the checks), the campaign and a unique impression id. */
export interface PixelPlan {
  readonly type: string;
  readonly id: string;
  readonly campaign: string;
  readonly imp: string;
}

/** A planned impression with its pixel URL (path and query), which carries the notice token. */
export interface PixelEvent extends PixelPlan {
  readonly path: string;
}

/**
 * Users per batch lookup (BATCH_LIMIT allows 500). The lookups are sent one at a time, so that each has the
 * service to itself for its budget (LOOKUP_BUDGET_MS, 15 ms); on a busy 2-core machine 500 users' reads
 * often miss it (and are asked again), 250 seldom, for the same tokens per second.
 */
export const TOKENS_PER_LOOKUP = 250;
/** Passes over the entries whose answer came back degraded before giving up. */
const MAX_PASSES = 10;
/** Impressions left for a person with no impression yet: the tightest window's max. */
const TIGHTEST = Math.min(...CAP_WINDOWS.map((w) => w.max));

/**
 * `count` impressions over `people` people (user numbers from `firstUser` on, by turns of the three ID kinds)
 * and the CAP_CAMPAIGNS campaigns: impression j is person j mod people and a unique imp id, so the first
 * `people` each name a different person; the campaign changes every `people` impressions.
 */
export function pixelPlans(count: number, firstUser: number, people: number): PixelPlan[] {
  const persons = Array.from({ length: Math.min(people, count) }, (_, p) =>
    eventPerson(typedId(firstUser + p)),
  );
  const out = new Array<PixelPlan>(count);
  for (let j = 0; j < count; j++) {
    const p = persons[j % persons.length] as { type: string; id: string };
    const campaign = CAP_CAMPAIGNS[Math.floor(j / persons.length) % CAP_CAMPAIGNS.length] as string;
    out[j] = { ...p, campaign, imp: `f-${j.toString(16).padStart(8, "0")}` };
  }
  return out;
}

/** What fetching the notice tokens took. */
export interface TokenFetch {
  readonly tokens: number;
  /** Batch lookups sent, those that asked again for entries answered degraded included. */
  readonly lookups: number;
  /**
   * Entries asked again because their answer came back degraded: a profile or counter read missed the
   * lookup's budget (LOOKUP_BUDGET_MS, 15 ms), which on a busy machine happens to a batch of hundreds now
   * and then. The token of such an answer is not used: only whole answers are.
   */
  readonly askedAgain: number;
  readonly ms: number;
}

interface EntryAnswer {
  id?: string | null;
  token?: string;
  degraded?: boolean;
  remaining?: Record<string, number | null>;
}

/**
 * One notice token per planned impression, as a bidder gets it: from a lookup naming the person and the
 * impression's campaign as the only candidate. Asked in batch lookups of up to TOKENS_PER_LOOKUP users of one
 * campaign (`{"campaigns":[c],"batch":[{"id","ids"}...]}`: a batch's candidates are its top-level
 * `campaigns`), each token for one impression (the compact and batch forms issue one use). Checks every
 * entry's answer: its own id, `remaining` for exactly that campaign (all of it left: no impression has been
 * recorded yet), and a token of its own (none twice in a batch). An entry answered degraded is asked again
 * in a later batch, so that the pool is built from whole answers only and no store read of these lookups is
 * still running when it is done. Returns the pixel URLs, `/v1/events/imp?token=…&campaign=…&imp=…`, in the
 * plans' order. Throws on the first wrong answer.
 */
export async function fetchNoticeTokens(
  baseUrl: string,
  plans: readonly PixelPlan[],
): Promise<{ events: PixelEvent[]; fetch: TokenFetch }> {
  const started = performance.now();
  const events = new Array<PixelEvent>(plans.length);
  let lookups = 0;
  let askedAgain = 0;
  let pending = plans.map((_, j) => j);
  for (let pass = 1; pending.length > 0; pass++) {
    if (pass > MAX_PASSES)
      throw new Error(`${pending.length} lookups for tokens still degraded after ${MAX_PASSES} passes`);
    const degraded: number[] = [];
    for (const chunk of chunksOf(plans, pending)) {
      const campaign = (plans[chunk[0] as number] as PixelPlan).campaign;
      const batch = chunk.map((j) => {
        const p = plans[j] as PixelPlan;
        return { id: String(j), ids: [{ type: p.type, id: p.id }] };
      });
      lookups++;
      const r = await fetch(`${baseUrl}/v1/lookup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ campaigns: [campaign], batch }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await r.text();
      if (r.status !== 200)
        throw new Error(`batch lookup for tokens answered ${r.status} ${text.slice(0, 300)}`);
      const results = (JSON.parse(text) as { results?: EntryAnswer[] }).results ?? [];
      if (results.length !== batch.length)
        throw new Error(`batch lookup of ${batch.length} users answered ${results.length} results`);
      const seen = new Set<string>();
      for (let k = 0; k < results.length; k++) {
        const a = results[k] as EntryAnswer;
        const j = chunk[k] as number;
        const problem = entryProblem(a, j, campaign, seen);
        if (problem !== null)
          throw new Error(
            `batch lookup for tokens, entry ${j}: ${problem}: ${JSON.stringify(a).slice(0, 300)}`,
          );
        const token = a.token as string;
        seen.add(token);
        if (a.degraded !== false) {
          degraded.push(j);
          continue;
        }
        const p = plans[j] as PixelPlan;
        events[j] = {
          ...p,
          path: `/v1/events/imp?token=${encodeURIComponent(token)}&campaign=${encodeURIComponent(p.campaign)}&imp=${p.imp}`,
        };
      }
    }
    askedAgain += degraded.length;
    pending = degraded;
  }
  return { events, fetch: { tokens: plans.length, lookups, askedAgain, ms: performance.now() - started } };
}

/** `indices` (ascending) cut into runs of one campaign of at most TOKENS_PER_LOOKUP. */
function chunksOf(plans: readonly PixelPlan[], indices: readonly number[]): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  for (const j of indices) {
    const first = cur[0];
    if (
      first !== undefined &&
      (cur.length === TOKENS_PER_LOOKUP ||
        (plans[first] as PixelPlan).campaign !== (plans[j] as PixelPlan).campaign)
    ) {
      out.push(cur);
      cur = [];
    }
    cur.push(j);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Why one batch entry's answer is wrong; null when it is right. */
function entryProblem(a: EntryAnswer, j: number, campaign: string, seen: ReadonlySet<string>): string | null {
  if (a.id !== String(j)) return `answered with id ${a.id}`;
  if (typeof a.token !== "string" || a.token === "") return "no token";
  if (seen.has(a.token)) return "a token already given to another entry of the batch";
  const left = Object.entries(a.remaining ?? {});
  if (left.length !== 1 || left[0]?.[0] !== campaign || left[0]?.[1] !== TIGHTEST)
    return `remaining ${JSON.stringify(a.remaining)}, expected {"${campaign}":${TIGHTEST}} (the batch's campaigns)`;
  return null;
}

/**
 * Sends each event once and checks it was stored and counted: the GET answers 204, then a compact lookup for
 * the same person on the same instance shows one impression fewer left for the campaign (each event is the
 * person's first of that campaign). Returns "ok/n".
 */
export async function verifyPixelEvents(
  baseUrl: string,
  events: readonly PixelEvent[],
  log: (line: string) => void,
): Promise<string> {
  let ok = 0;
  for (let i = 0; i < events.length; i++) {
    const ev = events[i] as PixelEvent;
    const r = await fetch(`${baseUrl}${ev.path}`, { signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    let problem: string | null = r.status === 204 ? null : `GET answered ${r.status} ${text.slice(0, 300)}`;
    if (problem === null) {
      const l = await fetch(`${baseUrl}/v1/lookup?campaigns=${ev.campaign}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: `verify-f-${i}`, ids: [{ type: ev.type, id: ev.id }] }),
        signal: AbortSignal.timeout(5000),
      });
      const answer = (await l.json()) as { remaining?: Record<string, number | null>; degraded?: boolean };
      const left = answer.remaining?.[ev.campaign];
      if (l.status !== 200 || answer.degraded !== false || left !== TIGHTEST - 1) {
        problem = `lookup after the event answered ${l.status} ${JSON.stringify(answer).slice(0, 300)}, expected remaining ${TIGHTEST - 1}`;
      }
    }
    if (problem === null) ok++;
    else if (ok === i) log(`    event ${i} (${ev.path.slice(0, 120)}…): ${problem}`);
  }
  return `${ok}/${events.length}`;
}
