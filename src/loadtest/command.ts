// `audience loadtest <url>`: the engineer's load test of a running deployment, from the command line.
import { randomInt } from "node:crypto";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BodiesError, BodyFactory, DEFAULT_BODIES_DIR, loadTemplates, type Template } from "./bodies.ts";
import { type IdsFile, IdsFileUnreadable, type KnownId, readIdsFile } from "./ids-file.ts";
import { answersTable, latencyTable, ms, reportHtml, type SettingsList } from "./report.ts";
import { type LiveFigures, type RunResult, type RunSettings, runLoad } from "./run.ts";
import { LOADTEST_DEFAULTS as D, LOADTEST_USAGE } from "./usage.ts";

/** Bad arguments or input files: the message the user sees; exit code 2. */
export class LoadTestInputError extends Error {}

/** Malformed lines printed before giving up; the rest are counted. */
const MAX_LINE_ERRORS_SHOWN = 20;
/** Seconds between plain progress lines when stdout is not a terminal. */
const PLAIN_PROGRESS_EVERY_S = 5;
/** How long the first request may take before the target counts as unreachable. */
const PREFLIGHT_TIMEOUT_MS = 5_000;

type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface LoadTestPlan {
  readonly settings: RunSettings;
  /** The URL requests go to (origin and path), for messages. */
  readonly target: string;
  readonly bodiesDir: string;
  readonly templates: readonly Template[];
  readonly idsFile: string | null;
  readonly known: readonly KnownId[] | null;
  readonly unknownShare: number;
  readonly seed: number;
  readonly maxErrors: number;
  readonly report: string;
}

function wholeNumber(flag: string, value: string | undefined, fallback: number, min: number, max: number) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new LoadTestInputError(`--${flag} must be a whole number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** Names the command sets itself: another value of them would make a different request. */
const OWN_HEADERS = new Set(["host", "connection", "content-length", "content-type", "transfer-encoding"]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerOf(arg: string): [string, string] {
  const colon = arg.indexOf(":");
  const name = colon < 0 ? "" : arg.slice(0, colon).trim();
  const value = colon < 0 ? "" : arg.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name) || /[\r\n]/.test(value)) {
    throw new LoadTestInputError(`--header must be 'name: value', got '${arg}'`);
  }
  if (OWN_HEADERS.has(name.toLowerCase())) {
    throw new LoadTestInputError(`--header ${name}: set by the command itself`);
  }
  return [name, value];
}

/** Reads the arguments and the input files; throws LoadTestInputError for anything that stops the run. */
export function planOf(args: string[], err: Out): LoadTestPlan | "help" {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (e) {
    throw new LoadTestInputError(`${(e as Error).message}\nusage:\n${LOADTEST_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return "help";
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) {
    throw new LoadTestInputError(`loadtest takes one URL\nusage:\n${LOADTEST_USAGE}`);
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new LoadTestInputError(`'${target}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new LoadTestInputError(`'${target}': only http:// and https:// targets`);
  }
  const urlPath = url.pathname === "/" && url.search === "" ? null : `${url.pathname}${url.search}`;
  const path = values.path ?? urlPath ?? D.path;
  if (!path.startsWith("/") || /[\s]/.test(path)) {
    throw new LoadTestInputError(`--path must start with / and hold no spaces, got '${path}'`);
  }
  const durationS = wholeNumber("duration", values.duration, D.durationS, 1, 86_400);
  const connections = wholeNumber("connections", values.connections, D.connections, 1, 10_000);
  const rate = values.rate === undefined ? null : wholeNumber("rate", values.rate, 0, 1, 10_000_000);
  const maxErrors = wholeNumber("max-errors", values["max-errors"], D.maxErrors, 0, Number.MAX_SAFE_INTEGER);
  const seed = wholeNumber("seed", values.seed, randomInt(1, 2 ** 31), 0, 2 ** 32 - 1);
  let unknownShare: number = D.unknownShare;
  if (values.unknown !== undefined) {
    unknownShare = Number(values.unknown);
    if (!/^\d*\.?\d+$/.test(values.unknown) || unknownShare > 1) {
      throw new LoadTestInputError(`--unknown must be a share from 0 to 1, got '${values.unknown}'`);
    }
  }
  const headers = (values.header ?? []).map(headerOf);

  const bodiesDir = values.bodies === undefined ? DEFAULT_BODIES_DIR : resolve(values.bodies);
  let templates: Template[];
  try {
    templates = loadTemplates(bodiesDir);
  } catch (e) {
    if (!(e instanceof BodiesError)) throw e;
    const hint = values.bodies === undefined ? " (the package's samples; pass --bodies <dir>)" : "";
    throw new LoadTestInputError(`${e.message}${hint}`);
  }

  let known: KnownId[] | null = null;
  const idsFile = values.ids ?? null;
  if (idsFile !== null) {
    let file: IdsFile;
    try {
      file = readIdsFile(idsFile);
    } catch (e) {
      if (e instanceof IdsFileUnreadable) throw new LoadTestInputError(e.message);
      throw e;
    }
    if (file.errors.length > 0) {
      for (const e of file.errors.slice(0, MAX_LINE_ERRORS_SHOWN))
        err.write(`${idsFile}:${e.line}: ${e.reason}\n`);
      const more = file.errors.length - MAX_LINE_ERRORS_SHOWN;
      if (more > 0) err.write(`${idsFile}: ${more} more malformed lines\n`);
      const n = file.errors.length;
      throw new LoadTestInputError(`${idsFile}: ${n} malformed line${n === 1 ? "" : "s"}; nothing sent`);
    }
    if (file.ids.length === 0) throw new LoadTestInputError(`${idsFile}: no IDs in it`);
    known = file.ids;
  }
  const report = resolve(values.report ?? D.report);
  if (!existsSync(dirname(report)) || !statSync(dirname(report)).isDirectory()) {
    throw new LoadTestInputError(`--report ${values.report}: no such directory ${dirname(report)}`);
  }
  return {
    settings: { origin: url.origin, path, durationS, connections, ratePerS: rate, headers },
    target: `${url.origin}${path}`,
    bodiesDir,
    templates,
    idsFile,
    known,
    unknownShare,
    seed,
    maxErrors,
    report,
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      duration: { type: "string" },
      connections: { type: "string" },
      rate: { type: "string" },
      ids: { type: "string" },
      unknown: { type: "string" },
      bodies: { type: "string" },
      "max-errors": { type: "string" },
      report: { type: "string" },
      path: { type: "string" },
      seed: { type: "string" },
      header: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
}

function counted(map: ReadonlyMap<string, number>): string {
  return [...map].map(([k, n]) => `${k} ${n}`).join(", ");
}

/** What the run will send, as printed at the start and listed in the report. */
export function settingsOf(plan: LoadTestPlan, factory: BodyFactory): SettingsList {
  const s = plan.settings;
  const byType = new Map<string, number>();
  for (const k of plan.known ?? []) byType.set(k.type, (byType.get(k.type) ?? 0) + 1);
  const ids =
    plan.known === null
      ? "random, never seen (no --ids): every user is unknown, no answer should carry segments"
      : `${plan.known.length} known from ${plan.idsFile} (${counted(byType)}); ` +
        `${(plan.unknownShare * 100).toFixed(1)}% of requests with random IDs never seen`;
  const list: [string, string][] = [
    ["target", `POST ${plan.target}`],
    ["duration", `${s.durationS} s`],
    ["connections", String(s.connections)],
    [
      "rate",
      s.ratePerS === null
        ? "flat out (no --rate)"
        : `${s.ratePerS}/s on a fixed schedule, latency from each request's due time`,
    ],
    [
      "bodies",
      `${factory.eligible.length} of ${plan.templates.length} templates in ${plan.bodiesDir}` +
        (factory.eligible.length < plan.templates.length
          ? " (those with a place for a known ID's kind)"
          : ""),
    ],
    ["IDs", ids],
  ];
  if (factory.unused.size > 0) {
    list.push(["IDs not used", `${counted(factory.unused)}: no template carries their kind`]);
  }
  list.push(
    ["seed", `${plan.seed} (--seed ${plan.seed} sends the same requests again)`],
    ["answers read", "every answer: its status, headers and JSON body"],
    ["max errors", String(plan.maxErrors)],
  );
  for (const [k] of s.headers) list.push(["header", `${k}: (set)`]);
  return list;
}

/** Sends one request first, so that a wrong URL fails at once rather than as a run full of errors. */
async function preflight(plan: LoadTestPlan, factory: BodyFactory): Promise<void> {
  const body = factory.next();
  const headers: Record<string, string> = { "content-type": "application/json" };
  for (const [k, v] of plan.settings.headers) headers[k] = v;
  if (body.exchange !== null) headers["x-exchange"] = body.exchange;
  try {
    const res = await fetch(`${plan.settings.origin}${plan.settings.path}`, {
      method: "POST",
      headers,
      body: body.body,
      signal: AbortSignal.timeout(PREFLIGHT_TIMEOUT_MS),
    });
    await res.arrayBuffer();
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new LoadTestInputError(`cannot reach ${plan.target}: ${why}`);
  }
}

/** The live line: one line redrawn every second on a terminal, a plain line every few seconds otherwise. */
export function progressLine(live: LiveFigures): string {
  return `${String(live.elapsedS).padStart(4)} s  ${String(live.perS).padStart(7)} req/s  p99 ${ms(live.p99Us)} ms  errors ${live.errors}`;
}

/** What a fixed-rate run achieved, and what of its latency is not the service's. */
export function rateLines(ratePerS: number, r: RunResult): string[] {
  const achieved = r.elapsedS > 0 ? r.tally.answers / r.elapsedS : 0;
  const lines = [
    `rate: asked ${ratePerS}/s, answered ${achieved.toFixed(1)}/s` +
      (r.notSent > 0
        ? `; ${r.notSent} request${r.notSent === 1 ? "" : "s"} came due while every connection was busy and never left` +
          " (more --connections, or the service is at its limit)"
        : ""),
  ];
  if (r.sendLag !== null) {
    lines.push(
      `sending: requests left p50 ${ms(r.sendLag.percentileUs(0.5))} ms, p99 ${ms(r.sendLag.percentileUs(0.99))} ms ` +
        "after they could have (the generator's own timing, not counted in the latency)",
    );
  }
  return lines;
}

export interface Verdict {
  readonly pass: boolean;
  readonly text: string;
}

export function verdictOf(r: RunResult, maxErrors: number): Verdict {
  const bad = r.tally.non2xx + r.errors;
  const what = `${r.tally.non2xx} non-2xx answers and ${r.errors} errors`;
  return bad > maxErrors
    ? { pass: false, text: `FAIL: ${what}, more than --max-errors ${maxErrors}` }
    : { pass: true, text: `PASS: ${what} (--max-errors ${maxErrors})` };
}

export async function loadtest(args: string[], out: Out = process.stdout, err: Out = process.stderr) {
  const plan = planOf(args, err);
  if (plan === "help") {
    out.write(`usage:\n${LOADTEST_USAGE}\n`);
    return 0;
  }
  const factory = new BodyFactory(plan.templates, plan.known, {
    unknownShare: plan.unknownShare,
    seed: plan.seed,
  });
  if (plan.known !== null && !factory.hasKnown) {
    throw new LoadTestInputError(
      `${plan.idsFile}: none of its IDs has a place in the templates (${counted(factory.unused)}); ` +
        "a bid request carries bu, ifa, xu:<exchange> and eid:<source> IDs",
    );
  }
  const settings = settingsOf(plan, factory);
  // The preflight's request comes from a factory of its own: the run's sequence stays that of the seed.
  await preflight(
    plan,
    new BodyFactory(plan.templates, null, { unknownShare: 1, seed: plan.seed ^ 0x5bd1e995 }),
  );

  out.write(`audience loadtest\n${settings.map(([k, v]) => `  ${`${k}:`.padEnd(14)}${v}`).join("\n")}\n\n`);
  const tty = out.isTTY === true;
  let progressShown = false;
  const started = new Date();
  const result = await runLoad(plan.settings, factory, (live) => {
    const line = progressLine(live);
    if (tty) {
      const width = out.columns;
      const fitted =
        width !== undefined && width > 1 && line.length >= width ? line.slice(0, width - 1) : line;
      out.write(`\r${fitted}\x1b[K`);
      progressShown = true;
    } else if (live.elapsedS > 0 && live.elapsedS % PLAIN_PROGRESS_EVERY_S === 0) {
      out.write(`${line}\n`);
      progressShown = true;
    }
  });
  if (progressShown) out.write(tty ? "\n\n" : "\n");

  const verdict = verdictOf(result, plan.maxErrors);
  const lines = [
    `${result.elapsedS.toFixed(1)} s, ${result.sent} requests sent, ${result.tally.answers} answered`,
    ...latencyTable(result),
    "",
    ...answersTable(result.tally, result),
  ];
  const notes = plan.settings.ratePerS === null ? [] : rateLines(plan.settings.ratePerS, result);
  if (notes.length > 0) lines.push("", ...notes);
  // The figures first: a report that cannot be written loses only itself.
  out.write(`${lines.join("\n")}\n\n`);
  writeFileSync(
    plan.report,
    reportHtml({
      title: `audience loadtest of ${plan.target}, ${started.toISOString()}`,
      settings: [["started", started.toISOString()], ...settings],
      result,
      notes,
      verdict,
    }),
  );
  out.write(`report: ${plan.report}\n${verdict.text}\n`);
  return verdict.pass ? 0 : 1;
}
