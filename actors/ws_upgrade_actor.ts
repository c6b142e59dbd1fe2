/**
 * The WebSocket actor over Deno's own `WebSocket` (from `Deno.upgradeWebSocket`), for
 * servers that have no raw stream under a request: `Deno.serve` apps and Deno Deploy.
 * It answers the same mailbox messages as the {@link WsActor} over a bytestream, so
 * every message-socket call works on it unchanged. Deno does the framing; this actor
 * turns its events into mailbox messages and keeps the libdill rules (deadlines, typed
 * receives, failed sends and receives, the closing handshake as far as Deno shows it).
 *
 * Where Deno's `WebSocket` cannot give what the bytestream actor gives:
 * - No read pause: a message that arrives when `maxBufferedBytes` or
 *   `maxQueuedMessages` are already queued fails the connection with close 1008; the
 *   reader gets the messages queued before it, then `ENOMEM`.
 * - Send backpressure is `bufferedAmount`: a message is handed to Deno when it holds at
 *   most `sendHighWater` unwritten bytes and no earlier send waits, and its send resolves
 *   once Deno is back at that mark (see {@link DenoSends}).
 * - `server.shutdown()` with unwritten bytes: Deno drops them and fires no close event;
 *   the send side's poll notices the closed socket and ends the calls (`ECONNRESET`).
 * - `maxMessageSize` is checked once Deno has the whole message (Deno does not let us
 *   stop it earlier).
 * - After our close frame (`wsDone`), Deno drops the messages the peer still sends.
 *
 * @module
 */

import { CloseCode } from "../protocol/close_codes.ts";
import { decodeValidText } from "../protocol/text_message.ts";
import { DillError } from "../protocol/errors.ts";
import { Opcode } from "../protocol/frame.ts";
import { SocketLayer } from "./handle.ts";
import type { PendingCall, Request } from "./request.ts";
import { now } from "./time.ts";
import type { WsMsg } from "./ws_actor.ts";
import { Inbox, type ReceivedMessage, type WsRecvCall } from "./ws_inbox.ts";
import { DenoSends } from "./ws_upgrade_sends.ts";
import type { WsLimits, WsType } from "./ws_options.ts";

/** Default for `sendHighWater`: bytes Deno may hold unwritten before sends wait. */
export const DEFAULT_SEND_HIGH_WATER = 256 * 1024;

/**
 * Default `maxBufferedBytes` of a `wsUpgrade` socket. Reaching it fails the connection
 * (Deno's `WebSocket` cannot pause reading), where on a bytestream it only pauses reading:
 * so it is sized for a client that pipelines large messages (4 MiB in flight is common),
 * not the 1 MiB at which a bytestream socket pauses. Deno itself holds a whole message,
 * of any size when fragmented, before we see it, so this does not set the worst case.
 */
export const DEFAULT_UPGRADE_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * How long a socket found CLOSED may take to fire its close event before we decide Deno
 * closed it without one: Deno marks a socket CLOSED while it still writes its answer to
 * the peer's close frame, and fires the event after that write.
 */
const CLOSE_EVENT_GRACE_MS = 100;

/** Events of Deno's `WebSocket`, as mailbox messages. */
type SocketEvent =
  | { readonly kind: "wsOpen" }
  | { readonly kind: "wsMessage"; readonly data: unknown }
  | { readonly kind: "wsClose"; readonly code: number; readonly reason: string; clean: boolean }
  | { readonly kind: "wsError"; readonly message: string }
  | { readonly kind: "drainPoll" }
  | { readonly kind: "closedCheck" }
  | { readonly kind: "idleTick" }
  | { readonly kind: "shutdown" };

/** What the upgrade actor runs with. */
export interface UpgradeSettings {
  /** The message type of `msend`/`mrecv`. */
  readonly socketType: WsType;
  /** The resolved WebSocket limits. */
  readonly limits: WsLimits;
  /** Bytes Deno may hold unwritten before sends wait. */
  readonly sendHighWater: number;
  /** When it aborts, the socket closes with 1001 (a server shutting down). */
  readonly shutdownSignal?: AbortSignal;
}

const encoder = new TextEncoder();

/**
 * A message socket over a `WebSocket` from `Deno.upgradeWebSocket`.
 *
 * @example
 * ```ts
 * import { hclose, mrecv, msend, WS_BINARY, wsUpgrade } from "@dill/ws";
 *
 * // WsUpgradeActor is spawned by wsUpgrade; this is how it is normally reached.
 * function handler(request: Request): Response {
 *   const { response, handle } = wsUpgrade(request, WS_BINARY);
 *   (async () => {
 *     await msend(handle, await mrecv(handle, -1), -1);
 *     hclose(handle);
 *   })().catch(() => {});
 *   return response;
 * }
 * ```
 */
export class WsUpgradeActor extends SocketLayer<WsMsg | SocketEvent> {
  readonly kind = "message" as const;
  readonly takesStrings = true;
  readonly #socket: WebSocket;
  readonly #settings: UpgradeSettings;
  readonly #limits: WsLimits;

  readonly #sends: DenoSends;

  /** Messages Deno delivered that the application has not taken, and its waiting receives. */
  readonly #inbox: Inbox;

  #closeSent = false;
  #peerStatus: { status: number; reason: string } | null = null;
  #errorMessage: string | null = null;

  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Armed when a poll found the socket CLOSED: the close event gets this long to come. */
  #closedCheck: ReturnType<typeof setTimeout> | undefined;
  #lastActivity = 0;
  #onShutdown: (() => void) | null = null;

  /**
   * @param socket the WebSocket from `Deno.upgradeWebSocket`
   * @param settings socket type, limits and the shutdown signal
   */
  constructor(socket: WebSocket, settings: UpgradeSettings) {
    super("ws upgrade");
    this.#socket = socket;
    this.#settings = settings;
    this.#limits = settings.limits;
    this.#inbox = new Inbox(settings.socketType, this.#limits.maxWaitingCalls);
    this.#sends = new DenoSends(socket, settings.sendHighWater, this.#limits.maxWaitingCalls, {
      park: (req) => this.park(req),
      wake: () => this.send({ kind: "drainPoll" }),
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => this.send({ kind: "wsOpen" });
    socket.onmessage = (e) => this.send({ kind: "wsMessage", data: e.data });
    socket.onerror = (e) =>
      this.send({
        kind: "wsError",
        message: e instanceof ErrorEvent ? e.message : "the WebSocket failed",
      });
    socket.onclose = (e) =>
      this.send({ kind: "wsClose", code: e.code, reason: e.reason, clean: e.wasClean });
    const signal = settings.shutdownSignal;
    if (signal) {
      if (signal.aborted) queueMicrotask(() => this.send({ kind: "shutdown" }));
      else {
        this.#onShutdown = () => this.send({ kind: "shutdown" });
        signal.addEventListener("abort", this.#onShutdown, { once: true });
      }
    }
  }

  /** The message type `msend`/`mrecv` use on this socket. */
  get socketType(): WsType {
    return this.#settings.socketType;
  }

  /** How the peer closed (`wsStatus`), or `null` while it has not. */
  get peerStatus(): { status: number; reason: string } | null {
    return this.#peerStatus ? { ...this.#peerStatus } : null;
  }

  protected receive(msg: WsMsg | SocketEvent): void {
    switch (msg.kind) {
      case "wsOpen":
        return this.#onOpen();
      case "wsMessage":
        return this.#onMessage(msg.data);
      case "wsError":
        this.#errorMessage = msg.message;
        return;
      case "wsClose":
        return this.#onClose(msg.code, msg.reason, msg.clean);
      case "drainPoll":
        if (this.#sends.poll()) return;
        // The socket is CLOSED. Deno marks it so before it answers a peer's close frame,
        // and fires the close event once its answer is written: wait for the event.
        this.#sends.stop();
        this.#closedCheck ??= setTimeout(
          () => this.send({ kind: "closedCheck" }),
          CLOSE_EVENT_GRACE_MS,
        );
        return;
      case "closedCheck":
        this.#closedCheck = undefined;
        if (this.#peerStatus) return;
        // Deno closed the socket without a close event (server.shutdown() while it held
        // unwritten bytes): nothing it held was written.
        this.#errorMessage ??= "Deno closed the socket (its server shut down?)";
        return this.#onClose(CloseCode.ABNORMAL, "", false);
      case "idleTick":
        return this.#idleTick();
      case "shutdown":
        return this.#shutdown();
      case "send":
        // A text message goes to Deno as a string so that it is sent as a text frame.
        return this.#send(
          msg.text ?? (msg.opcode === Opcode.TEXT ? decodeValidText(msg.payload) : msg.payload),
          msg.req,
        );
      case "recv":
        return this.#recv(msg);
      case "done":
        return this.#done(msg.payload, msg.req);
      case "detach":
        return msg.req.reject(
          new DillError("ENOTSUP", "wsDetach: a wsUpgrade socket has no bytestream beneath it"),
        );
      default: {
        // Messages of the bytestream actor's own machinery do not apply here.
        const req = (msg as { req?: PendingCall }).req;
        req?.reject(new DillError("ENOTSUP", `${req.op}: not supported on a wsUpgrade socket`));
      }
    }
  }

  protected expired(req: PendingCall): void {
    if (!this.#inbox.expire(req)) this.#sends.expire(req);
  }

  protected terminate(reason: DillError): void {
    this.#stopTimers();
    this.#dropShutdownListener();
    this.#inbox.cancel(reason);
    this.#sends.cancel(reason);
    const s = this.#socket;
    s.onmessage = s.onerror = s.onclose = null;
    // hclose: no clean shutdown is waited for; the peer sees a close without a status
    // (or the one wsDone asked for before Deno opened the socket).
    const pending = this.#sends.pendingClose;
    if (s.readyState === WebSocket.OPEN) {
      s.onopen = null;
      s.close();
    } else if (s.readyState === WebSocket.CONNECTING) {
      s.onopen = () => s.close(pending?.code, pending?.reason);
    }
  }

  // ---- opening --------------------------------------------------------------------

  #onOpen(): void {
    this.#lastActivity = now();
    this.#armIdle();
    this.#sends.opened(); // sends made before it, in order, then a close of ours
  }

  // ---- receiving ------------------------------------------------------------------

  #onMessage(raw: unknown): void {
    if (this.#inbox.ended) return;
    let m: ReceivedMessage;
    if (typeof raw === "string") {
      m = { type: "message", binary: false, data: encoder.encode(raw), text: raw };
    } else if (raw instanceof ArrayBuffer) {
      m = { type: "message", binary: true, data: new Uint8Array(raw) };
    } else return;
    if (m.data.length > this.#limits.maxMessageSize) {
      return this.#failConnection(
        CloseCode.MESSAGE_TOO_BIG,
        "message too big",
        new DillError(
          "EMSGSIZE",
          `a ${m.data.length}-byte message is larger than maxMessageSize (${this.#limits.maxMessageSize}); closed with 1009`,
        ),
      );
    }
    if (this.#limits.idleTimeout > 0) this.#lastActivity = now();
    // A message finding others queued is queued too (else a waiting receive takes it).
    if (
      this.#inbox.length > 0 && (this.#inbox.bytes >= this.#limits.maxBufferedBytes ||
        this.#inbox.length >= this.#limits.maxQueuedMessages)
    ) {
      // Deno's WebSocket cannot stop reading: a reader this far behind ends the connection.
      // (Below the limits one more message is always queued, as the bytestream actor
      // reads one more before it pauses: the queue stays under the limit + maxMessageSize;
      // an empty queue always takes one, so a limit of 0 holds one message, as there.)
      return this.#failConnection(
        CloseCode.POLICY_VIOLATION,
        "receive queue full",
        new DillError(
          "ENOMEM",
          `the application did not read: maxBufferedBytes (${this.#limits.maxBufferedBytes}) or maxQueuedMessages (${this.#limits.maxQueuedMessages}) were queued already; closed with 1008`,
        ),
      );
    }
    this.#inbox.push(m);
  }

  #recv(msg: WsRecvCall): void {
    this.#inbox.recv(msg, (req) => this.park(req));
  }

  #endInput(error: DillError): void {
    this.#inbox.end(error);
  }

  // ---- sending --------------------------------------------------------------------

  #send(data: Uint8Array | string, req: Request<void>): void {
    if (this.#closeSent) {
      return req.reject(new DillError("EPIPE", `${req.op}: a close frame was already sent`));
    }
    if (this.#sends.failure) return req.reject(this.#sends.failure);
    if (this.#limits.idleTimeout > 0) this.#lastActivity = now();
    this.#sends.send(data, req);
  }

  // ---- closing --------------------------------------------------------------------

  #done(payload: Uint8Array, req: Request<void>): void {
    if (this.#closeSent) {
      return req.reject(new DillError("EPIPE", "wsDone: a close frame was already sent"));
    }
    if (this.#sends.failure) return req.reject(this.#sends.failure);
    this.#closeSent = true;
    // The close goes behind the sends still waiting their turn, and Deno queues it behind
    // the messages it holds: nothing sent before is lost.
    this.#sends.close(decodeClose(payload));
    req.resolve();
  }

  #onClose(code: number, reason: string, clean: boolean): void {
    this.#stopTimers();
    this.#dropShutdownListener();
    const status = clean && code !== 0 ? code : CloseCode.ABNORMAL;
    this.#peerStatus ??= { status, reason: clean ? reason : "" };
    const error = clean && code !== 0
      ? new DillError("EPIPE", `the peer closed the connection (status ${code})`)
      : new DillError(
        "ECONNRESET",
        `the connection closed without a close frame (1006)${
          this.#errorMessage ? `: ${this.#errorMessage}` : ""
        }`,
      );
    this.#endInput(error);
    this.#sends.fail(error);
  }

  /** Ends the connection on our side for a reason the application learns on its next receive. */
  #failConnection(code: number, reason: string, error: DillError): void {
    // Messages queued before it are still delivered; then receives fail with `error`.
    this.#endInput(error);
    this.#sends.fail(new DillError("EPIPE", `the connection was failed: ${error.message}`));
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#socket.close(code, reason);
    }
  }

  /** The server is going down: close with 1001, as RFC 6455 names it. */
  #shutdown(): void {
    this.#onShutdown = null;
    if (this.#closeSent) return;
    this.#closeSent = true;
    // Sends still waiting their turn fail (never handed to Deno): the close goes now.
    this.#sends.refuseLater(
      new DillError("EPIPE", "the server is shutting down (closed with 1001)"),
    );
    this.#sends.close({ code: CloseCode.GOING_AWAY, reason: "server shutting down" });
  }

  #dropShutdownListener(): void {
    if (this.#onShutdown) {
      this.#settings.shutdownSignal!.removeEventListener("abort", this.#onShutdown);
      this.#onShutdown = null;
    }
  }

  // ---- idle timeout ---------------------------------------------------------------

  #armIdle(): void {
    const idle = this.#limits.idleTimeout;
    if (idle <= 0 || this.#closeSent) return;
    const due = this.#lastActivity + idle - now();
    this.#idleTimer = setTimeout(() => this.send({ kind: "idleTick" }), Math.max(0, due));
  }

  #idleTick(): void {
    this.#idleTimer = undefined;
    if (this.#closeSent || this.#peerStatus) return;
    if (now() - this.#lastActivity < this.#limits.idleTimeout) return this.#armIdle();
    this.#closeSent = true;
    this.#sends.refuseLater(new DillError("EPIPE", "the connection was idle and closed (1001)"));
    this.#sends.close({ code: CloseCode.GOING_AWAY, reason: "idle timeout" });
  }

  #stopTimers(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    clearTimeout(this.#closedCheck);
    this.#closedCheck = undefined;
    this.#sends.stop();
  }
}

/** The status and reason of an encoded close payload (empty: no status). */
function decodeClose(payload: Uint8Array): { code?: number; reason?: string } {
  if (payload.length < 2) return {};
  return {
    code: (payload[0] << 8) | payload[1],
    reason: decodeValidText(payload.subarray(2)),
  };
}
