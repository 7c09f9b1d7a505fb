// What each invalidation message (invalidation-bus.ts) does to this instance's caches: the one place that maps
// a change in the store to the entries it makes wrong.
import type { Invalidation } from "./profiles/invalidation-bus.ts";

export interface InvalidationTargets {
  /** Drops these IDs' profiles. */
  readonly profiles: { invalidate(keys: Iterable<string>): void };
  /** Drops these IDs' impression counters, or all of them. */
  readonly counters: { invalidate(key: string): void; clear(): void };
  /** Re-reads the catalog (taxonomy, generations, cap and deal rules). */
  reloadCatalog(): void;
}

/**
 * Drops what changed: a changed ID drops its profile and its counters (linking two IDs changes both, and an
 * erasure removes both: identity-graph.ts); a recorded impression drops only the counters, since the profile
 * is unchanged and impressions are far too frequent to empty the profile cache for.
 */
export function dropChanged(targets: InvalidationTargets, msg: Invalidation): void {
  switch (msg.t) {
    case "keys":
      targets.profiles.invalidate(msg.keys);
      for (const k of msg.keys) targets.counters.invalidate(k);
      return;
    case "counters":
      for (const k of msg.keys) targets.counters.invalidate(k);
      return;
    case "catalog":
      targets.reloadCatalog();
      return;
    default:
      // A message from a newer version of the service: nothing here knows what it would drop.
      return;
  }
}

/**
 * After the subscriber was away, whatever was published meanwhile is lost. Every counter is dropped: no
 * instance then serves counts older than the outage (the hot people are read again once). Profiles are not:
 * loads and erasures are rare next to impressions, their cache is far larger (its refill would land on a Redis
 * that just came back), and CACHE_TTL_MS bounds what a lost message costs them; the catalog has its own
 * safety net, the reload every CATALOG_RELOAD_MS.
 */
export function afterMissedMessages(targets: InvalidationTargets): void {
  targets.counters.clear();
}
