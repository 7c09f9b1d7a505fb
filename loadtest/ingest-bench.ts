// Ingest throughput: `audience ingest memberships` on a generated multi-million-row CSV into the bench Redis,
// with the command's resident memory sampled along the way (it must stay flat, whatever the file size), and
// where the time went: the command's CPU, Redis' CPU, and the rest (waiting).
//
// Runs on its own too: `npx tsx loadtest/ingest-bench.ts` builds dist/, starts a throw-away redis-server on a
// free port, loads both orders (BENCH_INGEST_ROWS, BENCH_INGEST_ORDER as for the bench) and prints the figures.
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startRedis } from "../test/helpers/redis-server.ts";
import { buildService, clockTicks, cpuSeconds } from "./children.ts";
import { redisPid } from "./seed.ts";

export type RowOrder = "grouped" | "random";

export interface IngestFigures {
  readonly rows: number;
  readonly rowsPerId: number;
  readonly order: RowOrder;
  readonly fileBytes: number;
  readonly elapsedS: number;
  readonly rowsPerS: number;
  readonly peakRssMiB: number;
  /** RSS at 25/50/75/100 % of the run: flat memory shows as equal figures. */
  readonly rssAtQuartersMiB: readonly number[];
  /** CPU seconds (user + system) of the command, and of the redis-server meanwhile; null where unknown. */
  readonly commandCpuS: number | null;
  readonly redisCpuS: number | null;
  /** Cores of the machine, which the command, Redis and anything else running share. */
  readonly cores: number;
  readonly exitCode: number;
  readonly summaryLine: string;
}

/** The targets, whole command wall time, 2M rows with 4 per ID. */
export const INGEST_TARGETS: Readonly<Record<RowOrder, number>> = { grouped: 300_000, random: 150_000 };
export const ROWS_PER_ID = 4;
export const DEFAULT_INGEST_ROWS = 2_000_000;
/**
 * Memory is flat when RSS at 50, 75 and 100 % of the run stays within this of RSS at 25 %. By 25 % the
 * command has its code loaded, its buffers and batches at full size and the heap past its first collections;
 * what still moves after that is the garbage collector's sawtooth, measured at under 20 MiB on this load.
 * Anything kept per row or per ID would grow with the 75 % of the file read after the first sample: at 2M
 * rows, 24 bytes a row (or 64 bytes an ID) already passes 32 MiB.
 */
export const FLAT_RSS_MIB = 32;

/**
 * The command as the image runs it (`bin/audience.mjs` there loads dist/cli.js): compiled by the bench at its start,
 * so the figure, start-up included, is not the sources' under tsx.
 */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "dist", "cli.js");
const SEGMENTS = 100;

/** xorshift32: the same file on every run. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * Row `r` of the file, whatever the order: ID `r / rowsPerId` (plus `idBase`), and its `r % rowsPerId`-th
 * segment of four distinct ones spread over the 100 segments, so that every row is a membership of its own.
 */
function rowText(r: number, rowsPerId: number, idBase: number): string {
  const id = idBase + Math.floor(r / rowsPerId);
  const k = r % rowsPerId;
  const first = Math.imul(id, 2654435761) >>> 0;
  const segment = 1001 + (((first % SEGMENTS) + k * Math.floor(SEGMENTS / rowsPerId)) % SEGMENTS);
  return `ifa,${id.toString(16).padStart(8, "0")}-1f2e-4d3c-8b7a-${(id * 7919).toString(16).padStart(12, "0")},${segment},2592000\n`;
}

/**
 * Writes `rows` membership rows, `rowsPerId` a person, deterministically. "grouped": a person's rows are
 * adjacent, as in a CRM or partner export sorted by ID. "random": the same rows shuffled, the worst case (an
 * ID's rows anywhere in the file). `idBase` gives each run IDs of its own, so that every run writes into an
 * empty keyspace and the two orders do the same work.
 */
export async function writeMembershipFile(
  path: string,
  rows: number,
  rowsPerId: number,
  order: RowOrder,
  idBase: number,
): Promise<void> {
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  let perm: Uint32Array | null = null;
  if (order === "random") {
    perm = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) perm[i] = i;
    const rand = xorshift(0x9e3779b9);
    for (let i = rows - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = perm[i] as number;
      perm[i] = perm[j] as number;
      perm[j] = t;
    }
  }
  let chunk = "type,id,segment,ttl\n";
  for (let i = 0; i < rows; i++) {
    chunk += rowText(perm === null ? i : (perm[i] as number), rowsPerId, idBase);
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      chunk = "";
    }
  }
  out.end(chunk);
  await new Promise<void>((r) => out.once("finish", () => r()));
}

function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of this process's children that have exited and been waited for (cutime + cstime of proc(5)):
 * read before and after a child's run, the difference is that child's whole CPU time, its last moments
 * included, which sampling its own /proc entry would miss.
 */
function reapedChildrenCpuS(): number | null {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[13]) + Number(fields[14]);
    return Number.isFinite(ticks) ? ticks / clockTicks() : null;
  } catch {
    return null;
  }
}

export async function runIngestBench(
  redisUrl: string,
  rows: number,
  order: RowOrder,
  log: (s: string) => void,
  rowsPerId = ROWS_PER_ID,
): Promise<IngestFigures> {
  const dir = mkdtempSync(join(tmpdir(), "audience-ingest-bench-"));
  try {
    const path = join(dir, "memberships.csv");
    const t0 = performance.now();
    const idBase = order === "grouped" ? 0x10000000 : 0x20000000;
    await writeMembershipFile(path, rows, rowsPerId, order, idBase);
    const fileBytes = statSync(path).size;
    log(
      `  generated ${rows.toLocaleString("en-US")} rows, ${rowsPerId} per ID, ${order === "grouped" ? "rows of an ID adjacent" : "in random order"} (${(fileBytes / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    const redisProc = await redisPid(redisUrl);
    const redisBefore = cpuSeconds(redisProc);
    const childrenBefore = reapedChildrenCpuS();
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, "ingest", "memberships", path], {
      env: { ...process.env, REDIS_URL: redisUrl },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (d) => {
      stdout += d.toString();
    });
    child.stderr.resume();
    const samples: { t: number; rss: number }[] = [];
    const timer = setInterval(() => {
      const rss = child.pid === undefined ? null : rssMiB(child.pid);
      if (rss !== null) samples.push({ t: performance.now() - started, rss });
    }, 200);
    const exitCode = await new Promise<number>((resolve) =>
      child.once("exit", (code) => resolve(code ?? -1)),
    );
    clearInterval(timer);
    const elapsedS = (performance.now() - started) / 1000;
    const childrenAfter = reapedChildrenCpuS();
    const redisAfter = cpuSeconds(redisProc);
    const at = (q: number): number => {
      const t = elapsedS * 1000 * q;
      const s = samples.reduce(
        (best, x) => (Math.abs(x.t - t) < Math.abs(best.t - t) ? x : best),
        samples[0] ?? { t, rss: 0 },
      );
      return Math.round(s.rss);
    };
    return {
      rows,
      rowsPerId,
      order,
      fileBytes,
      elapsedS,
      rowsPerS: Math.round(rows / elapsedS),
      peakRssMiB: Math.round(Math.max(0, ...samples.map((s) => s.rss))),
      rssAtQuartersMiB: [0.25, 0.5, 0.75, 0.99].map(at),
      commandCpuS: childrenBefore === null || childrenAfter === null ? null : childrenAfter - childrenBefore,
      redisCpuS: redisBefore === null || redisAfter === null ? null : redisAfter - redisBefore,
      cores: availableParallelism(),
      exitCode,
      // The temp folder means nothing once removed: the summary names the file alone.
      summaryLine: (stdout.trim().split("\n").pop() ?? "").replaceAll(path, "memberships.csv"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Flat: RSS at 50, 75 and 100 % within FLAT_RSS_MIB of RSS at 25 % (see FLAT_RSS_MIB for why). */
export function rssGrowthMiB(f: IngestFigures): number {
  const [first, ...rest] = f.rssAtQuartersMiB;
  return Math.max(...rest) - (first ?? 0);
}

const rowsText = (n: number): string =>
  n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n.toLocaleString("en-US");

export function ingestLines(f: IngestFigures): string[] {
  const target = INGEST_TARGETS[f.order];
  const what = `ingest, ${rowsText(f.rows)} rows, ${f.rowsPerId} per ID, ${f.order === "grouped" ? "rows of an ID adjacent" : "rows in random order"}`;
  const flat =
    f.peakRssMiB === 0 ? "n/a (no RSS sample)" : rssGrowthMiB(f) <= FLAT_RSS_MIB ? "met" : "MISSED";
  const cpu = (s: number | null): string => (s === null ? "n/a" : `${s.toFixed(1)} s`);
  const busy = (f.commandCpuS ?? 0) + (f.redisCpuS ?? 0);
  return [
    `${what}, whole command: ${f.rowsPerS.toLocaleString("en-US")} rows/s, target >= ${target.toLocaleString("en-US")}: ${f.rowsPerS >= target ? "met" : "MISSED"} (${f.elapsedS.toFixed(1)} s wall, ${(f.fileBytes / 2 ** 20).toFixed(0)} MiB CSV)`,
    `${what}, memory flat (RSS at 50/75/100% within ${FLAT_RSS_MIB} MiB of RSS at 25%): ${flat}; RSS at 25/50/75/100% of the run: ${f.rssAtQuartersMiB.join(" / ")} MiB, peak ${f.peakRssMiB} MiB`,
    `${what}, where the time went: command CPU ${cpu(f.commandCpuS)}, Redis CPU ${cpu(f.redisCpuS)}, of ${f.elapsedS.toFixed(1)} s wall on ${f.cores} cores (${Math.round((busy / f.elapsedS) * 100)}% of one core busy on average)`,
    `${what}, exit code ${f.exitCode}; its summary: ${f.summaryLine}`,
  ];
}

/** Both orders in a full run; BENCH_INGEST_ORDER=grouped or random runs one. */
export function ingestOrders(env: string | undefined): RowOrder[] {
  if (env === "grouped" || env === "random") return [env];
  return ["grouped", "random"];
}

async function main(): Promise<number> {
  const raw = process.env.BENCH_INGEST_ROWS;
  const rows = raw === undefined || raw === "" ? DEFAULT_INGEST_ROWS : Number(raw);
  if (!Number.isInteger(rows) || rows < 1)
    throw new Error(`BENCH_INGEST_ROWS must be a whole number, got '${raw}'`);
  const log = (s: string): void => {
    process.stdout.write(`${s}\n`);
  };
  buildService(ROOT);
  const redis = await startRedis();
  let failed = false;
  try {
    for (const order of ingestOrders(process.env.BENCH_INGEST_ORDER)) {
      const f = await runIngestBench(redis.url, rows, order, log);
      for (const l of ingestLines(f)) log(`  ${l}`);
      if (f.exitCode !== 0) failed = true;
    }
  } finally {
    await redis.close();
  }
  return failed ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
