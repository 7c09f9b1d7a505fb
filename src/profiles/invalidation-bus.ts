// Tells every instance what changed in the store, so their caches drop it at once (Redis pub/sub), instead
// of serving it until the cache TTL runs out. Best effort: a missed message is bounded by the cache TTL, and
// the messages a subscriber missed while its connection was down are answered by `resubscribed` (below).
import { randomUUID } from "node:crypto";
import { Cluster, type Redis } from "ioredis";

export type Invalidation =
  /** These typed IDs changed (a load batch, an erasure). */
  | { readonly t: "keys"; readonly keys: readonly string[] }
  /** These typed IDs' impression counters changed (impressions recorded): their profiles did not. */
  | { readonly t: "counters"; readonly keys: readonly string[] }
  /** The catalog changed (taxonomy, or a replace made a new generation live): reload it. */
  | { readonly t: "catalog" };

export interface InvalidationBus {
  publish(msg: Invalidation): Promise<void>;
  /**
   * Handlers run for messages from every publisher, this process included. `resubscribed` runs each time the
   * subscription is back after its connection dropped, once it is subscribed again: whatever was published
   * meanwhile is lost (pub/sub keeps nothing), so the caller drops what such messages could have named.
   */
  subscribe(handler: (msg: Invalidation) => void, resubscribed?: () => void): Promise<void>;
  close(): Promise<void>;
}

export const INVALIDATION_CHANNEL = "aud:invalidate";
/**
 * `counters` messages have a channel of their own: an instance of an earlier version, subscribed to
 * INVALIDATION_CHANNEL only, would take a message type it does not know for a catalog change and reload its
 * catalog dozens of times a second during a rolling upgrade.
 */
export const COUNTERS_CHANNEL = "aud:invalidate:counters";
const CHANNELS = [INVALIDATION_CHANNEL, COUNTERS_CHANNEL];
/**
 * What a subscriber publishes to itself after a possible gap (see subscribe). On COUNTERS_CHANNEL, which
 * only versions that know it subscribe to; every other instance ignores a probe that is not its own.
 */
const PROBE = "probe";
/** How often a probe goes again while the subscriber has not heard it: reconnects are retried about as often. */
const PROBE_RETRY_MS = 250;
/** Keys per message: a 5,000-row load batch becomes a few messages of a few kilobytes each. */
const KEYS_PER_MESSAGE = 1_000;

/** One process, no Redis: the embedded default. */
export class LocalInvalidationBus implements InvalidationBus {
  readonly #handlers: ((msg: Invalidation) => void)[] = [];

  async publish(msg: Invalidation): Promise<void> {
    for (const h of this.#handlers) h(msg);
  }

  // In one process nothing is ever missed: `resubscribed` never runs.
  async subscribe(handler: (msg: Invalidation) => void, _resubscribed?: () => void): Promise<void> {
    this.#handlers.push(handler);
  }

  async close(): Promise<void> {
    this.#handlers.length = 0;
  }
}

export class RedisInvalidationBus implements InvalidationBus {
  #subscriber: Redis | Cluster | null = null;

  constructor(readonly publisher: Redis | Cluster) {}

  async publish(msg: Invalidation): Promise<void> {
    const channel = msg.t === "counters" ? COUNTERS_CHANNEL : INVALIDATION_CHANNEL;
    if (msg.t !== "catalog" && msg.keys.length > KEYS_PER_MESSAGE) {
      // Sent together, in order on the one connection: one after another, each would wait for a round trip
      // behind the load's queued writes.
      const sent: Promise<number>[] = [];
      for (let i = 0; i < msg.keys.length; i += KEYS_PER_MESSAGE) {
        sent.push(
          this.publisher.publish(
            channel,
            JSON.stringify({ t: msg.t, keys: msg.keys.slice(i, i + KEYS_PER_MESSAGE) }),
          ),
        );
      }
      await Promise.all(sent);
      return;
    }
    await this.publisher.publish(channel, JSON.stringify(msg));
  }

  async subscribe(handler: (msg: Invalidation) => void, resubscribed?: () => void): Promise<void> {
    // A connection in subscriber mode can do nothing else: it gets its own, with an offline queue so the
    // SUBSCRIBE survives reconnects (ioredis re-subscribes by itself).
    // Retried for as long as it takes: a Redis that is down at start-up must not stop the service starting.
    const subscriberOptions = {
      enableOfflineQueue: true,
      lazyConnect: false,
      maxRetriesPerRequest: null,
      // No timeout either (ioredis applies any number, 0 included): a SUBSCRIBE queued while Redis is away
      // must survive until it returns.
      commandTimeout: undefined,
      connectionName: "audience-invalidations",
    };
    // On a Cluster, pub/sub messages reach every node's subscribers: one subscribing node is enough.
    const sub =
      this.publisher instanceof Cluster
        ? this.publisher.duplicate([], {
            enableOfflineQueue: true,
            lazyConnect: false,
            redisOptions: subscriberOptions,
          })
        : this.publisher.duplicate(subscriberOptions);
    sub.on("error", () => {});
    // A dropped connection loses whatever is published until it is subscribed again, and ioredis says
    // nothing when its SUBSCRIBE is answered (on a Cluster, not even which node it chose). So after every
    // possible gap the bus publishes a probe of its own, again every PROBE_RETRY_MS, until its subscriber
    // hears it: the subscription is then live, every later message arrives (one connection delivers in
    // order), and `resubscribed` runs. Gaps: the connection closed (a Cluster's too), and on a Cluster a
    // node leaving it (it may have been the subscribed one: ioredis then subscribes on another).
    let probe: string | null = null;
    const sendProbe = (id: string): void => {
      if (probe !== id || this.#subscriber !== sub) return;
      this.publisher.publish(COUNTERS_CHANNEL, JSON.stringify({ t: PROBE, id })).catch(() => {});
      setTimeout(() => sendProbe(id), PROBE_RETRY_MS).unref();
    };
    const gap = (): void => {
      if (probe !== null) return;
      probe = randomUUID();
      sendProbe(probe);
    };
    sub.on("close", gap);
    if (sub instanceof Cluster) sub.on("-node", gap);
    sub.on("message", (_channel: string, text: string) => {
      let msg: Invalidation | { t: typeof PROBE; id: string };
      try {
        msg = JSON.parse(text) as Invalidation | { t: typeof PROBE; id: string };
      } catch {
        return;
      }
      if (msg.t !== PROBE) return handler(msg);
      // Other instances' probes are theirs.
      if (msg.id !== probe) return;
      probe = null;
      resubscribed?.();
    });
    this.#subscriber = sub;
    const subscribed = sub.subscribe(...CHANNELS);
    // With Redis up, be subscribed before going on (a change made right after start-up is then seen); with
    // Redis down, go on: the SUBSCRIBE waits in the offline queue, and the catalog reload covers the gap.
    if (this.publisher.status === "ready") await subscribed;
    else subscribed.catch(() => {});
  }

  async close(): Promise<void> {
    this.#subscriber?.disconnect();
    this.#subscriber = null;
  }
}
