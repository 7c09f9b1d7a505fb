// Structured logs (pino): one JSON line per event; levels below the configured one cost nothing.
import { type Logger, pino } from "pino";

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "audience-lookup" }, timestamp: pino.stdTimeFunctions.isoTime });
}
