// Ingest throughput: `audience ingest memberships` on a generated multi-million-row CSV into the bench Redis,
// with the command's resident memory sampled along the way (it must stay flat, whatever the file size).
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface IngestFigures {
  readonly rows: number;
  readonly order: RowOrder;
  readonly fileBytes: number;
  readonly elapsedS: number;
  readonly rowsPerS: number;
  readonly peakRssMiB: number;
  /** RSS at 25/50/75/100 % of the run: flat memory shows as equal figures. */
  readonly rssAtQuartersMiB: readonly number[];
  readonly exitCode: number;
  readonly summaryLine: string;
}

/**
 * The command as the image runs it (`bin/audience.mjs` there loads dist/cli.js): compiled by the bench at its start,
 * so the figure, start-up included, is not the sources' under tsx.
 */
const BIN = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const SEGMENTS = 100;

export type RowOrder = "grouped" | "random";

/**
 * Writes `rows` membership rows, about 2.5 segments a person, deterministically. "grouped": a person's rows
 * are adjacent, as in a CRM or partner export sorted by ID (each ID's rows merge in one write). "random":
 * rows in no order, the worst case (each row is a separate read-modify-write of its ID in Redis).
 */
async function writeFile(path: string, rows: number, order: RowOrder): Promise<void> {
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  const ids = Math.max(1, Math.floor(rows / 2.5));
  let seed = 0x9e3779b9;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  let chunk = "type,id,segment,ttl\n";
  let person = 0;
  let left = 0;
  for (let i = 0; i < rows; i++) {
    let id: number;
    if (order === "random") id = Math.floor(rand() * ids);
    else {
      if (left === 0) {
        person++;
        left = 1 + Math.floor(rand() * 4);
      }
      left--;
      id = person;
    }
    chunk += `ifa,${id.toString(16).padStart(8, "0")}-1f2e-4d3c-8b7a-${(id * 7919).toString(16).padStart(12, "0")},${1001 + Math.floor(rand() * SEGMENTS)},2592000\n`;
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

export async function runIngestBench(
  redisUrl: string,
  rows: number,
  order: RowOrder,
  log: (s: string) => void,
): Promise<IngestFigures> {
  const dir = mkdtempSync(join(tmpdir(), "audience-ingest-bench-"));
  try {
    const path = join(dir, "memberships.csv");
    const t0 = performance.now();
    await writeFile(path, rows, order);
    const fileBytes = statSync(path).size;
    log(
      `  generated ${rows.toLocaleString("en-US")} rows (${(fileBytes / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

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
      order,
      fileBytes,
      elapsedS,
      rowsPerS: Math.round(rows / elapsedS),
      peakRssMiB: Math.round(Math.max(0, ...samples.map((s) => s.rss))),
      rssAtQuartersMiB: [0.25, 0.5, 0.75, 0.99].map(at),
      exitCode,
      // The temp folder means nothing once removed: the summary names the file alone.
      summaryLine: (stdout.trim().split("\n").pop() ?? "").replaceAll(path, "memberships.csv"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function ingestLines(f: IngestFigures): string[] {
  return [
    `Ingest: ${f.rows.toLocaleString("en-US")} membership rows (${(f.fileBytes / 2 ** 20).toFixed(0)} MiB CSV, ${f.order === "grouped" ? "rows of an ID adjacent" : "rows in random order"}) in ${f.elapsedS.toFixed(1)} s = ${f.rowsPerS.toLocaleString("en-US")} memberships/s (target >= 300,000: ${f.rowsPerS >= 300_000 ? "met" : `MISSED by ${(300_000 - f.rowsPerS).toLocaleString("en-US")}/s`}), wall time of the whole command`,
    `Ingest memory: peak RSS ${f.peakRssMiB} MiB; RSS at 25/50/75/100% of the run: ${f.rssAtQuartersMiB.join(" / ")} MiB`,
    `Ingest command exit code ${f.exitCode}; its summary: ${f.summaryLine}`,
  ];
}
