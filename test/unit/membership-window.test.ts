// The load's window of rows waiting for later rows of their IDs: every row comes out exactly once, an ID's
// rows in the order they went in, IDs in the order they first came in, and never more rows held than fit.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MembershipWindow } from "../../src/ingest/membership-window.ts";
import type { MembershipOp } from "../../src/profiles/profile-codec.ts";

const op = (key: string, segment: string, extra: Partial<MembershipOp> = {}): MembershipOp => ({
  key,
  op: "add",
  segment,
  expiresAt: 0,
  source: "",
  generation: 0,
  minGeneration: 0,
  ...extra,
});

/** What take() gave, as [key, segments] per ID. */
const taken = (t: { groups: Map<string, MembershipOp[]> }): [string, string[]][] =>
  [...t.groups].map(([k, ops]) => [k, ops.map((o) => o.segment)]);

describe("MembershipWindow", () => {
  it("merges an ID's rows and hands IDs out in order of arrival, each with every row it gathered", () => {
    const w = new MembershipWindow(10);
    for (const [k, s] of [
      ["a", "1"],
      ["b", "1"],
      ["a", "2"],
      ["c", "1"],
      ["b", "2"],
      ["a", "3"],
    ])
      w.push(op(k as string, s as string));
    expect({ rows: w.rows, ids: w.ids, full: w.full }).toEqual({ rows: 6, ids: 3, full: false });
    // At least 2 rows: the oldest ID alone has 3.
    const first = w.take(2);
    expect(first.rows).toBe(3);
    expect(taken(first)).toEqual([["a", ["1", "2", "3"]]]);
    // Rows of an ID taken out start a new group.
    w.push(op("a", "4"));
    const rest = w.take(100);
    expect(rest.rows).toBe(4);
    expect(taken(rest)).toEqual([
      ["b", ["1", "2"]],
      ["c", ["1"]],
      ["a", ["4"]],
    ]);
    expect({ rows: w.rows, ids: w.ids }).toEqual({ rows: 0, ids: 0 });
  });

  it("keeps every field of every op, removes included", () => {
    const w = new MembershipWindow(4);
    const a = op("ifa:x", "1001", {
      expiresAt: 1_900_000_000,
      source: "crm",
      generation: 7,
      minGeneration: 3,
    });
    const b = op("ifa:x", "1002", { op: "remove", generation: 2 ** 40, minGeneration: 2 ** 40 - 1 });
    w.push(a);
    w.push(b);
    expect([...w.take(1).groups]).toEqual([["ifa:x", [a, b]]]);
  });

  it("refuses a row when full", () => {
    const w = new MembershipWindow(2);
    expect(w.push(op("a", "1"))).toBe(true);
    expect(w.push(op("a", "2"))).toBe(true);
    expect(w.full).toBe(true);
    expect(w.push(op("b", "1"))).toBe(false);
    expect(w.push(op("a", "3"))).toBe(false);
    expect(taken(w.take(1))).toEqual([["a", ["1", "2"]]]);
    expect(w.push(op("b", "1"))).toBe(true);
    expect(taken(w.take(1))).toEqual([["b", ["1"]]]);
  });

  it("refuses a new ID when its key finds no room, wraps keys around, and keeps rows of IDs already in", () => {
    // 64 KiB of key bytes at least: 30 keys of 3,000 bytes fill it long before 1,000 rows.
    const w = new MembershipWindow(1_000);
    const key = (i: number): string => `bu:${String(i).padStart(2, "0")}${"k".repeat(2_995)}`;
    let fitted = 0;
    while (w.push(op(key(fitted), "1"))) fitted++;
    expect(fitted).toBe(21);
    expect(w.rows).toBe(21);
    // An ID already in needs no key room.
    expect(w.push(op(key(0), "2"))).toBe(true);
    // Taking the oldest frees the oldest key bytes: new keys go round to the start of the buffer.
    for (let round = 0; round < 5; round++) {
      const t = w.take(1);
      expect(t.groups.size).toBe(1);
      expect(w.push(op(key(fitted), "1"))).toBe(true);
      expect(w.push(op(key(fitted + 1), "1"))).toBe(false);
      fitted++;
    }
    const rest = w.take(Number.MAX_SAFE_INTEGER);
    expect([...rest.groups.keys()]).toEqual(Array.from({ length: 21 }, (_, i) => key(i + 5)));
    expect(w.push(op(key(99), "1"))).toBe(true);
  });

  it("holds at most 65,536 distinct segments and sources, and starts its table again once emptied", () => {
    const w = new MembershipWindow(100_000);
    // The source "" takes one place: 65,535 segments fit.
    let n = 0;
    while (w.push(op(`bu:${n % 7}`, `seg-${n}`))) n++;
    expect(n).toBe(65_535);
    // A segment already in the table still fits.
    expect(w.push(op("bu:1", "seg-3"))).toBe(true);
    const t = w.take(Number.MAX_SAFE_INTEGER);
    expect(t.rows).toBe(65_536);
    const ops = [...t.groups.values()].flat();
    expect(ops.filter((o) => o.segment === `seg-${65_534}`)).toHaveLength(1);
    expect(
      t.groups
        .get("bu:1")
        ?.map((o) => o.segment)
        .slice(-2),
    ).toEqual(["seg-65528", "seg-3"]);
    // Empty again: new texts fit, and read back right.
    expect(w.push(op("bu:x", "new", { source: "crm" }))).toBe(true);
    expect([...w.take(1).groups]).toEqual([["bu:x", [op("bu:x", "new", { source: "crm" })]]]);
  });

  it("tells keys apart by their bytes when their hashes match, non-ASCII keys included", () => {
    const w = new MembershipWindow(20, () => 7);
    const keys = [
      "xu:ex:abc",
      "xu:ex:abd",
      "xu:ex:ab",
      "xu:ex:é1",
      "xu:ex:e\u0301",
      "xu:ex:日本",
      "xu:ex:abc ",
    ];
    for (const k of keys) expect(w.push(op(k, "1"))).toBe(true);
    for (const k of keys) expect(w.push(op(k, "2"))).toBe(true);
    expect(w.ids).toBe(keys.length);
    expect(taken(w.take(100))).toEqual(keys.map((k) => [k, ["1", "2"]]));
  });

  it.each([
    ["within the table", { a: -2, b: -1, c: -2 }],
    ["across its end", { a: -1, b: 0, c: -1 }],
    ["with a run wrapping past its end", { a: -2, b: -1, c: -1 }],
  ])("finds an ID whose index entry follows one taken out (%s)", (_, homes: Record<string, number>) => {
    // b's home is right after a's, c's run passes b: taking a out must leave b where a lookup of b
    // starts, and move c back behind it.
    const w = new MembershipWindow(4, (key) => homes[key] as number);
    w.push(op("a", "1"));
    w.push(op("b", "1"));
    w.push(op("c", "1"));
    expect(taken(w.take(1))).toEqual([["a", ["1"]]]);
    w.push(op("b", "2"));
    w.push(op("c", "2"));
    expect(w.ids).toBe(2);
    expect(taken(w.take(10))).toEqual([
      ["b", ["1", "2"]],
      ["c", ["1", "2"]],
    ]);
  });

  it("matches a plain model over any mix of rows and takes, with IDs colliding in its index", () => {
    // Few keys in a small window: the index's probe runs wrap and entries move back on removal.
    const step = fc.oneof(
      fc.record({ push: fc.integer({ min: 0, max: 11 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 12 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(step, { maxLength: 200 }),
        (capacity, spread, steps) => {
          // Keys hash to a few values near the end of the table, so that runs wrap past its end.
          const w = new MembershipWindow(capacity, (key) => -1 - (Number(key.slice(1)) % spread));
          // The model: IDs in order of arrival, each with its rows.
          let model: [string, string[]][] = [];
          let n = 0;
          const takeBoth = (rows: number): void => {
            const t = w.take(rows);
            const want: [string, string[]][] = [];
            let got = 0;
            while (model.length > 0 && got < rows) {
              const next = model.shift() as [string, string[]];
              want.push(next);
              got += next[1].length;
            }
            expect(taken(t)).toEqual(want);
            expect(t.rows).toBe(got);
          };
          for (const s of steps) {
            if ("take" in s) {
              takeBoth(s.take);
              continue;
            }
            if (w.full) takeBoth(1);
            const key = `k${s.push}`;
            const segment = String(n++);
            w.push(op(key, segment));
            const held = model.find(([k]) => k === key);
            if (held === undefined) model.push([key, [segment]]);
            else held[1].push(segment);
            expect(w.rows).toBe(model.reduce((sum, [, rows]) => sum + rows.length, 0));
            expect(w.ids).toBe(model.length);
            expect(w.rows).toBeLessThanOrEqual(capacity);
          }
          takeBoth(Number.MAX_SAFE_INTEGER);
          model = [];
          expect({ rows: w.rows, ids: w.ids }).toEqual({ rows: 0, ids: 0 });
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
