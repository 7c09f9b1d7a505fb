// Reads identity-link files: CSV edges `type_a,id_a,type_b,id_b[,confidence][,source][,op]` and NDJSON
// groups `{"ids": [{"type", "id"}, ...], "confidence", "source", "op"}` (or NDJSON lines with the CSV keys).
// A group of n IDs becomes n-1 links from its first ID to each other one: the same person, fewest edges.
import type { Readable } from "node:stream";
import type { LinkOp } from "../identity/identity-graph.ts";
import { toTypedId } from "../identity/typed-id.ts";
import { quotedInput } from "../privacy/log-redaction.ts";
import { type FileFormat, type ReadOptions, type RecordShape, readRecords } from "./record-reader.ts";

export type LinkRowResult = { line: number; ops: LinkOp[] } | { line: number; error: string };

const LINK_SHAPE: RecordShape = {
  required: ["type_a", "id_a", "type_b", "id_b"],
  known: new Set(["type_a", "id_a", "type_b", "id_b", "confidence", "source", "op"]),
};
/** A mistyped op ("delete") is quoted as it is; anything else in its place may be an ID (see quotedInput). */
const OP_SHAPE = /^[a-z]{1,12}$/i;
/** A group larger than this is not a person: refused as a row rather than sent to the graph. */
const MAX_GROUP_IDS = 1_000;

/** Validates one record; a string is the reason it was rejected. */
export function toLinkOps(record: Readonly<Record<string, unknown>>): LinkOp[] | string {
  const op = blank(record.op) ? "add" : record.op;
  if (op !== "add" && op !== "remove")
    return `op must be add or remove, got ${quotedInput(String(op), OP_SHAPE)}`;
  let confidence = 1;
  if (!blank(record.confidence)) {
    const n = Number(record.confidence);
    if (!Number.isFinite(n) || n <= 0 || n > 1) return "confidence must be a number in (0, 1]";
    confidence = n;
  }
  const source = blank(record.source) ? "" : String(record.source).slice(0, 64);
  let keys: string[];
  if (record.ids !== undefined) {
    if (!Array.isArray(record.ids) || record.ids.length < 2) return "ids must be an array of at least 2 IDs";
    if (record.ids.length > MAX_GROUP_IDS)
      return `ids has ${record.ids.length} entries; at most ${MAX_GROUP_IDS}`;
    keys = [];
    for (let i = 0; i < record.ids.length; i++) {
      const e = record.ids[i] as Record<string, unknown> | null;
      if (typeof e !== "object" || e === null) return `ids[${i}] must be an object {type, id}`;
      const typed = typedKey(e.type, e.id);
      if (typeof typed !== "object") return `ids[${i}]: ${typed}`;
      keys.push(typed.key);
    }
  } else {
    const a = typedKey(record.type_a, record.id_a);
    if (typeof a !== "object") return `id_a: ${a}`;
    const b = typedKey(record.type_b, record.id_b);
    if (typeof b !== "object") return `id_b: ${b}`;
    keys = [a.key, b.key];
  }
  const first = keys[0] as string;
  const ops: LinkOp[] = [];
  for (let i = 1; i < keys.length; i++) {
    const b = keys[i] as string;
    if (b === first) return "an ID cannot be linked to itself";
    ops.push({ op, a: first, b, confidence, source });
  }
  return ops;
}

function typedKey(type: unknown, id: unknown): { key: string } | string {
  if (typeof type !== "string" || type === "") return "missing type";
  if (typeof id !== "string" && typeof id !== "number") return "missing id";
  const typed = toTypedId(type, String(id));
  return typed.ok ? { key: typed.key } : typed.reason;
}

const blank = (v: unknown): boolean => v === undefined || v === null || v === "";

/** Validated link rows in file order; the file itself being unusable throws IngestFileError. */
export async function* readLinkRows(
  input: Readable,
  format: FileFormat,
  opts: ReadOptions = {},
): AsyncGenerator<LinkRowResult> {
  for await (const r of readRecords(input, format, LINK_SHAPE, opts)) {
    if ("error" in r) {
      yield r;
      continue;
    }
    const ops = toLinkOps(r.record);
    yield typeof ops === "string" ? { line: r.line, error: ops } : { line: r.line, ops };
  }
}
