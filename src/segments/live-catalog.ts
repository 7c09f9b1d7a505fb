// Holds the current catalog snapshot of this process and swaps it when the stored catalog changes.
import { CatalogSnapshot } from "./catalog.ts";
import type { CatalogStore } from "./catalog-store.ts";

export class LiveCatalog {
  #snapshot = CatalogSnapshot.empty();

  /**
   * @param beforeGenerationsChange runs before a snapshot with other active generations is swapped in.
   *   The cache is cleared there: profiles cached earlier may lack a replace's new rows, and until the swap
   *   lookups still use the old generation, whose rows are all in place.
   */
  constructor(
    readonly store: CatalogStore,
    readonly beforeGenerationsChange: () => void = () => {},
  ) {}

  /** The snapshot to use for one whole request or load. */
  get current(): CatalogSnapshot {
    return this.#snapshot;
  }

  /** Reads the stored catalog and swaps it in; the old snapshot stays valid for whoever holds it. */
  async reload(): Promise<CatalogSnapshot> {
    const data = await this.store.load();
    const next = new CatalogSnapshot(data.segments, data.generations, data.capRules, data.dealRules);
    if (!sameGenerations(this.#snapshot.generations(), next.generations())) this.beforeGenerationsChange();
    this.#snapshot = next;
    return next;
  }
}

function sameGenerations(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [s, g] of a) if (b.get(s) !== g) return false;
  return true;
}
