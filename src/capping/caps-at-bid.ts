// At bid time: which campaigns this person has reached the cap of, and how many impressions each candidate
// campaign has left. Only campaigns the person has impressions of can be capped, so only their rules are
// evaluated, however many rules exist.
import type { CatalogSnapshot } from "../segments/catalog.ts";
import { CounterIndex, evaluateCampaigns, indexOf, windowClock } from "./cap-windows.ts";
import type { Counters } from "./counters.ts";

export interface CapAnswer {
  /** Campaign ids whose campaign-level cap is reached, sorted. */
  readonly capped: string[];
  /** Per candidate campaign: impressions left before its tightest cap; null when it has no cap. */
  readonly remaining: Record<string, number | null> | null;
}

/** An answer with what it was worked out for: it holds for the same snapshot and candidates until `until`. */
interface HeldAnswer {
  readonly snapshot: CatalogSnapshot;
  readonly candidates: readonly string[] | null;
  /** The second it was worked out for: a clock that goes back (another worker's, a test's) works it out again. */
  readonly from: number;
  /** The first second at which a window's count may differ (cap-windows.ts windowClock). */
  readonly until: number;
  readonly answer: CapAnswer;
}

/**
 * A person's cached counters are asked the same question over and over (a lookup per bid request, the same
 * candidates from one bidder): the answer is kept beside the counters' index, dropped with it when an
 * impression changes them, and worked out again once a window's edge has moved. Answers are shared: never
 * changed once given.
 */
const held = new WeakMap<CounterIndex, HeldAnswer>();

export function capsFor(
  snapshot: CatalogSnapshot,
  counters: Counters | CounterIndex,
  candidates: readonly string[] | null,
  nowSec: number,
): CapAnswer {
  if (!(counters instanceof CounterIndex)) return evaluate(snapshot, indexOf(counters), candidates, nowSec);
  const last = held.get(counters);
  if (
    last !== undefined &&
    last.snapshot === snapshot &&
    last.candidates === candidates &&
    nowSec >= last.from &&
    nowSec < last.until
  )
    return last.answer;
  windowClock.changesAt = Number.POSITIVE_INFINITY;
  const answer = evaluate(snapshot, counters, candidates, nowSec);
  held.set(counters, { snapshot, candidates, from: nowSec, until: windowClock.changesAt, answer });
  return answer;
}

function evaluate(
  snapshot: CatalogSnapshot,
  index: CounterIndex,
  candidates: readonly string[] | null,
  nowSec: number,
): CapAnswer {
  const rules = [];
  for (const campaign of index.campaigns()) rules.push(...snapshot.capRulesOf(campaign));
  const states = evaluateCampaigns(rules, index, nowSec);
  const capped: string[] = [];
  for (const [campaign, state] of states) if (state.capped) capped.push(campaign);
  capped.sort();
  if (candidates === null) return { capped, remaining: null };
  const remaining: Record<string, number | null> = {};
  for (const c of candidates) {
    const state = states.get(c);
    if (state !== undefined) {
      remaining[c] = state.remaining;
      continue;
    }
    // No impressions of this campaign: what is left is its tightest campaign-level max, if it has a cap.
    let left: number | null = null;
    for (const rule of snapshot.capRulesOf(c)) {
      if (rule.lineItem !== null || rule.creative !== null) continue;
      for (const w of rule.windows) left = left === null ? w.max : Math.min(left, w.max);
    }
    remaining[c] = left;
  }
  return { capped, remaining };
}
