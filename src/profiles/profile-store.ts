// The interface every profile store implements (in-memory and Redis); one contract suite tests them all.
import type { Counters } from "../capping/counters.ts";
import type { LinkedMember, Membership, MembershipOp, Profile } from "./profile-codec.ts";

/** What a write did not do (IDs that opted out are never written again), and what it leaves to do. */
export interface ApplyResult {
  readonly skippedKeys: readonly string[];
  /** Changed IDs that are linked to others: their new memberships are to be copied to their person. */
  readonly linkedKeys: readonly string[];
}

/** One edge of the identity graph, as each of its two IDs holds it. */
export interface LinkEdge {
  /** 1 = deterministic (a login, a CRM match); below 1 = probabilistic. */
  readonly confidence: number;
  readonly source: string;
}

/** Adds (edge) or removes (null) the link between two IDs, on both sides. */
export interface LinkChange {
  readonly a: string;
  readonly b: string;
  readonly edge: LinkEdge | null;
}

/** A newer copy of one ID's own memberships for a profile linked to it. */
export interface OriginUpdate {
  readonly target: string;
  readonly origin: string;
  readonly version: number;
  readonly memberships: readonly Membership[];
}

export interface ProfileStore {
  /** "memory" or "redis": shown in /healthz and the start-up log. */
  readonly kind: string;
  /**
   * Reads the profiles of many typed IDs in one round trip, in the order asked.
   * null where the ID has no profile. Memberships expired at `nowSec` are left out.
   * Rejects when the store cannot answer (the caller degrades).
   */
  readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]>;
  /** Applies membership changes; each key's changes are applied atomically. Opted-out IDs are skipped. */
  applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult>;
  /**
   * Erases these IDs' memberships, counters, links and impression markers and records their opt-out,
   * atomically per ID, so that later loads skip them. Resolves the number of IDs that had a profile.
   * (Removing the ID from its person's other IDs is the identity graph's part.)
   */
  optOut(keys: readonly string[], nowSec: number): Promise<number>;
  /** Whether the ID has opted out. */
  isOptedOut(key: string): Promise<boolean>;
  /**
   * Counts one impression for a person: increments `fields` (counters.ts fieldsFor) unless impression id
   * `imp` was already counted for this person within `dedupTtlSec`. Dedup and counting are one atomic step.
   * Resolves true when counted, false for a duplicate.
   */
  recordImpression(
    personKey: string,
    imp: string,
    fields: readonly string[],
    dedupTtlSec: number,
    nowSec: number,
  ): Promise<boolean>;
  /** A person's impression counters (empty when none). */
  readCounters(personKey: string, nowSec: number): Promise<Counters>;
  /** Adds `delta` to the counters held under each key (merging two persons' counts when they are linked). */
  addCounters(keys: readonly string[], delta: Counters): Promise<void>;
  /** Drops the counters held under these keys. */
  deleteCounters(keys: readonly string[]): Promise<void>;

  // The identity graph's primitives; its rules live in identity/identity-graph.ts, once for every store.
  /** Each ID's links (an empty map for an ID with none), in one round trip. */
  readLinks(keys: readonly string[]): Promise<Map<string, Map<string, LinkEdge>>>;
  /** Writes link changes on both sides of each edge. */
  writeLinks(changes: readonly LinkChange[]): Promise<void>;
  /** Replaces copies of origins' memberships where older (profile-codec.ts putOrigin); opted-out IDs untouched. */
  putOrigins(updates: readonly OriginUpdate[], nowSec: number): Promise<void>;
  /** Sets each ID's person (profile-codec.ts setMembers); an empty list unlinks it. Opted-out IDs untouched. */
  setMembers(
    views: readonly { key: string; members: readonly LinkedMember[] }[],
    nowSec: number,
  ): Promise<void>;
  /** Resolves true when the store answers. Never rejects. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Groups ops by key, keeping their order, so each key is changed in one step. */
export function groupByKey(ops: readonly MembershipOp[]): Map<string, MembershipOp[]> {
  const byKey = new Map<string, MembershipOp[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  return byKey;
}
