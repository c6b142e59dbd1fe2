/**
 * The send side of a `wsUpgrade` socket: sends made before Deno opened the socket (kept
 * in order), and sends Deno has but that wait for its `bufferedAmount` to come down to the
 * high-water mark (Deno's `WebSocket` has no other backpressure, so it is polled every
 * {@link DRAIN_POLL_MS} ms while above). It keeps libdill's rule that after a failed
 * send the socket can no longer send. A plain object owned by the upgrade actor: its
 * poll timer only posts to the actor's mailbox, and the actor calls {@link DenoSends.poll}.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { brokenAfter, type PendingCall, type Request } from "./request.ts";

/** How often a send waiting for `bufferedAmount` to go down looks at it again. */
export const DRAIN_POLL_MS = 5;

/** What the send side asks of the actor that owns it. */
export interface DenoSendsHost {
  /** Parks a call until its deadline; `false` when the deadline already passed. */
  park(req: PendingCall): boolean;
  /** Posts a `drainPoll` to the actor's mailbox (called from a timer). */
  wake(): void;
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
 * const sends = new DenoSends(socket, 256 * 1024, { park: () => true, wake() {} });
 * console.log(sends.failure); // null
 * sends.fail(new DillError("EPIPE", "closed"));
 * console.log(sends.failure?.code); // "EPIPE"
 * ```
 */
export class DenoSends {
  readonly #socket: WebSocket;
  readonly #highWater: number;
  readonly #host: DenoSendsHost;
  /** Sends made before Deno opened the socket, in order. */
  #unsent: { payload: Uint8Array | string; req: Request<void> }[] = [];
  /** Sends Deno has, waiting for `bufferedAmount` to come down to the high-water mark. */
  #draining: Request<void>[] = [];
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #failure: DillError | null = null;

  /**
   * @param socket the WebSocket from `Deno.upgradeWebSocket`
   * @param highWater bytes Deno may hold unwritten before sends wait (`sendHighWater`)
   * @param host the actor this runs for
   */
  constructor(socket: WebSocket, highWater: number, host: DenoSendsHost) {
    this.#socket = socket;
    this.#highWater = highWater;
    this.#host = host;
  }

  /** Why sends fail from now on, or `null`. */
  get failure(): DillError | null {
    return this.#failure;
  }

  /** From now on sends fail with `error` (unless they already fail for another reason). */
  refuseLater(error: DillError): void {
    this.#failure ??= error;
  }

  /** Sending is over: waiting sends and later ones fail (with the first reason given). */
  fail(error: DillError): void {
    this.#failure ??= error;
    this.cancel(this.#failure);
  }

  /** Fails every waiting send with `reason` and stops polling. */
  cancel(reason: DillError): void {
    for (const { req } of this.#unsent.splice(0)) req.reject(reason);
    for (const req of this.#draining.splice(0)) req.reject(reason);
    this.stop();
  }

  /** Stops the poll timer. */
  stop(): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  /** One message (text as a string); held until Deno opens the socket when it has not. */
  send(data: Uint8Array | string, req: Request<void>, open: boolean): void {
    if (open) return this.#write(data, req);
    this.#unsent.push({ payload: data, req });
    if (!this.#host.park(req)) {
      this.#unsent.pop();
      this.#failure ??= brokenAfter("send", req);
    }
  }

  /** Deno opened the socket: the sends held until now go, in order. */
  flush(): void {
    for (const { payload, req } of this.#unsent.splice(0)) this.#write(payload, req);
  }

  /** The poll timer fired: sends resolve once Deno's unwritten bytes are below the mark. */
  poll(): void {
    if (this.#draining.length === 0) return;
    if (!this.#belowMark()) return this.#schedulePoll();
    for (const req of this.#draining.splice(0)) req.resolve();
  }

  /** A parked send reached its deadline; returns whether it was one of ours. */
  expire(req: PendingCall): boolean {
    const u = this.#unsent.findIndex((m) => m.req === req);
    if (u >= 0) this.#unsent.splice(u, 1);
    const d = this.#draining.indexOf(req as Request<void>);
    if (d >= 0) this.#draining.splice(d, 1);
    if (u < 0 && d < 0) return false;
    req.timeOut();
    // libdill's rule: after a failed send the socket can no longer send.
    this.fail(brokenAfter("send", req));
    return true;
  }

  /** Hands a message to Deno; resolves when Deno's unwritten bytes are below the mark. */
  #write(data: Uint8Array | string, req: Request<void>): void {
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
    if (this.#draining.length === 0 && this.#belowMark()) return req.resolve();
    this.#draining.push(req);
    // The message is Deno's now: a deadline that passes fails the call (and later sends).
    if (!this.#host.park(req)) {
      this.expire(req);
      return;
    }
    this.#schedulePoll();
  }

  #belowMark(): boolean {
    return this.#socket.bufferedAmount <= this.#highWater;
  }

  #schedulePoll(): void {
    if (this.#pollTimer !== undefined) return;
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      this.#host.wake();
    }, DRAIN_POLL_MS);
  }
}
