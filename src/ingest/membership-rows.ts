// Reads membership files (CSV or NDJSON) as a stream of validated rows, each bad row reported with its line.
import { extname } from "node:path";
import type { Readable } from "node:stream";
import { toTypedId } from "../identity/typed-id.ts";
import { quotedInput } from "../privacy/log-redaction.ts";
import {
  type FileFormat,
  type ReadOptions,
  type RecordResult,
  type RecordShape,
  readRecordBatches,
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
  const type = row.type;
  const id = row.id;
  const segment = row.segment;
  if (typeof type !== "string" || type === "") return "missing type";
  if (typeof id !== "string" && typeof id !== "number") return "missing id";
  const typed = toTypedId(type, String(id));
  if (!typed.ok) return typed.reason;
  const seg = typeof segment === "number" ? String(segment) : segment;
  if (typeof seg !== "string" || !SEGMENT_RE.test(seg)) {
    return "segment must be 1-64 letters, digits, '.', '_', ':' or '-'";
  }
  const op = row.op === undefined || row.op === "" || row.op === null ? "add" : row.op;
  if (op !== "add" && op !== "remove")
    return `op must be add or remove, got ${quotedInput(String(op), OP_SHAPE)}`;

  let expiresAt: number | null = null;
  const ttl = blankToUndefined(row.ttl);
  const at = blankToUndefined(row.expires_at);
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
  const source = row.source === undefined || row.source === null ? "" : String(row.source).slice(0, 64);
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
