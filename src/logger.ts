// Structured logs (pino): one JSON line per event; levels below the configured one cost nothing.
import { type Logger, pino } from "pino";

export type { Logger };

/** JSON lines to stdout, or to `destination` (tests read them back). */
export function createLogger(level: string, destination?: { write(line: string): void }): Logger {
  const opts = { level, base: { service: "audience-lookup" }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination === undefined ? pino(opts) : pino(opts, destination);
}
