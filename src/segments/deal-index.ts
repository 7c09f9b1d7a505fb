// The deal rules of one catalog snapshot, indexed by segment: a request evaluates only the rules keyed on one
// of the person's segments (a segment the rule requires, or else each it names), plus those that can match
// without any (NOT-only).
import type { Json } from "../json-fields.ts";
import { type DealRule, type DealRuleDef, toDealRule } from "./deal-rule.ts";

/**
 * Rule programs: one Int32Array per rule, each step `arg << 2 | op`. The segments rules name are numbered
 * once per snapshot, so a request marks its segments in a byte array and a rule is a loop over integers:
 * matching used to call a closure per node with a Set lookup per segment, ~200 ns a rule.
 */
const SEG = 0;
const NOT = 1;
const AND = 2;
const OR = 3;

export class DealIndex {
  /** In deal-id order: a rule's position is its rank in every answer. */
  readonly rules: readonly DealRule[];
  /** Segment number -> positions of the rules keyed on it. */
  readonly #byNumber: number[][] = [];
  /** Segment id -> its number: every segment some rule names. */
  readonly #numbers = new Map<string, number>();
  readonly #programs: Int32Array[];
  readonly #always: number[] = [];
  /** Per segment number, 1 while a request holds it (cleared before matching returns). */
  readonly #held: Uint8Array;
  /** Per rule, the call that last looked at it: each rule is tested once per call without a Set. */
  readonly #seen: Uint32Array;
  #stack: Uint8Array;
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
    const numberOf = (id: string): number => {
      let k = this.#numbers.get(id);
      if (k === undefined) {
        k = this.#numbers.size;
        this.#numbers.set(id, k);
        this.#byNumber.push([]);
      }
      return k;
    };
    let longest = 1;
    this.#programs = rules.map((rule) => {
      const steps = rule.expr.postfix;
      longest = Math.max(longest, steps.length);
      const program = new Int32Array(steps.length);
      steps.forEach((st, j) => {
        program[j] =
          st.op === "id"
            ? (numberOf(st.id) << 2) | SEG
            : st.op === "not"
              ? NOT
              : (st.n << 2) | (st.op === "and" ? AND : OR);
      });
      return program;
    });
    this.#held = new Uint8Array(this.#numbers.size);
    // No program pushes more values than it has steps.
    this.#stack = new Uint8Array(longest);
    rules.forEach((rule, i) => {
      if (rule.expr.matchesWithoutSegments) this.#always.push(i);
      // A rule that cannot match without some segment is looked at only for persons in it; otherwise under
      // every segment it names (it cannot match without one of them, or it would be an "always" rule).
      const keys = rule.expr.required.length > 0 ? [rule.expr.required[0] as string] : rule.expr.segments;
      for (const s of keys) (this.#byNumber[numberOf(s)] as number[]).push(i);
    });
  }

  get size(): number {
    return this.rules.length;
  }

  get(id: string): DealRule | undefined {
    return this.rules.find((r) => r.def.id === id);
  }

  /**
   * Rules whose expression the segments satisfy (impression conditions not yet applied), in id order. Any
   * iterable will do: a segment named twice is marked once.
   */
  matching(segments: Iterable<string>): DealRule[] {
    if (this.rules.length === 0) return [];
    if (++this.#call === 0xffff_ffff) {
      this.#seen.fill(0);
      this.#call = 1;
    }
    const call = this.#call;
    const held = this.#held;
    const marked: number[] = [];
    for (const s of segments) {
      const k = this.#numbers.get(s);
      if (k !== undefined && held[k] === 0) {
        held[k] = 1;
        marked.push(k);
      }
    }
    const hits: number[] = [];
    const seen = this.#seen;
    for (const i of this.#always) {
      seen[i] = call;
      if (this.#run(i)) hits.push(i);
    }
    for (const k of marked) {
      const list = this.#byNumber[k] as number[];
      for (let j = 0; j < list.length; j++) {
        const i = list[j] as number;
        if (seen[i] === call) continue;
        seen[i] = call;
        if (this.#run(i)) hits.push(i);
      }
    }
    for (const k of marked) held[k] = 0;
    hits.sort((a, b) => a - b);
    const out = new Array<DealRule>(hits.length);
    for (let k = 0; k < hits.length; k++) out[k] = this.rules[hits[k] as number] as DealRule;
    return out;
  }

  /** Rule i's program over the segments marked in #held. */
  #run(i: number): boolean {
    const program = this.#programs[i] as Int32Array;
    const held = this.#held;
    const stack = this.#stack;
    let top = 0;
    for (let pc = 0; pc < program.length; pc++) {
      const step = program[pc] as number;
      const op = step & 3;
      if (op === SEG) stack[top++] = held[step >> 2] as number;
      else if (op === NOT) stack[top - 1] = stack[top - 1] === 1 ? 0 : 1;
      else {
        const n = step >> 2;
        let v: number = op === AND ? 1 : 0;
        for (let q = top - n; q < top; q++) {
          if (op === AND) v &= stack[q] as number;
          else v |= stack[q] as number;
        }
        top -= n;
        stack[top++] = v;
      }
    }
    return stack[0] === 1;
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
