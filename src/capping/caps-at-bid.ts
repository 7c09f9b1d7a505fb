// At bid time: which campaigns this person has reached the cap of, and how many impressions each candidate
// campaign has left. Only campaigns the person has impressions of can be capped, so only their rules are
// evaluated, however many rules exist.
import type { CatalogSnapshot } from "../segments/catalog.ts";
import { type CounterIndex, evaluateCampaigns, indexOf } from "./cap-windows.ts";
import type { Counters } from "./counters.ts";

export interface CapAnswer {
  /** Campaign ids whose campaign-level cap is reached, sorted. */
  readonly capped: string[];
  /** Per candidate campaign: impressions left before its tightest cap; null when it has no cap. */
  readonly remaining: Record<string, number | null> | null;
}

export function capsFor(
  snapshot: CatalogSnapshot,
  counters: Counters | CounterIndex,
  candidates: readonly string[] | null,
  nowSec: number,
): CapAnswer {
  const index = indexOf(counters);
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
