// Runs the `audience` command as a user would: a separate process with its own environment.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const AUDIENCE_BIN = fileURLToPath(new URL("../../bin/audience.mjs", import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function audience(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [AUDIENCE_BIN, ...args],
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr });
      },
    );
  });
}

/** Starts the command without waiting, for tests that stop it part-way. */
export function spawnAudience(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [AUDIENCE_BIN, ...args], { env: { ...process.env, ...env }, stdio: "pipe" });
}
