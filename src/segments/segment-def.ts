// One segment of the taxonomy, as data teams define it and the service keeps it in memory.

export type Party = "first" | "second" | "third";

export interface SegmentDef {
  /** Segment id as used in memberships and answers, e.g. "1001". */
  readonly id: string;
  readonly name: string;
  /** Parent segment id: membership of this segment implies the parent's when a lookup asks for expansion. */
  readonly parent: string | null;
  readonly party: Party | null;
  /** Who supplies the data (data vendor, partner, "crm"); the unit of a provider-wide replace. */
  readonly provider: string | null;
  /** Health, ethnicity, politics, religion, sexuality, or flagged by the data team: never activated. */
  readonly sensitive: boolean;
  /** Default membership lifetime in seconds when a membership row gives none; null: no expiry. */
  readonly ttlSec: number | null;
  /** IAB segment taxonomy number (4 = Audience Taxonomy 1.1) and the segment's id in it. */
  readonly segtax: number | null;
  readonly segtaxId: string | null;
}

/** Segment ids: what membership files and the admin API accept. */
export const SEGMENT_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
