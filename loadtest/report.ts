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
  /** Server CPU µs per answered request in each measured round (null where the CPU time could not be read). */
  readonly roundCpuUs: readonly (number | null)[];
  /**
   * Degraded answers (`"degraded": true`, or `x-audience-degraded` on enrich) among the 2xx answers of the
   * measured rounds; null where answers cannot be degraded (bare server, impression events).
   */
  readonly degraded: { readonly answers: number; readonly degraded: number } | null;
  /** The fixed-rate run at FIXED_RATE_SHARE of the flat-out rate; null where it was not run. */
  readonly fixedRate: FixedRate | null;
  readonly error?: string;
}

/** The fixed-rate latency run of a scenario: autocannon paced at a share of its flat-out req/s. */
export interface FixedRate {
  /** The rate asked: FIXED_RATE_SHARE of the median flat-out req/s of the measured rounds. */
  readonly targetRps: number;
  /** req/s answered in each paced round. */
  readonly roundRps: readonly number[];
  /** p99 latency (ms) of each paced round. */
  readonly roundP99: readonly number[];
  /** False when autocannon's internals differed and the load came in one-second bursts (see cannon.ts). */
  readonly evenPace: boolean;
}

/** The share of the flat-out rate the fixed-rate latency run is paced at. */
export const FIXED_RATE_SHARE = 0.8;

/**
 * A scenario against a healthy Redis that answers more than this share degraded fails the run: a degraded
 * answer is cheaper than a whole one, and counting it as a success would flatter the figures.
 */
export const DEGRADED_MAX_SHARE = 0.001;

/** What a target compares, each the median over the interleaved rounds that both scenarios ran. */
type Measure = "cpu" | "rps";

/** A ratio of two scenarios' per-round figures, with its limit. */
interface RatioTarget {
  readonly kind: "ratio";
  readonly measure: Measure;
  readonly num: ScenarioKey;
  readonly den: ScenarioKey;
  /** `<=`: the ratio must not exceed the limit (CPU); `>=`: it must reach it (throughput). */
  readonly op: "<=" | ">=";
  readonly limit: number;
  readonly stretch?: number;
  /** `x`: shown as a factor (1.25x); `%`: as the change over the denominator (+10%). */
  readonly show: "x" | "%";
  readonly about: string;
}

/** The p99 of the fixed-rate run of one scenario, with its limit in ms. */
interface LatencyTarget {
  readonly kind: "p99";
  readonly key: ScenarioKey;
  readonly maxMs: number;
  readonly about: string;
}

export type Target = RatioTarget | LatencyTarget;

/**
 * The targets of the bid-path speed work, in the order of its table (all CPU figures are server CPU per
 * answered request), then the one kept from before that it does not replace: the identity graph's.
 */
export const TARGETS: readonly Target[] = [
  {
    kind: "ratio",
    measure: "cpu",
    num: "b",
    den: "a",
    op: "<=",
    limit: 1.25,
    stretch: 1,
    show: "x",
    about: "cache-hit lookup, server CPU/request vs bare",
  },
  {
    kind: "ratio",
    measure: "cpu",
    num: "c",
    den: "a",
    op: "<=",
    limit: 1.6,
    show: "x",
    about: "Redis-read lookup, server CPU/request vs bare",
  },
  {
    kind: "ratio",
    measure: "cpu",
    num: "e",
    den: "b",
    op: "<=",
    limit: 1.1,
    show: "%",
    about: "5 capped candidate campaigns vs the same lookup without caps, CPU/request",
  },
  {
    kind: "ratio",
    measure: "cpu",
    num: "b",
    den: "j",
    op: "<=",
    limit: 1.03,
    show: "%",
    about: "metrics on vs off (METRICS_ENABLED=false), CPU/request",
  },
  {
    kind: "ratio",
    measure: "cpu",
    num: "h",
    den: "b",
    op: "<=",
    limit: 1.05,
    show: "%",
    about: "TCF-consented request (regs.gdpr=1, a TC string) vs the same without, CPU/request",
  },
  {
    kind: "ratio",
    measure: "cpu",
    num: "i",
    den: "b",
    op: "<=",
    limit: 1.6,
    show: "x",
    about: "enrich with 1,000 deal rules vs lookup, CPU/request",
  },
  {
    kind: "ratio",
    measure: "rps",
    num: "b",
    den: "a",
    op: ">=",
    limit: 0.85,
    show: "x",
    about: "throughput flat out: cache hits vs bare",
  },
  {
    kind: "ratio",
    measure: "rps",
    num: "c",
    den: "a",
    op: ">=",
    limit: 0.6,
    show: "x",
    about: "throughput flat out: Redis reads vs bare",
  },
  {
    kind: "ratio",
    measure: "rps",
    num: "b",
    den: "d",
    op: ">=",
    limit: 2,
    show: "x",
    about: "throughput flat out: cache hits on uWS vs on node:http",
  },
  { kind: "p99", key: "b", maxMs: 2, about: "p99 at 80% of the max rate, fixed-rate run: cache hits" },
  { kind: "p99", key: "c", maxMs: 4, about: "p99 at 80% of the max rate, fixed-rate run: Redis reads" },
  {
    kind: "ratio",
    measure: "rps",
    num: "g",
    den: "c",
    op: ">=",
    limit: 0.9,
    show: "x",
    about:
      "identity graph within 10%: throughput of linked persons (4 IDs each) vs unlinked users, both Redis reads",
  },
];

/** Ratios reported without a target: what more workers and a Cluster give on this machine. */
const FIGURES: readonly { num: ScenarioKey; den: ScenarioKey; about: string }[] = [
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

/** The share of a scenario's answers that were degraded; null where it has none to count. */
export function degradedShare(row: ScenarioRow): number | null {
  const d = row.degraded;
  return d === null || d.answers === 0 ? null : d.degraded / d.answers;
}

/** Whether a scenario answered more than DEGRADED_MAX_SHARE degraded (every bench scenario has a healthy Redis). */
export function tooDegraded(row: ScenarioRow): boolean {
  const share = degradedShare(row);
  return share !== null && share > DEGRADED_MAX_SHARE;
}

/**
 * Whether every run answered only 2xx, with no connection errors, no failed verification and no more than
 * DEGRADED_MAX_SHARE degraded answers.
 */
export function clean(row: ScenarioRow): boolean {
  const l = row.load;
  if (row.error !== undefined || l === null) return false;
  const [ok, all] = row.verified.split("/");
  return l.non2xx === 0 && l.errors === 0 && ok === all && !tooDegraded(row);
}

/** The median of the values (the mean of the middle two for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((x, y) => x - y);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** Per-round ratios num/den, round i of one scenario with round i of the other (the same interleaved round). */
export function roundRatios(num: readonly (number | null)[], den: readonly (number | null)[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.min(num.length, den.length); i++) {
    const n = num[i];
    const d = den[i];
    if (n != null && d != null && d > 0) out.push(n / d);
  }
  return out;
}

function degradedCell(row: ScenarioRow): string {
  const share = degradedShare(row);
  if (share === null) return row.degraded === null ? "n/a" : "-";
  const d = row.degraded as { degraded: number };
  return `${d.degraded.toLocaleString("en-US")} (${(share * 100).toFixed(2)}%)${tooDegraded(row) ? " !!" : ""}`;
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
    degradedCell(row),
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
  "degraded",
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

/** The figure a ratio target compares, per measured round. */
function perRound(row: ScenarioRow | undefined, measure: Measure): readonly (number | null)[] {
  if (row === undefined || row.load === null) return [];
  return measure === "cpu" ? row.roundCpuUs : row.roundRps;
}

const MEASURE_TEXT: Record<Measure, string> = { cpu: "server CPU/request", rps: "req/s" };

function ratioText(r: number, show: "x" | "%"): string {
  if (show === "x") return `${r.toFixed(2)}x`;
  const p = (r - 1) * 100;
  return `${p >= 0 ? "+" : ""}${p.toFixed(1)}%`;
}

function ratioTargetLine(t: RatioTarget, rows: readonly ScenarioRow[]): string {
  const find = (k: ScenarioKey): ScenarioRow | undefined => rows.find((r) => r.key === k);
  const name = `(${t.num})/(${t.den}) ${MEASURE_TEXT[t.measure]}`;
  const want = `target ${t.op} ${ratioText(t.limit, t.show)}${t.stretch !== undefined ? ` (stretch ${t.op} ${ratioText(t.stretch, t.show)})` : ""}`;
  const ratios = roundRatios(perRound(find(t.num), t.measure), perRound(find(t.den), t.measure));
  const r = median(ratios);
  if (r === null) return `${t.about}: ${name} = n/a (not run or failed), ${want}: n/a`;
  const met = t.op === "<=" ? r <= t.limit : r >= t.limit;
  const stretchMet = t.stretch !== undefined && (t.op === "<=" ? r <= t.stretch : r >= t.stretch);
  const verdict = met ? (stretchMet ? "met, stretch met too" : "met") : "MISSED";
  const spread =
    ratios.length > 1
      ? `median of ${ratios.length} rounds, ${ratioText(Math.min(...ratios), t.show)} to ${ratioText(Math.max(...ratios), t.show)}`
      : "1 round";
  return `${t.about}: ${name} = ${ratioText(r, t.show)} (${spread}), ${want}: ${verdict}`;
}

function latencyTargetLine(t: LatencyTarget, rows: readonly ScenarioRow[]): string {
  const row = rows.find((r) => r.key === t.key);
  const fr = row?.fixedRate ?? null;
  const name = `(${t.key}) p99`;
  const want = `target <= ${t.maxMs} ms`;
  const p99 = fr === null ? null : median(fr.roundP99);
  if (fr === null || p99 === null) return `${t.about}: ${name} = n/a (not run or failed), ${want}: n/a`;
  const rps = median(fr.roundRps) ?? 0;
  // A rate the load generator fell short of measures a lighter load than the target names.
  const short = rps < 0.95 * fr.targetRps;
  const notes = [
    `median of ${fr.roundP99.length} round(s), ${Math.min(...fr.roundP99).toFixed(2)} to ${Math.max(...fr.roundP99).toFixed(2)} ms`,
    `${n0(rps)} req/s answered of ${n0(fr.targetRps)} asked${short ? ", SHORT of the rate" : ""}`,
    ...(fr.evenPace ? [] : ["sent in one-second bursts: flat-out latency"]),
  ];
  const verdict = p99 <= t.maxMs ? (short ? "met at a lower rate than asked" : "met") : "MISSED";
  return `${t.about}: ${name} = ${p99.toFixed(2)} ms (${notes.join("; ")}), ${want}: ${verdict}`;
}

const n0 = (v: number): string => Math.round(v).toLocaleString("en-US");

/** One line per target: its figure (the median of the interleaved rounds), the target and the verdict. */
export function targetLines(rows: readonly ScenarioRow[]): string[] {
  return TARGETS.map((t) => (t.kind === "p99" ? latencyTargetLine(t, rows) : ratioTargetLine(t, rows)));
}

/** The targets' lines, the ratios without a target, and each scenario that answered too many degraded. */
export function ratioLines(rows: readonly ScenarioRow[]): string[] {
  const figures = FIGURES.map((t) => {
    const ratios = roundRatios(
      perRound(
        rows.find((r) => r.key === t.num),
        "rps",
      ),
      perRound(
        rows.find((r) => r.key === t.den),
        "rps",
      ),
    );
    const r = median(ratios);
    const name = `(${t.num})/(${t.den}) req/s`;
    return r === null
      ? `${name} = n/a (not run or failed) [${t.about}]`
      : `${name} = ${r.toFixed(2)} [${t.about}]`;
  });
  const degraded = rows.filter(tooDegraded).map((row) => {
    const share = (degradedShare(row) as number) * 100;
    return `(${row.key}) FAILED: ${share.toFixed(2)}% of its answers degraded, more than ${DEGRADED_MAX_SHARE * 100}% against a healthy Redis`;
  });
  return [...targetLines(rows), ...figures, ...degraded];
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
    `Degraded: answers marked degraded (lookups: the service's \`audience_degraded_answers_total\`; enrich: the`,
    `\`x-audience-degraded\` header) over the 2xx answers of the measured rounds; above ${DEGRADED_MAX_SHARE * 100}% (\`!!\`) the run fails.`,
    ...(rows.some((r) => r.load !== null && !r.load.prebuilt)
      ? ["", "Note: autocannon internals differed from v8: requests were rebuilt per send (slower client)."]
      : []),
    "",
    "## Targets and ratios",
    "",
    "Each ratio is the median of per-round ratios (round i of one scenario against round i of the other, run in",
    `the same interleaved round). The p99 rows come from the fixed-rate run at ${FIXED_RATE_SHARE * 100}% of the scenario's median flat-out`,
    "req/s (paced evenly, see loadtest/README.md), the median of its rounds.",
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
