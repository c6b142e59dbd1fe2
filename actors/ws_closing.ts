/**
 * The closing handshake of one WebSocket connection over a bytestream: which close
 * frames went each way, the status the peer closed with, failing the connection in
 * order after a protocol violation (option `failGrace`), libdill's half-close (option
 * `halfCloseTimeout`), and the server closing TCP first (option `closeGrace`). A plain
 * object owned by the WS actor: its timers only post messages to the actor's mailbox,
 * and the actor calls back in, which calls the {@link ClosingHost} synchronously.
 *
 * @module
 */

import { CloseCode, encodeClosePayload } from "../protocol/close_codes.ts";
import { DillError } from "../protocol/errors.ts";
import { brokenAfter, type Request } from "./request.ts";

/** The timers the closing handshake runs (from the resolved WS limits). */
export interface ClosingTimers {
  /** How long messages received before a violation wait for the application, in ms. */
  readonly failGrace: number;
  /** Half-close: how long our close reply may wait for wsDone, in ms (0: reply at once). */
  readonly halfCloseTimeout: number;
  /** Server: how long after the closing handshake TCP is closed, in ms. */
  readonly closeGrace: number;
}

/**
 * What the closing handshake asks of the actor that owns it. The owner is passed to
 * every call, so one host object serves every connection (no closures per connection).
 */
export interface ClosingHost<O> {
  /** Posts one of the closing handshake's own messages to the actor's mailbox. */
  post(owner: O, kind: "replyClose" | "failNow" | "closeTcp"): void;
  /**
   * Writes a close frame with this payload; with `req`, as the application's `wsDone`
   * (settled when written), else as the actor's own, after the pongs it owes.
   */
  writeClose(owner: O, payload: Uint8Array, req?: Request<void>): void;
  /** Input is over: no more frames are parsed; receives fail with `error` once drained. */
  endInput(owner: O, error: DillError): void;
  /** Stops the keepalive and idle timers. */
  stopKeepalive(owner: O): void;
  /** Finishes our side of the bytestream (half-close). */
  hangUp(owner: O): void;
  /** Messages received and not taken by the application yet. */
  queued(owner: O): number;
  /** A `wsDetach` is in progress. */
  detaching(owner: O): boolean;
  /** Both close frames went during a `wsDetach`: hand the bytestream back. */
  finishDetach(owner: O): void;
  /** Fails the pending `wsDetach` and the actor with `error`. */
  failDetach(owner: O, error: DillError): void;
}

/**
 * The close frames of one connection and what follows them.
 *
 * @example
 * ```ts
 * import { Closing } from "./ws_closing.ts";
 *
 * const closing = new Closing(false, { failGrace: 0, halfCloseTimeout: 0, closeGrace: 0 }, null, {
 *   post() {},
 *   writeClose() {},
 *   endInput() {},
 *   stopKeepalive() {},
 *   hangUp() {},
 *   queued: () => 0,
 *   detaching: () => false,
 *   finishDetach() {},
 *   failDetach() {},
 * });
 * closing.peerClosed(1000, "bye"); // the client echoes the status at once
 * console.log(closing.closeSent, closing.peerStatus); // true { status: 1000, reason: "bye" }
 * closing.stop();
 * ```
 */
export class Closing<O> {
  readonly #server: boolean;
  readonly #timers: ClosingTimers;
  readonly #owner: O;
  readonly #host: ClosingHost<O>;

  #closeSent = false;
  /** The peer's close frame arrived (a clean end of its input). */
  #closeReceived = false;
  /** The peer broke the protocol: we sent our close and wait for it to hang up. */
  #violated = false;
  /** The error a violation failed the connection with (what a `wsDetach` then fails with). */
  #violationError: DillError | null = null;
  /**
   * The peer broke the protocol after messages the application has not taken yet: they
   * are delivered first, and replies sent meanwhile go out before our close (option
   * `failGrace` bounds the wait).
   */
  #pendingViolation: { code: number; message: string; error: DillError } | null = null;
  #failTimer: ReturnType<typeof setTimeout> | undefined;
  /** Half-closed (option `halfCloseTimeout`): when our close reply goes at the latest. */
  #halfCloseTimer: ReturnType<typeof setTimeout> | undefined;
  #closeTcpTimer: ReturnType<typeof setTimeout> | undefined;
  /** The bytestream reported the end of the peer's input. */
  #peerGone = false;
  #sendFailure: DillError | null = null;
  /** The `wsDone` call that queued our close frame, if one did. */
  #doneReq: Request<void> | null = null;
  #peerStatus: { status: number; reason: string } | null = null;

  /**
   * @param server whether this is the server side (it closes TCP first)
   * @param timers `failGrace`, `halfCloseTimeout` and `closeGrace`
   * @param owner the actor this runs for, passed back to every `host` call
   * @param host what to do for it
   */
  constructor(server: boolean, timers: ClosingTimers, owner: O, host: ClosingHost<O>) {
    this.#server = server;
    this.#timers = timers;
    this.#owner = owner;
    this.#host = host;
  }

  /** Our close frame went (or is queued): nothing more may be sent. */
  get closeSent(): boolean {
    return this.#closeSent;
  }

  /** The peer's close frame arrived. */
  get closeReceived(): boolean {
    return this.#closeReceived;
  }

  /** A violation waits for the application to take the messages before it. */
  get failing(): boolean {
    return this.#pendingViolation !== null;
  }

  /** How the peer closed (1006 without a close frame), or `null` while it has not. */
  get peerStatus(): { status: number; reason: string } | null {
    return this.#peerStatus;
  }

  /** Why sends fail from now on, or `null`. */
  get sendFailure(): DillError | null {
    return this.#sendFailure;
  }

  /** Why a send (`op`) cannot go: a close frame went, or an earlier failure; else `null`. */
  refuseSend(op: string): DillError | null {
    // A wsDone that failed (its deadline, its signal) is a failed send: libdill's rule
    // applies, and its close frame may never have gone (one waiting for room is dropped).
    const failedDone = this.#doneFailure();
    if (failedDone) return failedDone;
    if (this.#closeSent) return new DillError("EPIPE", `${op}: a close frame was already sent`);
    return this.#sendFailure;
  }

  #doneFailure(): DillError | null {
    const req = this.#doneReq;
    const error = req?.failure;
    if (!(error instanceof DillError)) return null;
    if (error.code === "ETIMEDOUT" || error.code === "ECANCELED") return brokenAfter("send", req!);
    return error;
  }

  /** Sends our close frame with `payload` unless one went already. */
  sendClose(payload: Uint8Array): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#host.writeClose(this.#owner, payload);
  }

  /** Clears every timer (the actor is terminating). */
  stop(): void {
    clearTimeout(this.#closeTcpTimer);
    clearTimeout(this.#failTimer);
    clearTimeout(this.#halfCloseTimer);
  }

  /** The peer's close frame arrived. */
  peerClosed(code: number, reason: string): void {
    this.#closeReceived = true;
    this.#peerStatus = { status: code, reason };
    this.#host.endInput(
      this.#owner,
      new DillError("EPIPE", `the peer closed the connection (status ${code})`),
    );
    if (!this.#closeSent) {
      const { halfCloseTimeout } = this.#timers;
      if (halfCloseTimeout > 0 && !this.#host.detaching(this.#owner)) {
        // libdill's half-close: our sending half stays open until wsDone (or wsDetach,
        // hclose), and at most halfCloseTimeout ms, so a dropped handle never leaves
        // the peer waiting for our close.
        this.#host.stopKeepalive(this.#owner);
        this.#halfCloseTimer = setTimeout(
          () => this.#host.post(this.#owner, "replyClose"),
          halfCloseTimeout,
        );
        return;
      }
      this.replyClose();
      return;
    }
    this.#handshakeDone();
  }

  /** Answers the peer's close frame by echoing its status (RFC 6455 5.5.1). */
  replyClose(): void {
    clearTimeout(this.#halfCloseTimer);
    this.#halfCloseTimer = undefined;
    if (this.#closeSent) return;
    const code = this.#peerStatus!.status;
    this.#closeSent = true;
    this.#host.writeClose(
      this.#owner,
      code === 1005 ? new Uint8Array(0) : encodeClosePayload(code, ""),
    );
    this.#handshakeDone();
  }

  /** `wsDone`: our close frame, settling `req` when written. */
  done(payload: Uint8Array, req: Request<void>): void {
    if (this.#pendingViolation) this.failNow();
    const refused = this.refuseSend("wsDone");
    if (refused) return req.reject(refused);
    this.#closeSent = true;
    this.#doneReq = req;
    this.#host.writeClose(this.#owner, payload, req);
    if (this.#closeReceived) {
      // Half-closed: this was our reply to the peer's close.
      clearTimeout(this.#halfCloseTimer);
      this.#halfCloseTimer = undefined;
      this.#handshakeDone();
    }
  }

  /** The peer broke the protocol (the receiver's `code` and `message`). */
  violation(code: number, message: string): void {
    const error = new DillError(
      code === CloseCode.MESSAGE_TOO_BIG ? "EMSGSIZE" : "EPROTO",
      `the peer broke the protocol: ${message} (closed with ${code})`,
    );
    this.#peerStatus = { status: CloseCode.ABNORMAL, reason: "" };
    this.#host.endInput(this.#owner, error);
    this.#host.stopKeepalive(this.#owner);
    this.#pendingViolation = { code, message, error };
    // Fail in order: messages that arrived before the violation are delivered first.
    const { failGrace } = this.#timers;
    if (
      this.#host.queued(this.#owner) === 0 || this.#host.detaching(this.#owner) || failGrace === 0
    ) {
      return this.failNow();
    }
    this.#failTimer = setTimeout(() => this.#host.post(this.#owner, "failNow"), failGrace);
  }

  /** Sends our close for the peer's violation (after any reply already sent) and half-closes. */
  failNow(): void {
    const violation = this.#pendingViolation;
    if (!violation) return;
    this.#pendingViolation = null;
    clearTimeout(this.#failTimer);
    this.#failTimer = undefined;
    const { code, message, error } = violation;
    this.#sendFailure ??= new DillError("EPIPE", `the connection was failed: ${message}`);
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#host.writeClose(this.#owner, encodeClosePayload(code, truncateReason(message)));
    }
    this.#violated = true;
    this.#violationError = error;
    this.#host.hangUp(this.#owner);
    if (this.#host.detaching(this.#owner)) this.detachAfterViolation();
  }

  /** The error the connection was failed with for a violation, if it was. */
  get violationError(): DillError | null {
    return this.#violationError;
  }

  /**
   * A `wsDetach` after a violation cannot succeed: it fails with the violation once the
   * peer hung up, so that our close frame reaches it rather than a reset (closing a
   * socket with unread input resets it), and after `failGrace` at most.
   */
  detachAfterViolation(): void {
    if (!this.#violated) return;
    if (this.#peerGone) return this.#host.failDetach(this.#owner, this.#violationError!);
    if (this.#failTimer !== undefined) return;
    this.#failTimer = setTimeout(
      () => this.#host.post(this.#owner, "failNow"),
      this.#timers.failGrace,
    );
  }

  /**
   * The bytestream reported the end of the peer's input (`failure` when it failed),
   * after the opening handshake. `ended` is why input ended, if it did already.
   */
  inputEnded(failure: DillError | null, ended: DillError | null): void {
    this.#peerGone = true;
    // Failing in order: our replies and close still go out, then failNow half-closes.
    if (this.#pendingViolation) return;
    if (this.#host.detaching(this.#owner) && this.#violated) {
      // The peer hung up after our close for its violation: now the detach can fail.
      return this.#host.failDetach(this.#owner, ended!);
    }
    if (!this.#peerStatus) {
      // No close frame: an abnormal closure (1006).
      this.#peerStatus = { status: CloseCode.ABNORMAL, reason: "" };
      const error = failure ??
        new DillError("ECONNRESET", "the connection closed without a close frame (1006)");
      this.#host.endInput(this.#owner, error);
      this.#sendFailure ??= error;
      if (this.#host.detaching(this.#owner)) return this.#host.failDetach(this.#owner, error);
    }
    this.#host.stopKeepalive(this.#owner);
    // The peer finished sending; finish our side of the TCP connection too.
    this.#host.hangUp(this.#owner);
  }

  /**
   * `wsDetach` after our close went: whether it can wait for the peer's close (else it
   * fails with `ended`, the reason input ended). After a violation it waits for the
   * peer's hang-up only (see {@link Closing.detachAfterViolation}).
   */
  detachMayWait(ended: DillError | null): boolean {
    return !ended || (this.#violated && !this.#peerGone);
  }

  /** Keepalive found the peer dead: receives and sends fail with the returned error. */
  peerDead(why: string): DillError {
    const error = new DillError("ECONNRESET", `the peer is gone: ${why}`);
    this.#peerStatus = { status: CloseCode.ABNORMAL, reason: "" };
    this.#host.endInput(this.#owner, error);
    this.#sendFailure = error;
    return error;
  }

  /** The `closeTcp` timer fired. */
  closeTcp(): void {
    this.#closeTcpTimer = undefined;
    if (!this.#host.detaching(this.#owner)) this.#host.hangUp(this.#owner);
  }

  /** The `failNow` timer fired. */
  failTimerFired(): void {
    this.#failTimer = undefined;
    if (this.#pendingViolation) return this.failNow();
    // The wait for the peer's hang-up after a violation, during a detach, is over.
    if (this.#violated && this.#host.detaching(this.#owner)) {
      this.#host.failDetach(this.#owner, this.#violationError!);
    }
  }

  /** Both close frames went: detach, or (server) close TCP. */
  #handshakeDone(): void {
    if (this.#host.detaching(this.#owner)) return this.#host.finishDetach(this.#owner);
    this.#host.stopKeepalive(this.#owner);
    if (this.#server) {
      // The server closes TCP first (RFC 6455 7.1.1), after a grace in which an
      // application that wants the bytestream back (wsDetach) can claim it.
      // With no grace, the next turn of the event loop is enough, and needs no timer.
      if (this.#timers.closeGrace > 0) {
        this.#closeTcpTimer = setTimeout(
          () => this.#host.post(this.#owner, "closeTcp"),
          this.#timers.closeGrace,
        );
      } else {
        setImmediate(() => this.#host.post(this.#owner, "closeTcp"));
      }
    }
  }
}

/** Close reasons are limited to 123 bytes; keep whole characters. */
function truncateReason(message: string): string {
  const bytes = new TextEncoder().encode(message);
  if (bytes.length <= 123) return message;
  let end = 123;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}
