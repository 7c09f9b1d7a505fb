// Which of a person's memberships a bid-time answer may use: live, of the segment's active generation, never
// sensitive, first-party only after an opt-out of sale; with expansion, their non-sensitive ancestors too.
import type { CallerScope } from "../callers/caller-scope.ts";
import type { Membership, Profile } from "../profiles/profile-codec.ts";
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
 * Adds the usable segments of `memberships` (first-party ones only, unless `thirdParties`); true when any
 * was usable.
 */
export function addLive(
  memberships: readonly Membership[],
  segments: Set<string>,
  rules: LiveSegmentRules,
  thirdParties: boolean,
): boolean {
  const { snapshot, nowSec, scope } = rules;
  let live = false;
  for (const m of memberships) {
    if (m.expiresAt !== 0 && m.expiresAt <= nowSec) continue;
    if (m.generation !== snapshot.activeGeneration(m.segment) || snapshot.isSensitive(m.segment)) continue;
    if (scope !== null && !scope.receives(m.segment)) continue;
    // After an opt-out of sale or sharing, only data the caller's own users gave it: a segment of no
    // known party is not assumed to be first-party.
    if (!thirdParties && snapshot.get(m.segment)?.party !== "first") continue;
    segments.add(m.segment);
    if (rules.expand) {
      for (const a of snapshot.ancestors(m.segment)) {
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
  p: Profile,
  segments: Set<string>,
  rules: LiveSegmentRules,
  thirdParties: boolean,
): boolean {
  let live = addLive(p.memberships, segments, rules, thirdParties);
  // A linked ID carries its person: the other IDs' memberships, copied here at write time (one read).
  if (p.link !== undefined) {
    for (const member of p.link.members) {
      if (
        member.confidence >= rules.minConfidence &&
        addLive(member.memberships, segments, rules, thirdParties)
      )
        live = true;
    }
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

/**
 * Cached profiles are asked for the same answer over and over: the view is worked out once per catalog
 * snapshot and rules, and kept beside the profile object (dropped with it) until a membership it used expires.
 */
const views = new WeakMap<Profile, HeldView>();

/**
 * The usable segments of one ID's profile and of the person it carries (what addProfile adds), sorted as
 * the answer lists them. Empty when nothing is usable.
 */
export function liveView(p: Profile, rules: LiveSegmentRules, thirdParties: boolean, hold = true): LiveView {
  // `hold` false: the profile is not cached (CACHE_TTL_MS=0), so no one asks again; keeping the view would
  // only cost the WeakMap entry and its collection.
  if (!hold) return viewOf(p, rules, thirdParties);
  const held = views.get(p);
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
  const fresh = viewOf(p, rules, thirdParties);
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
  views.set(p, view);
  return view;
}

function viewOf(p: Profile, rules: LiveSegmentRules, thirdParties: boolean): LiveView {
  const set = new Set<string>();
  if (!addProfile(p, set, rules, thirdParties)) return NO_SEGMENTS;
  const segments = [...set].sort();
  return { segments, json: JSON.stringify(segments) };
}

/**
 * When the view stops holding: the earliest expiry among the memberships still live now. Those left out
 * for any other reason (generation, sensitivity, scope, party) stay out under the same snapshot and rules,
 * and those already expired stay expired.
 */
function firstExpiry(p: Profile, rules: LiveSegmentRules): number {
  let until = Number.POSITIVE_INFINITY;
  const scan = (memberships: readonly Membership[]): void => {
    for (const m of memberships) if (m.expiresAt > rules.nowSec && m.expiresAt < until) until = m.expiresAt;
  };
  scan(p.memberships);
  if (p.link !== undefined)
    for (const member of p.link.members)
      if (member.confidence >= rules.minConfidence) scan(member.memberships);
  return until;
}
