// Entry of one worker thread of the pool (worker-pool.ts): its own service (store connections, LRU cache,
// invalidation subscriber) and its own uWS app on the shared port. Talks to the pool over parentPort.
import { parentPort, workerData } from "node:worker_threads";
import { loadConfig } from "./config.ts";
import { detectUwsBackend } from "./http/uws-server.ts";
import { createLogger } from "./logger.ts";
import { serve } from "./serve.ts";
import type { FromWorker, ToWorker, WorkerData } from "./worker-pool.ts";

const data = workerData as WorkerData;
const port = parentPort;
if (port === null) throw new Error("worker-main.ts runs only as a worker thread of the pool");
const config = loadConfig();
const log = createLogger(config.logLevel).child({ worker: data.index });
const serving = await serve(config, log, {
  backend: detectUwsBackend(),
  port: data.port,
  worker: { index: data.index, count: data.count },
  noticeSecret: data.noticeSecret,
});
port.postMessage({ t: "listening" } satisfies FromWorker);
port.on("message", (msg: ToWorker) => {
  if (msg.t !== "stop") return;
  // Nothing else holds the thread once stopped: it ends when this port closes.
  void serving.stop(msg.signal).then(() => port.close());
});
