// A taxonomy entry for tests: third-party, not sensitive, no parent, provider or taxonomy mapping unless given.
import type { SegmentDef } from "../../src/segments/segment-def.ts";

export const segmentDef = (id: string, over: Partial<SegmentDef> = {}): SegmentDef => ({
  id,
  name: id,
  parent: null,
  party: "third",
  provider: null,
  sensitive: false,
  ttlSec: null,
  segtax: null,
  segtaxId: null,
  ...over,
});
