/**
 * The hub between chat servers: a small publish/subscribe interface the demo's rooms go
 * through, so one room can span several processes. Two implementations: {@link LocalHub}
 * here (one process, nothing to install; the default) and `NatsHub` in `nats_hub.ts` (any
 * number of processes and machines, through a NATS server or cluster).
 *
 * The contract, which the rooms rely on:
 * - `publish` never blocks and never throws: a hub that cannot pass a message on keeps it
 *   in a bounded queue or drops it, and says so through its status.
 * - A subscriber gets every message published on its topic after it subscribed, including
 *   those published through the same hub: the rooms drop their own by origin.
 * - Messages are strings (JSON for the demo); topics are dot-free tokens.
 *
 * @module
 */

/** What a hub reports about its link to the other servers. */
export type HubStatus =
  /** The link is gone: publications wait in a bounded queue (or are dropped). */
  | { state: "down"; reason: string }
  /**
   * The link is back after `downMs`. `dropped` publications did not fit the queue and
   * never left this process; what the other servers published meanwhile did not arrive.
   */
  | { state: "up"; downMs: number; dropped: number };

/** One subscription; `unsubscribe` is idempotent. */
export interface HubSubscription {
  /**
   * Settles (never rejects) once what is published from now on, in any process, reaches
   * this subscription: at once in one process; with a broker, once it confirmed the
   * subscription (or at once while the link is down, when nothing from elsewhere arrives).
   */
  readonly ready: Promise<void>;
  /** Stops the deliveries. */
  unsubscribe(): void;
}

/** The interface between the chat rooms and whatever carries their messages. */
export interface Hub {
  /** A short name of the hub kind, for logs. */
  readonly kind: string;
  /** Passes `message` to every subscriber of `topic` (in this and other processes). */
  publish(topic: string, message: string): void;
  /** Calls `deliver` for every message on `topic`, in order, until unsubscribed. */
  subscribe(topic: string, deliver: (message: string) => void): HubSubscription;
  /** Calls `listener` on every change of the link to other servers. */
  watch(listener: (status: HubStatus) => void): void;
  /** Stops the hub; publications after this are dropped. */
  close(): Promise<void>;
}

/**
 * The hub of one process: publications go to the subscribers in this process, each in a
 * microtask of its own (so a publisher is never re-entered). Its link never goes down.
 *
 * @example
 * ```ts
 * import { LocalHub } from "./hub.ts";
 *
 * const hub = new LocalHub();
 * const got: string[] = [];
 * const sub = hub.subscribe("lobby", (m) => got.push(m));
 * hub.publish("lobby", "hi");
 * await Promise.resolve();
 * console.log(got); // ["hi"]
 * sub.unsubscribe();
 * await hub.close();
 * ```
 */
export class LocalHub implements Hub {
  readonly kind = "in-process";
  readonly #topics = new Map<string, Set<(message: string) => void>>();
  #closed = false;

  publish(topic: string, message: string): void {
    if (this.#closed) return;
    const subscribers = this.#topics.get(topic);
    if (!subscribers) return;
    for (const deliver of [...subscribers]) queueMicrotask(() => deliver(message));
  }

  subscribe(topic: string, deliver: (message: string) => void): HubSubscription {
    let subscribers = this.#topics.get(topic);
    if (!subscribers) this.#topics.set(topic, subscribers = new Set());
    const entry = (message: string) => subscribers.has(entry) && deliver(message);
    subscribers.add(entry);
    return {
      ready: Promise.resolve(),
      unsubscribe: () => {
        subscribers.delete(entry);
        if (subscribers.size === 0 && this.#topics.get(topic) === subscribers) {
          this.#topics.delete(topic);
        }
      },
    };
  }

  watch(_listener: (status: HubStatus) => void): void {
    // One process: there is no link that could go down.
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#topics.clear();
    return Promise.resolve();
  }
}
