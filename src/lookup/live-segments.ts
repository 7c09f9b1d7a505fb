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
