// Results: the console table, the ratios against their targets, and loadtest/RESULTS.md.
import { writeFileSync } from "node:fs";
import os from "node:os";
import type { LoadResult } from "./cannon.ts";

export type ScenarioKey = "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h" | "i" | "j" | "k" | "l" | "m";

export interface ScenarioRow {
  readonly key: ScenarioKey;
  readonly label: string;
  readonly load: LoadResult | null;
  /** req/s of each measured round: their spread shows how steady the machine was. */
  readonly roundRps: readonly number[];
  /** Cache hits / (hits + misses) over the measured window; null where there is no cache. */
  readonly hitRatio: number | null;
  /** Store errors (each makes a degraded answer) over the measured window. */
  readonly storeErrors: number | null;
  /** CPU use over the measured windows in % of one core; machine: every process and the kernel together. */
  readonly cpu: {
    readonly server: number | null;
    readonly client: number | null;
    readonly redis: number | null;
    readonly machine: number | null;
  };
  /** Answers checked against the expected segments before the run, e.g. "60/60". */
  readonly verified: string;
  readonly error?: string;
}

interface Target {
  readonly num: ScenarioKey;
  readonly den: ScenarioKey;
  readonly min: number;
  readonly about: string;
}

const TARGETS: readonly Target[] = [
  { num: "b", den: "a", min: 0.85, about: "lookup (cache hits) vs bare uWS" },
  { num: "c", den: "a", min: 0.6, about: "lookup (Redis reads) vs bare uWS" },
  { num: "b", den: "d", min: 2, about: "lookup on uWS vs the same on node:http" },
  {
    num: "e",
    den: "b",
    min: 0.9,
    about: "caps cost <= 10%: lookup with 5 capped candidate campaigns vs the same without caps",
  },
  {
    num: "g",
    den: "c",
    min: 0.9,
    about:
      "identity graph within 10%: lookup of linked persons (4 IDs each) vs unlinked users, both Redis reads",
  },
  {
    num: "h",
    den: "b",
    min: 0.9,
    about: "privacy gate <= 10%: the cache-hit lookups of (b) with regs.gdpr=1 and a TC string vs without",
  },
  {
    num: "i",
    den: "b",
    min: 0.6,
    about: "enrich with 1,000 deal rules loaded vs lookup, both on cache hits",
  },
  {
    num: "b",
    den: "j",
    min: 0.97,
    about: "metrics cost <= 3%: (b), which records every request, vs the same with METRICS_ENABLED=false",
  },
];

/** Ratios reported without a target: what more workers and a Cluster give on this machine. */
const FIGURES: readonly Omit<Target, "min">[] = [
  { num: "k", den: "c", about: "WORKERS=2 vs WORKERS=1, lookups reading Redis" },
  { num: "l", den: "b", about: "WORKERS=2 vs WORKERS=1, lookups from cache" },
  { num: "m", den: "c", about: "Redis Cluster (3 masters) vs a single Redis, lookups reading Redis" },
];

const f = (v: number | null | undefined, digits = 2): string => (v == null ? "-" : v.toFixed(digits));
const kilo = (v: number): string => (v / 1000).toFixed(1);
const pct = (v: number | null): string => (v === null ? "-" : `${Math.round(v)}`);

/** Responses by status, most frequent first: "204: 1,234, 503: 5". */
export function statusText(statuses: ReadonlyMap<number, number>): string {
  if (statuses.size === 0) return "none";
  return [...statuses]
    .sort((x, y) => y[1] - x[1])
    .map(([status, n]) => `${status}: ${n.toLocaleString("en-US")}`)
    .join(", ");
}

/** Whether every run answered only 2xx, with no connection errors and no failed verification. */
export function clean(row: ScenarioRow): boolean {
  const l = row.load;
  if (row.error !== undefined || l === null) return false;
  const [ok, all] = row.verified.split("/");
  return l.non2xx === 0 && l.errors === 0 && ok === all;
}

function cells(row: ScenarioRow): string[] {
  const l = row.load;
  return [
    `(${row.key}) ${row.label}`,
    l === null ? "FAILED" : Math.round(l.rps).toLocaleString("en-US"),
    row.roundRps.length === 0
      ? "-"
      : `${kilo(Math.min(...row.roundRps))}-${kilo(Math.max(...row.roundRps))}k`,
    f(l?.p50),
    f(l?.p975),
    f(l?.p99),
    row.hitRatio === null ? "n/a" : `${(row.hitRatio * 100).toFixed(1)}%`,
    l === null ? "-" : `${l.non2xx} / ${l.errors}${clean(row) ? "" : " !!"}`,
    row.storeErrors === null ? "n/a" : String(row.storeErrors),
    `${pct(row.cpu.server)} / ${pct(row.cpu.client)} / ${pct(row.cpu.redis)} / ${pct(row.cpu.machine)}`,
    l === null || row.cpu.server === null || l.rps === 0 ? "-" : f((row.cpu.server / 100 / l.rps) * 1e6, 1),
    row.verified,
  ];
}

const HEAD = [
  "scenario",
  "req/s",
  "rounds min-max",
  "p50 ms",
  "p97.5 ms",
  "p99 ms",
  "hit ratio",
  "non-2xx / errors",
  "store errors",
  "CPU% server / client / redis / all",
  "server µs/req",
  "verified",
];

export function textTable(rows: readonly ScenarioRow[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, c) => Math.max(...all.map((r) => (r[c] as string).length)));
  const line = (r: string[]): string =>
    r.map((v, c) => (c === 0 ? v.padEnd(widths[c] as number) : v.padStart(widths[c] as number))).join("  ");
  return [line(HEAD), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map((r) => line(cells(r)))].join(
    "\n",
  );
}

/** A markdown table laid out as the repository's formatter (biome) writes it, so that checks stay clean. */
function markdownTable(rows: readonly ScenarioRow[]): string {
  return alignedTable(HEAD, rows.map(cells));
}

/** A header and rows as an aligned markdown table: the first column left, the others right. */
export function alignedTable(head: readonly string[], body: readonly string[][]): string {
  const all = [head, ...body];
  const widths = head.map((_, c) => Math.max(3, ...all.map((r) => (r[c] as string).length)));
  const line = (r: readonly string[]): string =>
    `| ${r.map((v, c) => (c === 0 ? v.padEnd(widths[c] as number) : v.padStart(widths[c] as number))).join(" | ")} |`;
  const rule = `| ${widths.map((w, c) => (c === 0 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`)).join(" | ")} |`;
  return [line(head), rule, ...body.map(line)].join("\n");
}

export function ratioLines(rows: readonly ScenarioRow[]): string[] {
  const rps = (k: ScenarioKey): number | null => rows.find((r) => r.key === k)?.load?.rps ?? null;
  const figures = FIGURES.map((t) => {
    const num = rps(t.num);
    const den = rps(t.den);
    const name = `(${t.num})/(${t.den})`;
    return num === null || den === null || den === 0
      ? `${name} = n/a (a run failed) [${t.about}]`
      : `${name} = ${(num / den).toFixed(2)} [${t.about}]`;
  });
  return [...targetLines(rps), ...figures];
}

function targetLines(rps: (k: ScenarioKey) => number | null): string[] {
  return TARGETS.map((t) => {
    const num = rps(t.num);
    const den = rps(t.den);
    const name = `(${t.num})/(${t.den})`;
    if (num === null || den === null || den === 0) return `${name} = n/a (a run failed), target >= ${t.min}`;
    const r = num / den;
    const verdict =
      r >= t.min
        ? "met"
        : `MISSED by ${(t.min - r).toFixed(2)} ((${t.num}) needs +${((t.min / r - 1) * 100).toFixed(0)}% req/s)`;
    return `${name} = ${r.toFixed(2)}, target >= ${t.min.toFixed(2)}: ${verdict} [${t.about}]`;
  });
}

export interface RunInfo {
  readonly users: number;
  readonly connections: number;
  readonly durationS: number;
  readonly rounds: number;
  readonly warmupS: number;
  readonly seedMs: number;
  readonly redisMemoryBytes: number;
  readonly hitPool: string;
  readonly missPool: string;
  readonly uwsBackend: string;
  readonly serviceEnv: Record<string, string>;
  /** Further settings lines (e.g. how the caps of (e) and the events of (f) were set up). */
  readonly notes: readonly string[];
}

/** A section of RESULTS.md after the ratios: a title and its list items. */
export interface Section {
  readonly title: string;
  readonly lines: readonly string[];
}

export function machineLines(uwsBackend: string): string[] {
  const cpus = os.cpus();
  return [
    `CPU: ${cpus.length} x ${cpus[0]?.model.trim() ?? "unknown"}`,
    `Memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `Node: ${process.version}`,
    `uWebSockets.js: ${uwsBackend}`,
  ];
}

export function writeResults(
  path: string,
  info: RunInfo,
  rows: readonly ScenarioRow[],
  sections: readonly Section[] = [],
): void {
  const failures = rows.filter((r) => r.error !== undefined).map((r) => `- (${r.key}) ${r.error}`);
  const md = [
    "# Load test results",
    "",
    `Date: ${new Date().toISOString()}. Written by \`npm run bench\`; overwritten on each run.`,
    "",
    "## Machine",
    "",
    ...machineLines(info.uwsBackend).map((l) => `- ${l}`),
    "",
    "## Settings",
    "",
    `- Users seeded: ${info.users.toLocaleString("en-US")} (in ${(info.seedMs / 1000).toFixed(1)} s; Redis used_memory ${(info.redisMemoryBytes / 2 ** 20).toFixed(0)} MiB)`,
    `- Connections: ${info.connections}, pipelining 1; warm-up ${info.warmupS} s, then ${info.durationS} s measured per scenario in ${info.rounds} interleaved round(s)`,
    `- Cache-hit bodies: ${info.hitPool}`,
    `- Redis-miss bodies: ${info.missPool}`,
    `- Service env per scenario: ${Object.entries(info.serviceEnv)
      .map(([k, v]) => `(${k}) \`${v}\``)
      .join("; ")}`,
    ...info.notes.map((l) => `- ${l}`),
    "",
    "## Results",
    "",
    markdownTable(rows),
    "",
    `Latencies are client-side (autocannon; client and servers share this machine's ${os.cpus().length} CPUs). CPU is % of one`,
    "core over the measured windows: the server child, the load generator (autocannon, in the bench process),",
    "redis-server, and the whole machine (all processes and the kernel's network work). Server µs/req is the",
    "server process's CPU time per answered request: the cost per lookup, whatever the load generator managed.",
    ...(rows.some((r) => r.load !== null && !r.load.prebuilt)
      ? ["", "Note: autocannon internals differed from v8: requests were rebuilt per send (slower client)."]
      : []),
    "",
    "## Ratios",
    "",
    ...ratioLines(rows).map((l) => `- ${l}`),
    ...sections
      .filter((sec) => sec.lines.length > 0)
      .flatMap((sec) => ["", `## ${sec.title}`, "", ...sec.lines.map((l) => `- ${l}`)]),
    ...(failures.length > 0 ? ["", "## Failures", "", ...failures] : []),
    "",
  ].join("\n");
  writeFileSync(path, md);
}
