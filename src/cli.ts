// The `audience` command: bulk data management against the Redis at REDIS_URL, and the load test of a deployment.
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { readCapRules } from "./capping/cap-rules-file.ts";
import { ConfigError, loadConfig, redisTarget, usesRedis } from "./config.ts";
import { toTypedId } from "./identity/typed-id.ts";
import { readDealRules } from "./ingest/deal-rules-file.ts";
import type { IngestSummary } from "./ingest/load-memberships.ts";
import { IngestInputError, membershipFormatOf, openFileInput } from "./ingest/open-input.ts";
import { createProgress } from "./ingest/progress.ts";
import { type FileFormat, IngestFileError, type ReadOptions, readRecords } from "./ingest/record-reader.ts";
import { DataRequestError, SegmentData } from "./ingest/segment-data.ts";
import {
  readTaxonomy,
  TaxonomyFileError,
  taxonomyErrorWhere,
  taxonomyFormatOf,
} from "./ingest/taxonomy-file.ts";
import { LOADTEST_USAGE } from "./loadtest/usage.ts";
import { RedisInvalidationBus } from "./profiles/invalidation-bus.ts";
import { RedisProfileStore } from "./profiles/redis-profile-store.ts";
import { RedisCatalogStore } from "./segments/catalog-store.ts";
import { LiveCatalog } from "./segments/live-catalog.ts";

const USAGE = `usage:
  audience ingest memberships <file> [--format csv|ndjson] [--strict]
                                     [--replace-segment <id> | --replace-provider <name>]
  audience ingest taxonomy <file.csv|file.json>
  audience ingest caps <file.csv|file.ndjson>
  audience ingest links <file>
  audience ingest deals <file.ndjson>
  audience optout <file>
  Every ingest and optout command takes --max-line-bytes N: the longest line read (default INGEST_MAX_LINE_BYTES, 1 MiB); a
  longer line is rejected with its line number and the rows after it are still read.

  Writes into the Redis at REDIS_URL. Files may be gzip-compressed (detected by content).
  memberships: CSV header type,id,segment[,ttl][,op][,expires_at][,source]; NDJSON lines with the same keys.
    type: bu | ifa | xu:<exchange> | eid:<source> | hem | email (hashed to hem on the way in)
    --strict              reject rows naming a segment absent from the taxonomy (default: load, warn)
    --replace-segment S   the file becomes the complete membership of S, swapped in at once when read whole
    --replace-provider P  the same for every segment of provider P
  taxonomy: CSV header id,name[,parent,party,provider,sensitive,ttl,segtax,segtax_id], or a JSON array.
  caps: CSV header campaign,window,max[,line_item,creative] (window 30m, 1h, 24h, 7d or lifetime); each
    campaign / line item / creative named replaces its rule; all rows valid or nothing imported.
  links: CSV header type_a,id_a,type_b,id_b[,confidence][,source][,op]; NDJSON lines
    {"ids": [{"type": "...", "id": "..."}, ...], "confidence": 1, "source": "...", "op": "add|remove"}.
    A link that would make a person larger than MAX_PERSON_IDS is refused and reported with its line.
  deals: NDJSON, one rule a line: {"id": "deal-1", "when": "1001 AND (1002 OR NOT 1003)", "bidfloor": 2.5,
    "bidfloorcur": "USD", "at": 1, "wseat": [...], "wadomain": [...], "formats": ["banner"], "sizes": ["300x250"]};
    all rules valid or nothing imported (a bad expression is reported with its column).
  optout: CSV header type,id (or NDJSON): erases the IDs and keeps them out of later loads.
  Exit codes: 0 all rows applied; 1 some rows rejected; 2 usage, configuration or file error.

${LOADTEST_USAGE}`;

/** A failure with the message the user sees and the exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** Everything a command needs, connected; closed by the caller. */
async function connect(): Promise<{ data: SegmentData; close: () => Promise<void> }> {
  const config = loadConfig();
  if (!usesRedis(config)) {
    throw new CliError("REDIS_URL is not set: set it (or REDIS_CLUSTER_NODES) to the Redis to load into");
  }
  const store = new RedisProfileStore({
    ...redisTarget(config),
    commandTimeoutMs: 30_000,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  try {
    await store.connect();
  } catch (err) {
    await store.close();
    throw new CliError(`cannot connect to Redis at REDIS_URL: ${(err as Error).message}`);
  }
  const catalog = new LiveCatalog(new RedisCatalogStore(store.redis));
  const data = new SegmentData({
    store,
    catalog,
    bus: new RedisInvalidationBus(store.redis),
    cache: null,
    maxPersonIds: config.maxPersonIds,
    maxLineBytes: config.ingestMaxLineBytes,
  });
  return { data, close: () => store.close() };
}

/** The file being read, for a failure no row explains (the store refusing a write): named, never a stack. */
let currentFile: string | null = null;

/** Opens the file before connecting anywhere, so a wrong path fails fast with its name. */
function open(file: string) {
  currentFile = file;
  try {
    return openFileInput(file);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** Opens the file, connects and starts the progress display: how every streamed load begins. */
async function startLoad(file: string) {
  const input = open(file);
  const { data, close } = await connect();
  const progress = createProgress({
    out: process.stderr,
    totalBytes: input.sizeBytes,
    bytesDone: input.bytesRead,
    label: file,
  });
  return { input, data, close, progress };
}

/**
 * Rows a load holds back to merge with later rows of their IDs: one Redis write per ID rather than per row
 * where an ID's rows lie within this many rows of each other. About 75 MiB, held from the start of the load,
 * the command being alone in its process. On a 2M-row file in random order (4 rows an ID) it takes the load
 * from 4 writes an ID to 2.0, which halves Redis' CPU for it; a file sorted by ID gains nothing.
 */
const INGEST_WINDOW_ROWS = 500_000;

async function ingestMemberships(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      format: { type: "string" },
      strict: { type: "boolean" },
      "replace-segment": { type: "string" },
      "replace-provider": { type: "string" },
    },
    allowPositionals: true,
  });
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) throw new CliError(USAGE);
  const format = (values.format ?? membershipFormatOf(file)) as FileFormat | null;
  if (format !== "csv" && format !== "ndjson") {
    throw new CliError(
      `${file}: cannot tell the format; name it .csv, .ndjson or .jsonl (.gz allowed), or pass --format`,
    );
  }
  const { input, data, close, progress } = await startLoad(file);
  try {
    const result = await data.loadMemberships(input.stream, {
      format,
      strict: values.strict ?? false,
      ...(values["replace-segment"] === undefined ? {} : { replaceSegment: values["replace-segment"] }),
      ...(values["replace-provider"] === undefined ? {} : { replaceProvider: values["replace-provider"] }),
      onRejected: (row) => process.stderr.write(`${file}:${row.line}: ${row.reason}\n`),
      onProgress: (rows) => progress.update(rows),
      windowRows: INGEST_WINDOW_ROWS,
    });
    progress.finish(result.read);
    printSummary(file, result);
    if (result.activatedGeneration !== null) {
      process.stdout.write(`${file}: replace complete, generation ${result.activatedGeneration} is live\n`);
    } else if (values["replace-segment"] !== undefined || values["replace-provider"] !== undefined) {
      process.stdout.write(`${file}: replace NOT made live: fix the rejected rows and run it again\n`);
    }
    return result.rejected > 0 ? 1 : 0;
  } catch (err) {
    progress.finish(0);
    if (err instanceof IngestFileError || err instanceof IngestInputError) {
      const replacing = values["replace-segment"] !== undefined || values["replace-provider"] !== undefined;
      const what = replacing
        ? "nothing was made live: lookups keep the old membership"
        : "rows before this point were loaded";
      throw new CliError(`${file}: ${err.message}; ${what}`);
    }
    if (err instanceof DataRequestError) throw new CliError(err.message);
    throw err;
  } finally {
    await close();
  }
}

function printSummary(file: string, s: IngestSummary): void {
  const extra = [
    s.warnings > 0 ? `, ${s.warnings} warnings (segments not in the taxonomy)` : "",
    s.skipped > 0 ? `, skipped ${s.skipped} (opted out)` : "",
  ].join("");
  process.stdout.write(
    `${file}: read ${s.read}, loaded ${s.loaded}, rejected ${s.rejected}${extra} ` +
      `in ${(s.elapsedMs / 1000).toFixed(2)} s (${s.rowsPerSec} rows/s)\n`,
  );
}

async function ingestTaxonomy(args: string[]): Promise<number> {
  const file = args[0];
  if (file === undefined || args.length > 1) throw new CliError(USAGE);
  const format = taxonomyFormatOf(file.replace(/\.gz$/i, ""));
  if (format === null) throw new CliError(`${file}: cannot tell the format; name it .csv or .json`);
  const input = open(file);
  const { data, close } = await connect();
  try {
    const known = new Set((await data.catalog.reload()).all().map((d) => d.id));
    const result = await readTaxonomy(input.stream, format, known, { maxLineBytes: data.maxLineBytes });
    for (const e of result.errors) {
      process.stderr.write(`${file}: ${taxonomyErrorWhere(format, e.line)}: ${e.reason}\n`);
    }
    // A taxonomy is imported whole or not at all: a partial one could leave children without parents.
    if (result.errors.length > 0) {
      process.stdout.write(`${file}: ${result.errors.length} rows rejected; nothing imported\n`);
      return 1;
    }
    await data.putSegments(result.segments);
    process.stdout.write(`${file}: ${result.segments.length} segments imported\n`);
    return 0;
  } catch (err) {
    if (err instanceof TaxonomyFileError || err instanceof IngestInputError)
      throw new CliError(`${file}: ${err.message}`);
    throw err;
  } finally {
    await close();
  }
}

async function ingestCaps(args: string[]): Promise<number> {
  const file = args[0];
  if (file === undefined || args.length > 1) throw new CliError(USAGE);
  const format = membershipFormatOf(file);
  if (format === null) throw new CliError(`${file}: cannot tell the format; name it .csv, .ndjson or .jsonl`);
  return importRules(
    file,
    "rows",
    "cap rules",
    (input, opts) => readCapRules(input, format, opts),
    (data, rules) => data.putCapRules(rules),
  );
}

/**
 * A rules file (caps, deals), imported whole or not at all: every bad row is printed with its line (and
 * column, for an expression) and nothing is imported, or all of it is.
 */
async function importRules<R>(
  file: string,
  rowNoun: string,
  ruleNoun: string,
  read: (
    input: Readable,
    opts: ReadOptions,
  ) => Promise<{ rules: R[]; errors: readonly { line: number; reason: string; column?: number }[] }>,
  put: (data: SegmentData, rules: R[]) => Promise<void>,
): Promise<number> {
  const input = open(file);
  const { data, close } = await connect();
  try {
    const result = await read(input.stream, { maxLineBytes: data.maxLineBytes });
    for (const e of result.errors) {
      process.stderr.write(`${file}:${e.line}${e.column === undefined ? "" : `:${e.column}`}: ${e.reason}\n`);
    }
    if (result.errors.length > 0) {
      process.stdout.write(`${file}: ${result.errors.length} ${rowNoun} rejected; nothing imported\n`);
      return 1;
    }
    await put(data, result.rules);
    process.stdout.write(`${file}: ${result.rules.length} ${ruleNoun} imported\n`);
    return 0;
  } catch (err) {
    if (err instanceof IngestFileError || err instanceof IngestInputError) {
      throw new CliError(`${file}: ${err.message}`);
    }
    throw err;
  } finally {
    await close();
  }
}

async function ingestLinks(args: string[]): Promise<number> {
  const file = args[0];
  if (file === undefined || args.length > 1) throw new CliError(USAGE);
  const format = membershipFormatOf(file);
  if (format === null) throw new CliError(`${file}: cannot tell the format; name it .csv, .ndjson or .jsonl`);
  const { input, data, close, progress } = await startLoad(file);
  try {
    const s = await data.loadLinks(input.stream, {
      format,
      onRejected: (row) => process.stderr.write(`${file}:${row.line}: ${row.reason}\n`),
      onProgress: (rows) => progress.update(rows),
    });
    progress.finish(s.read);
    process.stdout.write(
      `${file}: read ${s.read}, linked ${s.linked}, unlinked ${s.unlinked}, unchanged ${s.unchanged}, ` +
        `refused ${s.refused} (person too large or an ID opted out), skipped ${s.skipped}, rejected ${s.rejected} ` +
        `in ${(s.elapsedMs / 1000).toFixed(2)} s\n`,
    );
    return s.rejected > 0 || s.refused > 0 ? 1 : 0;
  } catch (err) {
    progress.finish(0);
    if (err instanceof IngestFileError || err instanceof IngestInputError) {
      throw new CliError(`${file}: ${err.message}; links before this point were applied`);
    }
    throw err;
  } finally {
    await close();
  }
}

async function ingestDeals(args: string[]): Promise<number> {
  const file = args[0];
  if (file === undefined || args.length > 1) throw new CliError(USAGE);
  return importRules(file, "rules", "deal rules", readDealRules, (data, rules) => data.putDealRules(rules));
}

const OPT_OUT_SHAPE = { required: ["type", "id"], known: new Set(["type", "id"]) } as const;
const OPT_OUT_BATCH = 1_000;

async function optOut(args: string[]): Promise<number> {
  const file = args[0];
  if (file === undefined || args.length > 1) throw new CliError(USAGE);
  const format = membershipFormatOf(file);
  if (format === null) throw new CliError(`${file}: cannot tell the format; name it .csv, .ndjson or .jsonl`);
  const input = open(file);
  const { data, close } = await connect();
  let ids = 0;
  let erased = 0;
  let rejected = 0;
  let batch: string[] = [];
  try {
    for await (const r of readRecords(input.stream, format, OPT_OUT_SHAPE, {
      maxLineBytes: data.maxLineBytes,
    })) {
      const typed =
        "error" in r
          ? { ok: false as const, reason: r.error }
          : toTypedId(String(r.record.type ?? ""), String(r.record.id ?? ""));
      if (!typed.ok) {
        rejected++;
        process.stderr.write(`${file}:${r.line}: ${typed.reason}\n`);
        continue;
      }
      batch.push(typed.key);
      ids++;
      if (batch.length >= OPT_OUT_BATCH) {
        erased += await data.optOut(batch);
        batch = [];
      }
    }
    if (batch.length > 0) erased += await data.optOut(batch);
    process.stdout.write(
      `${file}: ${ids} IDs opted out (${erased} had data, now erased), ${rejected} rejected\n`,
    );
    return rejected > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof IngestFileError || err instanceof IngestInputError)
      throw new CliError(`${file}: ${err.message}`);
    throw err;
  } finally {
    await close();
  }
}

/** Loaded only for this command: the others need neither autocannon nor the templates. */
async function loadtest(args: string[]): Promise<number> {
  const { loadtest: run, LoadTestInputError } = await import("./loadtest/command.ts");
  try {
    return await run(args);
  } catch (err) {
    if (err instanceof LoadTestInputError) throw new CliError(err.message);
    throw err;
  }
}

const MAX_LINE_FLAG = "--max-line-bytes";

/**
 * Takes --max-line-bytes out of the arguments, wherever it is, and makes it the INGEST_MAX_LINE_BYTES the
 * configuration reads: one flag for every command, checked here so that its message names the flag.
 */
function takeMaxLineFlag(argv: string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    let value: string | undefined;
    if (arg === MAX_LINE_FLAG) value = argv[++i] ?? "";
    else if (arg.startsWith(`${MAX_LINE_FLAG}=`)) value = arg.slice(MAX_LINE_FLAG.length + 1);
    else {
      rest.push(arg);
      continue;
    }
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1024 || n > 1024 * 1024 * 1024) {
      throw new CliError(
        `${MAX_LINE_FLAG} must be a whole number of bytes from 1024 to 1073741824, got '${value}'`,
      );
    }
    process.env.INGEST_MAX_LINE_BYTES = value;
  }
  return rest;
}

async function run(all: string[]): Promise<number> {
  const argv = takeMaxLineFlag(all);
  const [command, what, ...rest] = argv;
  if (command === "ingest" && what === "memberships") return ingestMemberships(rest);
  if (command === "ingest" && what === "taxonomy") return ingestTaxonomy(rest);
  if (command === "ingest" && what === "caps") return ingestCaps(rest);
  if (command === "ingest" && what === "links") return ingestLinks(rest);
  if (command === "ingest" && what === "deals") return ingestDeals(rest);
  if (command === "optout") return optOut(what === undefined ? rest : [what, ...rest]);
  if (command === "loadtest") return loadtest(what === undefined ? rest : [what, ...rest]);
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  throw new CliError(`unknown command '${argv.join(" ")}'\n${USAGE}`);
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof CliError || err instanceof ConfigError) {
      process.stderr.write(`audience: ${err.message}\n`);
      process.exit(err instanceof CliError ? err.exitCode : 2);
    }
    // No stack trace: bad input is reported above by file and line, and what is left (Redis refusing a
    // command, a connection lost) is said in one line with the file it happened in.
    const where = currentFile === null ? "" : `${currentFile}: `;
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    process.stderr.write(`audience: ${where}failed: ${what}\n`);
    process.exit(2);
  },
);
