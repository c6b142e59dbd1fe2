/**
 * Keepalive pings and the idle timeout of one WebSocket connection: one timer, the
 * times it is computed from, and what is due when it fires. A plain object owned by
 * the WS actor: the timer only posts a `tick` to the actor's mailbox, and the actor
 * calls {@link Keepalive.tick}, which calls back into the actor synchronously.
 *
 * @module
 */

import { now } from "./time.ts";

/** The timers this object runs (from the resolved WS limits). */
export interface KeepaliveTimers {
  /** Ping when nothing arrived for this many ms; 0 is off. */
  readonly pingInterval: number;
  /** How long the peer has to answer a ping, or the close sent for idleness. */
  readonly pongTimeout: number;
  /** Close cleanly when no message went either way for this many ms; 0 is off. */
  readonly idleTimeout: number;
}

/**
 * What the keepalive asks its owner to do. The owner is passed to every call, so one
 * host object serves every connection (no closures per connection).
 */
export interface KeepaliveHost<O> {
  /** Posts a `tick` to the owner's mailbox (called from a timer). */
  wake(owner: O): void;
  /** Send a keepalive ping. */
  ping(owner: O): void;
  /** Send a close frame (1001) because the connection was idle. */
  closeIdle(owner: O): void;
  /** Nothing answered in time: fail the connection. */
  peerDead(owner: O, why: string): void;
}

/**
 * The keepalive and idle timers of one connection.
 *
 * @example
 * ```ts
 * import { Keepalive } from "./ws_keepalive.ts";
 *
 * const ka = new Keepalive({ pingInterval: 0, pongTimeout: 10_000, idleTimeout: 0 }, null, {
 *   wake() {},
 *   ping() {},
 *   closeIdle() {},
 *   peerDead() {},
 * });
 * ka.start(); // both timers are off: no timer is armed
 * ka.stop();
 * ```
 */
export class Keepalive<O> {
  readonly #timers: KeepaliveTimers;
  readonly #owner: O;
  readonly #host: KeepaliveHost<O>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastInbound = 0;
  #lastActivity = 0;
  #pingSentAt = 0;
  /** When we sent a close because of idleness (0: we did not): the peer must answer in time. */
  #idleCloseAt = 0;

  /**
   * @param timers the intervals (0 turns a timer off)
   * @param owner the connection, passed back to every `host` call
   * @param host what to do, called back synchronously from {@link tick}
   */
  constructor(timers: KeepaliveTimers, owner: O, host: KeepaliveHost<O>) {
    this.#timers = timers;
    this.#owner = owner;
    this.#host = host;
  }

  /** The connection opened: start counting. */
  start(): void {
    this.#lastInbound = this.#lastActivity = now();
    this.#arm();
  }

  /** Some bytes arrived: the peer is alive. */
  inbound(): void {
    if (this.#timers.pingInterval > 0) this.#lastInbound = now();
  }

  /** A message went one way or the other: the connection is in use. */
  activity(): void {
    if (this.#timers.idleTimeout > 0) this.#lastActivity = now();
  }

  /** The timers are over (the connection is closing or closed). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The timer fired. `closeSent`: a close frame already went out, so only the wait for
   * the answer to an idle close still counts.
   */
  tick(closeSent: boolean): void {
    this.#timer = undefined;
    const t = now();
    const { pingInterval, pongTimeout, idleTimeout } = this.#timers;
    if (this.#idleCloseAt > 0) {
      if (t - this.#idleCloseAt < pongTimeout) return this.#arm();
      return this.#host.peerDead(
        this.#owner,
        `nothing answered our idle close within ${pongTimeout} ms`,
      );
    }
    if (closeSent) return;
    if (pingInterval > 0) {
      if (this.#pingSentAt > 0 && this.#lastInbound >= this.#pingSentAt) this.#pingSentAt = 0;
      if (this.#pingSentAt > 0 && t - this.#pingSentAt >= pongTimeout) {
        return this.#host.peerDead(
          this.#owner,
          `nothing arrived within ${pongTimeout} ms of a ping`,
        );
      }
      if (this.#pingSentAt === 0 && t - this.#lastInbound >= pingInterval) {
        this.#pingSentAt = t;
        this.#host.ping(this.#owner);
      }
    }
    if (idleTimeout > 0 && t - this.#lastActivity >= idleTimeout) {
      this.#idleCloseAt = t;
      this.#host.closeIdle(this.#owner);
    }
    this.#arm();
  }

  #arm(): void {
    const { pingInterval, pongTimeout, idleTimeout } = this.#timers;
    if (pingInterval <= 0 && idleTimeout <= 0) return;
    let due = Infinity;
    if (pingInterval > 0) {
      due = this.#pingSentAt > 0
        ? this.#pingSentAt + pongTimeout
        : this.#lastInbound + pingInterval;
    }
    if (idleTimeout > 0) due = Math.min(due, this.#lastActivity + idleTimeout);
    if (this.#idleCloseAt > 0) due = this.#idleCloseAt + pongTimeout;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#host.wake(this.#owner), Math.max(0, due - now()));
  }
}
