// Reads membership files (CSV or NDJSON) as a stream of validated rows, each bad row reported with its line.
import { extname } from "node:path";
import type { Readable } from "node:stream";
import { toTypedId } from "../identity/typed-id.ts";
import { quotedInput } from "../privacy/log-redaction.ts";
import {
  CsvLines,
  DEFAULT_MAX_LINE_BYTES,
  type FileFormat,
  LineSplitter,
  ndjsonLine,
  pumpLines,
  type ReadOptions,
  type RecordResult,
  type RecordShape,
  readRecordBatches,
  tooLongReason,
} from "./record-reader.ts";

/** One valid row: a membership to add or remove. The loader turns it into a store op with the catalog. */
export interface MembershipRow {
  readonly key: string;
  readonly op: "add" | "remove";
  readonly segment: string;
  /** Epoch seconds from `ttl` or `expires_at`; null when the row gives neither (the segment's default applies). */
  readonly expiresAt: number | null;
  readonly source: string;
}

/** One line of input: a row to apply, or why it was rejected. */
export type RowResult = { line: number; row: MembershipRow } | { line: number; error: string };

const SEGMENT_RE = /^[A-Za-z0-9._:-]{1,64}$/;
/** A mistyped op ("delete") is quoted as it is; anything else in its place may be an ID (see quotedInput). */
const OP_SHAPE = /^[a-z]{1,12}$/i;
const MAX_TTL_S = 10 * 365 * 86_400;
const MEMBERSHIP_SHAPE: RecordShape = {
  required: ["type", "id", "segment"],
  known: new Set(["type", "id", "segment", "ttl", "op", "expires_at", "source"]),
};

export { type FileFormat, IngestFileError } from "./record-reader.ts";

/** Format by extension (.csv, .ndjson, .jsonl); see open-input.ts for names ending in .gz. */
export function formatOf(path: string): FileFormat | null {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".ndjson" || ext === ".jsonl") return "ndjson";
  return null;
}

/** Validates one row's fields (strings or numbers as read); a string is the reason it was rejected. */
export function toRow(row: Readonly<Record<string, unknown>>, nowSec: number): MembershipRow | string {
  return rowOf(row.type, row.id, row.segment, row.ttl, row.op, row.expires_at, row.source, nowSec);
}

/** toRow on the fields themselves (undefined: the file has no such column or key). */
function rowOf(
  type: unknown,
  id: unknown,
  segment: unknown,
  rawTtl: unknown,
  rawOp: unknown,
  expiresAtField: unknown,
  rawSource: unknown,
  nowSec: number,
): MembershipRow | string {
  if (typeof type !== "string" || type === "") return "missing type";
  if (typeof id !== "string" && typeof id !== "number") return "missing id";
  const typed = toTypedId(type, String(id));
  if (!typed.ok) return typed.reason;
  const seg = typeof segment === "number" ? String(segment) : segment;
  if (typeof seg !== "string" || !SEGMENT_RE.test(seg)) {
    return "segment must be 1-64 letters, digits, '.', '_', ':' or '-'";
  }
  const op = rawOp === undefined || rawOp === "" || rawOp === null ? "add" : rawOp;
  if (op !== "add" && op !== "remove")
    return `op must be add or remove, got ${quotedInput(String(op), OP_SHAPE)}`;

  let expiresAt: number | null = null;
  const ttl = blankToUndefined(rawTtl);
  const at = blankToUndefined(expiresAtField);
  if (ttl !== undefined && at !== undefined) return "give ttl or expires_at, not both";
  if (ttl !== undefined) {
    const n = Number(ttl);
    if (!Number.isInteger(n) || n <= 0 || n > MAX_TTL_S)
      return `ttl must be whole seconds from 1 to ${MAX_TTL_S}`;
    expiresAt = nowSec + n;
  } else if (at !== undefined) {
    const n =
      typeof at === "number" ? at : /^\d+$/.test(String(at)) ? Number(at) : Date.parse(String(at)) / 1000;
    if (!Number.isFinite(n) || n <= 0) return "expires_at must be epoch seconds or an ISO-8601 time";
    // The same horizon as ttl: a membership cannot outlive 10 years, and a time past it (10^20) is a
    // mistake that the store's expiry arithmetic cannot take. A time already past is kept: it expires at once.
    if (n > nowSec + MAX_TTL_S) return `expires_at must be at most ${MAX_TTL_S} s (10 years) ahead`;
    expiresAt = Math.floor(n);
  }
  const source = rawSource === undefined || rawSource === null ? "" : String(rawSource).slice(0, 64);
  return { key: typed.key, op, segment: seg, expiresAt, source };
}

function blankToUndefined(v: unknown): unknown {
  return v === undefined || v === null || v === "" ? undefined : v;
}

/** Validated rows in batches (one per input chunk); throws IngestFileError when the file itself is unusable. */
export async function* readMembershipRowBatches(
  input: Readable,
  format: FileFormat,
  nowSec: number,
  opts: ReadOptions = {},
): AsyncGenerator<RowResult[]> {
  for await (const records of readRecordBatches(input, format, MEMBERSHIP_SHAPE, opts)) {
    const out = new Array<RowResult>(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as RecordResult;
      if ("error" in r) {
        out[i] = r;
        continue;
      }
      const row = toRow(r.record, nowSec);
      out[i] = typeof row === "string" ? { line: r.line, error: row } : { line: r.line, row };
    }
    yield out;
  }
}

/** The same, one row at a time. */
export async function* readMembershipRows(
  input: Readable,
  format: FileFormat,
  nowSec: number,
): AsyncGenerator<RowResult> {
  for await (const batch of readMembershipRowBatches(input, format, nowSec)) yield* batch;
}

/** Where readMembershipRowsInto hands each line's outcome, in file order. */
export interface MembershipRowSink {
  row(row: MembershipRow, line: number): void;
  rejected(line: number, reason: string): void;
}

export interface PushReadOptions extends ReadOptions {
  /** Awaited after each chunk of input (and at the end): where the caller writes and waits for its writes. */
  readonly afterChunk?: () => void | Promise<void>;
}

/**
 * The rows of readMembershipRowBatches, handed to `sink` one by one as each line is parsed: no result object
 * nor batch array per row, and for CSV no record object either (fields are taken by column number), which
 * is most of what a bulk load allocates per row. Throws IngestFileError when the file itself is unusable.
 */
export async function readMembershipRowsInto(
  input: Readable,
  format: FileFormat,
  nowSec: number,
  sink: MembershipRowSink,
  opts: PushReadOptions = {},
): Promise<void> {
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const tooLong = tooLongReason(maxLineBytes);
  const onRow = (row: MembershipRow | string, line: number): void => {
    if (typeof row === "string") sink.rejected(line, row);
    else sink.row(row, line);
  };
  let onLine: (text: string, line: number) => void;
  if (format === "csv") {
    const csv = new CsvLines(MEMBERSHIP_SHAPE);
    // Column numbers, once the header is read; -1 for a column the file does not have. A column named
    // twice reads as its last, as in a record.
    let header = false;
    let type = -1;
    let id = -1;
    let segment = -1;
    let ttl = -1;
    let op = -1;
    let expiresAt = -1;
    let source = -1;
    const field = (fields: string[], i: number): string | undefined => (i < 0 ? undefined : fields[i]);
    onLine = (text, line) => {
      const fields = csv.fields(text);
      if (fields === null) return;
      if (typeof fields === "string") {
        sink.rejected(line, fields);
        return;
      }
      if (!header) {
        const columns = csv.columns as readonly string[];
        type = columns.lastIndexOf("type");
        id = columns.lastIndexOf("id");
        segment = columns.lastIndexOf("segment");
        ttl = columns.lastIndexOf("ttl");
        op = columns.lastIndexOf("op");
        expiresAt = columns.lastIndexOf("expires_at");
        source = columns.lastIndexOf("source");
        header = true;
      }
      onRow(
        rowOf(
          field(fields, type),
          field(fields, id),
          field(fields, segment),
          field(fields, ttl),
          field(fields, op),
          field(fields, expiresAt),
          field(fields, source),
          nowSec,
        ),
        line,
      );
    };
  } else {
    onLine = (text, line) => {
      const r = ndjsonLine(text, line);
      if (r === null) return;
      if ("error" in r) sink.rejected(line, r.error);
      else onRow(toRow(r.record, nowSec), line);
    };
  }
  const lines = new LineSplitter(maxLineBytes, onLine, (line) => sink.rejected(line, tooLong));
  await pumpLines(input, lines, opts.afterChunk ?? (() => {}));
}
