import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  MAX_MALFORMED_CSV,
  parseTaxonomyJson,
  readTaxonomy,
  TaxonomyFileError,
  taxonomyErrorWhere,
  taxonomyFormatOf,
} from "../../src/ingest/taxonomy-file.ts";
import type { SegmentDef } from "../../src/segments/segment-def.ts";

const ID_REASON = "id must be 1-64 letters, digits, '.', '_', ':' or '-'";
const PARENT_REASON = "parent must be 1-64 letters, digits, '.', '_', ':' or '-'";
const TTL_REASON = "ttl must be whole seconds from 1 to 315360000";
const SENSITIVE_REASON = "sensitive must be true/false, 1/0 or yes/no";

const input = (text: string): Readable => Readable.from([text]);
const csv = (text: string, known?: ReadonlySet<string>) => readTaxonomy(input(text), "csv", known);
const json = (value: unknown, known?: ReadonlySet<string>) =>
  readTaxonomy(input(JSON.stringify(value)), "json", known);

const seg = (id: string, name: string, extra: Partial<SegmentDef> = {}): SegmentDef => ({
  id,
  name,
  parent: null,
  party: null,
  provider: null,
  sensitive: false,
  ttlSec: null,
  segtax: null,
  segtaxId: null,
  ...extra,
});

const ids = (segments: readonly SegmentDef[]): string[] => segments.map((s) => s.id);

describe("taxonomyFormatOf", () => {
  it.each([
    ["taxonomy.csv", "csv"],
    ["dir/TAX.CSV", "csv"],
    ["taxonomy.json", "json"],
    ["T.JSON", "json"],
    ["taxonomy.ndjson", null],
    ["taxonomy.csv.gz", null],
    ["taxonomy", null],
  ])("%s -> %s", (path, format) => {
    expect(taxonomyFormatOf(path)).toBe(format);
  });
});

describe("taxonomyErrorWhere", () => {
  it("names CSV rows by line and JSON entries by index", () => {
    expect(taxonomyErrorWhere("csv", 3)).toBe("line 3");
    expect(taxonomyErrorWhere("json", 3)).toBe("entry 3");
  });
});

describe("readTaxonomy CSV", () => {
  it("reads every column into a SegmentDef", async () => {
    const r = await csv(
      "id,name,parent,party,provider,sensitive,ttl,segtax,segtax_id\n" +
        "100,Sports,,first,crm,false,,,\n" +
        "101,Football,100,third,acme,yes,86400,4,239\n",
    );
    expect(r.errors).toEqual([]);
    expect(r.segments).toEqual([
      seg("100", "Sports", { party: "first", provider: "crm" }),
      seg("101", "Football", {
        parent: "100",
        party: "third",
        provider: "acme",
        sensitive: true,
        ttlSec: 86_400,
        segtax: 4,
        segtaxId: "239",
      }),
    ]);
  });

  it("needs only id and name, takes columns in any order and case, and trims values", async () => {
    const r = await csv("Name, TTL ,ID\n  Sports , 60 , s1 \nNews,,s2\n");
    expect(r.errors).toEqual([]);
    expect(r.segments).toEqual([seg("s1", "Sports", { ttlSec: 60 }), seg("s2", "News")]);
  });

  it("ignores a byte-order mark and blank lines, keeping physical line numbers", async () => {
    const r = await csv("\ufeffid,name,ttl\n\na,A,0\n\nb,B,x\n");
    expect(r.segments).toEqual([]);
    expect(r.errors).toEqual([
      { line: 3, reason: TTL_REASON },
      { line: 5, reason: TTL_REASON },
    ]);
  });

  it("reports a quoted multi-line value at the line its record starts on", async () => {
    const r = await csv('id,name,ttl\na,"two\nlines",1\n\nb,"three\nshort\nlines",0\nc,C,-1\n');
    expect(r.segments).toEqual([seg("a", "two\nlines", { ttlSec: 1 })]);
    expect(r.errors).toEqual([
      { line: 5, reason: TTL_REASON },
      { line: 8, reason: TTL_REASON },
    ]);
  });

  it("reports a row with the wrong number of fields as malformed, with its line", async () => {
    const r = await csv("id,name\na,A\nb,B,extra\nc,C\n");
    expect(ids(r.segments)).toEqual(["a", "c"]);
    expect(r.errors).toEqual([
      {
        line: 3,
        reason: "malformed CSV row: Invalid Record Length: columns length is 2, got 3 on line 3",
      },
    ]);
  });

  it("ends the read at a line longer than the maximum, naming it, in pieces of any size", async () => {
    const long = `id,name\na,A\nb,${"B".repeat(2_000)}\nc,C\n`;
    for (const size of [1, 100, 10_000]) {
      const pieces = Array.from({ length: Math.ceil(long.length / size) }, (_, i) =>
        Buffer.from(long.slice(i * size, (i + 1) * size)),
      );
      await expect(
        readTaxonomy(Readable.from(pieces), "csv", new Set(), { maxLineBytes: 1024 }),
      ).rejects.toThrow(new TaxonomyFileError("line 3 is longer than 1024 bytes"));
    }
    // Under a larger maximum the line is read, and is a row error of its own (a name over 200 characters).
    const read = await readTaxonomy(input(long), "csv", new Set(), { maxLineBytes: 4096 });
    expect(ids(read.segments)).toEqual(["a", "c"]);
    expect(read.errors.map((e) => e.line)).toEqual([3]);
  });

  it(`lists up to ${MAX_MALFORMED_CSV} malformed places, each with its line`, async () => {
    const rows = Array.from({ length: MAX_MALFORMED_CSV }, (_, i) => `s${i},12" screens`);
    const r = await csv(`id,name\n${rows.join("\n")}\nok,OK\n`);
    expect(ids(r.segments)).toEqual(["ok"]);
    expect(r.errors.map((e) => e.line)).toEqual(rows.map((_, i) => i + 2));
    expect(r.errors[0]?.reason).toBe(
      'malformed CSV row: Invalid Opening Quote: a quote is found on field "name" at line 2, value is "12"',
    );
  });

  it(`gives up at once past ${MAX_MALFORMED_CSV} malformed places, even within one line`, async () => {
    const past = Array.from({ length: MAX_MALFORMED_CSV + 1 }, (_, i) => `s${i},12" screens`);
    const refused = new TaxonomyFileError(
      `taxonomy CSV is malformed in more than ${MAX_MALFORMED_CSV} places: not read further`,
    );
    await expect(csv(`id,name\n${past.join("\n")}\n`)).rejects.toThrow(refused);
    // A quarter MiB line of stray quotes arrives as one chunk: each quote was an error carrying a copy of
    // the line so far, minutes of one synchronous stretch before the whole chunk was read.
    await expect(csv(`id,name\na,${'x"'.repeat(128 * 1024)}\n`)).rejects.toThrow(refused);
  });

  it("rejects a header without id or name", async () => {
    await expect(csv("id,parent\na,b\n")).rejects.toThrow(
      new TaxonomyFileError("taxonomy CSV header must name id,name; missing name"),
    );
    await expect(csv("name\nA\n")).rejects.toThrow("missing id");
    await expect(csv("name\nA\n")).rejects.toBeInstanceOf(TaxonomyFileError);
  });

  it("rejects unknown columns, naming them", async () => {
    const err = await csv("id,name,colour,Size\na,A,red,1\n").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaxonomyFileError);
    expect((err as TaxonomyFileError).code).toBe("AUD_ERR_TAXONOMY_FILE");
    expect((err as Error).message).toBe("taxonomy CSV header has unknown column(s): colour,size");
  });

  it("rejects a repeated column", async () => {
    await expect(csv("id,name,name\na,A,B\n")).rejects.toThrow("taxonomy CSV header repeats column(s): name");
  });

  it("rejects an empty file, and accepts a header with no rows", async () => {
    await expect(csv("")).rejects.toThrow(
      new TaxonomyFileError("taxonomy CSV is empty: expected a header naming id,name"),
    );
    expect(await csv("id,name\n")).toEqual({ segments: [], errors: [] });
  });
});

describe("row validation", () => {
  // Each case is one bad row on line 3 after a good one on line 2, so the line number is checked too.
  it.each([
    ["id missing", ",Name", "id is required"],
    ["id with a space", "a b,Name", ID_REASON],
    ["id too long", `${"x".repeat(65)},Name`, ID_REASON],
    ["name missing", "b,", "name is required"],
    ["name too long", `b,${"n".repeat(201)}`, "name must be at most 200 characters"],
    ["parent with a slash", "b,Name,a/b", PARENT_REASON],
    ["party unknown", "b,Name,,fourth", "party must be first, second or third"],
    ["sensitive unknown", "b,Name,,,,maybe", SENSITIVE_REASON],
    ["ttl zero", "b,Name,,,,,0", TTL_REASON],
    ["ttl fractional", "b,Name,,,,,1.5", TTL_REASON],
    ["ttl over ten years", "b,Name,,,,,315360001", TTL_REASON],
    ["ttl negative", "b,Name,,,,,-5", TTL_REASON],
    ["segtax zero", "b,Name,,,,,,0,1", "segtax must be a positive integer"],
    ["segtax not a number", "b,Name,,,,,,four,1", "segtax must be a positive integer"],
    ["segtax without segtax_id", "b,Name,,,,,,4,", "give segtax and segtax_id together"],
    ["segtax_id without segtax", "b,Name,,,,,,,239", "give segtax and segtax_id together"],
  ])("%s", async (_case, row, reason) => {
    const pad = ",".repeat(8 - (row.match(/,/g) ?? []).length);
    const r = await csv(
      `id,name,parent,party,provider,sensitive,ttl,segtax,segtax_id\na,A,,,,,,,\n${row}${pad}\n`,
    );
    expect(ids(r.segments)).toEqual(["a"]);
    expect(r.errors).toEqual([{ line: 3, reason }]);
  });

  it("accepts the limits: 64-char id, 200-char name, ttl 1 and 315360000, every party", async () => {
    const id = `A.b_c:d-${"9".repeat(56)}`;
    const r = await csv(
      `id,name,party,ttl\n${id},${"n".repeat(200)},first,1\nb,B,Second,315360000\nc,C,THIRD,\n`,
    );
    expect(r.errors).toEqual([]);
    expect(r.segments.map((s) => [s.id.length, s.name.length, s.party, s.ttlSec])).toEqual([
      [64, 200, "first", 1],
      [1, 1, "second", 315_360_000],
      [1, 1, "third", null],
    ]);
  });

  it.each([
    ["true", true],
    ["TRUE", true],
    ["1", true],
    ["yes", true],
    ["false", false],
    ["0", false],
    ["No", false],
    ["", false],
  ])("sensitive %j -> %s", async (text, sensitive) => {
    const r = await csv(`id,name,sensitive\na,A,${text}\n`);
    expect(r.errors).toEqual([]);
    expect(r.segments[0]?.sensitive).toBe(sensitive);
  });

  it("reports each bad row with its own line and keeps the good ones", async () => {
    const r = await csv("id,name,ttl\na,A,\n,B,\nc,C,\nd,,\ne,E,0\n");
    expect(ids(r.segments)).toEqual(["a", "c"]);
    expect(r.errors).toEqual([
      { line: 3, reason: "id is required" },
      { line: 5, reason: "name is required" },
      { line: 6, reason: TTL_REASON },
    ]);
  });
});

describe("whole-file rules", () => {
  it("rejects a duplicate id, keeping the first", async () => {
    const r = await csv("id,name\na,First\nb,B\na,Second\n");
    expect(r.segments).toEqual([seg("a", "First"), seg("b", "B")]);
    expect(r.errors).toEqual([{ line: 4, reason: "duplicate id 'a' (first at line 2)" }]);
  });

  it("accepts a parent defined later in the file", async () => {
    const r = await csv("id,name,parent\nchild,C,root\nroot,R,\n");
    expect(r.errors).toEqual([]);
    expect(r.segments.map((s) => [s.id, s.parent])).toEqual([
      ["child", "root"],
      ["root", null],
    ]);
  });

  it("rejects a parent that is neither in the file nor known", async () => {
    const r = await csv("id,name,parent\na,A,\nb,B,zzz\n");
    expect(ids(r.segments)).toEqual(["a"]);
    expect(r.errors).toEqual([
      { line: 3, reason: "parent 'zzz' is neither in the file nor a known segment" },
    ]);
  });

  it("accepts a parent from the known set", async () => {
    const r = await csv("id,name,parent\nb,B,zzz\n", new Set(["zzz"]));
    expect(r.errors).toEqual([]);
    expect(r.segments).toEqual([seg("b", "B", { parent: "zzz" })]);
  });

  it("rejects the children of a rejected parent, each naming its own parent", async () => {
    const r = await csv("id,name,parent,ttl\nc,C,b,\nb,B,a,\na,A,,0\nd,D,c,\n");
    expect(r.segments).toEqual([]);
    expect(r.errors).toEqual([
      { line: 2, reason: "parent 'b' was rejected (see line 3)" },
      { line: 3, reason: "parent 'a' was rejected (see line 4)" },
      { line: 4, reason: TTL_REASON },
      { line: 5, reason: "parent 'c' was rejected (see line 2)" },
    ]);
  });

  it("keeps a child whose rejected parent is still a known segment", async () => {
    const r = await csv("id,name,parent,ttl\na,A,,0\nb,B,a,\n", new Set(["a"]));
    expect(r.segments).toEqual([seg("b", "B", { parent: "a" })]);
    expect(r.errors).toEqual([{ line: 2, reason: TTL_REASON }]);
  });

  it("rejects a two-segment cycle, naming both segments on each line", async () => {
    const r = await csv("id,name,parent\nroot,R,\na,A,b\nb,B,a\n");
    expect(ids(r.segments)).toEqual(["root"]);
    expect(r.errors).toEqual([
      { line: 3, reason: "parent links form a cycle: a -> b -> a" },
      { line: 4, reason: "parent links form a cycle: b -> a -> b" },
    ]);
  });

  it("rejects a segment that is its own parent", async () => {
    const r = await csv("id,name,parent\na,A,a\nb,B,\n");
    expect(ids(r.segments)).toEqual(["b"]);
    expect(r.errors).toEqual([{ line: 2, reason: "parent links form a cycle: a -> a" }]);
  });

  it("rejects a longer cycle and the segments hanging from it, but not the rest", async () => {
    const r = await csv("id,name,parent\ntail,T,x\nx,X,y\ny,Y,z\nz,Z,x\nok,OK,\n");
    expect(ids(r.segments)).toEqual(["ok"]);
    expect(r.errors).toEqual([
      { line: 2, reason: "parent 'x' was rejected (see line 3)" },
      { line: 3, reason: "parent links form a cycle: x -> y -> z -> x" },
      { line: 4, reason: "parent links form a cycle: y -> z -> x -> y" },
      { line: 5, reason: "parent links form a cycle: z -> x -> y -> z" },
    ]);
  });

  it("handles a deep chain of parents", async () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => `s${i},S${i},${i === 0 ? "" : `s${i - 1}`}`);
    const r = await csv(`id,name,parent\n${rows.reverse().join("\n")}\n`);
    expect(r.errors).toEqual([]);
    expect(r.segments).toHaveLength(5_000);
  });
});

describe("readTaxonomy JSON", () => {
  it("reads typed values: ttl and segtax numbers, sensitive boolean or word, numeric ids", async () => {
    const r = await json([
      { id: "100", name: "Sports", party: "first", provider: "crm" },
      { id: 101, name: "Football", parent: 100, sensitive: true, ttl: 60, segtax: 4, segtax_id: 239 },
      { id: "102", name: "Chess", parent: "100", sensitive: "no", ttl: null, segtax: null },
      { id: "103", name: "Poker", parent: "100", sensitive: "YES" },
    ]);
    expect(r.errors).toEqual([]);
    expect(r.segments).toEqual([
      seg("100", "Sports", { party: "first", provider: "crm" }),
      seg("101", "Football", { parent: "100", sensitive: true, ttlSec: 60, segtax: 4, segtaxId: "239" }),
      seg("102", "Chess", { parent: "100" }),
      seg("103", "Poker", { parent: "100", sensitive: true }),
    ]);
  });

  it("reports entries by their 1-based index", async () => {
    const r = await json([
      { id: "a", name: "A" },
      "not an object",
      { id: "b", name: "B", colour: "red", size: 1 },
      { id: "c", name: "C", ttl: 1.5 },
      { id: "d", name: "D", sensitive: 1 },
      { id: "e", name: 5 },
      { id: true, name: "F" },
      { id: "g", name: "G", segtax: 4 },
      { id: "h", name: "H", provider: 7 },
      null,
      { id: "a", name: "A again" },
    ]);
    expect(ids(r.segments)).toEqual(["a"]);
    expect(r.errors).toEqual([
      { line: 2, reason: "not a JSON object" },
      { line: 3, reason: "unknown key(s): colour,size" },
      { line: 4, reason: TTL_REASON },
      { line: 5, reason: SENSITIVE_REASON },
      { line: 6, reason: "name must be a string" },
      { line: 7, reason: ID_REASON },
      { line: 8, reason: "give segtax and segtax_id together" },
      { line: 9, reason: "provider must be a string" },
      { line: 10, reason: "not a JSON object" },
      { line: 11, reason: "duplicate id 'a' (first at entry 1)" },
    ]);
  });

  it("applies parents, the known set and cycles the same way", async () => {
    const r = await json(
      [
        { id: "a", name: "A", parent: "b" },
        { id: "b", name: "B", parent: "a" },
        { id: "c", name: "C", parent: "known" },
        { id: "d", name: "D", parent: "missing" },
        { id: "e", name: "E", parent: "d" },
      ],
      new Set(["known"]),
    );
    expect(ids(r.segments)).toEqual(["c"]);
    expect(r.errors).toEqual([
      { line: 1, reason: "parent links form a cycle: a -> b -> a" },
      { line: 2, reason: "parent links form a cycle: b -> a -> b" },
      { line: 4, reason: "parent 'missing' is neither in the file nor a known segment" },
      { line: 5, reason: "parent 'd' was rejected (see entry 4)" },
    ]);
  });

  it("throws TaxonomyFileError for a body that is not JSON or not an array", async () => {
    const bad = await readTaxonomy(input("[{"), "json").catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TaxonomyFileError);
    expect((bad as TaxonomyFileError).code).toBe("AUD_ERR_TAXONOMY_FILE");
    expect((bad as Error).message).toMatch(/^taxonomy file is not valid JSON: /);
    await expect(readTaxonomy(input('{"id":"a"}'), "json")).rejects.toThrow(
      new TaxonomyFileError("taxonomy JSON must be an array of segment objects"),
    );
    await expect(readTaxonomy(input(""), "json")).rejects.toBeInstanceOf(TaxonomyFileError);
  });

  it("ignores a byte-order mark and reads input split across chunks", async () => {
    const text = `\ufeff${JSON.stringify([
      { id: "é1", name: "Café" },
      { id: "b", name: "Café" },
    ])}`;
    const bytes = Buffer.from(text);
    // Split inside the two-byte "é" so decoding must happen after joining the chunks.
    const cut = bytes.indexOf(Buffer.from("é")) + 1;
    const r = await readTaxonomy(Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)]), "json");
    expect(r.errors).toEqual([{ line: 1, reason: ID_REASON }]);
    expect(r.segments).toEqual([seg("b", "Café")]);
  });
});

describe("parseTaxonomyJson", () => {
  it("validates an already-parsed body", () => {
    expect(parseTaxonomyJson([{ id: "a", name: "A" }, { id: "b" }])).toEqual({
      segments: [seg("a", "A")],
      errors: [{ line: 2, reason: "name is required" }],
    });
    expect(parseTaxonomyJson([{ id: "a", name: "A", parent: "p" }], new Set(["p"])).errors).toEqual([]);
    expect(() => parseTaxonomyJson({ segments: [] })).toThrow(TaxonomyFileError);
  });
});
