// The `audience` command: bulk loading into the Redis at REDIS_URL.
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.ts";
import { loadMemberships } from "./ingest/load-memberships.ts";
import { type FileFormat, formatOf, IngestFileError, openInput } from "./ingest/membership-rows.ts";
import { RedisProfileStore } from "./profiles/redis-profile-store.ts";

const USAGE = `usage: audience ingest memberships <file> [--format csv|ndjson]

  Loads segment memberships into the Redis at REDIS_URL.
  CSV header: type,id,segment[,ttl][,op][,expires_at][,source]; NDJSON lines with the same keys.
  type: bu | ifa | xu:<exchange> | eid:<source> | hem | email (hashed to hem on the way in)
  Exit codes: 0 all rows loaded; 1 some rows rejected; 2 usage, configuration or file error.`;

/** A failure with the message the user sees and the exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** CLI writes are bulk: allow far longer than a bid-time read. */
const CLI_COMMAND_TIMEOUT_MS = 30_000;

async function ingestMemberships(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { format: { type: "string" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) throw new CliError(USAGE);
  const format = (values.format ?? formatOf(file)) as FileFormat | null;
  if (format !== "csv" && format !== "ndjson") {
    throw new CliError(
      `${file}: cannot tell the format; name it .csv, .ndjson or .jsonl, or pass --format csv|ndjson`,
    );
  }

  const config = loadConfig();
  if (config.redisUrl === undefined)
    throw new CliError("REDIS_URL is not set: set it to the Redis to load into");
  const store = new RedisProfileStore({
    url: config.redisUrl,
    commandTimeoutMs: CLI_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  try {
    const input = openInput(file);
    // Surface a missing or unreadable file before connecting anywhere.
    await new Promise<void>((resolve, reject) => {
      input.once("readable", resolve);
      input.once("error", (err) => reject(new CliError(`${file}: ${err.message}`)));
    });
    try {
      await store.connect();
    } catch (err) {
      throw new CliError(`cannot connect to Redis at REDIS_URL: ${(err as Error).message}`);
    }
    const summary = await loadMemberships(store, input, format, {
      nowSec: Math.floor(Date.now() / 1000),
      onRejected: (row) => process.stderr.write(`${file}:${row.line}: ${row.reason}\n`),
    });
    process.stdout.write(
      `${file}: read ${summary.read}, loaded ${summary.loaded}, rejected ${summary.rejected} ` +
        `in ${(summary.elapsedMs / 1000).toFixed(2)} s (${summary.rowsPerSec} rows/s)\n`,
    );
    return summary.rejected > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof IngestFileError) throw new CliError(`${file}: ${err.message}`);
    throw err;
  } finally {
    await store.close();
  }
}

async function run(argv: string[]): Promise<number> {
  const [command, what, ...rest] = argv;
  if (command === "ingest" && what === "memberships") return ingestMemberships(rest);
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
    process.stderr.write(`audience: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
