/**
 * The send side of a `wsUpgrade` socket. A message is handed to Deno only when Deno
 * holds at most the high-water mark of unwritten bytes (`bufferedAmount`) and no earlier
 * send waits: sends made before Deno opened the socket, or while Deno is above the mark,
 * wait their turn here, in order, without being handed over. So Deno never holds more
 * than the mark plus one message however many senders there are, and a send that fails
 * while it waits its turn never reaches the wire. A send handed over resolves once Deno
 * is back at the mark. Deno's `WebSocket` has no other backpressure, so `bufferedAmount` is
 * polled while Deno holds bytes: on the next turns of the event loop first (Deno lowers it
 * once its write completed, usually a turn later), then, while it does not go down (a peer
 * that does not read), at intervals doubling up to {@link DRAIN_POLL_MAX_MS}. A close of ours keeps its place behind the sends
 * waiting their turn. It keeps libdill's rule that after a failed send the socket can no
 * longer send. A plain object owned by the upgrade actor: its poll timer only posts to
 * the actor's mailbox, and the actor calls {@link DenoSends.poll}.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { brokenAfter, type PendingCall, type Request } from "./request.ts";
import { tooManyWaiting } from "./stream_options.ts";

/**
 * The longest pause between two looks at `bufferedAmount` while it does not go down (a
 * peer that stopped reading): the most a send waits after Deno could take more, and what
 * a stalled connection costs (one timer per pause).
 */
export const DRAIN_POLL_MAX_MS = 50;

/**
 * Looks at `bufferedAmount` on this many turns of the event loop in a row (`setImmediate`)
 * before pausing between looks: Deno lowers it when its write completes, one or two turns
 * after `send` when the socket takes the bytes at once.
 */
const DRAIN_POLL_TURNS = 2;

/** What the send side asks of the actor that owns it. */
export interface DenoSendsHost {
  /** Parks a call until its deadline; `false` when the deadline already passed. */
  park(req: PendingCall): boolean;
  /** Posts a `drainPoll` to the actor's mailbox (called from a timer). */
  wake(): void;
}

/** A close frame of ours: its status and reason (none: a close without a status). */
export interface CloseOfOurs {
  readonly code?: number;
  readonly reason?: string;
}

/**
 * Sends on a `WebSocket` from `Deno.upgradeWebSocket`, with deadlines and backpressure.
 *
 * @example
 * ```ts
 * import { DenoSends } from "./ws_upgrade_sends.ts";
 * import { DillError } from "../protocol/errors.ts";
 *
 * const socket = { readyState: WebSocket.CONNECTING, bufferedAmount: 0 } as WebSocket;
 * const sends = new DenoSends(socket, 256 * 1024, 1024, { park: () => true, wake() {} });
 * console.log(sends.failure); // null
 * sends.fail(new DillError("EPIPE", "closed"));
 * console.log(sends.failure?.code); // "EPIPE"
 * ```
 */
export class DenoSends {
  readonly #socket: WebSocket;
  readonly #highWater: number;
  readonly #maxWaiting: number;
  readonly #host: DenoSendsHost;
  #open = false;
  /** Sends not handed to Deno yet (it is not open, or above the mark), in order. */
  #waiting: { payload: Uint8Array | string; req: Request<void> }[] = [];
  /** Sends Deno has, waiting for `bufferedAmount` to come down to the high-water mark. */
  #draining: Request<void>[] = [];
  /** A close of ours that goes once the sends waiting their turn were handed to Deno. */
  #closeAfter: CloseOfOurs | null = null;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #pollImmediate: ReturnType<typeof setImmediate> | undefined;
  /** Looks in a row that saw `bufferedAmount` not go down (sets the next pause). */
  #idlePolls = 0;
  /** `bufferedAmount` at the last look. */
  #lastBuffered = 0;
  #failure: DillError | null = null;

  /**
   * @param socket the WebSocket from `Deno.upgradeWebSocket`
   * @param highWater bytes Deno may hold unwritten before sends wait (`sendHighWater`)
   * @param maxWaiting sends that may wait their turn; more fail with `EBUSY`
   * @param host the actor this runs for
   */
  constructor(socket: WebSocket, highWater: number, maxWaiting: number, host: DenoSendsHost) {
    this.#socket = socket;
    this.#highWater = highWater;
    this.#maxWaiting = maxWaiting;
    this.#host = host;
  }

  /** Why sends fail from now on, or `null`. */
  get failure(): DillError | null {
    return this.#failure;
  }

  /** A close of ours not given to Deno yet (it waits for Deno to open, or behind sends). */
  get pendingClose(): CloseOfOurs | null {
    return this.#closeAfter;
  }

  /**
   * From now on sends fail with `error` (unless they already fail for another reason);
   * sends still waiting their turn fail with it too (they are never handed to Deno).
   */
  refuseLater(error: DillError): void {
    this.#failure ??= error;
    for (const { req } of this.#waiting.splice(0)) req.reject(this.#failure);
  }

  /** Sending is over: waiting sends and later ones fail (with the first reason given). */
  fail(error: DillError): void {
    this.#failure ??= error;
    this.cancel(this.#failure);
  }

  /**
   * Fails every waiting send with `reason` and stops polling. A close of ours that waited
   * behind them goes now (the sends it waited for are gone).
   */
  cancel(reason: DillError): void {
    for (const { req } of this.#waiting.splice(0)) req.reject(reason);
    for (const req of this.#draining.splice(0)) req.reject(reason);
    this.stop();
    if (this.#open) this.#closeIfDue();
  }

  /** Stops polling. */
  stop(): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    clearImmediate(this.#pollImmediate);
    this.#pollImmediate = undefined;
  }

  /** One message (text as a string): handed to Deno now, or when its turn comes. */
  send(data: Uint8Array | string, req: Request<void>): void {
    if (this.#open && this.#waiting.length === 0 && this.#draining.length === 0) {
      return this.#write(data, req, false);
    }
    if (this.#waiting.length >= this.#maxWaiting) {
      return req.reject(tooManyWaiting(req.op, "send", this.#maxWaiting));
    }
    this.#waiting.push({ payload: data, req });
    if (!this.#host.park(req)) {
      this.#waiting.pop();
      this.#failure ??= brokenAfter("send", req);
    }
  }

  /**
   * Sends `close` once the sends waiting their turn were handed to Deno (Deno queues it
   * behind the messages it holds: nothing sent before is lost). To close at once, call
   * {@link DenoSends.refuseLater} first: the sends waiting their turn then fail.
   */
  close(close: CloseOfOurs): void {
    this.#closeAfter = close;
    if (this.#open) this.#closeIfDue();
  }

  /** Deno opened the socket: the sends held until now go, in order (then a close of ours). */
  opened(): void {
    this.#open = true;
    this.#pump();
  }

  /**
   * The poll timer fired: sends Deno has resolve once its unwritten bytes are below the
   * mark, and sends waiting their turn go. Returns `false` when Deno closed the socket
   * without telling (it does so on `server.shutdown()` while it holds unwritten bytes:
   * `bufferedAmount` falls to 0 with nothing written, and no close event follows).
   */
  poll(): boolean {
    if (this.#socket.readyState === WebSocket.CLOSED) return false;
    const buffered = this.#socket.bufferedAmount;
    this.#idlePolls = buffered < this.#lastBuffered ? 0 : this.#idlePolls + 1;
    this.#lastBuffered = buffered;
    if (this.#belowMark()) {
      for (const req of this.#draining.splice(0)) req.resolve();
      this.#pump();
    }
    this.#pollWhileHeld();
    return true;
  }

  /** A parked send reached its deadline; returns whether it was one of ours. */
  expire(req: PendingCall): boolean {
    const u = this.#waiting.findIndex((m) => m.req === req);
    if (u >= 0) this.#waiting.splice(u, 1);
    const d = this.#draining.indexOf(req as Request<void>);
    if (d >= 0) this.#draining.splice(d, 1);
    if (u < 0 && d < 0) return false;
    req.timeOut();
    // libdill's rule: after a failed send the socket can no longer send. The sends behind
    // it fail with it (if Deno had it, every send waiting its turn is behind it); those
    // ahead of it in line still go, then a close of ours that waited for them.
    const failure = this.#failure ??= brokenAfter("send", req);
    for (const later of this.#waiting.splice(u >= 0 ? u : 0)) later.req.reject(failure);
    if (this.#open) this.#pump();
    return true;
  }

  /** Hands waiting sends to Deno while it is at or below the mark, then a close of ours. */
  #pump(): void {
    while (this.#waiting.length > 0 && this.#draining.length === 0 && this.#belowMark()) {
      const { payload, req } = this.#waiting.shift()!;
      this.#write(payload, req, true);
    }
    this.#pollWhileHeld();
    this.#closeIfDue();
  }

  #closeIfDue(): void {
    const close = this.#closeAfter;
    if (close === null || this.#waiting.length > 0) return;
    this.#closeAfter = null;
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.close(close.code, close.reason);
  }

  /** Hands a message to Deno; resolves when Deno's unwritten bytes are below the mark. */
  #write(data: Uint8Array | string, req: Request<void>, parked: boolean): void {
    if (req.settled) return;
    try {
      // Deno silently drops what is sent while closing: fail the call instead.
      if (this.#socket.readyState !== WebSocket.OPEN) throw new Error("not open");
      this.#socket.send(data);
    } catch (e) {
      const error = new DillError("EPIPE", `${req.op}: the WebSocket is closed`, { cause: e });
      this.#failure ??= error;
      return req.reject(error);
    }
    // New bytes for Deno: look again on the next turns, not after a pause meant for a
    // stalled peer.
    this.#idlePolls = 0;
    this.#lastBuffered = this.#socket.bufferedAmount;
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#pollWhileHeld();
    if (this.#belowMark()) return req.resolve();
    this.#draining.push(req);
    // The message is Deno's now: a deadline that passes fails the call (and later sends).
    if (!parked && !this.#host.park(req)) this.expire(req);
  }

  #belowMark(): boolean {
    return this.#socket.bufferedAmount <= this.#highWater;
  }

  /**
   * Polls while a send waits or Deno holds unwritten bytes: sends resolve when Deno is
   * back at the mark, and a socket Deno closed without a close event is noticed.
   */
  #pollWhileHeld(): void {
    const held = this.#draining.length > 0 || this.#waiting.length > 0 ||
      this.#socket.bufferedAmount > 0;
    if (!held || this.#pollTimer !== undefined || this.#pollImmediate !== undefined) return;
    const idle = this.#idlePolls;
    if (idle < DRAIN_POLL_TURNS) {
      this.#pollImmediate = setImmediate(() => {
        this.#pollImmediate = undefined;
        this.#host.wake();
      });
      return;
    }
    // Not going down: pause 1, 2, 4... ms between looks, up to the cap.
    const pause = Math.min(DRAIN_POLL_MAX_MS, 2 ** Math.min(idle - DRAIN_POLL_TURNS, 16));
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      this.#host.wake();
    }, pause);
  }
}
