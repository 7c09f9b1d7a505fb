// The line reader under every bulk file and POST /v1/events: lines cut the same whatever the chunking,
// a too-long line reported with its number and skipped in bounded memory, linear work, the byte-order mark.
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_LINE_BYTES,
  EVENT_MAX_LINE_BYTES,
  LineSplitter,
  type RecordResult,
  readRecords,
} from "../../src/ingest/record-reader.ts";

const MiB = 1024 * 1024;
const SHAPE = { required: ["type", "id"], known: new Set(["type", "id"]) } as const;

/** Every line the splitter gives, as [line, text] or [line, "TOO LONG"]. */
function split(
  chunks: readonly Buffer[],
  max: number,
): { lines: [number, string][]; splitter: LineSplitter } {
  const lines: [number, string][] = [];
  const splitter = new LineSplitter(
    max,
    (text, line) => lines.push([line, text]),
    (line) => lines.push([line, "TOO LONG"]),
  );
  for (const c of chunks) splitter.push(c);
  splitter.end();
  return { lines, splitter };
}

/** `buf` cut into pieces at the given sizes, repeating them. */
function cut(buf: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < buf.length; i++) {
    const n = sizes[i % sizes.length] as number;
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function records(text: string | Buffer, format: "csv" | "ndjson"): Promise<RecordResult[]> {
  const out: RecordResult[] = [];
  for await (const r of readRecords(Readable.from([Buffer.from(text)]), format, SHAPE)) out.push(r);
  return out;
}

describe("LineSplitter", () => {
  const text = Buffer.from("a,1\r\n\nb,é2\n€ three\r\nlast without newline");
  const expected: [number, string][] = [
    [1, "a,1"],
    [2, ""],
    [3, "b,é2"],
    [4, "€ three"],
    [5, "last without newline"],
  ];

  it.each([[[1]], [[2]], [[3, 1]], [[7]], [[1_000]]])(
    "cuts the same lines whatever the chunking (pieces of %j bytes), multi-byte characters included",
    (sizes) => {
      expect(split(cut(text, sizes), 64).lines).toEqual(expected);
    },
  );

  it.each([[[1]], [[5]], [[40]], [[1_000]]])(
    "reports a line over the maximum by its number and reads on (pieces of %j bytes)",
    (sizes) => {
      // Line 2 is 21 bytes against a maximum of 20; line 3 is exactly 20 and passes.
      const input = Buffer.from(`first\n${"x".repeat(21)}\n${"y".repeat(20)}\nlast\n`);
      expect(split(cut(input, sizes), 20).lines).toEqual([
        [1, "first"],
        [2, "TOO LONG"],
        [3, "y".repeat(20)],
        [4, "last"],
      ]);
    },
  );

  it("reports a too-long last line that has no newline", () => {
    expect(split(cut(Buffer.from(`ok\n${"z".repeat(30)}`), [4]), 20).lines).toEqual([
      [1, "ok"],
      [2, "TOO LONG"],
    ]);
  });

  it("drops a byte-order mark at the start only, even split over chunks", () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const input = Buffer.concat([bom, Buffer.from("one\n"), bom, Buffer.from("two\n")]);
    for (const sizes of [[1], [2], [100]]) {
      expect(split(cut(input, sizes), 64).lines).toEqual([
        [1, "one"],
        [2, "\ufefftwo"],
      ]);
    }
  });

  it("does linear work and holds at most one line on a long line fed one byte at a time", () => {
    // 4 MiB on one line, then a normal line, in 1-byte chunks: the old reader re-joined and re-scanned the
    // unfinished line on every chunk, about n²/2 = 8.8e12 characters here; this one searches, decodes and
    // splits each byte a bounded number of times.
    const total = 4 * MiB;
    const one = Buffer.from("x");
    const lines: [number, string][] = [];
    let held = 0;
    const splitter = new LineSplitter(
      EVENT_MAX_LINE_BYTES,
      (text, line) => lines.push([line, text]),
      (line) => lines.push([line, "TOO LONG"]),
    );
    for (let i = 0; i < total; i++) {
      splitter.push(one);
      held = Math.max(held, splitter.bufferedBytes);
    }
    for (const c of Buffer.from('\n{"type":"bu","id":"after"}\n')) splitter.push(Buffer.from([c]));
    splitter.end();
    expect(lines).toEqual([
      [1, "TOO LONG"],
      [2, '{"type":"bu","id":"after"}'],
    ]);
    expect(held).toBe(EVENT_MAX_LINE_BYTES);
    expect(splitter.scannedBytes).toBeLessThanOrEqual(3 * (total + 28));
  });

  it("does linear work on a long line in large chunks too, at the default maximum", () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const { lines, splitter } = split(
      [...Array.from({ length: 512 }, () => chunk), Buffer.from("\nok\n")],
      DEFAULT_MAX_LINE_BYTES,
    );
    expect(lines).toEqual([
      [1, "TOO LONG"],
      [2, "ok"],
    ]);
    expect(splitter.scannedBytes).toBeLessThanOrEqual(3 * (512 * chunk.length + 4));
  });
});

describe("readRecords", () => {
  it("reports the too-long line as a row error naming the maximum, and loads the rows after it", async () => {
    const long = `{"type":"bu","id":"${"a".repeat(DEFAULT_MAX_LINE_BYTES)}"}`;
    const got = await records(`{"type":"bu","id":"x"}\n${long}\n{"type":"bu","id":"y"}\n`, "ndjson");
    expect(got).toEqual([
      { line: 1, record: { type: "bu", id: "x" } },
      { line: 2, error: "line longer than 1048576 bytes" },
      { line: 3, record: { type: "bu", id: "y" } },
    ]);
  });

  it("loads the first NDJSON row of a file that starts with a byte-order mark", async () => {
    const got = await records('\ufeff{"type":"bu","id":"first"}\n{"type":"bu","id":"second"}\n', "ndjson");
    expect(got).toEqual([
      { line: 1, record: { type: "bu", id: "first" } },
      { line: 2, record: { type: "bu", id: "second" } },
    ]);
  });

  it("reads the header of a CSV file that starts with a byte-order mark", async () => {
    expect(await records("\ufefftype,id\nbu,first\n", "csv")).toEqual([
      { line: 2, record: { type: "bu", id: "first" } },
    ]);
  });
});
