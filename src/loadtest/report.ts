// What `audience loadtest` prints at the end, and its HTML report: one self-contained file (inline CSS and SVG).
import type { AnswerTally } from "./answers.ts";
import type { LatencyHistogram } from "./histogram.ts";
import type { RunResult, SecondSample } from "./run.ts";

/** The settings of a run, as the report shows them: label and value, in order. */
export type SettingsList = readonly (readonly [string, string])[];

/** Milliseconds from µs: three decimals below 10 ms, one above. */
export function ms(us: number): string {
  return (us / 1000).toFixed(us < 10_000 ? 3 : 1);
}

function pct(n: number, of: number): string {
  return of === 0 ? "-" : `${((n * 100) / of).toFixed(1)}%`;
}

function byCount(map: ReadonlyMap<string | number, number>): string {
  return [...map]
    .sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])))
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
}

export const QUANTILES = [
  ["p50", 0.5],
  ["p90", 0.9],
  ["p99", 0.99],
  ["p99.9", 0.999],
] as const;

export interface LatencyRow {
  readonly label: string;
  readonly hist: LatencyHistogram;
}

/** The latencies a run reports: from the schedule first when there is one. */
export function latencyRows(r: RunResult): LatencyRow[] {
  const rows: LatencyRow[] = [];
  if (r.fromSchedule !== null) rows.push({ label: "latency from schedule", hist: r.fromSchedule });
  rows.push({ label: "latency from send", hist: r.fromSend });
  return rows;
}

const pad = (s: string, n: number): string => s.padStart(n);

/** The throughput and latency table. */
export function latencyTable(r: RunResult): string[] {
  const perS = r.elapsedS > 0 ? r.tally.answers / r.elapsedS : 0;
  const head =
    "".padEnd(22) +
    pad("answers", 10) +
    pad("req/s", 10) +
    QUANTILES.map(([name]) => pad(`${name} ms`, 10)).join("") +
    pad("max ms", 10);
  const lines = [head];
  for (const row of latencyRows(r)) {
    lines.push(
      row.label.padEnd(22) +
        pad(String(r.tally.answers), 10) +
        pad(perS.toFixed(1), 10) +
        QUANTILES.map(([, q]) => pad(ms(row.hist.percentileUs(q)), 10)).join("") +
        pad(ms(row.hist.maxUs), 10),
    );
  }
  return lines;
}

/** The rows of the answers table: label, count, share of the 2xx answers, what they break down into. */
export function answerRows(
  t: AnswerTally,
  r: Pick<RunResult, "errors" | "timeouts" | "closed">,
): [string, number, string, string][] {
  const non2xx = new Map([...t.statuses].filter(([s]) => s < 200 || s > 299));
  const errorParts = [
    r.timeouts > 0 ? `timeouts ${r.timeouts}` : "",
    r.closed > 0 ? `closed before answering ${r.closed}` : "",
  ].filter((s) => s !== "");
  return [
    ["2xx", t.ok, "", t.unreadable > 0 ? `${t.unreadable} not JSON` : ""],
    ["with segments", t.withSegments, pct(t.withSegments, t.ok), ""],
    ["degraded", t.degraded, pct(t.degraded, t.ok), ""],
    ["withheld", t.withheldAnswers, pct(t.withheldAnswers, t.ok), byCount(t.withheld)],
    ["warnings", t.warningAnswers, pct(t.warningAnswers, t.ok), byCount(t.warnings)],
    ["non-2xx", t.non2xx, "", byCount(non2xx)],
    ["errors", r.errors, "", errorParts.join(", ")],
  ];
}

/** The answers table as printed. */
export function answersTable(t: AnswerTally, r: Pick<RunResult, "errors" | "timeouts" | "closed">): string[] {
  return [
    `${"answers".padEnd(22)}${pad("count", 10)}${pad("of 2xx", 10)}`,
    ...answerRows(t, r).map(([label, n, share, detail]) =>
      `  ${label.padEnd(20)}${pad(String(n), 10)}${pad(share, 10)}${detail === "" ? "" : `   ${detail}`}`.trimEnd(),
    ),
  ];
}

// ---- HTML ----

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Ticks from 0 in round steps (1, 2 or 5 times a power of ten), about `count` of them, the last at or above max. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const ticks: number[] = [0];
  for (let i = 1; (ticks[ticks.length - 1] as number) < max; i++)
    ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

const W = 760;
const H = 260;
const M = { left: 64, right: 16, top: 28, bottom: 40 };

interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
}

function fmtTick(v: number): string {
  return Number(v.toPrecision(6)).toString();
}

/** A line chart of series over x (seconds), linear axes from 0. */
export function lineChart(title: string, yLabel: string, series: readonly Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xTicks = niceTicks(Math.max(1, ...xs), 8);
  const yTicks = niceTicks(Math.max(0, ...ys), 5);
  const xMax = xTicks[xTicks.length - 1] as number;
  const yMax = Math.max(yTicks[yTicks.length - 1] as number, 1e-9);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number): string => (M.left + (v / xMax) * pw).toFixed(1);
  const y = (v: number): string => (M.top + ph - (v / yMax) * ph).toFixed(1);
  const parts: string[] = [
    `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`,
    `<text x="${M.left}" y="18" class="title">${esc(title)}</text>`,
  ];
  for (const t of yTicks) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" class="grid"/>`);
    parts.push(`<text x="${M.left - 6}" y="${y(t)}" class="ytick">${fmtTick(t)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<text x="${x(t)}" y="${H - M.bottom + 16}" class="xtick">${fmtTick(t)}</text>`);
  }
  parts.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${y(0)}" y2="${y(0)}" class="axis"/>`,
    `<text x="${W - M.right}" y="${H - 6}" class="xlabel">seconds</text>`,
    `<text x="14" y="${M.top + ph / 2}" class="ylabel" transform="rotate(-90 14 ${M.top + ph / 2})">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points.map((p) => `${x(p[0])},${y(p[1])}`).join(" ");
      parts.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      for (const p of s.points) {
        parts.push(`<circle cx="${x(p[0])}" cy="${y(p[1])}" r="2.5" fill="${s.color}"/>`);
      }
    }
    const lx = W - M.right - 110 * (series.length - i);
    parts.push(
      `<rect x="${lx}" y="9" width="12" height="12" fill="${s.color}"/>`,
      `<text x="${lx + 16}" y="19" class="legend">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/**
 * The latency histogram on a logarithmic axis: the histogram's buckets gathered into bins of equal width in
 * log(latency), with the percentiles marked.
 */
export function histogramChart(name: string, hist: LatencyHistogram, bins = 60): string {
  const buckets = [...hist.buckets()];
  const title = `${name}: ${QUANTILES.map(([n, q]) => `${n} ${ms(hist.percentileUs(q))}`).join(", ")} ms`;
  const parts: string[] = [
    `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`,
    `<text x="${M.left}" y="18" class="title">${esc(title)}</text>`,
  ];
  if (buckets.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" class="xtick">no answers</text>`, "</svg>");
    return parts.join("\n");
  }
  const lo = Math.max(1, (buckets[0] as [number, number, number])[0]);
  // A little room right of the slowest answer, for its bar and the marks near it.
  const hi = Math.max(lo * 10, (hist.maxUs + 1) * 1.2);
  const l0 = Math.log10(lo);
  const span = Math.log10(hi) - l0;
  const counts = new Array<number>(bins).fill(0);
  for (const [a, b, n] of buckets) {
    const mid = Math.max(1, (a + b) / 2);
    const i = Math.min(bins - 1, Math.max(0, Math.floor(((Math.log10(mid) - l0) / span) * bins)));
    counts[i] = (counts[i] as number) + n;
  }
  const yTicks = niceTicks(Math.max(...counts), 5);
  const yMax = yTicks[yTicks.length - 1] as number;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const xOf = (us: number): number => M.left + ((Math.log10(Math.max(us, lo)) - l0) / span) * pw;
  const y = (v: number): number => M.top + ph - (v / yMax) * ph;
  for (const t of yTicks) {
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="grid"/>`,
    );
    parts.push(`<text x="${M.left - 6}" y="${y(t).toFixed(1)}" class="ytick">${fmtTick(t)}</text>`);
  }
  const bw = pw / bins;
  counts.forEach((n, i) => {
    if (n === 0) return;
    const top = y(n);
    parts.push(
      `<rect x="${(M.left + i * bw).toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(M.top + ph - top).toFixed(1)}" class="bar"/>`,
    );
  });
  // Decades of milliseconds along the axis.
  for (let e = Math.ceil(l0); e <= Math.floor(l0 + span); e++) {
    const us = 10 ** e;
    parts.push(
      `<text x="${xOf(us).toFixed(1)}" y="${H - M.bottom + 16}" class="xtick">${fmtTick(us / 1000)}</text>`,
    );
  }
  // Each percentile's line, its name on a row of its own so that close ones stay readable, its value in the title.
  QUANTILES.forEach(([name, q], i) => {
    const at = xOf(hist.percentileUs(q));
    const x = at.toFixed(1);
    const side = at > W - M.right - 40 ? "marklabel left" : "marklabel";
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" class="mark"/>`,
      `<text x="${x}" y="${M.top + 10 + i * 12}" class="${side}">${name}</text>`,
    );
  });
  parts.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" class="axis"/>`,
    `<text x="${W - M.right}" y="${H - 6}" class="xlabel">latency, ms (log scale)</text>`,
    `<text x="14" y="${M.top + ph / 2}" class="ylabel" transform="rotate(-90 14 ${M.top + ph / 2})">answers</text>`,
    "</svg>",
  );
  return parts.join("\n");
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; margin: 24px auto; max-width: 820px; padding: 0 16px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e6ec; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.detail, table.settings td { text-align: left; color: #4a5263; }
.verdict { font-weight: 600; } .fail { color: #b3261e; } .pass { color: #1b7f3b; }
svg.chart { display: block; margin: 8px 0; }
svg .title { font-weight: 600; font-size: 13px; }
svg .grid { stroke: #e3e6ec; } svg .axis { stroke: #8a93a5; }
svg .ytick { font-size: 11px; text-anchor: end; dominant-baseline: middle; fill: #4a5263; }
svg .xtick { font-size: 11px; text-anchor: middle; fill: #4a5263; }
svg .xlabel { font-size: 11px; text-anchor: end; fill: #4a5263; }
svg .ylabel { font-size: 11px; text-anchor: middle; fill: #4a5263; }
svg .legend { font-size: 11px; dominant-baseline: middle; fill: #1d2330; }
svg .bar { fill: #5b7bd5; } svg .mark { stroke: #b3261e; stroke-dasharray: 3 3; }
svg .marklabel { font-size: 10px; fill: #b3261e; transform: translateX(3px); }
svg .marklabel.left { text-anchor: end; transform: translateX(-3px); }
`;

function table(head: readonly string[], rows: readonly (readonly string[])[], cls = ""): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join("");
  const trs = rows.map(
    (r) =>
      `<tr>${r.map((c, i) => (i === r.length - 1 && head.length < r.length ? `<td class="detail">${esc(c)}</td>` : `<td>${esc(c)}</td>`)).join("")}</tr>`,
  );
  return `<table${cls === "" ? "" : ` class="${cls}"`}><thead><tr>${th}</tr></thead><tbody>${trs.join("")}</tbody></table>`;
}

export interface ReportInput {
  readonly title: string;
  readonly settings: SettingsList;
  readonly result: RunResult;
  /** Lines said under the latency table (a fixed-rate run's rate achieved, the generator's own lateness). */
  readonly notes?: readonly string[];
  /** The verdict line: passed or failed against --max-errors, and why. */
  readonly verdict: { readonly pass: boolean; readonly text: string };
}

function seriesOf(seconds: readonly SecondSample[], pick: (s: SecondSample) => number): [number, number][] {
  return seconds.map((s) => [s.atS, pick(s)]);
}

/** The whole report: settings, verdict, summary tables and three charts; nothing fetched from anywhere. */
export function reportHtml(input: ReportInput): string {
  const r = input.result;
  const t = r.tally;
  const perS = r.elapsedS > 0 ? t.answers / r.elapsedS : 0;
  const latency = table(
    ["", "answers", "req/s", ...QUANTILES.map(([n]) => `${n} ms`), "max ms"],
    latencyRows(r).map((row) => [
      row.label,
      String(t.answers),
      perS.toFixed(1),
      ...QUANTILES.map(([, q]) => ms(row.hist.percentileUs(q))),
      ms(row.hist.maxUs),
    ]),
  );
  const answers = table(
    ["answers", "count", "of 2xx"],
    answerRows(t, r).map(([label, n, share, detail]) => [label, String(n), share, detail]),
  );
  const measure = r.fromSchedule === null ? "from send" : "from schedule";
  const overTime = lineChart(`Latency over time (${measure}), per second`, "ms", [
    { name: "p50", color: "#5b7bd5", points: seriesOf(r.seconds, (s) => s.p50Us / 1000) },
    { name: "p99", color: "#d5772b", points: seriesOf(r.seconds, (s) => s.p99Us / 1000) },
  ]);
  const throughput = lineChart("Answers per second", "answers/s", [
    { name: "answers", color: "#2f8f5b", points: seriesOf(r.seconds, (s) => s.answers / s.spanS) },
    { name: "errors", color: "#b3261e", points: seriesOf(r.seconds, (s) => s.errors / s.spanS) },
  ]);
  const histogram = histogramChart(`Latency histogram (${measure})`, r.fromSchedule ?? r.fromSend);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(input.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${esc(input.title)}</h1>
<p class="verdict ${input.verdict.pass ? "pass" : "fail"}">${esc(input.verdict.text)}</p>
<h2>Settings</h2>
${table(
  ["setting", "value"],
  input.settings.map(([k, v]) => [k, v]),
  "settings",
)}
<h2>Throughput and latency</h2>
${latency}
${(input.notes ?? []).map((n) => `<p>${esc(n)}</p>`).join("\n")}
<h2>Answers</h2>
${answers}
<h2>Latency over time</h2>
${overTime}
${throughput}
<h2>Latency distribution</h2>
${histogram}
</body>
</html>
`;
}
