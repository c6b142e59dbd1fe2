/**
 * Keepalive pings and the idle timeout of one WebSocket connection: one timer, the
 * times it is computed from, and what is due when it fires. A plain object owned by
 * the WS actor: the timer only posts a `tick` to the actor's mailbox, and the actor
 * calls {@link Keepalive.tick}, which calls back into the actor synchronously.
 *
 * @module
 */

import { now, SETTLE_MS } from "./time.ts";

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
  /**
   * Reading is paused (the application is behind, or the peer does not read the pongs
   * it asked for): what the peer sent, an answer included, waits unread in the socket.
   */
  readingPaused(owner: O): boolean;
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
 *   readingPaused: () => false,
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
  #settleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastInbound = 0;
  #lastActivity = 0;
  #pingSentAt = 0;
  /** When our close frame went (0: not yet): the peer must answer it within `pongTimeout`. */
  #closeAt = 0;
  /** Our close went because the connection was idle (for the message when it goes unanswered). */
  #idleClose = false;
  /**
   * A verdict (the peer is dead, the connection idle) waits `SETTLE_MS`: what is in the
   * socket is read first.
   */
  #verdictDue = false;
  /** The verdict waiting is an idle close (a message calls it off). */
  #idleDue = false;
  #stopped = false;

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
    if (this.#timers.pingInterval <= 0 && this.#closeAt === 0) return;
    this.#lastInbound = now();
    // The ping is answered: the next one is due an interval from now, not at the end of
    // the time the peer had to answer (a rearm once per ping, not per read).
    if (this.#pingSentAt > 0 && this.#closeAt === 0 && !this.#stopped) {
      this.#pingSentAt = 0;
      this.#arm();
    }
  }

  /** A message went one way or the other: the connection is in use. */
  activity(): void {
    if (this.#timers.idleTimeout <= 0) return;
    this.#lastActivity = now();
    // An idle close about to go is called off: the connection is in use. (Nothing else
    // pending is: our own sends must not put off judging a silent peer.)
    if (this.#idleDue) this.#verdictDue = this.#idleDue = false;
  }

  /**
   * Our close frame went (`wsDone`, `wsDetach`, the idle close): from now on the peer has
   * `pongTimeout` to answer it, as it has for a ping, or the connection fails; anything
   * arriving counts as an answer but for the idle close. Pings stop. (The frame may still
   * wait behind our sends: `pongTimeout` must cover what the peer reads before it.)
   */
  closing(): void {
    if (this.#stopped) return;
    this.#closeAt = now();
    this.#arm();
  }

  /** The timers are over (the connection is closing or closed). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#settleTimer);
    this.#timer = this.#settleTimer = undefined;
  }

  /** The timer fired. */
  tick(): void {
    clearTimeout(this.#timer); // fired, or (in tests) called by hand: no second tick from it
    this.#timer = undefined;
    if (this.#stopped) return;
    const t = now();
    const { pingInterval, pongTimeout, idleTimeout } = this.#timers;
    // The application is behind, so reading is paused: what the peer sent, an answer
    // among them, waits unread in the socket. Its silence is ours: nothing that waits for
    // an answer is judged (or sent) meanwhile; the idle timeout still counts.
    const behind = this.#host.readingPaused(this.#owner);
    if (behind) {
      this.#lastInbound = t;
      this.#pingSentAt = 0;
      if (this.#closeAt > 0) this.#closeAt = t;
    }
    if (this.#closeAt > 0) {
      // An idle close must be answered in time, whatever else comes: a peer trickling
      // pings must not keep an idle connection. Our other closes (wsDone, wsDetach) wait
      // while anything at all arrives: the peer is alive, and may still be sending.
      const since = this.#idleClose ? this.#closeAt : Math.max(this.#closeAt, this.#lastInbound);
      if (t - since < pongTimeout) return this.#arm();
      return this.#verdict(
        `nothing answered our ${this.#idleClose ? "idle " : ""}close within ${pongTimeout} ms`,
      );
    }
    if (pingInterval > 0 && !behind) {
      if (this.#pingSentAt > 0 && this.#lastInbound >= this.#pingSentAt) this.#pingSentAt = 0;
      if (this.#pingSentAt > 0 && t - this.#pingSentAt >= pongTimeout) {
        return this.#verdict(`nothing arrived within ${pongTimeout} ms of a ping`);
      }
      if (this.#pingSentAt === 0 && t - this.#lastInbound >= pingInterval) {
        this.#pingSentAt = t;
        this.#host.ping(this.#owner);
      }
    }
    if (idleTimeout > 0 && t - this.#lastActivity >= idleTimeout) {
      // A message read meanwhile (the timer may be late) still counts.
      if (!this.#verdictDue) {
        this.#idleDue = true;
        return this.#awaitTurn();
      }
      this.#verdictDue = this.#idleDue = false;
      this.#closeAt = t;
      this.#idleClose = true;
      this.#host.closeIdle(this.#owner);
    }
    this.#arm();
  }

  /**
   * The peer seems gone: it is failed `SETTLE_MS` later if still silent then. A timer
   * that fired late (the application blocked the event loop) runs before the reads of
   * what arrived meanwhile, an answer among them; the wait lets them in first.
   */
  #verdict(why: string): void {
    if (!this.#verdictDue) return this.#awaitTurn();
    this.#verdictDue = false;
    this.#host.peerDead(this.#owner, why);
  }

  /** Looks again `SETTLE_MS` later, after the reads of what arrived meanwhile. */
  #awaitTurn(): void {
    this.#verdictDue = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#settleTimer = setTimeout(() => this.#host.wake(this.#owner), SETTLE_MS);
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
    if (this.#closeAt > 0) {
      due = (this.#idleClose ? this.#closeAt : Math.max(this.#closeAt, this.#lastInbound)) +
        pongTimeout;
    }
    this.#verdictDue = this.#idleDue = false;
    clearTimeout(this.#settleTimer);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#host.wake(this.#owner), Math.max(0, due - now()));
  }
}
