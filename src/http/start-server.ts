// Starts the configured HTTP engine on the configured address with the configured limits.
import type { Config } from "../config.ts";
import type { Route } from "./http-types.ts";
import { startNodeServer } from "./node-server.ts";
import { type RunningServer, startUwsServer } from "./uws-server.ts";

export function startHttpServer(
  config: Config,
  routes: readonly Route[],
  onInternalError: (err: unknown, path: string) => void,
  draining?: () => boolean,
): Promise<RunningServer> {
  const start = config.httpServer === "node" ? startNodeServer : startUwsServer;
  return start({
    host: config.host,
    port: config.port,
    bodyLimitBytes: config.bodyLimitBytes,
    streamBodyLimitBytes: config.adminBodyLimitBytes,
    routes,
    onInternalError,
    bodyTimeoutMs: config.bodyTimeoutMs,
    streamIdleTimeoutMs: config.streamIdleTimeoutMs,
    ...(draining === undefined ? {} : { draining }),
  });
}
