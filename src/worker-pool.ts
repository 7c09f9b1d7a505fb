// WORKERS=N: N worker threads, each running the whole service with its own uWS app on the same port (the
// kernel spreads connections over them, SO_REUSEPORT), its own LRU cache and its own Redis connections;
// writes made through any of them reach the others' caches over Redis pub/sub (invalidation-bus.ts).
// The main thread only starts them and stops them all on SIGTERM. A worker that dies ends the process
// (exit 1) for its supervisor to restart: a thread that dies with uWS sockets open aborts the process anyway.
import { createServer } from "node:net";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Config } from "./config.ts";
import type { Logger } from "./logger.ts";

export interface WorkerData {
  readonly index: number;
  readonly count: number;
  /** The port to listen on: config.port, or one picked for all of them when PORT=0. */
  readonly port: number;
  readonly entry: string;
  /** Where tsx's loader is, when the entry is TypeScript (a checkout run with `npm start`). */
  readonly tsx: string | null;
  /** The process's notice-token secret: one for all threads, so each reads the tokens of the others. */
  readonly noticeSecret: string;
}
export type ToWorker = { t: "stop"; signal: string };
export type FromWorker = { t: "listening" };

/** Loads the entry in the thread, registering tsx first when it is TypeScript (workers do not inherit it). */
const BOOT = `
const { workerData } = require("node:worker_threads");
(async () => {
  if (workerData.tsx !== null) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})().catch((err) => { setImmediate(() => { throw err; }); });
`;

/**
 * A free port for every worker to listen on. uWS shares a port between threads (SO_REUSEPORT) only when
 * it is named: a port 0 picked by one worker cannot be joined by the others.
 */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export interface Pool {
  readonly port: number;
  /** Stops every worker gracefully (each drains as a single process would); resolves when all have ended. */
  stop(signal: string): Promise<void>;
}

export async function startWorkerPool(
  config: Config,
  log: Logger,
  count: number,
  noticeSecret: string,
): Promise<Pool> {
  const entryUrl = new URL(`./worker-main${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  const tsx = entryUrl.pathname.endsWith(".ts") ? import.meta.resolve("tsx/esm/api") : null;
  const workers = new Array<Worker | null>(count).fill(null);
  let stopping = false;
  const port = config.port === 0 ? await freePort(config.host) : config.port;

  /** Starts worker `index`; resolves once it listens, rejects if it dies first. */
  const start = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const data: WorkerData = { index, count, port, entry: entryUrl.href, tsx, noticeSecret };
      const w = new Worker(BOOT, { eval: true, workerData: data });
      workers[index] = w;
      let listening = false;
      w.on("message", (msg: FromWorker) => {
        if (msg.t === "listening") {
          listening = true;
          resolve();
        }
      });
      w.on("error", (err) => {
        log.error({ worker: index, err: err.stack ?? err.message }, "worker failed");
        if (!listening) reject(err);
      });
      w.on("exit", (code) => {
        workers[index] = null;
        if (!listening) reject(new Error(`worker ${index} exited with ${code} before listening`));
        else if (!stopping) {
          log.fatal({ worker: index, code }, "worker ended unexpectedly; stopping the process");
          process.exit(1);
        }
      });
    });

  try {
    await Promise.all(Array.from({ length: count }, (_, i) => start(i)));
  } catch (err) {
    stopping = true;
    await Promise.all(workers.map((w) => w?.terminate()));
    throw err;
  }
  return {
    port,
    stop: async (signal) => {
      stopping = true;
      const ended = workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w === null) return resolve();
            w.once("exit", () => resolve());
            w.postMessage({ t: "stop", signal } satisfies ToWorker);
          }),
      );
      // A worker that cannot finish within its own grace period (plus room) is ended.
      const limit = setTimeout(
        () => {
          for (const w of workers) void w?.terminate();
        },
        config.shutdownDrainMs + config.shutdownGraceMs + 5_000,
      );
      await Promise.all(ended);
      clearTimeout(limit);
    },
  };
}
