// One circuit breaker per master of a Redis Cluster. A master that fails is that master's problem: while it
// is down, the commands for its slots fail at once (the bid answers degraded) instead of each being sent,
// redirected to the dead node and retried. Measured with a master killed under 400 lookups/s: every such
// command made the Cluster client refresh its slot map (a new connection, CLUSTER SLOTS, and a loop over all
// 16,384 slots), back to back for as long as the slot had no master, about 30% of each worker's CPU; answers
// for the other masters' users then took 40-70 ms and missed the 15 ms budget. With the master's breaker
// open, only its probe (one command every 200 ms at most, service.ts) reaches the client, and the slot-map
// refresh the probe brings about is what finds the promoted replica.
import { CircuitBreaker } from "../reliability/circuit-breaker.ts";

/** A command not sent: its slot's master is failing and its breaker has not let a probe through yet. */
export class NodeDownError extends Error {
  readonly code = "AUD_ERR_NODE_DOWN";
  constructor(readonly node: string) {
    super(
      `Cluster node ${node} is failing; its commands are not sent until its breaker lets a probe through`,
    );
  }
}

export interface NodeGateOptions {
  /** Failures in a row, on one master, that open its breaker (BREAKER_FAILURES). */
  readonly failures: number;
  /** How long it stays open before a probe (BREAKER_OPEN_MS). */
  readonly openMs: number;
  /** How long those failures must span (circuit-breaker.ts says why): the bid-time command timeout. */
  readonly spanMs: number;
  readonly now?: () => number;
}

export interface NodeGateHooks {
  /**
   * A probe is let through to a failing master: the store refreshes its slot map then, since the probe's own
   * command goes wherever the old map says, and the new map is what shows a promoted replica.
   */
  readonly onProbe?: (node: string) => void;
}

export class NodeGate {
  /** Only masters that failed since they last answered: empty while the Cluster is healthy. */
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #opts: NodeGateOptions;
  readonly #onProbe: ((node: string) => void) | undefined;

  constructor(opts: NodeGateOptions, hooks: NodeGateHooks = {}) {
    this.#opts = opts;
    this.#onProbe = hooks.onProbe;
  }

  /** Whether a command for a slot of `node` ("host:port") may be sent now. */
  allow(node: string): boolean {
    if (this.#breakers.size === 0) return true;
    const breaker = this.#breakers.get(node);
    if (breaker === undefined) return true;
    const probe = breaker.state === "half-open";
    if (!breaker.allow()) return false;
    if (probe) this.#onProbe?.(node);
    return true;
  }

  /** A command allow() let through was answered. */
  ok(node: string): void {
    if (this.#breakers.size > 0) this.#breakers.delete(node);
  }

  /** A command allow() let through failed: refused, or not answered in time. */
  failed(node: string): void {
    let breaker = this.#breakers.get(node);
    if (breaker === undefined) {
      breaker = new CircuitBreaker(this.#opts);
      this.#breakers.set(node, breaker);
    }
    breaker.record(false);
  }

  /** Masters whose breaker is open or probing: what /healthz should list (not served there yet). */
  get failing(): string[] {
    const out: string[] = [];
    for (const [node, breaker] of this.#breakers) if (breaker.state !== "closed") out.push(node);
    return out;
  }
}
