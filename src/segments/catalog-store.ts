// Where the taxonomy and segment generations live: a few small Redis hashes (or memory), read whole.
import type { Redis } from "ioredis";
import type { SegmentDef } from "./segment-def.ts";

export interface CatalogData {
  readonly segments: SegmentDef[];
  readonly generations: Map<string, number>;
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
}

export class MemoryCatalogStore implements CatalogStore {
  readonly #segments = new Map<string, SegmentDef>();
  readonly #generations = new Map<string, number>();
  #sequence = 0;

  async load(): Promise<CatalogData> {
    return { segments: [...this.#segments.values()], generations: new Map(this.#generations) };
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
} as const;

export class RedisCatalogStore implements CatalogStore {
  constructor(readonly redis: Redis) {}

  async load(): Promise<CatalogData> {
    const [segs, gens] = await Promise.all([
      this.redis.hgetall(CATALOG_KEYS.segments),
      this.redis.hgetall(CATALOG_KEYS.generations),
    ]);
    return {
      segments: Object.values(segs).map((json) => JSON.parse(json) as SegmentDef),
      generations: new Map(Object.entries(gens).map(([s, g]) => [s, Number(g)])),
    };
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
