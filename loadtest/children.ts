// Server child processes: build the service, start each server (compiled, or with tsx), wait for readiness, read CPU
// time, and stop every one on the way out.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** The compiled service, as `npm start` and the Docker image run it (`buildService` makes it). */
export const SERVICE_ENTRY = "dist/main.js";

/**
 * `npm run build` in `root`, once before any server starts: the bench measures the service as it ships, compiled,
 * not the sources under tsx (whose loader hooks and source maps are not what production runs). Incremental, so
 * quick when nothing changed. Returns the build's wall time in ms.
 */
export function buildService(root: string): number {
  const started = performance.now();
  try {
    // The typescript package's own bin through this node: no shell, and no npm on the PATH needed.
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      encoding: "utf8",
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(
      `building the service (tsc -p tsconfig.build.json) failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`,
    );
  }
  return performance.now() - started;
}

export interface ServerChild {
  readonly name: string;
  readonly pid: number;
  readonly baseUrl: string;
  /** The last lines it wrote (stdout and stderr), for error messages. */
  output(): string;
  /** Whether the process has ended. */
  exited(): boolean;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

function stopProcess(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

/** Stops every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stopProcess(p)));
}

/** Last resort on a synchronous exit path: SIGKILL whatever is left. */
export function killAllNow(): void {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

/**
 * Runs `node <script>` (compiled JavaScript) or `node --import tsx <script>` (TypeScript) from `cwd` with extra env. `port` is either known up front or "stdout":
 * the first stdout line of the form {"port": n, ...}, kept as `announced`. Ready once GET <readyPath> answers 200.
 */
export async function startServer(opts: {
  name: string;
  cwd: string;
  script: string;
  env: Record<string, string>;
  port: number | "stdout";
  readyPath: string;
  timeoutMs?: number;
}): Promise<ServerChild & { announced: Record<string, unknown> }> {
  // BENCH_CPU_PROF=<dir>: every server writes a V8 CPU profile there when it stops (Node refuses --cpu-prof
  // in NODE_OPTIONS, so it goes on the command line). Open the .cpuprofile files in Chrome DevTools.
  const prof = process.env.BENCH_CPU_PROF
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  const loader = opts.script.endsWith(".ts") ? ["--import", "tsx"] : [];
  const proc = spawn(process.execPath, [...prof, ...loader, opts.script], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  let tail = "";
  let announced: Record<string, unknown> | null = null;
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString("utf8")).slice(-4000);
  };
  proc.stderr?.on("data", keep);
  proc.stdout?.on("data", (chunk: Buffer) => {
    keep(chunk);
    if (announced === null) {
      const line = /^\{"port":.*\}$/m.exec(tail)?.[0];
      if (line !== undefined) announced = JSON.parse(line) as Record<string, unknown>;
    }
  });

  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  const failIfGone = (): void => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${opts.name} exited (${proc.exitCode ?? proc.signalCode}) before ready:\n${tail}`);
    }
    if (Date.now() > deadline) throw new Error(`${opts.name} not ready in time:\n${tail}`);
  };
  let port = opts.port === "stdout" ? 0 : opts.port;
  while (port === 0) {
    failIfGone();
    const p = Number((announced as Record<string, unknown> | null)?.port ?? 0);
    if (p > 0) port = p;
    else await sleep(50);
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  for (;;) {
    failIfGone();
    try {
      const r = await fetch(`${baseUrl}${opts.readyPath}`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return {
    name: opts.name,
    pid: proc.pid as number,
    baseUrl,
    announced: announced ?? {},
    output: () => tail,
    exited: () => proc.exitCode !== null || proc.signalCode !== null,
    stop: () => stopProcess(proc),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let ticksPerSecond: number | null = null;

/** Clock ticks per second of proc(5)'s CPU times (getconf CLK_TCK). */
export function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds (user + system) a process has used so far; null where /proc is not available. */
export function cpuSeconds(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of proc(5) (utime, stime), counted from after the command name.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return null;
  }
}

/** CPU seconds the whole machine has spent busy (all CPUs: user, nice, system, irq, softirq); null without /proc. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0);
    return Number.isFinite(busy) ? busy / clockTicks() : null;
  } catch {
    return null;
  }
}
