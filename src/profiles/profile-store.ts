// The interface every profile store implements (in-memory and Redis); one contract suite tests them all.
import type { CounterWrite } from "../capping/cap-windows.ts";
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

/** A notice token's uses, checked and spent in the same atomic step as the count it allows. */
export interface NoticeUse {
  /** The token's nonce (base64url): its uses are kept under it, per person. */
  readonly nonce: string;
  /** Distinct impression ids the token may count; a further one is a replay. */
  readonly uses: number;
  /** When the token lapses (epoch s): its uses are kept that long. */
  readonly expiresAtSec: number;
}

/** One impression to count for one person. */
export interface ImpressionWrite {
  /** The exchange's impression id: the same id again is a duplicate, counted once. */
  readonly imp: string;
  /** What the counters get (cap-windows.ts counterWrite). */
  readonly counters: CounterWrite;
  /** How long the impression id is remembered. */
  readonly dedupTtlSec: number;
  /** The notice token that names the person, or null (a credentialed or open event). */
  readonly notice: NoticeUse | null;
}

/**
 * What recordImpression did: counted; a duplicate of a counted impression id; nothing because the ID opted
 * out; nothing because the notice token has no use left (replayed); nothing because the person's counter
 * hash is full (counters.ts MAX_COUNTER_FIELDS).
 */
export type ImpressionOutcome = "counted" | "duplicate" | "opted_out" | "replayed" | "full";

/** A person's counters for bid time, read with the opt-out state of the same ID. */
export interface CounterState {
  readonly counters: Counters;
  /** The ID opted out: nothing about it is handed out (no `remaining`, no token). */
  readonly optedOut: boolean;
}

/** What a store is: shown in /healthz, /readyz, /status.json and the start-up log. */
export const STORE_KINDS = ["memory", "redis", "redis-cluster"] as const;

export type StoreKind = (typeof STORE_KINDS)[number];

export interface ProfileStore {
  readonly kind: StoreKind;
  /**
   * Reads the profiles of many typed IDs in one round trip, in the order asked.
   * null where the ID has no profile. Memberships expired at `nowSec` are left out.
   * Rejects when the store cannot answer (the caller degrades).
   */
  readProfiles(keys: readonly string[], nowSec: number): Promise<(Profile | null)[]>;
  /** Applies membership changes; each key's changes are applied atomically. Opted-out IDs are skipped. */
  applyMemberships(ops: readonly MembershipOp[], nowSec: number): Promise<ApplyResult>;
  /**
   * The same for ops already grouped by ID, each ID's in the order they apply: a bulk load groups its rows as
   * it reads them. Calls apply in the order they are made, also while earlier ones are still in flight, so a
   * later call's change to an ID always lands after an earlier call's.
   */
  applyMembershipGroups(
    groups: ReadonlyMap<string, readonly MembershipOp[]>,
    nowSec: number,
  ): Promise<ApplyResult>;
  /**
   * Erases these IDs' memberships, counters, links, impression markers and notice-token uses (exact keys, never
   * a pattern) and records their opt-out, atomically per ID, so that later loads skip them. Resolves the number of IDs that had a profile.
   * (Removing the ID from its person's other IDs is the identity graph's part.)
   */
  optOut(keys: readonly string[], nowSec: number): Promise<number>;
  /** Whether the ID has opted out. */
  isOptedOut(key: string): Promise<boolean>;
  /**
   * Counts one impression for a person, in one atomic step: nothing when the ID opted out, the impression id
   * was counted within `dedupTtlSec` (a duplicate), the notice token has no use left, or the counter hash is
   * full; else the token's use, the impression id and the counter writes, pruning buckets as it goes
   * (counters.ts describes the rules). Never reads the whole counter hash.
   */
  recordImpression(personKey: string, write: ImpressionWrite, nowSec: number): Promise<ImpressionOutcome>;
  /** A person's impression counters (empty when none); never the prune marks. */
  readCounters(personKey: string, nowSec: number): Promise<Counters>;
  /** readCounters and whether the ID opted out, in one round trip (bid time). */
  readCounterState(personKey: string, nowSec: number): Promise<CounterState>;
  /**
   * Adds `delta` to the counters held under each key (merging two persons' counts when they are linked).
   * Opted-out IDs get nothing; buckets below a key's prune mark are dropped, and the mark covers the rest.
   */
  addCounters(keys: readonly string[], delta: Counters): Promise<void>;
  /** Drops the counters held under these keys. */
  deleteCounters(keys: readonly string[]): Promise<void>;

  // The identity graph's primitives; its rules live in identity/identity-graph.ts, once for every store.
  /** Each ID's links (an empty map for an ID with none), in one round trip. */
  readLinks(keys: readonly string[]): Promise<Map<string, Map<string, LinkEdge>>>;
  /**
   * Writes link changes on both sides of each edge. An added edge that touches an opted-out ID is not
   * written (checked in the same atomic step as each side's write; a side already written is taken back):
   * resolves those changes. Removals always go through.
   */
  writeLinks(changes: readonly LinkChange[]): Promise<LinkChange[]>;
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
