// Composition root: config -> one serving instance, or a pool of worker threads -> signals.
import { ephemeralSecret } from "./capping/notice-token.ts";
import { ConfigError, configSummary, loadConfig, usesRedis, workerPlan } from "./config.ts";
import { detectUwsBackend } from "./http/uws-server.ts";
import { createLogger } from "./logger.ts";
import { serve } from "./serve.ts";
import { startWorkerPool } from "./worker-pool.ts";

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
  const plan = workerPlan(config);
  const workers = plan.count;
  if (plan.forcedBy !== null && (config.workers ?? 1) > 1)
    log.warn(
      { workers: config.workers, reason: plan.forcedBy },
      `running 1 worker: ${plan.forcedBy} needs a single thread`,
    );

  // Made here, before any worker starts, so that every thread of the process reads every other's tokens.
  const noticeSecret = config.eventTokenSecret ?? ephemeralSecret();
  if (config.eventTokenSecret === undefined)
    log.warn(
      "EVENT_TOKEN_SECRET unset: notice tokens are keyed by a random secret of this process; they do not survive a restart or reach another instance",
    );
  if (config.eventsOpen)
    log.warn(
      "EVENTS_OPEN=true: POST /v1/events needs no key and the pixel takes type and id; anyone who reaches this service can count impressions for any ID",
    );
  const running =
    workers === 1
      ? await serve(config, log, { backend, noticeSecret })
      : await startWorkerPool(config, log, workers, noticeSecret);
  log.info(
    {
      port: running.port,
      http: config.httpServer === "node" ? "node:http" : backend.detail,
      workers,
      store: config.redisClusterNodes.length > 0 ? "redis-cluster" : usesRedis(config) ? "redis" : "memory",
      config: configSummary(config),
    },
    "audience lookup service listening",
  );

  // Exit 0 within the grace period whatever happens (serve.ts describes the order of a graceful stop).
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await running.stop(signal);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  process.stderr.write(`audience lookup service failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
