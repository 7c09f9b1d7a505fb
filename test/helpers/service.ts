// Starts the real service (config -> service -> HTTP server on a free port) inside the test process.
import { loadConfig } from "../../src/config.ts";
import { startHttpServer } from "../../src/http/start-server.ts";
import { detectUwsBackend, type RunningServer } from "../../src/http/uws-server.ts";
import { createLogger } from "../../src/logger.ts";
import { createService, type Service } from "../../src/service.ts";
import { serviceAt } from "./openapi-check.ts";

export interface TestService {
  readonly base: string;
  readonly service: Service;
  readonly server: RunningServer;
  stop(): Promise<void>;
}

export type HttpEngine = "uws" | "node";

/** `env` is read like the process environment; PORT defaults to 0 (a free port), logs are silent. */
export async function startService(
  env: Record<string, string> = {},
  engine: HttpEngine = "uws",
  logLines?: string[],
): Promise<TestService> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    HTTP_SERVER: engine,
    // Not the shipped deadlines (15 ms budget, 25 ms command timeout), for the tests that are about what
    // an answer holds rather than when it comes: beside another test file on two cores, a store read missed
    // them now and then (CI runs: a Cluster's first 20-ID lookup, a COPPA lookup's counter read), and the
    // answer came back degraded. The deadlines themselves are held to the shipped values by the tests of the
    // `timed` project (vitest.config.ts), which run alone and start their services without this.
    LOOKUP_BUDGET_MS: "500",
    REDIS_COMMAND_TIMEOUT_MS: "500",
    ...env,
  });
  const log =
    logLines === undefined
      ? createLogger(config.logLevel)
      : createLogger(config.logLevel, { write: (line: string) => void logLines.push(line) });
  const service = await createService(config, log, { backend: detectUwsBackend() });
  const server = await startHttpServer(config, service.routes, () => {});
  const base = `http://127.0.0.1:${server.port}`;
  const forget = serviceAt(base);
  return {
    base,
    service,
    server,
    stop: async () => {
      forget();
      server.close();
      await service.close();
    },
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field in the tests
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? null : JSON.parse(text), headers: res.headers };
}

// biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field in the tests
export async function getJson(url: string): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json(), headers: res.headers };
}
