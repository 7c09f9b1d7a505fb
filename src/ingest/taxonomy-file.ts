// Reads a taxonomy file (CSV or JSON) into segment definitions, each bad row reported with its line.
import { extname } from "node:path";
import { Readable } from "node:stream";
import { CsvError, parse as parseCsv } from "csv-parse";
import { shownInput } from "../privacy/log-redaction.ts";
import { type Party, SEGMENT_ID_RE, type SegmentDef } from "../segments/segment-def.ts";
import { COLUMN_SHAPE, DEFAULT_MAX_LINE_BYTES, type ReadOptions } from "./record-reader.ts";

export type TaxonomyFormat = "csv" | "json";

/** CSV: the record's first physical line. JSON: the entry's 1-based index in the array. */
export interface TaxonomyRowError {
  readonly line: number;
  readonly reason: string;
}

export interface TaxonomyResult {
  /** Valid segments in file order; every parent is among them or in the `known` set. */
  segments: SegmentDef[];
  /** Sorted by line. */
  errors: TaxonomyRowError[];
}

export class TaxonomyFileError extends Error {
  readonly code = "AUD_ERR_TAXONOMY_FILE";
}

export const TAXONOMY_REQUIRED = ["id", "name"] as const;
const TAXONOMY_KNOWN = new Set([
  "id",
  "name",
  "parent",
  "party",
  "provider",
  "sensitive",
  "ttl",
  "segtax",
  "segtax_id",
]);
const MAX_NAME = 200;
const MAX_TTL_S = 10 * 365 * 86_400;
const PARTIES: ReadonlySet<string> = new Set<Party>(["first", "second", "third"]);
const TRUE_WORDS = new Set(["true", "1", "yes"]);
const FALSE_WORDS = new Set(["false", "0", "no"]);
const ID_RULE = "1-64 letters, digits, '.', '_', ':' or '-'";

export function taxonomyFormatOf(path: string): TaxonomyFormat | null {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".json") return "json";
  return null;
}

/** How a caller should name where an error is: CSV rows by line, JSON entries by index. */
export function taxonomyErrorWhere(format: TaxonomyFormat, line: number): string {
  return format === "json" ? `entry ${line}` : `line ${line}`;
}

/** Reads and validates a whole taxonomy; throws TaxonomyFileError when the file itself is unusable. */
export async function readTaxonomy(
  input: Readable,
  format: TaxonomyFormat,
  known: ReadonlySet<string> = new Set(),
  opts: ReadOptions = {},
): Promise<TaxonomyResult> {
  if (format === "json") {
    const text = stripBom(await readText(input));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new TaxonomyFileError(`taxonomy file is not valid JSON: ${(err as Error).message}`);
    }
    return parseTaxonomyJson(value, known);
  }
  return resolve(await readCsvRows(input, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES), known, "csv");
}

/** For a JSON body already parsed (the admin API): an array of objects keyed like the CSV columns. */
export function parseTaxonomyJson(value: unknown, known: ReadonlySet<string> = new Set()): TaxonomyResult {
  if (!Array.isArray(value)) throw new TaxonomyFileError("taxonomy JSON must be an array of segment objects");
  const rows: RowResult[] = value.map((entry: unknown, i) => {
    const line = i + 1;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      return { line, error: "not a JSON object" };
    }
    const unknown = Object.keys(entry).filter((k) => !TAXONOMY_KNOWN.has(k));
    if (unknown.length > 0) return { line, error: `unknown key(s): ${columnList(unknown)}` };
    return rowOf(line, entry as Record<string, unknown>);
  });
  return resolve(rows, known, "json");
}

/** Unknown column names or keys, as a message names them: a data row read as a header may hold IDs. */
function columnList(names: readonly string[]): string {
  return names.map((c) => shownInput(c, COLUMN_SHAPE)).join(",");
}

/** A rejected row keeps the id it gave, so a child can say its parent was rejected rather than missing. */
type RowResult = { line: number; def: SegmentDef } | { line: number; error: string; id?: string | null };

function rowOf(line: number, fields: Readonly<Record<string, unknown>>): RowResult {
  const r = toSegment(fields);
  return typeof r === "string" ? { line, error: r, id: idText(fields.id) } : { line, def: r };
}

/** Validates one row's fields (strings from CSV, or JSON values) into a segment, or says why not. */
function toSegment(row: Readonly<Record<string, unknown>>): SegmentDef | string {
  const id = idText(row.id);
  if (id === null) return "id is required";
  if (id === undefined || !SEGMENT_ID_RE.test(id)) return `id must be ${ID_RULE}`;

  const name = blank(row.name) ? null : typeof row.name === "string" ? row.name.trim() : undefined;
  if (name === null) return "name is required";
  if (name === undefined) return "name must be a string";
  if (name.length > MAX_NAME) return `name must be at most ${MAX_NAME} characters`;

  const parent = idText(row.parent);
  if (parent === undefined || (parent !== null && !SEGMENT_ID_RE.test(parent))) {
    return `parent must be ${ID_RULE}`;
  }

  let party: Party | null = null;
  if (!blank(row.party)) {
    const p = typeof row.party === "string" ? row.party.trim().toLowerCase() : "";
    if (!PARTIES.has(p)) return "party must be first, second or third";
    party = p as Party;
  }

  let provider: string | null = null;
  if (!blank(row.provider)) {
    if (typeof row.provider !== "string") return "provider must be a string";
    provider = row.provider.trim();
  }

  const sensitive = flag(row.sensitive);
  if (sensitive === undefined) return "sensitive must be true/false, 1/0 or yes/no";

  const ttlSec = wholeNumber(row.ttl);
  if (ttlSec === undefined || (ttlSec !== null && (ttlSec < 1 || ttlSec > MAX_TTL_S))) {
    return `ttl must be whole seconds from 1 to ${MAX_TTL_S}`;
  }

  const segtax = wholeNumber(row.segtax);
  if (segtax === undefined || segtax === 0) return "segtax must be a positive integer";
  const segtaxId = idText(row.segtax_id);
  if (segtaxId === undefined) return "segtax_id must be a string";
  // One without the other cannot be put in an OpenRTB segment extension, so it is a mistake in the file.
  if ((segtax === null) !== (segtaxId === null)) return "give segtax and segtax_id together";

  return { id, name, parent, party, provider, sensitive, ttlSec, segtax, segtaxId };
}

function blank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "string" && v.trim() === "");
}

/** null when blank; undefined when not a string or integer (JSON ids are often written as numbers). */
function idText(v: unknown): string | null | undefined {
  if (blank(v)) return null;
  if (typeof v === "string") return v.trim();
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  return undefined;
}

/** null when blank; undefined when not a non-negative whole number (digits in a string, or a JSON number). */
function wholeNumber(v: unknown): number | null | undefined {
  if (blank(v)) return null;
  const n =
    typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function flag(v: unknown): boolean | undefined {
  if (blank(v)) return false;
  if (typeof v === "boolean") return v;
  if (typeof v !== "string") return undefined;
  const w = v.trim().toLowerCase();
  return TRUE_WORDS.has(w) ? true : FALSE_WORDS.has(w) ? false : undefined;
}

/**
 * Whole-file rules over the valid rows: duplicate ids, parent cycles and parents that exist nowhere. A row
 * whose parent was rejected is rejected too, so the segments returned always form a consistent tree.
 */
function resolve(
  rows: readonly RowResult[],
  known: ReadonlySet<string>,
  format: TaxonomyFormat,
): TaxonomyResult {
  const at = (line: number | undefined): string => taxonomyErrorWhere(format, line ?? 0);
  const errors: TaxonomyRowError[] = [];
  const rejectedAt = new Map<string, number>();
  const byId = new Map<string, { line: number; def: SegmentDef }>();
  for (const row of rows) {
    if ("error" in row) {
      errors.push({ line: row.line, reason: row.error });
      if (typeof row.id === "string" && !rejectedAt.has(row.id)) rejectedAt.set(row.id, row.line);
      continue;
    }
    const first = byId.get(row.def.id);
    if (first !== undefined) {
      errors.push({ line: row.line, reason: `duplicate id '${row.def.id}' (first at ${at(first.line)})` });
      continue;
    }
    byId.set(row.def.id, row);
  }

  const reject = (id: string, reason: string): void => {
    const row = byId.get(id);
    if (row === undefined) return;
    errors.push({ line: row.line, reason });
    rejectedAt.set(id, row.line);
    byId.delete(id);
  };

  for (const cycle of findCycles(byId)) {
    for (let i = 0; i < cycle.length; i++) {
      // Each member's message starts at itself, so the row's own line reads naturally.
      const path = [...cycle.slice(i), ...cycle.slice(0, i), cycle[i] as string];
      reject(cycle[i] as string, `parent links form a cycle: ${path.join(" -> ")}`);
    }
  }

  // Walk each chain up to a segment already settled, then settle the whole chain: linear in the rows.
  const ok = new Set<string>();
  for (const start of [...byId.keys()]) {
    const chain: string[] = [];
    let cur: string | null = start;
    let verdict: string | null = null;
    while (cur !== null && byId.has(cur) && !ok.has(cur)) {
      chain.push(cur);
      cur = byId.get(cur)?.def.parent ?? null;
    }
    if (cur !== null && !ok.has(cur) && !known.has(cur)) {
      const line = rejectedAt.get(cur);
      verdict =
        line === undefined
          ? `parent '${cur}' is neither in the file nor a known segment`
          : `parent '${cur}' was rejected (see ${at(line)})`;
    }
    if (verdict === null) {
      for (const id of chain) ok.add(id);
      continue;
    }
    // The top of the chain has the missing parent; each one below it names its own rejected parent.
    for (let i = chain.length - 1; i >= 0; i--) {
      const id = chain[i] as string;
      const parent = byId.get(id)?.def.parent as string;
      reject(
        id,
        i === chain.length - 1
          ? verdict
          : `parent '${parent}' was rejected (see ${at(rejectedAt.get(parent))})`,
      );
    }
  }

  errors.sort((a, b) => a.line - b.line);
  const segments = rows.flatMap((r) => ("def" in r && byId.get(r.def.id) === r ? [r.def] : []));
  return { segments, errors };
}

/** Parent links give each segment at most one edge, so every cycle is found by following them once. */
function findCycles(byId: ReadonlyMap<string, { def: SegmentDef }>): string[][] {
  const cycles: string[][] = [];
  const walkOf = new Map<string, number>();
  let walk = 0;
  for (const start of byId.keys()) {
    if (walkOf.has(start)) continue;
    walk++;
    const path: string[] = [];
    let cur: string | null = start;
    while (cur !== null && byId.has(cur) && !walkOf.has(cur)) {
      walkOf.set(cur, walk);
      path.push(cur);
      cur = byId.get(cur)?.def.parent ?? null;
    }
    // Reaching a segment marked in this same walk closes a loop; one from an earlier walk was handled there.
    if (cur !== null && walkOf.get(cur) === walk) cycles.push(path.slice(path.indexOf(cur)));
  }
  return cycles;
}

/**
 * Malformed places a taxonomy CSV may have before its read is given up (the import is refused either way).
 * csv-parse reports one per stray quote, each with a copy of its record so far: a 64 KiB line of quotes took
 * seconds of one synchronous stretch (quadratic in the line), stalling every request of the process.
 */
export const MAX_MALFORMED_CSV = 100;

async function readCsvRows(input: Readable, maxLineBytes: number): Promise<RowResult[]> {
  const rows: RowResult[] = [];
  let sawHeader = false;
  let malformed = 0;
  const parser = parseCsv({
    columns: (header: string[]) => {
      sawHeader = true;
      // trim() also drops the byte-order mark spreadsheets often put before the first column name.
      const cols = header.map((h) => h.trim().toLowerCase());
      const missing = TAXONOMY_REQUIRED.filter((c) => !cols.includes(c));
      if (missing.length > 0) {
        throw new TaxonomyFileError(
          `taxonomy CSV header must name ${TAXONOMY_REQUIRED.join(",")}; missing ${missing.join(",")}`,
        );
      }
      const unknown = cols.filter((c) => !TAXONOMY_KNOWN.has(c));
      if (unknown.length > 0) {
        throw new TaxonomyFileError(`taxonomy CSV header has unknown column(s): ${columnList(unknown)}`);
      }
      const repeated = cols.filter((c, i) => cols.indexOf(c) !== i);
      if (repeated.length > 0) {
        throw new TaxonomyFileError(`taxonomy CSV header repeats column(s): ${repeated.join(",")}`);
      }
      return cols;
    },
    info: true,
    raw: true,
    trim: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
  });
  parser.on("skip", (err: Error & { lines?: number }) => {
    rows.push({ line: err.lines ?? 0, error: `malformed CSV row: ${err.message}` });
    // csv-parse reads this option at each error: the next one ends the read (destroying the parser would
    // only take effect after the rest of the chunk at hand, each of its quotes an error).
    if (++malformed === MAX_MALFORMED_CSV) parser.options.skip_records_with_error = false;
  });
  const bounded = Readable.from(boundLines(input, maxLineBytes), { objectMode: false });
  bounded.on("error", (err) => parser.destroy(err));
  bounded.pipe(parser);
  try {
    for await (const rec of parser as AsyncIterable<{
      record: Record<string, string>;
      raw: string;
      info: { lines: number };
    }>) {
      const line = rec.info.lines - newlinesWithin(rec.raw);
      rows.push(rowOf(line, rec.record));
    }
  } catch (err) {
    if (err instanceof TaxonomyFileError) throw err;
    if (malformed >= MAX_MALFORMED_CSV && err instanceof CsvError) {
      throw new TaxonomyFileError(
        `taxonomy CSV is malformed in more than ${MAX_MALFORMED_CSV} places: not read further`,
      );
    }
    // csv-parse's own errors carry a CSV_* code; anything else (a read error) is not about the format.
    if (String((err as { code?: unknown }).code).startsWith("CSV_")) {
      throw new TaxonomyFileError(`not a readable CSV file: ${(err as Error).message}`);
    }
    throw err;
  }
  if (!sawHeader) throw new TaxonomyFileError("taxonomy CSV is empty: expected a header naming id,name");
  rows.sort((a, b) => a.line - b.line);
  return rows;
}

/**
 * info.lines is where a record ends; a quoted value may span lines, and the raw text also holds the blank
 * lines skipped before it. Counting the newlines inside the record gives the line it starts on.
 */
function newlinesWithin(raw: string): number {
  const body = raw.replace(/^(?:[ \t]*\r?\n)+/, "").replace(/\r?\n$/, "");
  let n = 0;
  for (let i = body.indexOf("\n"); i !== -1; i = body.indexOf("\n", i + 1)) n++;
  return n;
}

/**
 * Passes the bytes on while no line is longer than `max`: csv-parse keeps a too-long record whole even
 * when told to skip it. A taxonomy is imported whole or not at all, so such a line ends the read, named.
 */
async function* boundLines(input: Readable, max: number): AsyncGenerator<Buffer> {
  let line = 1;
  let length = 0;
  for await (const c of input) {
    const chunk = typeof c === "string" ? Buffer.from(c) : (c as Buffer);
    let pos = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, pos)) {
      if (length + nl - pos > max) break;
      line++;
      length = 0;
      pos = nl + 1;
    }
    length += (chunk.indexOf(10, pos) < 0 ? chunk.length : chunk.indexOf(10, pos)) - pos;
    if (length > max) throw new TaxonomyFileError(`line ${line} is longer than ${max} bytes`);
    yield chunk;
  }
}

async function readText(input: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
