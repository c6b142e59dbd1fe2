/**
 * The NATS hub: the chat rooms of many processes (on one machine or many) share their
 * messages through a NATS server or cluster, with the official NATS JavaScript client
 * (npm `@nats-io/transport-node`, which runs in Deno through `npm:`). Only the demo imports
 * this file; the dill-ws module itself has no dependency.
 *
 * - One NATS subscription per topic (room) per process, never one per socket: the fan-out
 *   to the sockets happens in the process.
 * - Publications go through a bounded queue ({@link NatsHubOptions.maxQueue}); they are
 *   handed to the client one batch at a time, and the next batch waits until the server
 *   confirmed the last one (a PING/PONG round trip), so nothing piles up in the client's
 *   own buffer either. When the queue is full, new publications are dropped and counted.
 * - A broker outage is survived: the process keeps serving its own clients, publications
 *   wait in the queue, the client reconnects forever and resubscribes; when the link is back
 *   the hub reports how long it was gone, how many publications it dropped, and how many
 *   were in flight when the link broke (they may or may not have arrived). The queue goes
 *   out a second after the link is back: NATS delivers only to those subscribed by then, and
 *   the other processes reconnect at their own pace.
 * - A publication the client refuses (larger than the server's `max_payload`) is dropped
 *   with a log line; a subscriber that throws is logged and the others still get the message.
 *
 * @module
 */

import { connect, type NatsConnection, type Subscription } from "npm:@nats-io/transport-node@3.4.0";
import type { Hub, HubStatus, HubSubscription } from "./hub.ts";
import { describe, settlesWithin } from "./settle.ts";

/** Default bound on publications waiting for the broker. */
export const DEFAULT_MAX_QUEUE = 1000;
/** Publications handed to the client before waiting for the server's confirmation. */
const BATCH = 64;
/** Pause between reconnection attempts. */
const RECONNECT_WAIT_MS = 250;
/**
 * How long the queue waits after the link is back: the other processes reconnect at their
 * own pace (every {@link RECONNECT_WAIT_MS}, plus the client's jitter), and a publication
 * sent before they have resubscribed reaches nobody there.
 */
const RESEND_DELAY_MS = 1_000;
/** Default of {@link NatsHubOptions.pingIntervalMs}. */
export const DEFAULT_PING_INTERVAL_MS = 5_000;
/** Unanswered PINGs after which the link counts as broken. */
const MAX_PINGS_OUT = 2;
/** Bound on one connection attempt. */
const CONNECT_TIMEOUT_MS = 2_000;
/** Bound on the wait for the server to confirm a new subscription (see `ready`). */
const SUBSCRIBE_CONFIRM_MS = 2_000;
/** All demo subjects live under this prefix; a topic is one more token. */
const SUBJECT_PREFIX = "dill-chat.";
const TOPIC = /^[A-Za-z0-9_-]{1,64}$/;

/** Options of {@link NatsHub}. */
export interface NatsHubOptions {
  /** NATS server URL(s), e.g. `nats://10.0.0.5:4222`; several for a cluster. */
  servers: string | string[];
  /** Publications kept while the broker is slow or unreachable. Default {@link DEFAULT_MAX_QUEUE}. */
  maxQueue?: number;
  /**
   * How often the client checks that the server still answers; two unanswered checks break
   * the link (a broker whose machine vanished sends no RST). Default
   * {@link DEFAULT_PING_INTERVAL_MS}; the client's own default is two minutes.
   */
  pingIntervalMs?: number;
  /** The connection's name, as the server's monitoring shows it. */
  name?: string;
  /** Where the hub's own log lines go. Default: nowhere. */
  log?: (line: string) => void;
}

/**
 * A {@link Hub} over NATS. The constructor returns at once; the hub connects in the
 * background (and keeps trying), so a server can start before its broker does.
 *
 * @example
 * ```ts ignore
 * import { NatsHub } from "./nats_hub.ts";
 *
 * const hub = new NatsHub({ servers: "nats://127.0.0.1:4222" });
 * const sub = hub.subscribe("lobby", (m) => console.log(m));
 * hub.publish("lobby", "hi");
 * sub.unsubscribe();
 * await hub.close();
 * ```
 */
export class NatsHub implements Hub {
  readonly kind = "nats";
  readonly #servers: string[];
  readonly #maxQueue: number;
  readonly #pingIntervalMs: number;
  readonly #log: (line: string) => void;
  readonly #topics = new Map<
    string,
    { deliver: Set<(m: string) => void>; sub?: Subscription; ready: Promise<void> }
  >();
  readonly #queue: { subject: string; message: string }[] = [];
  readonly #watchers = new Set<(status: HubStatus) => void>();
  readonly #started: Promise<void>;
  #nc: NatsConnection | null = null;
  #up = false;
  #downSince = Date.now();
  #downReason: string;
  #dropped = 0;
  #unconfirmed = 0;
  #pumping: Promise<void> | null = null;
  /** Set while the queue waits after the link came back ({@link RESEND_DELAY_MS}). */
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #wakeClosed: (() => void) | null = null;

  constructor(options: NatsHubOptions) {
    this.#servers = typeof options.servers === "string" ? [options.servers] : options.servers;
    this.#maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (!Number.isInteger(this.#maxQueue) || this.#maxQueue < 1) {
      throw new RangeError(`maxQueue must be a positive integer, not ${this.#maxQueue}`);
    }
    this.#pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    if (!Number.isInteger(this.#pingIntervalMs) || this.#pingIntervalMs < 1) {
      throw new RangeError(
        `pingIntervalMs must be a positive integer, not ${this.#pingIntervalMs}`,
      );
    }
    this.#log = options.log ?? (() => {});
    this.#downReason = `connecting to ${this.#servers.join(", ")}`;
    this.#started = this.#start(options.name);
  }

  /** Whether the link to the broker is up. */
  get up(): boolean {
    return this.#up;
  }

  publish(topic: string, message: string): void {
    checkTopic(topic);
    if (this.#closed) return;
    if (this.#queue.length >= this.#maxQueue) {
      this.#dropped++;
      return;
    }
    this.#queue.push({ subject: SUBJECT_PREFIX + topic, message });
    this.#pump();
  }

  subscribe(topic: string, deliver: (message: string) => void): HubSubscription {
    checkTopic(topic);
    let entry = this.#topics.get(topic);
    if (!entry) {
      this.#topics.set(topic, entry = { deliver: new Set(), ready: Promise.resolve() });
      const nc = this.#nc;
      if (nc) {
        entry.sub = this.#natsSubscribe(nc, topic);
        // The server must have the subscription before another process publishes, or that
        // publication reaches nobody here: a PING/PONG after the SUB says it has.
        if (this.#up) entry.ready = settlesWithin(nc.flush(), SUBSCRIBE_CONFIRM_MS).then(() => {});
      }
    }
    const mine = (message: string) => deliver(message);
    entry.deliver.add(mine);
    const current = entry;
    return {
      ready: entry.ready,
      unsubscribe: () => {
        if (!current.deliver.delete(mine) || current.deliver.size > 0) return;
        current.sub?.unsubscribe();
        if (this.#topics.get(topic) === current) this.#topics.delete(topic);
      },
    };
  }

  watch(listener: (status: HubStatus) => void): void {
    this.#watchers.add(listener);
    if (!this.#up) listener({ state: "down", reason: this.#downReason });
  }

  /** Sends what is queued (bounded by a second), then closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeClosed?.();
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined; // what is queued goes now, or never
    this.#pump();
    const nc = this.#nc;
    if (nc && this.#up) {
      const flushed = (this.#pumping ?? Promise.resolve()).then(() => nc.flush());
      await settlesWithin(flushed, 1000);
    }
    await nc?.close();
    await this.#started;
  }

  async #start(name: string | undefined): Promise<void> {
    const nc = await this.#firstConnect(name);
    if (!nc) return;
    this.#nc = nc;
    for (const [topic, entry] of this.#topics) entry.sub = this.#natsSubscribe(nc, topic);
    this.#log(`NATS: connected to ${nc.getServer()}`);
    this.#setUp(false);
    const watching = this.#watchStatus(nc);
    const err = await nc.closed();
    if (err) this.#log(`NATS: connection closed: ${describe(err)}`);
    await watching;
  }

  /**
   * Tries to connect until it works or the hub is closed. Our own loop rather than the
   * client's `waitOnFirstConnect`, which cannot be called off: `close` must not wait for a
   * broker that never comes. Once connected, the client reconnects by itself, forever.
   */
  async #firstConnect(name: string | undefined): Promise<NatsConnection | null> {
    let complained = false;
    while (!this.#closed) {
      try {
        const nc = await connect({
          servers: this.#servers,
          name,
          timeout: CONNECT_TIMEOUT_MS,
          maxReconnectAttempts: -1,
          reconnectTimeWait: RECONNECT_WAIT_MS,
          pingInterval: this.#pingIntervalMs,
          maxPingOut: MAX_PINGS_OUT,
        });
        if (!this.#closed) return nc;
        await nc.close();
        return null;
      } catch (e) {
        if (!complained) this.#log(`NATS: cannot connect yet (${describe(e)}); retrying`);
        complained = true;
      }
      await this.#pause(RECONNECT_WAIT_MS);
    }
    return null;
  }

  /** Waits `ms`, or less if the hub closes meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeClosed = null;
        resolve();
      }, ms);
      this.#wakeClosed = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") this.#setDown(`lost ${s.server}`);
      else if (s.type === "reconnect") {
        this.#log(`NATS: reconnected to ${s.server}`);
        this.#setUp(true);
      } else if (s.type === "close") break;
    }
  }

  #natsSubscribe(nc: NatsConnection, topic: string): Subscription {
    return nc.subscribe(SUBJECT_PREFIX + topic, {
      callback: (err, msg) => {
        if (err) return this.#log(`NATS: subscription ${topic}: ${describe(err)}`);
        const entry = this.#topics.get(topic);
        if (!entry) return;
        const message = msg.string();
        for (const deliver of [...entry.deliver]) {
          // A throw here would end the client's reader: the link would look up, but dead.
          try {
            deliver(message);
          } catch (e) {
            this.#log(`NATS: a subscriber of ${topic} failed: ${describe(e)}`);
          }
        }
      },
    });
  }

  #setDown(reason: string): void {
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.#downSince = Date.now();
    this.#downReason = reason;
    this.#log(`NATS: link down (${reason}); ${this.#maxQueue} publications can wait`);
    this.#tell({ state: "down", reason });
  }

  /** The link is up; after a reconnection the queue waits {@link RESEND_DELAY_MS}. */
  #setUp(reconnected: boolean): void {
    if (this.#up || this.#closed) return;
    this.#up = true;
    const status: HubStatus = {
      state: "up",
      downMs: Date.now() - this.#downSince,
      dropped: this.#dropped,
    };
    if (this.#unconfirmed > 0) {
      this.#log(`NATS: ${this.#unconfirmed} publications were in flight when the link broke`);
    }
    this.#dropped = this.#unconfirmed = 0;
    // The hold starts before the watchers hear of it: they publish at once (the rooms ask
    // "who"), and that must not set the queue going.
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    if (reconnected) {
      this.#holdTimer = setTimeout(() => {
        this.#holdTimer = undefined;
        this.#pump();
      }, RESEND_DELAY_MS);
    }
    this.#tell(status);
    this.#pump();
  }

  #tell(status: HubStatus): void {
    for (const listener of this.#watchers) listener(status);
  }

  /** Hands the queue to the client a batch at a time while the link is up. */
  #pump(): void {
    if (this.#pumping || !this.#up || this.#queue.length === 0) return;
    if (this.#holdTimer !== undefined) return; // it pumps when it fires
    this.#pumping = (async () => {
      const nc = this.#nc!;
      while (this.#up && !this.#holdTimer && this.#queue.length > 0 && !nc.isClosed()) {
        const batch = this.#queue.splice(0, BATCH);
        for (const { subject, message } of batch) this.#handOver(nc, subject, message);
        try {
          await nc.flush();
        } catch {
          // The link broke before the server confirmed: these may or may not have arrived.
          this.#unconfirmed += batch.length;
          this.#setDown("no answer from the server");
        }
      }
    })().finally(() => {
      this.#pumping = null;
      this.#pump(); // the link may have come back meanwhile
    });
  }

  /** One publication to the client, which refuses some (larger than the server's limit). */
  #handOver(nc: NatsConnection, subject: string, message: string): void {
    try {
      nc.publish(subject, message);
    } catch (e) {
      this.#log(`NATS: dropped a publication of ${message.length} characters: ${describe(e)}`);
    }
  }
}

function checkTopic(topic: string): void {
  if (!TOPIC.test(topic)) throw new RangeError(`bad hub topic ${JSON.stringify(topic)}`);
}
