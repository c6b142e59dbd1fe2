/**
 * The WebSocket actor: one per connection. It owns the bytestream beneath it, runs
 * the opening handshake (with an {@link OpeningHandshake}), reads frames once open (a
 * {@link Reading}: it answers pings on its own and queues messages for `mrecv` in an
 * {@link Inbox}; bounded: reading pauses when the application falls behind), frames
 * `msend`s, runs the closing handshake (a {@link Closing}) and `wsDetach`, and the
 * keepalive timers (a {@link Keepalive}). All of it happens one mailbox message at a
 * time; the collaborators are plain objects this actor owns and drives synchronously.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { CloseCode, encodeClosePayload } from "../protocol/close_codes.ts";
import { encodeFrame, encodeMaskedFrameInto, maskedFrameSpace, Opcode } from "../protocol/frame.ts";
import type { HttpLimits } from "../protocol/http11.ts";
import type { PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { SocketLayer } from "./handle.ts";
import { Request } from "./request.ts";
import type { PendingCall } from "./request.ts";
import type { ByteStream, StreamEvent, StreamMsg } from "./stream.ts";
import { takeWriteBuffer } from "./write_queue.ts";
import { remaining } from "./time.ts";
import { Inbox, type WsRecvCall } from "./ws_inbox.ts";
import { NO_HTTP_INFO, OpeningHandshake, type WsAttachInfo, type WsStart } from "./ws_handshake.ts";
import { Closing, type ClosingHost } from "./ws_closing.ts";
import { Keepalive, type KeepaliveHost } from "./ws_keepalive.ts";
import { Reading, type ReadingHost } from "./ws_reading.ts";
import type { WsLimits, WsType } from "./ws_options.ts";

export type { WsAttachInfo } from "./ws_handshake.ts";
export type { WsReceived } from "./ws_inbox.ts";

/** Messages a WS actor understands. */
export type WsMsg =
  | StreamEvent
  | { readonly kind: "attach"; readonly req: Request<WsAttachInfo> }
  | {
    readonly kind: "send";
    readonly opcode: number;
    readonly payload: Uint8Array;
    /**
     * A text message the application gave as a string, to a layer that takes strings
     * (`WsLayer.takesStrings`): `payload` is then empty.
     */
    readonly text?: string;
    readonly req: Request<void>;
  }
  | WsRecvCall
  | { readonly kind: "done"; readonly payload: Uint8Array; readonly req: Request<void> }
  | { readonly kind: "detach"; readonly payload: Uint8Array; readonly req: Request<ByteStream> }
  | { readonly kind: "refused" }
  | { readonly kind: "pongWritten"; readonly size: number }
  | { readonly kind: "failNow" }
  | { readonly kind: "replyClose" }
  /** Judges a call with deadline 0 after what was already buffered was processed. */
  | { readonly kind: "judge"; readonly req: PendingCall }
  | { readonly kind: "closeTcp" }
  | { readonly kind: "tick" };

type Phase = "handshake" | "open";

/**
 * A WebSocket connection layer (message socket).
 *
 * @example
 * ```ts
 * import { wsAttachClient, wsAttachServer, ipcPair, hclose, WS_NOHTTP } from "../mod.ts";
 *
 * // WsActor is spawned by the attach calls; this is how it is normally reached.
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "/", "localhost", -1),
 * ]);
 * hclose(s);
 * hclose(c);
 * ```
 */
export class WsActor extends SocketLayer<WsMsg> {
  readonly kind = "message" as const;
  readonly #lower: ByteStream;
  readonly #masked: boolean;
  readonly #socketType: WsType;
  readonly #limits: WsLimits;

  #phase: Phase = "handshake";
  #attachReq: Request<WsAttachInfo> | null = null;
  /** Dropped once open: the head reader and the request's headers are not kept. */
  #handshake: OpeningHandshake | null;
  #refusal: DillError | null = null;

  /** The negotiated permessage-deflate codec, or `null`. */
  #deflate: PerMessageDeflate | null = null;
  readonly #inbox: Inbox;
  /** Frames to messages, pongs and flow control, once the connection is open. */
  readonly #in: Reading<WsActor>;

  /** Made when the closing handshake first has something to do (a connection that only
   * exchanges messages never needs it): read through the queries below until then. */
  #cl: Closing<WsActor> | null = null;
  #detachReq: Request<ByteStream> | null = null;

  /** `null` when both its timers are off (the default): nothing to count then. */
  readonly #keepalive: Keepalive<WsActor> | null;

  /** What the keepalive does, for every connection (no closures per connection). */
  static readonly #keepaliveHost: KeepaliveHost<WsActor> = {
    wake: (a) => a.send({ kind: "tick" }),
    ping: (a) => a.#write(Opcode.PING, new Uint8Array(0)),
    closeIdle: (a) =>
      a.#closing().sendClose(encodeClosePayload(CloseCode.GOING_AWAY, "idle timeout")),
    peerDead: (a, why) => a.#onDeadPeer(why),
    readingPaused: (a) => a.#in.applicationBehind,
  };

  /** What the closing handshake does, for every connection. */
  static readonly #closingHost: ClosingHost<WsActor> = {
    post: (a, kind) => a.send({ kind }),
    writeClose: (a, payload, req) => {
      // With keepalive on, the peer now has pongTimeout to answer (see Keepalive.closing).
      a.#keepalive?.closing();
      if (!req) return a.#write(Opcode.CLOSE, payload);
      const chunks = encodeFrame(Opcode.CLOSE, payload, { masked: a.#masked });
      a.#lower.send({ kind: "send", chunks, req, urgent: true, closing: true });
    },
    endInput: (a, error) => a.#in.endInput(error),
    stopKeepalive: (a) => a.#keepalive?.stop(),
    hangUp: (a) => a.#lower.send({ kind: "done", req: quiet() }),
    queued: (a) => a.#inbox.length,
    detaching: (a) => a.#detachReq !== null,
    finishDetach: (a) => a.#finishDetach(),
    failDetach: (a, error) => {
      const req = a.#detachReq;
      a.#detachReq = null;
      req?.reject(error);
      a.close(error);
    },
  };

  /** What reading does, for every connection. */
  static readonly #readingHost: ReadingHost<WsActor> = {
    closed: (a) => a.closedReason !== null,
    closeSent: (a) => a.#closeSent(),
    inputDone: (a) => a.#inputDone(),
    detaching: (a) => a.#detachReq !== null,
    peerClosed: (a, code, reason) => a.#closing().peerClosed(code, reason),
    violation: (a, code, message) => a.#closing().violation(code, message),
    inputEnded: (a, failure) => a.#closing().inputEnded(failure, a.#inbox.ended),
    pongWritten: (a, size) => a.send({ kind: "pongWritten", size }),
  };

  /**
   * @param lower the bytestream this connection runs on (adopted: it closes with this actor)
   * @param start which side and which handshake
   * @param socketType the message type of `msend`/`mrecv`
   * @param limits resolved limits and timers
   * @param httpLimits limits on the handshake head
   */
  constructor(
    lower: ByteStream,
    start: WsStart,
    socketType: WsType,
    limits: WsLimits,
    httpLimits?: HttpLimits,
  ) {
    super(start.side === "server" ? "ws server" : "ws client"); // one string, not one per actor
    this.#lower = lower;
    this.#masked = start.side === "client";
    this.#socketType = socketType;
    this.#limits = limits;
    this.#handshake = new OpeningHandshake(start, httpLimits);
    this.#inbox = new Inbox(socketType, limits.maxWaitingCalls);
    this.#keepalive = limits.pingInterval > 0 || limits.idleTimeout > 0
      ? new Keepalive(limits, this, WsActor.#keepaliveHost)
      : null;
    this.#in = new Reading(
      this.#masked,
      limits,
      lower,
      this.#inbox,
      this.#keepalive,
      this,
      WsActor.#readingHost,
    );
    this.adopt(lower);
  }

  /** The message type `msend`/`mrecv` use on this socket. */
  get socketType(): WsType {
    return this.#socketType;
  }

  /**
   * The status and reason the peer closed with (1006 when it went away without a close
   * frame or broke the protocol), or `null` while it has not. A read of the actor's
   * state, safe at any time: it changes only inside the actor's handlers.
   */
  get peerStatus(): { status: number; reason: string } | null {
    const status = this.#cl?.peerStatus ?? null;
    return status ? { ...status } : null;
  }

  protected receive(msg: WsMsg): void {
    switch (msg.kind) {
      case "data":
        if (this.#phase === "open") return this.#in.data(msg.chunk, msg.reusable === true);
        this.#in.headBytes(msg.chunk.length);
        return this.#handshakeData(msg.chunk);
      case "eof":
        return this.#onInputEnd(null);
      case "fail":
        return this.#onInputEnd(msg.error);
      case "attach":
        return this.#attach(msg.req);
      case "send":
        return this.#send(msg.opcode, msg.payload, msg.req);
      case "recv":
        return this.#recv(msg);
      case "done":
        return this.#closing().done(msg.payload, msg.req);
      case "detach":
        return this.#detach(msg.payload, msg.req);
      case "refused":
        return this.#failAttach(this.#refusal!);
      case "pongWritten":
        return this.#in.pongWritten(msg.size);
      case "replyClose":
        if (this.closedReason) return;
        return this.#closing().replyClose();
      case "failNow":
        return this.#closing().failTimerFired();
      case "judge":
        if (!msg.req.settled) this.expired(msg.req);
        return;
      case "closeTcp":
        return this.#closing().closeTcp();
      case "tick":
        if (!this.#in.stopped) this.#keepalive?.tick();
        return;
    }
  }

  protected expired(req: PendingCall): void {
    if (req === this.#attachReq) {
      return this.#failAttach(
        this.#refusal ??
          new DillError("ETIMEDOUT", `${req.op}: the handshake did not finish before the deadline`),
      );
    }
    if (req === this.#detachReq) {
      // The detach fails; the calls still pending on the handle fail with ECANCELED, as
      // the stack closes under them (theirs may have no deadline at all).
      this.#detachReq = null;
      req.reject(
        this.#cl?.violationError ??
          new DillError("ETIMEDOUT", "wsDetach: no close frame from the peer"),
      );
      return this.close(new DillError("ECANCELED", "wsDetach failed, which closed the stack"));
    }
    // A receive that timed out ends receiving and empties the inbox: reading goes on (the
    // peer's pings and close still need answers), dropping the messages.
    if (this.#inbox.expire(req)) this.#in.parse();
  }

  protected terminate(reason: DillError): void {
    this.#handshake?.abandon();
    this.#deflate?.close();
    this.#keepalive?.stop();
    this.#cl?.stop();
    this.#attachReq?.reject(reason);
    this.#detachReq?.reject(reason);
    this.#inbox.cancel(reason);
    this.#in.dispose();
  }

  // ---- opening handshake ----------------------------------------------------------

  #attach(req: Request<WsAttachInfo>): void {
    this.#attachReq = req;
    const handshake = this.#handshake!;
    const request = handshake.request;
    if (request) this.#lower.send({ kind: "send", chunks: [request] });
    if (!handshake.needsHead) {
      this.#open(NO_HTTP_INFO(), null, handshake.takeNoHttpDeflate());
      this.#lower.send({ kind: "attach", consumer: this });
      return;
    }
    // The stream hands over the bytes it read ahead now, into this mailbox: with deadline
    // 0 a request that is already all there still completes.
    this.#lower.send({ kind: "attach", consumer: this });
    this.#parkOrJudge(req);
  }

  /**
   * Parks a call; with deadline 0 (or one already past) the call is judged instead once
   * the bytes that had already arrived were handled: those the stream had buffered (in
   * this mailbox by now) and those a read resumed just now finds at once (reported within
   * this turn of the event loop). Deadline 0 means "if it can be done without waiting",
   * and those bytes are there.
   */
  #parkOrJudge(req: PendingCall): void {
    if (remaining(req.deadline) === 0) {
      setImmediate(() => this.send({ kind: "judge", req }));
    } else if (!this.park(req)) {
      // Its signal had aborted: the call fails, and the stack with it, as at its deadline.
      this.expired(req);
    }
  }

  #handshakeData(chunk: Uint8Array): void {
    if (this.#refusal) return; // answering a refused request: ignore whatever else comes
    try {
      const done = this.#handshake!.feed(chunk);
      if (!done) return;
      if (done.response) this.#lower.send({ kind: "send", chunks: [done.response] });
      this.#open(done.info, done.rest, done.deflate);
    } catch (e) {
      this.#refuse(e);
    }
  }

  #open(info: WsAttachInfo, rest: Uint8Array | null, deflate: PerMessageDeflate | null): void {
    this.#phase = "open";
    this.#handshake = null;
    // Compression, if negotiated, goes both ways: the reading inflates, #send compresses.
    this.#deflate = deflate;
    const req = this.#attachReq!;
    this.#attachReq = null;
    req.resolve(info);
    this.#keepalive?.start();
    this.#in.open(rest, deflate);
  }

  /** A bad handshake: the server answers with an HTTP error first; then everything closes. */
  #refuse(e: unknown): void {
    const { error, response } = this.#handshake!.refusal(e);
    if (!response) return this.#failAttach(error);
    this.#refusal = error;
    const flushed = new Request<void>("wsAttachServer", -1);
    this.#lower.send({ kind: "send", chunks: [response] });
    this.#lower.send({ kind: "done", req: flushed });
    const refused = () => this.send({ kind: "refused" });
    flushed.promise.then(refused, refused);
  }

  #failAttach(error: DillError | null): void {
    const req = this.#attachReq;
    this.#attachReq = null;
    if (req && error) req.reject(error);
    this.close(error ?? new DillError("ETIMEDOUT", "the handshake could not finish in time"));
  }

  // ---- receiving (the frames themselves are the Reading's) ------------------------

  #recv(call: WsRecvCall): void {
    // Taking a message may make room: frames held back in the receiver go on then.
    if (this.#in.recv(call, (req) => this.park(req))) return;
    // The application waits for a message: what it sent before goes out now.
    this.#lower.send(CONSUMER_WAITS);
    // The application asked past the last message before a violation: it is done with
    // them (and its replies are queued), so the connection fails now.
    if (this.#cl?.failing && this.#inbox.length === 0) this.#cl.failNow();
  }

  /** Server: the client's close frame arrived, and no `wsDetach` waits for what follows. */
  #inputDone(): boolean {
    return !this.#masked && this.#cl !== null && this.#cl.closeReceived &&
      this.#detachReq === null;
  }

  // ---- closing (the handshake itself is the Closing's) ----------------------------

  /** The closing handshake's state, made on first use. */
  #closing(): Closing<WsActor> {
    return this.#cl ??= new Closing(!this.#masked, this.#limits, this, WsActor.#closingHost);
  }

  /** Whether our close frame went (or is queued). */
  #closeSent(): boolean {
    return this.#cl !== null && this.#cl.closeSent;
  }

  #onInputEnd(failure: DillError | null): void {
    if (this.#phase === "handshake") {
      if (this.#refusal) return;
      return this.#failAttach(
        failure ??
          new DillError("ECONNRESET", "the peer closed the connection during the handshake"),
      );
    }
    this.#in.streamEnded(failure);
  }

  #detach(payload: Uint8Array, req: Request<ByteStream>): void {
    this.#detachReq = req;
    const detached = new DillError("ECANCELED", "wsDetach: the handle was detached");
    this.#inbox.cancel(detached);
    const closing = this.#closing();
    if (closing.failing) closing.failNow();
    closing.sendClose(payload);
    // Frames held back for owed pongs are handled now (no pongs after our close): the
    // peer's close may be among them.
    this.#in.parse();
    if (this.closedReason) return;
    if (closing.closeReceived) return this.#finishDetach();
    const ended = this.#inbox.ended;
    if (!closing.detachMayWait(ended)) {
      req.reject(ended!);
      return this.close(ended!);
    }
    closing.detachAfterViolation();
    if (this.#detachReq !== null) this.#parkOrJudge(req);
  }

  /** Hands the bytestream back with whatever bytes followed the close frame. */
  #finishDetach(): void {
    const req = this.#detachReq!;
    this.#detachReq = null;
    const leftover = this.#in.leftover();
    if (leftover === null) {
      const lost = new DillError(
        "ENOMEM",
        "wsDetach: more than maxBufferedBytes followed the peer's close frame before the " +
          "detach, and the rest was dropped: the bytestream would have a hole in it",
      );
      req.reject(lost);
      return this.close(lost);
    }
    for (const m of this.takeQueued()) if (m.kind === "data") leftover.push(m.chunk);
    this.release(this.#lower);
    if (this.#in.paused) this.#lower.send({ kind: "resume" });
    this.#lower.send({ kind: "detach", leftover });
    req.resolve(this.#lower);
    this.close(new DillError("ECANCELED", "the WebSocket layer was detached"));
  }

  // ---- sending --------------------------------------------------------------------

  #send(opcode: number, payload: Uint8Array, req: Request<void>): void {
    const refused = this.#cl?.refuseSend(req.op) ?? null;
    if (refused) return req.reject(refused);
    this.#keepalive?.activity();
    // Compressed whole, synchronously: messages leave in the order they were sent.
    const packed = this.#deflate?.compress(payload) ?? null;
    if (this.#masked) {
      // A client's large frame is masked into a pooled write buffer, not a fresh one.
      const body = packed ?? payload;
      const pooled = takeWriteBuffer(maskedFrameSpace(body.length));
      if (pooled !== null) {
        const frame = encodeMaskedFrameInto(pooled, opcode, body, { rsv1: packed !== null });
        this.#lower.send({ kind: "send", chunks: [frame], req, pooled: true });
        return;
      }
    }
    const chunks = packed === null
      ? encodeFrame(opcode, payload, { masked: this.#masked })
      : encodeFrame(opcode, packed, { masked: this.#masked, rsv1: true });
    this.#lower.send({ kind: "send", chunks, req });
  }

  /**
   * Frames the actor sends on its own (close frames, keepalive pings); failures surface
   * elsewhere. A close frame is written at once: the application may close right after.
   */
  #write(opcode: number, payload: Uint8Array): void {
    this.#in.sendPongs(); // pongs answered earlier go first
    const chunks = encodeFrame(opcode, payload, { masked: this.#masked });
    this.#lower.send({ kind: "send", chunks, urgent: opcode === Opcode.CLOSE });
  }

  // ---- keepalive and idle timeout -------------------------------------------------

  #onDeadPeer(why: string): void {
    const error = this.#closing().peerDead(why);
    if (this.#detachReq !== null) {
      // Nobody holds the handle: the detach fails, and the whole stack closes.
      this.#detachReq.reject(error);
      this.#detachReq = null;
      return this.close(error);
    }
    this.release(this.#lower);
    this.#lower.close(error);
  }
}

/** Sent whenever the application waits for a message: made once. */
const CONSUMER_WAITS: StreamMsg = { kind: "consumerWaits" };

/** A request nobody waits for: its outcome only matters to the stream's own state. */
function quiet(): Request<void> {
  const req = new Request<void>("close", -1);
  req.promise.catch(() => {});
  return req;
}
