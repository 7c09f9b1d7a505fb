// Which segments one bid-time caller may receive, worked out once per catalog snapshot rather than per
// segment per request: second-party data only for the provider's own partner (enrich-callers.ts mayReceive).
import type { EnrichCaller } from "../enrich/enrich-callers.ts";
import { mayReceive } from "../enrich/enrich-callers.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";

/** A caller's view of the catalog's segments; null (see CallerScopes.of) when it may receive every one. */
export interface CallerScope {
  receives(segment: string): boolean;
}

/** Only the segments listed: a caller without `*` gets the providers it names, and no unknown segment. */
class AllowOnly implements CallerScope {
  constructor(readonly allowed: ReadonlySet<string>) {}
  receives(segment: string): boolean {
    return this.allowed.has(segment);
  }
}

/** All but the segments listed: a caller with `*` misses other partners' second-party segments. */
class AllBut implements CallerScope {
  constructor(readonly denied: ReadonlySet<string>) {}
  receives(segment: string): boolean {
    return !this.denied.has(segment);
  }
}

/**
 * Scopes of every caller for the current snapshot, rebuilt when the snapshot changes. A caller with `*` in a
 * catalog holding no second-party segment of another provider gets null: nothing is checked per segment.
 */
export class CallerScopes {
  #snapshot: CatalogSnapshot | null = null;
  readonly #byCaller = new Map<EnrichCaller, CallerScope | null>();

  of(caller: EnrichCaller, snapshot: CatalogSnapshot): CallerScope | null {
    if (snapshot !== this.#snapshot) {
      this.#snapshot = snapshot;
      this.#byCaller.clear();
    }
    let scope = this.#byCaller.get(caller);
    if (scope === undefined) {
      scope = scopeOf(caller, snapshot);
      this.#byCaller.set(caller, scope);
    }
    return scope;
  }
}

function scopeOf(caller: EnrichCaller, snapshot: CatalogSnapshot): CallerScope | null {
  const segments = snapshot.all();
  if (!caller.allOpen) {
    const allowed = new Set<string>();
    for (const d of segments) if (mayReceive(caller, d.provider, d.party)) allowed.add(d.id);
    return new AllowOnly(allowed);
  }
  const denied = new Set<string>();
  for (const d of segments) if (!mayReceive(caller, d.provider, d.party)) denied.add(d.id);
  return denied.size === 0 ? null : new AllBut(denied);
}
