/**
 * The WebSocket actor: one per connection. It owns the bytestream beneath it, runs
 * the opening handshake, feeds received bytes to the I/O-free {@link Receiver},
 * answers pings on its own, queues messages for `mrecv` (bounded: reading pauses
 * when the application falls behind), frames `msend`s, and runs the closing
 * handshake. All of it happens one mailbox message at a time.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { DillError } from "../protocol/errors.ts";
import { encodeClosePayload } from "../protocol/close_codes.ts";
import { encodeFrame, Opcode } from "../protocol/frame.ts";
import { HttpError, HttpHeadReader, writeHttpErrorResponse } from "../protocol/http11.ts";
import type { HttpLimits } from "../protocol/http11.ts";
import {
  acceptUpgrade,
  checkUpgradeResponse,
  HandshakeError,
  type ServerHandshakeOptions,
} from "../protocol/handshake.ts";
import { Receiver, type ReceiverEvent } from "../protocol/receiver.ts";
import type { NegotiatedDeflate, PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { SocketLayer } from "./handle.ts";
import { Fifo } from "./fifo.ts";
import { Request } from "./request.ts";
import type { PendingCall } from "./request.ts";
import type { ByteStream, StreamEvent } from "./stream.ts";
import { now } from "./time.ts";
import { wsClientDeflate, type WsDeflateOffer } from "./ws_deflate.ts";
import { WS_BINARY, WS_TEXT, type WsLimits, type WsType } from "./ws_options.ts";

/** What a successful opening handshake reports. */
export interface WsAttachInfo {
  /** Request target (server side; `""` with `WS_NOHTTP`). */
  readonly resource: string;
  /** Host header (server side; `""` with `WS_NOHTTP`). */
  readonly host: string;
  /** The negotiated subprotocol, or `null`. */
  readonly protocol: string | null;
  /** The peer's handshake headers (request headers on the server, response headers on the client). */
  readonly headers: Headers;
}

/** One received message as handed to the API layer. */
export interface WsReceived {
  /** {@link WS_TEXT} or {@link WS_BINARY}. */
  readonly type: WsType;
  /** Payload size in bytes. */
  readonly size: number;
  /** The payload, unless it was copied into the caller's buffers. */
  readonly data: Uint8Array | null;
  /** A text message, decoded (the receiver decodes every text message it validates). */
  readonly text?: string;
}

/** How the WS actor starts: which side, and the handshake it runs. */
export type WsStart =
  | {
    readonly side: "server";
    readonly http: ServerHandshakeOptions | null;
    /** With `WS_NOHTTP`: the permessage-deflate the caller negotiated, or `null`. */
    readonly deflate: NegotiatedDeflate | null;
  }
  | {
    readonly side: "client";
    readonly http: {
      request: Uint8Array;
      key: string;
      protocols: string[];
      /** The permessage-deflate offer in `request`, whose reservation this actor owns. */
      deflate: WsDeflateOffer | null;
    } | null;
  };

/** Messages a WS actor understands. */
export type WsMsg =
  | StreamEvent
  | { readonly kind: "attach"; readonly req: Request<WsAttachInfo> }
  | {
    readonly kind: "send";
    readonly opcode: number;
    readonly payload: Uint8Array;
    readonly req: Request<void>;
  }
  | {
    readonly kind: "recv";
    /** `mrecv` family: the message must have the socket's type. */
    readonly typed: boolean;
    /** Caller buffers to copy into, or `null` to hand over the payload. */
    readonly into: Uint8Array[] | null;
    readonly req: Request<WsReceived>;
  }
  | { readonly kind: "done"; readonly payload: Uint8Array; readonly req: Request<void> }
  | { readonly kind: "detach"; readonly payload: Uint8Array; readonly req: Request<ByteStream> }
  | { readonly kind: "status"; readonly req: Request<{ status: number; reason: string }> }
  | { readonly kind: "refused" }
  | { readonly kind: "pongWritten" }
  | { readonly kind: "closeTcp" }
  | { readonly kind: "tick" };

type Phase = "handshake" | "open";

/**
 * Pongs queued but not yet written. Beyond this, only the latest ping gets an answer
 * (RFC 6455 5.5.3 allows it), so a peer flooding pings cannot grow our output queue.
 */
const MAX_PONGS_IN_FLIGHT = 4;
/** Status reported when the connection ended without a close frame (RFC 6455 7.1.5). */
const ABNORMAL_CLOSURE = 1006;
const GOING_AWAY = 1001;

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
  readonly #start: WsStart;
  readonly #masked: boolean;
  readonly #socketType: WsType;
  readonly #limits: WsLimits;
  readonly #httpLimits: HttpLimits | undefined;

  #phase: Phase = "handshake";
  #attachReq: Request<WsAttachInfo> | null = null;
  #head: HttpHeadReader<"request"> | HttpHeadReader<"response"> | null = null;
  #refusal: DillError | null = null;

  readonly #receiver: Receiver;
  #receiverDone = false;
  /** The negotiated permessage-deflate codec, or `null`. */
  #deflate: PerMessageDeflate | null = null;
  readonly #inbox = new Fifo<ReceiverEvent & { type: "message" }>();
  #inboxBytes = 0;
  #recvWaiters: Extract<WsMsg, { kind: "recv" }>[] = [];
  /** Set once a receive failed: later receives fail the same way. */
  #recvFailure: DillError | null = null;
  /** Why input ended (EPIPE after the peer's close frame, else the failure); reported once the inbox is drained. */
  #inputEnd: DillError | null = null;
  #paused = false;

  #closeSent = false;
  /** The peer's close frame arrived (a clean end of its input). */
  #closeReceived = false;
  /** The peer broke the protocol: we sent our close and wait for it to hang up. */
  #violated = false;
  /** The bytestream reported the end of the peer's input. */
  #peerGone = false;
  #sendFailure: DillError | null = null;
  #peerStatus: { status: number; reason: string } | null = null;
  #detachReq: Request<ByteStream> | null = null;

  #pongsInFlight = 0;
  /** The latest ping not answered yet because too many pongs were in flight. */
  #unansweredPing: Uint8Array | null = null;

  #timer: ReturnType<typeof setTimeout> | undefined;
  #closeTcpTimer: ReturnType<typeof setTimeout> | undefined;
  #lastInbound = 0;
  #lastActivity = 0;
  #pingSentAt = 0;
  /** When we sent a close because of idleness (0: we did not): the peer must answer in time. */
  #idleCloseAt = 0;

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
    super(`ws ${start.side}`);
    this.#lower = lower;
    this.#start = start;
    this.#masked = start.side === "client";
    this.#socketType = socketType;
    this.#limits = limits;
    this.#httpLimits = httpLimits;
    this.#receiver = new Receiver({ role: start.side, maxMessageSize: limits.maxMessageSize });
    this.adopt(lower);
  }

  /** The message type `msend`/`mrecv` use on this socket. */
  get socketType(): WsType {
    return this.#socketType;
  }

  protected receive(msg: WsMsg): void {
    switch (msg.kind) {
      case "data":
        return this.#onData(msg.chunk);
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
        return this.#done(msg.payload, msg.req);
      case "detach":
        return this.#detach(msg.payload, msg.req);
      case "status":
        return this.#peerStatus
          ? msg.req.resolve({ ...this.#peerStatus })
          : msg.req.reject(new DillError("EAGAIN", "wsStatus: the peer has not closed yet"));
      case "refused":
        return this.#failAttach(this.#refusal!);
      case "pongWritten":
        return this.#pongWritten();
      case "closeTcp":
        this.#closeTcpTimer = undefined;
        if (!this.#detachReq) this.#lower.send({ kind: "done", req: quiet() });
        return;
      case "tick":
        return this.#tick();
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
      req.timeOut();
      return this.close(new DillError("ETIMEDOUT", "wsDetach: no close frame from the peer"));
    }
    const i = this.#recvWaiters.findIndex((w) => w.req === req);
    if (i < 0) return;
    this.#recvWaiters.splice(i, 1);
    req.timeOut();
    this.#recvFailure ??= brokenAfter("ETIMEDOUT");
  }

  protected terminate(reason: DillError): void {
    this.#deflate?.close();
    // A client offer's reservation not turned into a codec yet.
    const start = this.#start;
    if (start.side === "client" && start.http?.deflate && this.#phase === "handshake") {
      start.http.deflate.budget.release(start.http.deflate.reserved);
    }
    clearTimeout(this.#timer);
    clearTimeout(this.#closeTcpTimer);
    this.#attachReq?.reject(reason);
    this.#detachReq?.reject(reason);
    for (const w of this.#recvWaiters.splice(0)) w.req.reject(reason);
    this.#inbox.clear();
  }

  // ---- opening handshake ----------------------------------------------------------

  #attach(req: Request<WsAttachInfo>): void {
    this.#attachReq = req;
    const start = this.#start;
    if (start.side === "client" && start.http) {
      this.#lower.send({ kind: "send", chunks: [start.http.request] });
    }
    if (!start.http) {
      if (start.side === "server" && start.deflate) this.#useDeflate(start.deflate.takeCodec());
      this.#open({ resource: "", host: "", protocol: null, headers: new Headers() }, null);
    } else {
      this.#head = start.side === "server"
        ? new HttpHeadReader("request", this.#httpLimits)
        : new HttpHeadReader("response", this.#httpLimits);
      if (!this.park(req)) return this.#failAttach(null);
    }
    this.#lower.send({ kind: "attach", consumer: this });
  }

  #handshakeData(chunk: Uint8Array): void {
    if (this.#refusal) return; // answering a refused request: ignore whatever else comes
    const start = this.#start;
    try {
      if (start.side === "server") {
        const done = (this.#head as HttpHeadReader<"request">).feed(chunk);
        if (!done) return;
        const accepted = acceptUpgrade(done.head, start.http ?? undefined);
        this.#lower.send({ kind: "send", chunks: [accepted.response] });
        const { resource, host, protocol, deflate } = accepted;
        if (deflate) this.#useDeflate(deflate.takeCodec());
        this.#open({ resource, host, protocol, headers: done.head.headers }, done.rest);
      } else {
        const done = (this.#head as HttpHeadReader<"response">).feed(chunk);
        if (!done) return;
        const http = start.http!;
        const { protocol, deflate } = checkUpgradeResponse(
          done.head,
          http.key,
          http.protocols,
          http.deflate,
        );
        const codec = http.deflate && wsClientDeflate(http.deflate, deflate ?? null);
        if (codec) this.#useDeflate(codec);
        this.#open({ resource: "", host: "", protocol, headers: done.head.headers }, done.rest);
      }
    } catch (e) {
      this.#refuse(e);
    }
  }

  /** Compression was negotiated: from now on messages may be compressed both ways. */
  #useDeflate(codec: PerMessageDeflate): void {
    this.#deflate = codec;
    this.#receiver.useInflater(codec);
  }

  #open(info: WsAttachInfo, rest: Uint8Array | null): void {
    this.#phase = "open";
    this.#head = null;
    const req = this.#attachReq!;
    this.#attachReq = null;
    req.resolve({
      resource: info.resource,
      host: info.host,
      protocol: info.protocol,
      headers: info.headers,
    });
    this.#lastInbound = this.#lastActivity = now();
    this.#armTimer();
    if (rest && rest.length > 0) this.#onData(rest);
  }

  /** A bad handshake: the server answers with an HTTP error first; then everything closes. */
  #refuse(e: unknown): void {
    const error = e instanceof DillError
      ? e
      : new DillError("EPROTO", `handshake failed: ${e instanceof Error ? e.message : e}`);
    const response = this.#start.side === "client"
      ? null
      : e instanceof HandshakeError
      ? e.response
      : e instanceof HttpError
      ? writeHttpErrorResponse(e.status, error.message)
      : null;
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

  // ---- receiving ------------------------------------------------------------------

  #onData(chunk: Uint8Array): void {
    if (this.#phase === "handshake") return this.#handshakeData(chunk);
    if (this.#limits.pingInterval > 0) this.#lastInbound = now();
    if (this.#receiverDone) return; // after a close frame or a violation, input is dropped
    this.#receiver.feed(chunk);
    for (let ev = this.#receiver.next(); ev !== undefined; ev = this.#receiver.next()) {
      switch (ev.type) {
        case "message":
          this.#onMessage(ev);
          break;
        case "ping":
          if (!this.#closeSent) this.#answerPing(ev.data);
          break;
        case "pong":
          break; // liveness is tracked per chunk; unsolicited pongs are ignored
        case "close":
          return this.#onPeerClose(ev.code, ev.reason);
        case "error":
          return this.#onViolation(ev.code, ev.message);
      }
    }
    this.#flowControl();
  }

  #onMessage(ev: ReceiverEvent & { type: "message" }): void {
    if (this.#detachReq) return; // detaching: messages are read and dropped
    if (this.#limits.idleTimeout > 0) this.#lastActivity = now();
    while (this.#recvWaiters.length > 0 && this.#inbox.length === 0) {
      const w = this.#recvWaiters.shift()!;
      if (!w.req.settled) return this.#deliver(w, ev);
    }
    this.#inbox.push(ev);
    this.#inboxBytes += ev.data.length;
  }

  #recv(msg: Extract<WsMsg, { kind: "recv" }>): void {
    if (this.#recvFailure) return msg.req.reject(this.#recvFailure);
    const ev = this.#inbox.shift();
    if (ev) {
      this.#inboxBytes -= ev.data.length;
      this.#deliver(msg, ev);
      return this.#flowControl();
    }
    if (this.#inputEnd) return this.#failRecv(msg, this.#inputEnd);
    if (this.#recvWaiters.length >= this.#limits.maxWaitingCalls) {
      return msg.req.reject(
        new DillError(
          "EBUSY",
          `${msg.req.op}: ${this.#limits.maxWaitingCalls} calls already wait (option maxWaitingCalls)`,
        ),
      );
    }
    this.#recvWaiters.push(msg);
    if (!this.park(msg.req)) {
      this.#recvWaiters.pop();
      this.#recvFailure ??= brokenAfter("ETIMEDOUT");
    }
  }

  #deliver(w: Extract<WsMsg, { kind: "recv" }>, ev: ReceiverEvent & { type: "message" }): void {
    const type: WsType = ev.binary ? WS_BINARY : WS_TEXT;
    const data = ev.data;
    if (w.typed && type !== this.#socketType) {
      return this.#failRecv(
        w,
        new DillError(
          "EPROTO",
          `${w.req.op}: got a ${typeName(type)} message on a ${
            typeName(this.#socketType)
          } socket (use wsRecv to take both types)`,
        ),
      );
    }
    if (!w.into) return w.req.resolve({ type, size: data.length, data, text: ev.text });
    let room = 0;
    for (const b of w.into) room += b.length;
    if (data.length > room) {
      return this.#failRecv(
        w,
        new DillError(
          "EMSGSIZE",
          `${w.req.op}: a ${data.length}-byte message does not fit in ${room} bytes of buffer`,
        ),
      );
    }
    let off = 0;
    for (const b of w.into) {
      if (off >= data.length) break;
      const n = Math.min(b.length, data.length - off);
      b.set(data.subarray(off, off + n));
      off += n;
    }
    w.req.resolve({ type, size: data.length, data: null });
  }

  /** Fails one receive; unless input simply ended, receiving is over (libdill's rule). */
  #failRecv(w: Extract<WsMsg, { kind: "recv" }>, error: DillError): void {
    w.req.reject(error);
    if (error !== this.#inputEnd) this.#recvFailure ??= brokenAfter(error.code);
  }

  /**
   * Pauses the socket while the application is behind, or while the peer does not read
   * the pongs we owe it; resumes when that is over.
   */
  #flowControl(): void {
    const behind = this.#inboxBytes >= this.#limits.maxBufferedBytes ||
      this.#inbox.length >= this.#limits.maxQueuedMessages ||
      this.#pongsInFlight >= MAX_PONGS_IN_FLIGHT;
    if (behind === this.#paused) return;
    this.#paused = behind;
    this.#lower.send({ kind: behind ? "pause" : "resume" });
  }

  #endInput(error: DillError): void {
    this.#receiverDone = true;
    this.#inputEnd ??= error;
    if (this.#inbox.length === 0) {
      for (const w of this.#recvWaiters.splice(0)) w.req.reject(this.#inputEnd);
    }
  }

  // ---- closing --------------------------------------------------------------------

  #onPeerClose(code: number, reason: string): void {
    this.#closeReceived = true;
    this.#peerStatus = { status: code, reason };
    this.#endInput(new DillError("EPIPE", `the peer closed the connection (status ${code})`));
    if (!this.#closeSent) {
      // Echo the peer's status, as RFC 6455 5.5.1 suggests.
      this.#closeSent = true;
      this.#write(Opcode.CLOSE, code === 1005 ? new Uint8Array(0) : encodeClosePayload(code, ""));
    }
    if (this.#detachReq) return this.#finishDetach();
    this.#stopTimer();
    if (this.#start.side === "server") {
      // The server closes TCP first (RFC 6455 7.1.1), after a grace in which an
      // application that wants the bytestream back (wsDetach) can claim it.
      const closeTcp = () => this.send({ kind: "closeTcp" });
      // With no grace, the next turn of the event loop is enough, and needs no timer.
      if (this.#limits.closeGrace > 0) {
        this.#closeTcpTimer = setTimeout(closeTcp, this.#limits.closeGrace);
      } else {
        setImmediate(closeTcp);
      }
    }
  }

  #onViolation(code: number, message: string): void {
    const error = new DillError(
      code === 1009 ? "EMSGSIZE" : "EPROTO",
      `the peer broke the protocol: ${message} (closed with ${code})`,
    );
    this.#peerStatus = { status: ABNORMAL_CLOSURE, reason: "" };
    this.#endInput(error);
    this.#sendFailure ??= new DillError("EPIPE", `the connection was failed: ${message}`);
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#write(Opcode.CLOSE, encodeClosePayload(code, truncateReason(message)));
    }
    this.#violated = true;
    this.#lower.send({ kind: "done", req: quiet() });
    this.#stopTimer();
    // A pending wsDetach keeps waiting: the peer gets time to answer and hang up.
  }

  #onInputEnd(failure: DillError | null): void {
    if (this.#phase === "handshake") {
      if (this.#refusal) return;
      return this.#failAttach(
        failure ??
          new DillError("ECONNRESET", "the peer closed the connection during the handshake"),
      );
    }
    this.#peerGone = true;
    if (this.#detachReq && this.#violated) {
      // The peer hung up after our close for its violation: now the detach can fail.
      this.#detachReq.reject(this.#inputEnd!);
      return this.close(this.#inputEnd!);
    }
    if (!this.#peerStatus) {
      // No close frame: an abnormal closure (1006).
      this.#peerStatus = { status: ABNORMAL_CLOSURE, reason: "" };
      const error = failure ??
        new DillError("ECONNRESET", "the connection closed without a close frame (1006)");
      this.#endInput(error);
      this.#sendFailure ??= error;
      if (this.#detachReq) {
        this.#detachReq.reject(error);
        return this.close(error);
      }
    }
    this.#stopTimer();
    // The peer finished sending; finish our side of the TCP connection too.
    this.#lower.send({ kind: "done", req: quiet() });
  }

  #done(payload: Uint8Array, req: Request<void>): void {
    if (this.#closeSent) {
      return req.reject(new DillError("EPIPE", "wsDone: a close frame was already sent"));
    }
    if (this.#sendFailure) return req.reject(this.#sendFailure);
    this.#closeSent = true;
    this.#lower.send({
      kind: "send",
      chunks: encodeFrame(Opcode.CLOSE, payload, { masked: this.#masked }),
      req,
      urgent: true,
    });
  }

  #detach(payload: Uint8Array, req: Request<ByteStream>): void {
    this.#detachReq = req;
    const detached = new DillError("ECANCELED", "wsDetach: the handle was detached");
    for (const w of this.#recvWaiters.splice(0)) w.req.reject(detached);
    this.#inbox.clear();
    this.#inboxBytes = 0;
    if (this.#paused) this.#flowControl();
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#write(Opcode.CLOSE, payload);
    }
    if (this.#closeReceived) return this.#finishDetach();
    if (this.#inputEnd && (this.#peerGone || !this.#violated)) {
      req.reject(this.#inputEnd);
      return this.close(this.#inputEnd);
    }
    if (!this.park(req)) {
      this.close(new DillError("ETIMEDOUT", "wsDetach: no close frame from the peer yet"));
    }
  }

  /** Hands the bytestream back with whatever bytes followed the close frame. */
  #finishDetach(): void {
    const req = this.#detachReq!;
    this.#detachReq = null;
    const leftover = this.#receiver.leftover();
    for (const m of this.takeQueued()) if (m.kind === "data") leftover.push(m.chunk);
    this.release(this.#lower);
    if (this.#paused) this.#lower.send({ kind: "resume" });
    this.#lower.send({ kind: "detach", leftover });
    req.resolve(this.#lower);
    this.close(new DillError("ECANCELED", "the WebSocket layer was detached"));
  }

  // ---- sending --------------------------------------------------------------------

  #send(opcode: number, payload: Uint8Array, req: Request<void>): void {
    if (this.#closeSent) {
      return req.reject(new DillError("EPIPE", `${req.op}: a close frame was already sent`));
    }
    if (this.#sendFailure) return req.reject(this.#sendFailure);
    if (this.#limits.idleTimeout > 0) this.#lastActivity = now();
    // Compressed whole, synchronously: messages leave in the order they were sent.
    const packed = this.#deflate?.compress(payload) ?? null;
    const chunks = packed === null
      ? encodeFrame(opcode, payload, { masked: this.#masked })
      : encodeFrame(opcode, packed, { masked: this.#masked, rsv1: true });
    this.#lower.send({ kind: "send", chunks, req });
  }

  #answerPing(data: Uint8Array): void {
    if (this.#pongsInFlight >= MAX_PONGS_IN_FLIGHT) {
      this.#unansweredPing = data.slice();
      return;
    }
    this.#pongsInFlight++;
    const written = new Request<void>("pong", -1);
    const report = () => this.send({ kind: "pongWritten" });
    written.promise.then(report, report);
    const chunks = encodeFrame(Opcode.PONG, data, { masked: this.#masked });
    this.#lower.send({ kind: "send", chunks, req: written });
  }

  #pongWritten(): void {
    this.#pongsInFlight--;
    const ping = this.#unansweredPing;
    if (ping && !this.#closeSent) {
      this.#unansweredPing = null;
      this.#answerPing(ping);
    }
    this.#flowControl();
  }

  /**
   * Frames the actor sends on its own (close frames, keepalive pings); failures surface
   * elsewhere. A close frame is written at once: the application may close right after.
   */
  #write(opcode: number, payload: Uint8Array): void {
    const chunks = encodeFrame(opcode, payload, { masked: this.#masked });
    this.#lower.send({ kind: "send", chunks, urgent: opcode === Opcode.CLOSE });
  }

  // ---- keepalive and idle timeout -------------------------------------------------

  #armTimer(): void {
    const { pingInterval, pongTimeout, idleTimeout } = this.#limits;
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
    this.#timer = setTimeout(() => this.send({ kind: "tick" }), Math.max(0, due - now()));
  }

  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#receiverDone) return;
    const t = now();
    const { pingInterval, pongTimeout, idleTimeout } = this.#limits;
    if (this.#idleCloseAt > 0) {
      if (t - this.#idleCloseAt < pongTimeout) return this.#armTimer();
      return this.#onDeadPeer(`nothing answered our idle close within ${pongTimeout} ms`);
    }
    if (this.#closeSent) return;
    if (pingInterval > 0) {
      if (this.#pingSentAt > 0 && this.#lastInbound >= this.#pingSentAt) this.#pingSentAt = 0;
      if (this.#pingSentAt > 0 && t - this.#pingSentAt >= pongTimeout) {
        return this.#onDeadPeer(`nothing arrived within ${pongTimeout} ms of a ping`);
      }
      if (this.#pingSentAt === 0 && t - this.#lastInbound >= pingInterval) {
        this.#pingSentAt = t;
        this.#write(Opcode.PING, new Uint8Array(0));
      }
    }
    if (idleTimeout > 0 && t - this.#lastActivity >= idleTimeout) {
      this.#closeSent = true;
      this.#idleCloseAt = t;
      this.#write(Opcode.CLOSE, encodeClosePayload(GOING_AWAY, "idle timeout"));
    }
    this.#armTimer();
  }

  #onDeadPeer(why: string): void {
    const error = new DillError("ECONNRESET", `the peer is gone: ${why}`);
    this.#peerStatus = { status: ABNORMAL_CLOSURE, reason: "" };
    this.#endInput(error);
    this.#sendFailure = error;
    this.release(this.#lower);
    this.#lower.close(error);
  }
}

function brokenAfter(code: string): DillError {
  return new DillError(
    "ECONNRESET",
    `this socket can no longer receive: an earlier receive failed (${code})`,
  );
}

/** A request nobody waits for: its outcome only matters to the stream's own state. */
function quiet(): Request<void> {
  const req = new Request<void>("close", -1);
  req.promise.catch(() => {});
  return req;
}

function typeName(type: WsType): string {
  return type === WS_TEXT ? "text" : "binary";
}

/** Close reasons are limited to 123 bytes; keep whole characters. */
function truncateReason(message: string): string {
  const bytes = new TextEncoder().encode(message);
  if (bytes.length <= 123) return message;
  let end = 123;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}
