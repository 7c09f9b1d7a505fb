// At bid time: which campaigns this person has reached the cap of, and how many impressions each candidate
// campaign has left. Only campaigns the person has impressions of can be capped, so only their rules are
// evaluated, however many rules exist.
import type { CatalogSnapshot } from "../segments/catalog.ts";
import { type CounterIndex, evaluateCampaigns, evaluateRule, indexOf } from "./cap-windows.ts";
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
  const capped: string[] = [];
  for (const [campaign, state] of evaluateCampaigns(rules, index, nowSec)) {
    if (state.capped) capped.push(campaign);
  }
  capped.sort();
  if (candidates === null) return { capped, remaining: null };
  const remaining: Record<string, number | null> = {};
  for (const c of candidates) {
    let left: number | null = null;
    for (const rule of snapshot.capRulesOf(c)) {
      if (rule.lineItem !== null || rule.creative !== null) continue;
      const r = evaluateRule(rule, index, nowSec).remaining;
      left = left === null ? r : Math.min(left, r);
    }
    remaining[c] = left;
  }
  return { capped, remaining };
}
