import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadMemberships, type RejectedRow } from "../../src/ingest/load-memberships.ts";
import {
  type FileFormat,
  formatOf,
  IngestFileError,
  type RowResult,
  readMembershipRows,
  readMembershipRowsInto,
  toRow,
} from "../../src/ingest/membership-rows.ts";
import { splitCsvLine } from "../../src/ingest/record-reader.ts";
import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import { CatalogSnapshot } from "../../src/segments/catalog.ts";

const EMPTY = CatalogSnapshot.empty();
const NOW = 1_700_000_000;
const SEGMENT_REASON = "segment must be 1-64 letters, digits, '.', '_', ':' or '-'";
const TTL_REASON = "ttl must be whole seconds from 1 to 315360000";

const input = (text: string): Readable => Readable.from([text]);

/**
 * The rows of a file as readMembershipRows gives them; the loader's reader, which hands rows on as it parses
 * them (readMembershipRowsInto), must give exactly the same, or fail the same way.
 */
async function rows(text: string, format: FileFormat): Promise<RowResult[]> {
  const read = async (): Promise<RowResult[]> => {
    const out: RowResult[] = [];
    for await (const r of readMembershipRows(input(text), format, NOW)) out.push(r);
    return out;
  };
  const pushed = async (): Promise<RowResult[]> => {
    const out: RowResult[] = [];
    await readMembershipRowsInto(input(text), format, NOW, {
      row: (row, line) => out.push({ line, row }),
      rejected: (line, error) => out.push({ line, error }),
    });
    return out;
  };
  const [a, b] = await Promise.allSettled([read(), pushed()]);
  if (a.status === "rejected") {
    expect(b.status).toBe("rejected");
    expect((b as PromiseRejectedResult).reason).toEqual(a.reason);
    expect((b as PromiseRejectedResult).reason).toBeInstanceOf((a.reason as Error).constructor);
    throw a.reason;
  }
  expect(b).toEqual(a);
  return a.value;
}

const byLine = (a: { line: number }, b: { line: number }): number => a.line - b.line;

async function segmentsOf(store: MemoryProfileStore, key: string): Promise<string[] | null> {
  const [p] = await store.readProfiles([key], NOW);
  return p === null || p === undefined ? null : p.memberships.map((x) => x.segment);
}

describe("formatOf", () => {
  it.each([
    ["members.csv", "csv"],
    ["dir/MEMBERS.CSV", "csv"],
    ["a.ndjson", "ndjson"],
    ["a.jsonl", "ndjson"],
    ["a.json", null],
    ["a.csv.gz", null],
    ["noext", null],
  ])("%s -> %s", (path, format) => {
    expect(formatOf(path)).toBe(format);
  });
});

describe("toRow", () => {
  it("builds an add with ttl from nowSec", () => {
    expect(toRow({ type: "bu", id: "b1", segment: "sports", ttl: "60" }, NOW)).toEqual({
      key: "bu:b1",
      op: "add",
      segment: "sports",
      expiresAt: NOW + 60,
      source: "",
    });
  });

  it("reads expires_at as epoch seconds or ISO-8601", () => {
    const base = { type: "bu", id: "b1", segment: "s" };
    expect(toRow({ ...base, expires_at: "1800000000" }, NOW)).toMatchObject({ expiresAt: 1_800_000_000 });
    expect(toRow({ ...base, expires_at: 1_800_000_000 }, NOW)).toMatchObject({ expiresAt: 1_800_000_000 });
    expect(toRow({ ...base, expires_at: "2030-01-01T00:00:00Z" }, NOW)).toMatchObject({
      expiresAt: 1_893_456_000,
    });
    expect(toRow({ ...base, expires_at: "soon" }, NOW)).toBe(
      "expires_at must be epoch seconds or an ISO-8601 time",
    );
  });

  it("takes numbers for id and segment", () => {
    expect(toRow({ type: "bu", id: 123, segment: 456 }, NOW)).toEqual({
      key: "bu:123",
      op: "add",
      segment: "456",
      expiresAt: null,
      source: "",
    });
  });

  it("cuts source to 64 characters", () => {
    expect(toRow({ type: "bu", id: "x", segment: "s", source: "z".repeat(100) }, NOW)).toMatchObject({
      source: "z".repeat(64),
    });
  });

  it.each([
    ["missing type", { id: "x", segment: "s" }, "missing type"],
    ["missing id", { type: "bu", segment: "s" }, "missing id"],
    ["ttl of 0", { type: "bu", id: "x", segment: "s", ttl: "0" }, TTL_REASON],
    ["ttl over ten years", { type: "bu", id: "x", segment: "s", ttl: "315360001" }, TTL_REASON],
    ["segment too long", { type: "bu", id: "x", segment: "s".repeat(65) }, SEGMENT_REASON],
    ["segment missing", { type: "bu", id: "x" }, SEGMENT_REASON],
    [
      "an id with a brace",
      { type: "bu", id: "x}", segment: "s" },
      "id holds '{', '}' or a control character",
    ],
  ])("rejects %s", (_label, row, reason) => {
    expect(toRow(row, NOW)).toBe(reason);
  });
});

describe("readMembershipRows: CSV", () => {
  it("reads rows with optional op, expires_at and source columns", async () => {
    const csv = [
      "type,id,segment,ttl,op,expires_at,source",
      "bu,b1,sports,60,,,crm",
      "ifa,6D92078A-8246-4BA4-AE5B-76104861E7DC,autos,,add,1800000000,dmp",
      "bu,b1,news,,remove,,",
    ].join("\n");
    expect(await rows(csv, "csv")).toEqual([
      { line: 2, row: { key: "bu:b1", op: "add", segment: "sports", expiresAt: NOW + 60, source: "crm" } },
      {
        line: 3,
        row: {
          key: "ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc",
          op: "add",
          segment: "autos",
          expiresAt: 1_800_000_000,
          source: "dmp",
        },
      },
      { line: 4, row: { key: "bu:b1", op: "remove", segment: "news", expiresAt: null, source: "" } },
    ]);
  });

  it("accepts header names in any case and order, with spaces", async () => {
    const csv = " Segment , ID ,TYPE\nsports,b1,bu\n";
    expect(await rows(csv, "csv")).toEqual([
      { line: 2, row: { key: "bu:b1", op: "add", segment: "sports", expiresAt: null, source: "" } },
    ]);
  });

  it("reports every bad row with its line number and reason", async () => {
    const csv = [
      "type,id,segment,ttl", // 1
      "cookie,x,s,60", // 2 unknown type
      "bu,,s,60", // 3 empty id
      "bu,b,s,abc", // 4 bad ttl
      "bu,b,bad segment!,60", // 5 bad segment
      "bu,b,s,1.5", // 6 fractional ttl
      "bu,b,s,60", // 7 good
    ].join("\n");
    expect(await rows(csv, "csv")).toEqual([
      { line: 2, error: "unknown id type 'cookie'" },
      { line: 3, error: "empty id" },
      { line: 4, error: TTL_REASON },
      { line: 5, error: SEGMENT_REASON },
      { line: 6, error: TTL_REASON },
      { line: 7, row: { key: "bu:b", op: "add", segment: "s", expiresAt: NOW + 60, source: "" } },
    ]);
  });

  it("rejects an op other than add/remove and both ttl and expires_at", async () => {
    const csv = ["type,id,segment,ttl,expires_at,op", "bu,b,s,,,delete", "bu,b,s,60,1800000000,add"].join(
      "\n",
    );
    expect(await rows(csv, "csv")).toEqual([
      { line: 2, error: "op must be add or remove, got 'delete'" },
      { line: 3, error: "give ttl or expires_at, not both" },
    ]);
  });

  it("reports a row with too many columns, with its line, and keeps the good rows", async () => {
    const csv = ["type,id,segment", "bu,a,s1", "bu,b,s2,extra", "bu,c,s3"].join("\n");
    const out = await rows(csv, "csv");
    expect(out.slice().sort(byLine)).toEqual([
      { line: 2, row: { key: "bu:a", op: "add", segment: "s1", expiresAt: null, source: "" } },
      { line: 3, error: "malformed CSV row: 4 fields where the header has 3" },
      { line: 4, row: { key: "bu:c", op: "add", segment: "s3", expiresAt: null, source: "" } },
    ]);
  });

  it("yields rows in file order when a malformed row is skipped", async () => {
    const csv = ["type,id,segment", "bu,a,s1", "bu,b,s2,extra", "bu,c,s3"].join("\n");
    expect((await rows(csv, "csv")).map((r) => r.line)).toEqual([2, 3, 4]);
  });

  it("reads quoted fields, CRLF, a byte-order mark, blank lines, a column named twice and a too-long line", async () => {
    const long = `bu,${"x".repeat(1024 * 1024)},s`;
    const csv = [
      "\ufefftype,id,segment,segment", // 1: the later "segment" column is the one read, as in a record
      'bu,"a,1",ignored,"s ""q"""', // 2: a quote inside quotes is refused by the segment's pattern
      "", // 3
      'bu , "b" ,x, s2 \r', // 4
      long, // 5
      "bu,c,x,s3", // 6
    ].join("\n");
    expect(await rows(csv, "csv")).toEqual([
      { line: 2, error: SEGMENT_REASON },
      { line: 4, row: { key: "bu:b", op: "add", segment: "s2", expiresAt: null, source: "" } },
      { line: 5, error: "line longer than 1048576 bytes" },
      { line: 6, row: { key: "bu:c", op: "add", segment: "s3", expiresAt: null, source: "" } },
    ]);
  });

  it("throws IngestFileError for a header missing segment", async () => {
    const err = await rows("type,id,ttl\nbu,a,60\n", "csv").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestFileError);
    expect((err as IngestFileError).code).toBe("AUD_ERR_INGEST_FILE");
    expect((err as IngestFileError).message).toBe("CSV header must name type,id,segment; missing segment");
  });

  it("throws IngestFileError for an unknown header column", async () => {
    const err = await rows("type,id,segment,colour\nbu,a,s,red\n", "csv").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestFileError);
    expect((err as IngestFileError).message).toBe("CSV header has unknown column(s): colour");
  });
});

describe("readMembershipRows: NDJSON", () => {
  it("reads objects and reports bad lines with their numbers (blank lines counted)", async () => {
    const nd = [
      '{"type":"bu","id":"a","segment":"s","ttl":60,"source":"crm"}', // 1
      "", // 2 blank
      "not json", // 3
      "[1,2]", // 4
      '{"type":"bu","id":"a","segment":"s","op":"drop"}', // 5
      '{"type":"bu","id":"a","segment":"s","ttl":60,"expires_at":1800000000}', // 6
      '{"type":"ifa","id":"00000000-0000-0000-0000-000000000000","segment":"s"}', // 7
      '{"type":"bu","id":7,"segment":"s","op":"remove"}', // 8
      "null", // 9
    ].join("\n");
    expect(await rows(nd, "ndjson")).toEqual([
      { line: 1, row: { key: "bu:a", op: "add", segment: "s", expiresAt: NOW + 60, source: "crm" } },
      { line: 3, error: "not a JSON object" },
      { line: 4, error: "not a JSON object" },
      { line: 5, error: "op must be add or remove, got 'drop'" },
      { line: 6, error: "give ttl or expires_at, not both" },
      { line: 7, error: "all-zero ifa" },
      { line: 8, row: { key: "bu:7", op: "remove", segment: "s", expiresAt: null, source: "" } },
      { line: 9, error: "not a JSON object" },
    ]);
  });

  it("handles CRLF line endings", async () => {
    const nd = '{"type":"bu","id":"a","segment":"s"}\r\n{"type":"bu","id":"b","segment":"s"}\r\n';
    expect((await rows(nd, "ndjson")).map((r) => ("row" in r ? r.row.key : r.error))).toEqual([
      "bu:a",
      "bu:b",
    ]);
  });
});

describe("loadMemberships", () => {
  it("loads good rows, counts and reports every rejected row", async () => {
    const store = new MemoryProfileStore();
    const rejected: RejectedRow[] = [];
    const csv = [
      "type,id,segment,ttl", // 1
      "bu,b1,sports,60", // 2
      "nope,b1,sports,60", // 3
      "bu,b2,autos,", // 4
      "bu,b3,news,-5", // 5
      "xu:ssp,u1,sports,3600", // 6
    ].join("\n");
    const summary = await loadMemberships(store, input(csv), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
      onRejected: (r) => rejected.push(r),
    });
    expect({ read: summary.read, loaded: summary.loaded, rejected: summary.rejected }).toEqual({
      read: 5,
      loaded: 3,
      rejected: 2,
    });
    const expectedRejects = [
      { line: 3, reason: "unknown id type 'nope'" },
      { line: 5, reason: TTL_REASON },
    ];
    expect(summary.errors).toEqual(expectedRejects);
    expect(rejected).toEqual(expectedRejects);
    expect(store.size).toBe(3);
    const [b1, b2, u1] = await store.readProfiles(["bu:b1", "bu:b2", "xu:ssp:u1"], NOW);
    expect(b1).toEqual({
      memberships: [{ segment: "sports", expiresAt: NOW + 60, source: "", generation: 0 }],
    });
    expect(b2).toEqual({ memberships: [{ segment: "autos", expiresAt: 0, source: "", generation: 0 }] });
    expect(u1).toEqual({
      memberships: [{ segment: "sports", expiresAt: NOW + 3600, source: "", generation: 0 }],
    });
  });

  it("loads NDJSON and reports the bad line", async () => {
    const store = new MemoryProfileStore();
    const nd = '{"type":"bu","id":"a","segment":"s1"}\n{oops\n{"type":"bu","id":"a","segment":"s2"}\n';
    const summary = await loadMemberships(store, input(nd), "ndjson", { nowSec: NOW, catalog: EMPTY });
    expect({ read: summary.read, loaded: summary.loaded, rejected: summary.rejected }).toEqual({
      read: 3,
      loaded: 2,
      rejected: 1,
    });
    expect(summary.errors).toEqual([{ line: 2, reason: "not a JSON object" }]);
    expect(await segmentsOf(store, "bu:a")).toEqual(["s1", "s2"]);
  });

  it("stores e-mail rows only as hem:<sha256>", async () => {
    const store = new MemoryProfileStore();
    const applied: string[] = [];
    const csv = "type,id,segment\nemail, Jane.Doe@Example.com ,sports\n";
    const summary = await loadMemberships(store, input(csv), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
      onApplied: (keys) => {
        applied.push(...keys);
      },
    });
    expect(summary.loaded).toBe(1);
    const hem = `hem:${createHash("sha256").update("jane.doe@example.com").digest("hex")}`;
    expect(applied).toEqual([hem]);
    expect(applied.some((k) => k.toLowerCase().includes("jane.doe@example.com"))).toBe(false);
    expect(store.size).toBe(1);
    expect(await segmentsOf(store, hem)).toEqual(["sports"]);
    expect(await segmentsOf(store, "email:jane.doe@example.com")).toBeNull();
  });

  it("op=remove removes a membership loaded earlier", async () => {
    const store = new MemoryProfileStore();
    const first = "type,id,segment\nbu,b1,sports\nbu,b1,autos\n";
    await loadMemberships(store, input(first), "csv", { nowSec: NOW, catalog: EMPTY });
    expect(await segmentsOf(store, "bu:b1")).toEqual(["sports", "autos"]);

    const second = '{"type":"bu","id":"b1","segment":"sports","op":"remove"}\n';
    const summary = await loadMemberships(store, input(second), "ndjson", { nowSec: NOW, catalog: EMPTY });
    expect(summary.loaded).toBe(1);
    expect(await segmentsOf(store, "bu:b1")).toEqual(["autos"]);

    await loadMemberships(store, input("type,id,segment,op\nbu,b1,autos,remove\n"), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
    });
    expect(await segmentsOf(store, "bu:b1")).toBeNull();
    expect(store.size).toBe(0);
  });

  it("applies ops in batches of batchSize, in file order", async () => {
    const store = new MemoryProfileStore();
    const batches: string[][] = [];
    const csv = ["type,id,segment,op", "bu,a,s,", "bu,b,s,", "bu,a,s,remove", "bu,c,s,", "bu,d,s,"].join(
      "\n",
    );
    const summary = await loadMemberships(store, input(csv), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
      batchSize: 2,
      windowRows: 2,
      onApplied: (keys) => {
        batches.push([...keys]);
      },
    });
    expect(summary.loaded).toBe(5);
    expect(batches).toEqual([["bu:a", "bu:b"], ["bu:a", "bu:c"], ["bu:d"]]);
    expect(await segmentsOf(store, "bu:a")).toBeNull();
    expect(store.size).toBe(3);
  });

  it("merges an ID's rows held in the window into one write, in file order, and reports bad rows at once by line", async () => {
    const store = new MemoryProfileStore();
    await store.optOut(["bu:out"], NOW);
    const batches: string[][] = [];
    const reported: { line: number; atBatch: number }[] = [];
    const csv = [
      "type,id,segment,op", // 1
      "bu,a,s1,", // 2
      "bu,out,s1,", // 3
      "bu,b,s1,", // 4
      "nope,a,s1,", // 5 bad
      "bu,a,s1,remove", // 6
      "bu,out,s2,", // 7
      "bu,a,s2,", // 8
      "bu,c,s1,", // 9
      "bu,a,s3,", // 10
      "bu,b,s2,", // 11
      "bu,d,s1,", // 12
    ].join("\n");
    const summary = await loadMemberships(store, input(csv), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
      batchSize: 2,
      windowRows: 6,
      onRejected: (r) => reported.push({ line: r.line, atBatch: batches.length }),
      onApplied: (keys) => {
        batches.push([...keys]);
      },
    });
    // Rows 2-8 fill the window (6 rows); row 9 sends its oldest IDs, at least 2 rows: a with rows 2, 6 and 8.
    // Row 12 sends out (rows 3, 7); the end sends b (4, 11), then c and a (9, 10), then d.
    expect(batches).toEqual([["bu:a"], ["bu:out"], ["bu:b"], ["bu:c", "bu:a"], ["bu:d"]]);
    expect(reported).toEqual([{ line: 5, atBatch: 0 }]);
    expect(summary).toMatchObject({ read: 11, loaded: 8, rejected: 1, skipped: 2 });
    expect(await segmentsOf(store, "bu:a")).toEqual(["s2", "s3"]);
    expect(await segmentsOf(store, "bu:b")).toEqual(["s1", "s2"]);
    expect(await segmentsOf(store, "bu:out")).toBeNull();
    expect(await store.isOptedOut("bu:out")).toBe(true);
  });

  it("loads the rows read before the file turns unreadable, then reports the file error", async () => {
    const store = new MemoryProfileStore();
    const applied: string[] = [];
    async function* cut(): AsyncGenerator<Buffer> {
      yield Buffer.from("type,id,segment\nbu,a,s1\nbu,b,s1\nbu,a,s2\n");
      throw new Error("gzip data is truncated or corrupt: unexpected end of file");
    }
    const err = await loadMemberships(store, Readable.from(cut(), { objectMode: false }), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
      onApplied: (keys) => {
        applied.push(...keys);
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestFileError);
    expect((err as Error).message).toBe("gzip data is truncated or corrupt: unexpected end of file");
    // Held in the window when the input failed: written all the same, as the command says.
    expect(applied).toEqual(["bu:a", "bu:b"]);
    expect(await segmentsOf(store, "bu:a")).toEqual(["s1", "s2"]);
    expect(await segmentsOf(store, "bu:b")).toEqual(["s1"]);
  });

  it("stops at the store's failure and reports it, not a file error", async () => {
    const store = new MemoryProfileStore();
    const failing = Object.assign(Object.create(store) as MemoryProfileStore, {
      applyMembershipGroups: () => Promise.reject(new Error("connection lost")),
    });
    const lines = ["type,id,segment"];
    for (let i = 0; i < 50; i++) lines.push(`bu,u${i},s`);
    const err = await loadMemberships(failing, input(lines.join("\n")), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
      batchSize: 2,
      windowRows: 2,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(IngestFileError);
    expect((err as Error).message).toBe("connection lost");
  });

  it("keeps only the first 100 errors but counts them all", async () => {
    const lines = ["type,id,segment"];
    for (let i = 0; i < 150; i++) lines.push(`bad,${i},s`);
    const summary = await loadMemberships(new MemoryProfileStore(), input(lines.join("\n")), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
    });
    expect(summary.rejected).toBe(150);
    expect(summary.errors).toHaveLength(100);
    expect(summary.errors[99]).toEqual({ line: 101, reason: "unknown id type 'bad'" });
  });

  it("rejects the whole CSV file when the header misses segment, loading nothing", async () => {
    const store = new MemoryProfileStore();
    const err = await loadMemberships(store, input("type,id\nbu,a\n"), "csv", {
      nowSec: NOW,
      catalog: EMPTY,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestFileError);
    expect(store.size).toBe(0);
  });
});

describe("splitCsvLine", () => {
  it("splits plain and quoted fields, with doubled quotes inside quotes", () => {
    expect(splitCsvLine("a,b,,c")).toEqual(["a", "b", "", "c"]);
    expect(splitCsvLine('bu,"x,y",1001')).toEqual(["bu", "x,y", "1001"]);
    expect(splitCsvLine('"say ""hi""", "two" ,three')).toEqual(['say "hi"', "two", "three"]);
    expect(splitCsvLine('""')).toEqual([""]);
  });

  it("returns null for a quote left open or text after a closing quote", () => {
    expect(splitCsvLine('bu,"open,1')).toBeNull();
    expect(splitCsvLine('bu,"a"b,1')).toBeNull();
    expect(splitCsvLine('bu,a"b,1')).toBeNull();
  });
});

describe("row errors never quote an e-mail or an ID found in the wrong column", () => {
  const EMAIL = "alice@example.com";
  const UUID = "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35";

  it("swapped type and id columns: the type is named by <e-mail> or a hash prefix", async () => {
    const csv = ["id,type,segment", `bu,${EMAIL},1001`, `bu,${UUID},1001`].join("\n");
    const out = await rows(csv, "csv");
    expect(out).toEqual([
      { line: 2, error: "unknown id type <e-mail>" },
      { line: 3, error: `unknown id type #${createHash("sha256").update(UUID).digest("hex").slice(0, 8)}` },
    ]);
    expect(JSON.stringify(out)).not.toContain("alice");
    expect(JSON.stringify(out)).not.toContain(UUID);
  });

  it("an e-mail in the op column is not quoted either", async () => {
    const csv = ["type,id,op,segment", `bu,x,${EMAIL},1001`].join("\n");
    expect(await rows(csv, "csv")).toEqual([{ line: 2, error: "op must be add or remove, got <e-mail>" }]);
  });

  it("a file without a header: its first row, read as the header, is not quoted", async () => {
    const err = await rows(`type,id,segment,${EMAIL}\nbu,a,s,x\n`, "csv").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestFileError);
    expect((err as IngestFileError).message).toBe("CSV header has unknown column(s): <e-mail>");
  });
});

describe("expires_at bounds", () => {
  const base = { type: "bu", id: "b1", segment: "s" };
  const TOO_FAR = "expires_at must be at most 315360000 s (10 years) ahead";

  it("accepts up to 10 years ahead, as ttl does, and refuses a second more", () => {
    expect(toRow({ ...base, expires_at: NOW + 315_360_000 }, NOW)).toMatchObject({
      expiresAt: NOW + 315_360_000,
    });
    expect(toRow({ ...base, expires_at: NOW + 315_360_001 }, NOW)).toBe(TOO_FAR);
  });

  it("refuses 10^20 as a number, as digits and as a far ISO-8601 year, with the row's line", async () => {
    expect(toRow({ ...base, expires_at: 1e20 }, NOW)).toBe(TOO_FAR);
    expect(toRow({ ...base, expires_at: "100000000000000000000" }, NOW)).toBe(TOO_FAR);
    expect(toRow({ ...base, expires_at: "+275760-09-13T00:00:00Z" }, NOW)).toBe(TOO_FAR);
    const nd = [
      '{"type":"bu","id":"a","segment":"s"}',
      '{"type":"bu","id":"b","segment":"s","expires_at":1e20}',
    ];
    expect(await rows(nd.join("\n"), "ndjson")).toEqual([
      { line: 1, row: { key: "bu:a", op: "add", segment: "s", expiresAt: null, source: "" } },
      { line: 2, error: TOO_FAR },
    ]);
  });

  it("keeps a time already past (the membership expires at once), as before", () => {
    expect(toRow({ ...base, expires_at: NOW - 10 }, NOW)).toMatchObject({ expiresAt: NOW - 10 });
  });
});
