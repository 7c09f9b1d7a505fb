// Where the taxonomy and segment generations live: a few small Redis hashes (or memory), read whole.
import type { Cluster, Redis } from "ioredis";
import { type CapRule, scopeKey } from "../capping/cap-rule.ts";
import type { DealRuleDef } from "./deal-rule.ts";
import type { SegmentDef } from "./segment-def.ts";

export interface CatalogData {
  readonly segments: SegmentDef[];
  readonly generations: Map<string, number>;
  readonly capRules: CapRule[];
  readonly dealRules: DealRuleDef[];
}

export interface CatalogStore {
  load(): Promise<CatalogData>;
  /** Inserts or replaces these segment definitions. */
  putSegments(defs: readonly SegmentDef[]): Promise<void>;
  /** Resolves false when there was no such segment. */
  deleteSegment(id: string): Promise<boolean>;
  /** A generation number never handed out before (for a replace load). */
  nextGeneration(): Promise<number>;
  /** Makes these generations live, all in one step. */
  activateGenerations(generations: ReadonlyMap<string, number>): Promise<void>;
  /** Inserts or replaces these cap rules (one per campaign / line item / creative). */
  putCapRules(rules: readonly CapRule[]): Promise<void>;
  /** Removes every rule of a campaign; resolves how many there were. */
  deleteCapRules(campaign: string): Promise<number>;
  /** Inserts or replaces these deal rules (by deal id). */
  putDealRules(rules: readonly DealRuleDef[]): Promise<void>;
  /** Resolves false when there was no such deal rule. */
  deleteDealRule(id: string): Promise<boolean>;
}

export class MemoryCatalogStore implements CatalogStore {
  readonly #segments = new Map<string, SegmentDef>();
  readonly #generations = new Map<string, number>();
  readonly #caps = new Map<string, CapRule>();
  readonly #deals = new Map<string, DealRuleDef>();
  #sequence = 0;

  async load(): Promise<CatalogData> {
    return {
      segments: [...this.#segments.values()],
      generations: new Map(this.#generations),
      capRules: [...this.#caps.values()],
      dealRules: [...this.#deals.values()],
    };
  }

  async putDealRules(rules: readonly DealRuleDef[]): Promise<void> {
    for (const r of rules) this.#deals.set(r.id, r);
  }

  async deleteDealRule(id: string): Promise<boolean> {
    return this.#deals.delete(id);
  }

  async putCapRules(rules: readonly CapRule[]): Promise<void> {
    for (const r of rules) this.#caps.set(scopeKey(r), r);
  }

  async deleteCapRules(campaign: string): Promise<number> {
    let n = 0;
    for (const [k, r] of this.#caps) {
      if (r.campaign === campaign) {
        this.#caps.delete(k);
        n++;
      }
    }
    return n;
  }

  async putSegments(defs: readonly SegmentDef[]): Promise<void> {
    for (const d of defs) this.#segments.set(d.id, d);
  }

  async deleteSegment(id: string): Promise<boolean> {
    return this.#segments.delete(id);
  }

  async nextGeneration(): Promise<number> {
    return ++this.#sequence;
  }

  async activateGenerations(generations: ReadonlyMap<string, number>): Promise<void> {
    for (const [s, g] of generations) this.#generations.set(s, g);
  }
}

/** Keys: the taxonomy hash (id → JSON), the active generations hash (id → n), the generation sequence. */
export const CATALOG_KEYS = {
  segments: "cat:segments",
  generations: "cat:generations",
  sequence: "cat:generation-seq",
  capRules: "cat:caps",
  dealRules: "cat:deals",
} as const;

export class RedisCatalogStore implements CatalogStore {
  constructor(readonly redis: Redis | Cluster) {}

  async load(): Promise<CatalogData> {
    const [segs, gens, caps, deals] = await Promise.all([
      this.redis.hgetall(CATALOG_KEYS.segments),
      this.redis.hgetall(CATALOG_KEYS.generations),
      this.redis.hgetall(CATALOG_KEYS.capRules),
      this.redis.hgetall(CATALOG_KEYS.dealRules),
    ]);
    return {
      segments: Object.values(segs).map((json) => JSON.parse(json) as SegmentDef),
      generations: new Map(Object.entries(gens).map(([s, g]) => [s, Number(g)])),
      capRules: Object.values(caps).map((json) => JSON.parse(json) as CapRule),
      dealRules: Object.values(deals).map((json) => JSON.parse(json) as DealRuleDef),
    };
  }

  async putDealRules(rules: readonly DealRuleDef[]): Promise<void> {
    if (rules.length === 0) return;
    const fields: string[] = [];
    for (const r of rules) fields.push(r.id, JSON.stringify(r));
    await this.redis.hset(CATALOG_KEYS.dealRules, ...fields);
  }

  async deleteDealRule(id: string): Promise<boolean> {
    return (await this.redis.hdel(CATALOG_KEYS.dealRules, id)) === 1;
  }

  async putCapRules(rules: readonly CapRule[]): Promise<void> {
    if (rules.length === 0) return;
    const fields: string[] = [];
    for (const r of rules) fields.push(scopeKey(r), JSON.stringify(r));
    await this.redis.hset(CATALOG_KEYS.capRules, ...fields);
  }

  async deleteCapRules(campaign: string): Promise<number> {
    const prefix = `${campaign}|`;
    const fields = (await this.redis.hkeys(CATALOG_KEYS.capRules)).filter((f) => f.startsWith(prefix));
    return fields.length === 0 ? 0 : this.redis.hdel(CATALOG_KEYS.capRules, ...fields);
  }

  async putSegments(defs: readonly SegmentDef[]): Promise<void> {
    if (defs.length === 0) return;
    const fields: string[] = [];
    for (const d of defs) fields.push(d.id, JSON.stringify(d));
    await this.redis.hset(CATALOG_KEYS.segments, ...fields);
  }

  async deleteSegment(id: string): Promise<boolean> {
    return (await this.redis.hdel(CATALOG_KEYS.segments, id)) === 1;
  }

  async nextGeneration(): Promise<number> {
    return this.redis.incr(CATALOG_KEYS.sequence);
  }

  async activateGenerations(generations: ReadonlyMap<string, number>): Promise<void> {
    if (generations.size === 0) return;
    const fields: (string | number)[] = [];
    for (const [s, g] of generations) fields.push(s, g);
    // One HSET: every segment of a provider-wide replace flips in the same instant.
    await this.redis.hset(CATALOG_KEYS.generations, ...fields);
  }
}
