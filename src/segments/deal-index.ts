// The deal rules of one catalog snapshot, indexed by segment: a request evaluates only the rules keyed on one
// of the person's segments (a segment the rule requires, or else each it names), plus those that can match
// without any (NOT-only).
import type { Json } from "../json-fields.ts";
import { type DealRule, type DealRuleDef, toDealRule } from "./deal-rule.ts";

export class DealIndex {
  /** In deal-id order: a rule's position is its rank in every answer. */
  readonly rules: readonly DealRule[];
  /** Segment id -> positions of the rules naming it. */
  readonly #bySegment = new Map<string, number[]>();
  readonly #always: number[] = [];
  /** Per rule, the call that last looked at it: each rule is tested once per call without a Set. */
  readonly #seen: Uint32Array;
  #call = 0;

  /** Rules are compiled here, once per snapshot; a stored rule that no longer compiles is left out. */
  constructor(defs: readonly DealRuleDef[]) {
    const rules: DealRule[] = [];
    for (const def of defs) {
      try {
        rules.push(toDealRule(def as unknown as Record<string, unknown>));
      } catch {}
    }
    rules.sort((a, b) => (a.def.id < b.def.id ? -1 : a.def.id > b.def.id ? 1 : 0));
    this.rules = rules;
    this.#seen = new Uint32Array(rules.length);
    rules.forEach((rule, i) => {
      if (rule.expr.matchesWithoutSegments) this.#always.push(i);
      // A rule that cannot match without some segment is looked at only for persons in it; otherwise under
      // every segment it names (it cannot match without one of them, or it would be an "always" rule).
      const keys = rule.expr.required.length > 0 ? [rule.expr.required[0] as string] : rule.expr.segments;
      for (const s of keys) {
        const list = this.#bySegment.get(s);
        if (list === undefined) this.#bySegment.set(s, [i]);
        else list.push(i);
      }
    });
  }

  get size(): number {
    return this.rules.length;
  }

  get(id: string): DealRule | undefined {
    return this.rules.find((r) => r.def.id === id);
  }

  /** Rules whose expression the segments satisfy (impression conditions not yet applied), in id order. */
  matching(segments: ReadonlySet<string>): DealRule[] {
    if (this.rules.length === 0) return [];
    if (++this.#call === 0xffff_ffff) {
      this.#seen.fill(0);
      this.#call = 1;
    }
    const call = this.#call;
    const hits: number[] = [];
    const consider = (i: number): void => {
      if (this.#seen[i] === call) return;
      this.#seen[i] = call;
      if ((this.rules[i] as DealRule).expr.test(segments)) hits.push(i);
    };
    for (const i of this.#always) consider(i);
    for (const s of segments) {
      const list = this.#bySegment.get(s);
      if (list !== undefined) for (const i of list) consider(i);
    }
    hits.sort((a, b) => a - b);
    const out = new Array<DealRule>(hits.length);
    for (let k = 0; k < hits.length; k++) out[k] = this.rules[hits[k] as number] as DealRule;
    return out;
  }
}

/** Whether an impression meets a rule's format and size conditions. */
export function impMatches(def: DealRuleDef, imp: Json): boolean {
  if (def.formats !== null && !def.formats.some((f) => isPresent(imp[f]))) return false;
  if (def.sizes !== null) {
    const sizes = impSizes(imp);
    if (!def.sizes.some((s) => sizes.includes(s))) return false;
  }
  return true;
}

const isPresent = (v: unknown): boolean => typeof v === "object" && v !== null;

/** "WxH" of the banner (w/h and format[]) and of the video or native player, as far as they are given. */
function impSizes(imp: Json): string[] {
  const out: string[] = [];
  const add = (o: unknown): void => {
    if (!isPresent(o)) return;
    const { w, h } = o as { w?: unknown; h?: unknown };
    if (typeof w === "number" && typeof h === "number") out.push(`${w}x${h}`);
  };
  const banner = imp.banner;
  if (isPresent(banner)) {
    add(banner);
    const format = (banner as { format?: unknown }).format;
    if (Array.isArray(format)) for (const f of format) add(f);
  }
  add(imp.video);
  return out;
}
