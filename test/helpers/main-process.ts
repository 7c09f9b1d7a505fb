// The service's entry point in a process of its own, as a supervisor runs it: on a free port, its log lines
// kept, ready once it logs that it listens (the pool does so once every worker thread listens).
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { serviceAt } from "./openapi-check.ts";
import { freePort } from "./redis-server.ts";

export interface MainProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly base: string;
  /** Every line written to stdout and stderr so far. */
  readonly logs: string[];
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `node <args>` in `cwd` with exactly `env` (nothing inherited unless the caller passes it) plus PORT, HOST
 * (loopback) and LOG_LEVEL=info unless `env` names them. Rejects, killing it, when it has not logged that it
 * listens within 30 s.
 */
export async function startMainProcess(
  args: readonly string[],
  cwd: string,
  env: Record<string, string>,
): Promise<MainProcess> {
  const port = await freePort();
  const logs: string[] = [];
  const child = spawn(process.execPath, args, {
    cwd,
    env: { PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffered = "";
  const keep = (chunk: Buffer): void => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    logs.push(...lines);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // Its answers are held to /openapi.json, like those of a service started in the test process.
  child.once("exit", serviceAt(`http://127.0.0.1:${port}`));
  const listening = (): boolean => logs.some((l) => l.includes("service listening"));
  for (let i = 0; i < 600 && !listening(); i++) {
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  if (!listening()) {
    child.kill("SIGKILL");
    throw new Error(`node ${args.join(" ")} did not start:\n${logs.join("\n")}`);
  }
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    logs,
    exited,
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** The service from its sources (`tsx src/main.ts`), with `env` and the PATH only, as startMainProcess says. */
export function startSourceService(env: Record<string, string>): Promise<MainProcess> {
  return startMainProcess(["--import", "tsx", "src/main.ts"], ROOT, { PATH: process.env.PATH ?? "", ...env });
}
