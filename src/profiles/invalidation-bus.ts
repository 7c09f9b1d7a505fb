// Tells every instance what changed in the store, so their caches drop it at once (Redis pub/sub), instead
// of serving it until the cache TTL runs out. Best effort: a missed message is bounded by the cache TTL, and
// the messages a subscriber missed while its connection was down are answered by `resubscribed` (below).
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
      for (let i = 0; i < msg.keys.length; i += KEYS_PER_MESSAGE) {
        await this.publisher.publish(
          channel,
          JSON.stringify({ t: msg.t, keys: msg.keys.slice(i, i + KEYS_PER_MESSAGE) }),
        );
      }
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
    sub.on("message", (_channel: string, text: string) => {
      let msg: Invalidation;
      try {
        msg = JSON.parse(text) as Invalidation;
      } catch {
        return;
      }
      handler(msg);
    });
    // A dropped connection loses the messages published until it is subscribed again. ioredis sends the
    // SUBSCRIBE again itself when the connection is ready; ours, sent after it on the same connection, is
    // answered after it, so once ours resolves every later message arrives and `resubscribed` can run. On a
    // Cluster the subscribed node is ioredis's own choice: a node leaving the cluster may have been it (ioredis
    // then subscribes on another), and a cluster connection back after being closed was not subscribed.
    let dropped = false;
    const resume = (): void => {
      if (!dropped || this.#subscriber !== sub) return;
      dropped = false;
      sub.subscribe(...CHANNELS).then(
        () => resubscribed?.(),
        // Dropped again before the answer: the next "ready" tries again.
        () => {
          dropped = true;
        },
      );
    };
    sub.on("close", () => {
      dropped = true;
    });
    sub.on("ready", resume);
    if (sub instanceof Cluster)
      sub.on("-node", () => {
        dropped = true;
        if (sub.status === "ready") resume();
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
