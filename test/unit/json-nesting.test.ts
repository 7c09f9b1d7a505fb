import { describe, expect, it } from "vitest";
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../../src/json-nesting.ts";

const bytes = (s: string): Buffer => Buffer.from(s, "utf8");
const nested = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("jsonNestingExceeds", () => {
  it("allows 64 levels and refuses 65, for arrays, objects and both mixed", () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    expect(jsonNestingExceeds(bytes(nested(64)))).toBe(false);
    expect(jsonNestingExceeds(bytes(nested(65)))).toBe(true);
    const objects = (d: number): string => `${'{"a":'.repeat(d - 1)}{}${"}".repeat(d - 1)}`;
    expect(jsonNestingExceeds(bytes(objects(64)))).toBe(false);
    expect(jsonNestingExceeds(bytes(objects(65)))).toBe(true);
    expect(jsonNestingExceeds(bytes(`${"[{".repeat(32)}1${"}]".repeat(32)}`))).toBe(false);
    expect(jsonNestingExceeds(bytes(`[${"[{".repeat(32)}1${"}]".repeat(32)}]`))).toBe(true);
  });

  it("counts depth, not brackets: many siblings at a shallow depth pass", () => {
    expect(jsonNestingExceeds(bytes(`[${"[[]],".repeat(10_000)}1]`))).toBe(false);
  });

  it("ignores brackets inside strings, escaped quotes and backslashes included", () => {
    const s = JSON.stringify({ a: "[".repeat(1_000), b: '"[[[', c: "\\", d: '\\"{{{{', e: "ü[日本]" });
    expect(jsonNestingExceeds(bytes(s), 1)).toBe(false);
    // The same brackets outside strings do count.
    expect(jsonNestingExceeds(bytes('{"a":[[1]]}'), 2)).toBe(true);
    // A string ending in an escaped backslash ends there: the bracket after it counts.
    expect(jsonNestingExceeds(bytes('["\\\\",[[1]]]'), 2)).toBe(true);
  });

  it("reports 20,000 nested brackets, as the attack sends them", () => {
    expect(jsonNestingExceeds(bytes(nested(20_000)))).toBe(true);
    expect(jsonNestingExceeds(bytes(`{"user":${nested(20_000)}}`))).toBe(true);
  });

  it("agrees with the depth of generated documents, escapes and brackets in strings included", () => {
    // A pseudo-random walk: strings with brackets and escapes, numbers, nested arrays and objects.
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return (seed >>> 16) % n; // the high bits: an LCG's low bits repeat with a short period
    };
    const gen = (d: number): unknown => {
      const k = d > 90 ? 0 : rnd(10);
      if (k === 0) return ["x", "[{", '"]', "\\{", 7][rnd(5)];
      if (k <= 2) return [gen(d + 1), gen(d + 1)].slice(0, rnd(3));
      return { a: gen(d + 1), "}": "]\\" };
    };
    const depthOf = (v: unknown): number =>
      typeof v !== "object" || v === null ? 0 : 1 + Math.max(0, ...Object.values(v).map(depthOf));
    let deepest = 0;
    for (let i = 0; i < 300; i++) {
      const doc = gen(0);
      const depth = depthOf(doc);
      expect(jsonNestingExceeds(bytes(JSON.stringify(doc)), depth)).toBe(false);
      if (depth > 0) expect(jsonNestingExceeds(bytes(JSON.stringify(doc)), depth - 1)).toBe(true);
      deepest = Math.max(deepest, depth);
    }
    // The walk reached depths that matter, not only flat documents.
    expect(deepest).toBeGreaterThan(8);
  });
});
