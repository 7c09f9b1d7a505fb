// The deal rules of one catalog snapshot, indexed by the segments they name: a request evaluates only the
// rules that name one of the person's segments, plus those that can match without any (NOT-only).
import type { Json } from "../json-fields.ts";
import { type DealRule, type DealRuleDef, toDealRule } from "./deal-rule.ts";

export class DealIndex {
  readonly rules: readonly DealRule[];
  readonly #bySegment = new Map<string, DealRule[]>();
  readonly #always: DealRule[] = [];

  /** Rules are compiled here, once per snapshot; a stored rule that no longer compiles is left out. */
  constructor(defs: readonly DealRuleDef[]) {
    const rules: DealRule[] = [];
    for (const def of defs) {
      let rule: DealRule;
      try {
        rule = toDealRule(def as unknown as Record<string, unknown>);
      } catch {
        continue;
      }
      rules.push(rule);
      if (rule.expr.matchesWithoutSegments) this.#always.push(rule);
      for (const s of rule.expr.segments) {
        const list = this.#bySegment.get(s);
        if (list === undefined) this.#bySegment.set(s, [rule]);
        else list.push(rule);
      }
    }
    rules.sort((a, b) => (a.def.id < b.def.id ? -1 : a.def.id > b.def.id ? 1 : 0));
    this.rules = rules;
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
    const candidates = new Set<DealRule>(this.#always);
    for (const s of segments) for (const r of this.#bySegment.get(s) ?? []) candidates.add(r);
    const out: DealRule[] = [];
    for (const r of candidates) if (r.expr.test(segments)) out.push(r);
    return out.sort((a, b) => (a.def.id < b.def.id ? -1 : a.def.id > b.def.id ? 1 : 0));
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
