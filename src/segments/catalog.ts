// The segment catalog as one immutable snapshot: taxonomy, ancestors, and each segment's active generation.
// A lookup takes the snapshot once and uses it throughout, so a swap mid-request cannot mix two loads.
import type { CapRule } from "../capping/cap-rule.ts";
import { DealIndex } from "./deal-index.ts";
import type { DealRuleDef } from "./deal-rule.ts";
import type { SegmentDef } from "./segment-def.ts";

export class CatalogSnapshot {
  readonly #defs: ReadonlyMap<string, SegmentDef>;
  readonly #generations: ReadonlyMap<string, number>;
  readonly #ancestors = new Map<string, readonly string[]>();
  readonly #sensitive: ReadonlySet<string>;
  readonly #capRules: readonly CapRule[];
  readonly #capRulesByCampaign = new Map<string, CapRule[]>();
  /** Deal rules, compiled once for this snapshot. */
  readonly deals: DealIndex;

  constructor(
    defs: readonly SegmentDef[],
    generations: ReadonlyMap<string, number>,
    capRules: readonly CapRule[] = [],
    dealRules: readonly DealRuleDef[] = [],
  ) {
    this.deals = new DealIndex(dealRules);
    this.#capRules = capRules;
    for (const r of capRules) {
      const list = this.#capRulesByCampaign.get(r.campaign);
      if (list === undefined) this.#capRulesByCampaign.set(r.campaign, [r]);
      else list.push(r);
    }
    this.#defs = new Map(defs.map((d) => [d.id, d]));
    this.#generations = generations;
    this.#sensitive = new Set(defs.filter((d) => d.sensitive).map((d) => d.id));
    for (const d of defs) this.#ancestors.set(d.id, this.#walkUp(d));
  }

  static empty(): CatalogSnapshot {
    return new CatalogSnapshot([], new Map());
  }

  get size(): number {
    return this.#defs.size;
  }

  get(id: string): SegmentDef | undefined {
    return this.#defs.get(id);
  }

  has(id: string): boolean {
    return this.#defs.has(id);
  }

  all(): SegmentDef[] {
    return [...this.#defs.values()];
  }

  /** The generation whose memberships of `segment` are live; 0 until a replace has run. */
  activeGeneration(segment: string): number {
    return this.#generations.get(segment) ?? 0;
  }

  generations(): ReadonlyMap<string, number> {
    return this.#generations;
  }

  /** Segments that are never activated, whatever the consent. */
  isSensitive(segment: string): boolean {
    return this.#sensitive.has(segment);
  }

  /** Parent, grandparent, … of a segment (nearest first); [] for a root or an unknown segment. */
  ancestors(segment: string): readonly string[] {
    return this.#ancestors.get(segment) ?? [];
  }

  /** Every frequency-cap rule. */
  capRules(): readonly CapRule[] {
    return this.#capRules;
  }

  /** The cap rules of one campaign (for the campaign itself, its line items and creatives). */
  capRulesOf(campaign: string): readonly CapRule[] {
    return this.#capRulesByCampaign.get(campaign) ?? [];
  }

  /** Segments of a provider (a provider-wide replace swaps all of them). */
  segmentsOf(provider: string): string[] {
    return [...this.#defs.values()].filter((d) => d.provider === provider).map((d) => d.id);
  }

  #walkUp(d: SegmentDef): string[] {
    const out: string[] = [];
    const seen = new Set([d.id]);
    let parent = d.parent;
    // A cycle cannot be imported (taxonomy-file.ts refuses it), but a bad hand edit in Redis must not hang us.
    while (parent !== null && !seen.has(parent)) {
      out.push(parent);
      seen.add(parent);
      parent = this.#defs.get(parent)?.parent ?? null;
    }
    return out;
  }
}
