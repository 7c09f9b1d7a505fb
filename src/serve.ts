// One serving instance: the service and its HTTP server, and their graceful stop. The process runs one
// (WORKERS=1) or each worker thread runs one (worker-pool.ts).
import type { Config } from "./config.ts";
import { startHttpServer } from "./http/start-server.ts";
import type { HttpBackendInfo } from "./http/uws-server.ts";
import type { Logger } from "./logger.ts";
import { redactMessage, redactPath } from "./privacy/log-redaction.ts";
import { createService } from "./service.ts";

export interface Serving {
  readonly port: number;
  /**
   * Graceful stop: unready first (the load balancer drains us), then no new connections, then the requests
   * in flight finish (within SHUTDOWN_GRACE_MS), then every connection and the stores close.
   */
  stop(signal: string): Promise<void>;
}

export interface ServeOptions {
  readonly backend: HttpBackendInfo;
  /** Overrides config.port: the port the pool picked for all its workers when PORT=0. */
  readonly port?: number;
  readonly worker?: { readonly index: number; readonly count: number };
  /** The notice-token secret the process uses (EVENT_TOKEN_SECRET, or one made at start-up). */
  readonly noticeSecret?: string;
}

export async function serve(config: Config, log: Logger, opts: ServeOptions): Promise<Serving> {
  const service = await createService(config, log, {
    backend: opts.backend,
    ...(opts.worker === undefined ? {} : { worker: opts.worker }),
    ...(opts.noticeSecret === undefined ? {} : { noticeSecret: opts.noticeSecret }),
  });
  // Neither the path (an admin route names an ID) nor a store error (its keys name IDs) is logged in the clear.
  const server = await startHttpServer(
    { ...config, port: opts.port ?? config.port },
    service.routes,
    (err, path) =>
      log.error(
        {
          err: redactMessage(err instanceof Error ? (err.stack ?? err.message) : String(err)),
          path: redactPath(path),
        },
        "request failed",
      ),
    () => service.admission.draining,
  );
  let stopping: Promise<void> | null = null;
  const stop = async (signal: string): Promise<void> => {
    service.admission.draining = true;
    log.info({ signal, drainMs: config.shutdownDrainMs, graceMs: config.shutdownGraceMs }, "shutting down");
    await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
    server.close();
    const drained = await service.admission.idle(config.shutdownGraceMs);
    if (!drained)
      log.warn({ inFlight: service.admission.inFlight }, "grace period over with requests in flight");
    server.closeConnections();
    await service.close().catch((err) => log.error({ err: redactMessage(String(err)) }, "close failed"));
    log.info({ drained }, "stopped");
  };
  return {
    port: server.port,
    stop: (signal) => {
      stopping ??= stop(signal);
      return stopping;
    },
  };
}
