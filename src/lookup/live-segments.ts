// Which of a person's memberships a bid-time answer may use: live, of the segment's active generation, never
// sensitive, first-party only after an opt-out of sale; with expansion, their non-sensitive ancestors too.
import type { CallerScope } from "../callers/caller-scope.ts";
import {
  type CachedProfile,
  flatCopy,
  type MembershipKinds,
  type PackedMemberships,
} from "../profiles/packed-profile.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";

export interface LiveSegmentRules {
  readonly snapshot: CatalogSnapshot;
  /** Epoch seconds of the answer. */
  nowSec: number;
  /** Add each segment's ancestors (membership of a child implies its parents). */
  readonly expand: boolean;
  /** Linked IDs below this confidence are left out of the person. */
  readonly minConfidence: number;
  /** The segments the caller may receive (second-party data per partner); null: every one. */
  readonly scope: CallerScope | null;
}

/**
 * Adds the usable segments of packed `memberships` (first-party ones only, unless `thirdParties`); true when
 * any was usable.
 */
export function addLive(
  memberships: PackedMemberships,
  kinds: MembershipKinds,
  segments: Set<string>,
  rules: LiveSegmentRules,
  thirdParties: boolean,
): boolean {
  const { snapshot, nowSec, scope } = rules;
  let live = false;
  for (let i = 0; i < memberships.length; ) {
    let k = memberships.charCodeAt(i++);
    if (k >= 0x8000) k = ((k & 0x7fff) << 15) | memberships.charCodeAt(i++);
    const expiresAt = memberships.charCodeAt(i) * 0x1_0000 + memberships.charCodeAt(i + 1);
    i += 2;
    if (expiresAt !== 0 && expiresAt <= nowSec) continue;
    const segment = kinds.segment[k] as string;
    if (kinds.generation[k] !== snapshot.activeGeneration(segment) || snapshot.isSensitive(segment)) continue;
    if (scope !== null && !scope.receives(segment)) continue;
    // After an opt-out of sale or sharing, only data the caller's own users gave it: a segment of no
    // known party is not assumed to be first-party.
    if (!thirdParties && snapshot.get(segment)?.party !== "first") continue;
    segments.add(segment);
    if (rules.expand) {
      for (const a of snapshot.ancestors(segment)) {
        if (
          !snapshot.isSensitive(a) &&
          (thirdParties || snapshot.get(a)?.party === "first") &&
          (scope === null || scope.receives(a))
        )
          segments.add(a);
      }
    }
    live = true;
  }
  return live;
}

/** Adds the usable segments of one ID's profile and of the person it carries; true when any was usable. */
export function addProfile(
  p: CachedProfile,
  kinds: MembershipKinds,
  segments: Set<string>,
  rules: LiveSegmentRules,
  thirdParties: boolean,
): boolean {
  if (typeof p === "string") return addLive(p, kinds, segments, rules, thirdParties);
  let live = addLive(p.own, kinds, segments, rules, thirdParties);
  // A linked ID carries its person: the other IDs' memberships, copied here at write time (one read).
  for (const member of p.members) {
    if (
      member.confidence >= rules.minConfidence &&
      addLive(member.packed, kinds, segments, rules, thirdParties)
    )
      live = true;
  }
  return live;
}

/** One profile's usable segments under one set of rules: sorted, and as the JSON array the answer writes. */
export interface LiveView {
  readonly segments: readonly string[];
  readonly json: string;
}

/** A view with what it was worked out for: it holds while all of these are the same. */
interface HeldView extends LiveView {
  readonly snapshot: CatalogSnapshot;
  readonly scope: CallerScope | null;
  readonly expand: boolean;
  readonly minConfidence: number;
  readonly thirdParties: boolean;
  /** The first second at which a used membership has expired (Infinity: none expires). */
  readonly until: number;
}

const NO_SEGMENTS: LiveView = Object.freeze({ segments: Object.freeze([]) as readonly string[], json: "[]" });

/** Where a view may be kept: the cache's slot beside the profile (profile-cache.ts memo and keepMemo). */
export interface ViewHolder {
  memo(slot: number, p: CachedProfile, kinds: MembershipKinds): unknown;
  keepMemo(slot: number, p: CachedProfile, kinds: MembershipKinds, memo: unknown, bytes: number): void;
}

/**
 * The usable segments of one ID's profile and of the person it carries (what addProfile adds), sorted as
 * the answer lists them. Empty when nothing is usable. Cached profiles are asked for the same answer over
 * and over: with a `holder` and the profile's `slot` there, the view is worked out once per catalog snapshot
 * and rules, and kept beside the profile (dropped with it) until a membership it used expires.
 */
export function liveView(
  p: CachedProfile,
  kinds: MembershipKinds,
  rules: LiveSegmentRules,
  thirdParties: boolean,
  holder: ViewHolder | null = null,
  slot = -1,
): LiveView {
  // No slot: the profile is not cached (CACHE_TTL_MS=0), so no one asks again.
  if (holder === null || slot < 0) return viewOf(p, kinds, rules, thirdParties);
  const held = holder.memo(slot, p, kinds) as HeldView | undefined;
  if (
    held !== undefined &&
    held.snapshot === rules.snapshot &&
    held.scope === rules.scope &&
    held.expand === rules.expand &&
    held.minConfidence === rules.minConfidence &&
    held.thirdParties === thirdParties &&
    rules.nowSec < held.until
  )
    return held;
  const fresh = viewOf(p, kinds, rules, thirdParties);
  if (fresh === NO_SEGMENTS) return fresh;
  const view: HeldView = {
    segments: fresh.segments,
    json: fresh.json,
    snapshot: rules.snapshot,
    scope: rules.scope,
    expand: rules.expand,
    minConfidence: rules.minConfidence,
    thirdParties,
    until: firstExpiry(p, rules),
  };
  holder.keepMemo(slot, p, kinds, view, viewBytes(view));
  return view;
}

/**
 * Heap bytes of a kept view: the object (header and eight fields, 88), the segments array (32, and its store:
 * 16 and 8 a segment; the segment strings are the catalog's, shared) and the JSON string, one byte a char
 * (segment ids are ASCII; a wider one counts short, which only CACHE_MAX_BYTES' accuracy pays for). Within a
 * few bytes of what loadtest/sizing.ts measures.
 */
function viewBytes(v: HeldView): number {
  return 136 + 8 * v.segments.length + 16 + ((v.json.length + 7) & ~7);
}

function viewOf(
  p: CachedProfile,
  kinds: MembershipKinds,
  rules: LiveSegmentRules,
  thirdParties: boolean,
): LiveView {
  const set = new Set<string>();
  if (!addProfile(p, kinds, set, rules, thirdParties)) return NO_SEGMENTS;
  // Exactly as long as needed: a spread grows its array as a push does, half again, and a held view keeps it.
  const segments = new Array<string>(set.size);
  let i = 0;
  for (const segment of set) segments[i++] = segment;
  segments.sort();
  // A flat copy: JSON.stringify's result of more than a few segments is a cons string of its parts.
  return { segments, json: flatCopy(JSON.stringify(segments)) };
}

/**
 * When the view stops holding: the earliest expiry among the memberships still live now. Those left out
 * for any other reason (generation, sensitivity, scope, party) stay out under the same snapshot and rules,
 * and those already expired stay expired.
 */
function firstExpiry(p: CachedProfile, rules: LiveSegmentRules): number {
  if (typeof p === "string") return earliestAfter(p, rules.nowSec, Number.POSITIVE_INFINITY);
  let until = earliestAfter(p.own, rules.nowSec, Number.POSITIVE_INFINITY);
  for (const member of p.members)
    if (member.confidence >= rules.minConfidence) until = earliestAfter(member.packed, rules.nowSec, until);
  return until;
}

/** The earliest expiry after nowSec in packed memberships, if earlier than `until`. */
function earliestAfter(packed: PackedMemberships, nowSec: number, until: number): number {
  for (let i = 0; i < packed.length; ) {
    if (packed.charCodeAt(i++) >= 0x8000) i++;
    const e = packed.charCodeAt(i) * 0x1_0000 + packed.charCodeAt(i + 1);
    i += 2;
    if (e > nowSec && e < until) until = e;
  }
  return until;
}
