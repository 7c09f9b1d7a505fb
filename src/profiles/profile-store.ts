// The interface every profile store implements (in-memory and Redis); one contract suite tests them all.
import type { Counters } from "../capping/counters.ts";
import type { MembershipOp, Profile } from "./profile-codec.ts";

/** What a write did not do: IDs that opted out are never written again. */
export interface ApplyResult {
  readonly skippedKeys: readonly string[];
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
   * Erases these IDs' memberships and records their opt-out, atomically per ID, so that later loads skip
   * them. Resolves the number of IDs that had a profile.
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
