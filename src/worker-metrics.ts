// /metrics for the whole process when WORKERS > 1: the worker a scrape lands on asks the others for their
// figures over a BroadcastChannel and answers the sum (prom-client's aggregation, as for cluster workers),
// so that Prometheus sees one monotonic series whichever worker it reaches.
import { BroadcastChannel } from "node:worker_threads";
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from "prom-client";

type Figures = MetricObjectWithValues<MetricValue<string>>[];
type Message = { t: "ask"; id: string } | { t: "answer"; id: string; figures: Figures };

/** A worker that does not answer within this is left out of that scrape rather than stalling it. */
const ANSWER_WAIT_MS = 1_000;

export class WorkerMetrics {
  readonly #registry: Registry;
  readonly #index: number;
  readonly #others: number;
  readonly #channel = new BroadcastChannel("audience-metrics");
  readonly #waiting = new Map<string, { figures: Figures[]; done: () => void }>();
  #seq = 0;

  constructor(registry: Registry, worker: { readonly index: number; readonly count: number }) {
    this.#registry = registry;
    this.#index = worker.index;
    this.#others = worker.count - 1;
    // Never what keeps a stopping worker's thread alive.
    this.#channel.unref();
    this.#channel.onmessage = (event) => void this.#receive((event as { data: Message }).data);
  }

  async #receive(msg: Message): Promise<void> {
    if (msg.t === "ask") {
      const figures = (await this.#registry.getMetricsAsJSON()) as Figures;
      this.#channel.postMessage({ t: "answer", id: msg.id, figures } satisfies Message);
      return;
    }
    const wait = this.#waiting.get(msg.id);
    if (wait === undefined) return; // another worker's scrape, or one that gave up waiting
    wait.figures.push(msg.figures);
    if (wait.figures.length === this.#others + 1) wait.done(); // theirs and this worker's own
  }

  /** The Prometheus text of every worker's figures, summed. */
  async text(): Promise<string> {
    const id = `${this.#index}:${this.#seq++}`;
    const mine = (await this.#registry.getMetricsAsJSON()) as Figures;
    const figures: Figures[] = [mine];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ANSWER_WAIT_MS);
      this.#waiting.set(id, {
        figures,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.#channel.postMessage({ t: "ask", id } satisfies Message);
    });
    this.#waiting.delete(id);
    // The process_* figures are the process's, the same in every thread: counted once, not per worker.
    for (const list of figures)
      for (const m of list) if (m.name.startsWith("audience_process_")) m.aggregator = "first";
    return AggregatorRegistry.aggregate(figures).metrics();
  }

  close(): void {
    this.#channel.close();
  }
}
