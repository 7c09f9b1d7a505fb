// Composition root: config -> service -> HTTP server -> signals.
import { ConfigError, configSummary, loadConfig } from "./config.ts";
import { startHttpServer } from "./http/start-server.ts";
import { detectUwsBackend } from "./http/uws-server.ts";
import { createLogger } from "./logger.ts";
import { redactMessage, redactPath } from "./privacy/log-redaction.ts";
import { createService } from "./service.ts";

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const backend = detectUwsBackend();
  if (!backend.native) {
    log.warn(
      { http: backend },
      "!!! uWebSockets.js native addon NOT loaded: running the slow JS fallback server !!!",
    );
  }
  const service = await createService(config, log, { backend });
  // Neither the path (an admin route names an ID) nor a store error (its keys name IDs) is logged in the clear.
  const server = await startHttpServer(
    config,
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
  log.info(
    {
      port: server.port,
      http: config.httpServer === "node" ? "node:http" : backend.detail,
      store: service.store.kind,
      config: configSummary(config),
    },
    "audience lookup service listening",
  );

  // Graceful shutdown: unready first (the load balancer drains us), then no new connections, then the
  // requests in flight finish, then the stores close; exit 0 within the grace period whatever happens.
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    service.admission.draining = true;
    log.info({ signal, drainMs: config.shutdownDrainMs, graceMs: config.shutdownGraceMs }, "shutting down");
    await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
    server.close();
    const drained = await service.admission.idle(config.shutdownGraceMs);
    if (!drained)
      log.warn({ inFlight: service.admission.inFlight }, "grace period over with requests in flight");
    await service.close().catch((err) => log.error({ err: redactMessage(String(err)) }, "close failed"));
    log.info({ drained }, "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`audience lookup service failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
