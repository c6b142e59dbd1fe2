/**
 * The reading side of one WebSocket connection once it is open: the bytes the stream
 * delivers go to the I/O-free {@link Receiver} (made on first use), its frames are
 * handled in order (messages into the {@link Inbox}, pings answered within a
 * {@link PongBudget}, a close frame or a violation handed to the closing handshake), the
 * rest of a large message is read straight into its buffer, and reading pauses while
 * the application falls behind or the peer does not read the pongs it is owed. A plain
 * object owned by the WS actor and called synchronously from its handlers; it calls the
 * {@link ReadingHost} back synchronously.
 *
 * @module
 */

import type { DillError } from "../protocol/errors.ts";
import type { PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { Receiver } from "../protocol/receiver.ts";
import { Request } from "./request.ts";
import type { PendingCall } from "./request.ts";
import type { StreamMsg } from "./stream.ts";
import type { Inbox, ReceivedMessage, WsRecvCall } from "./ws_inbox.ts";
import { PongBudget } from "./ws_pongs.ts";

/** The limits reading enforces (from the resolved WS limits). */
export interface ReadingLimits {
  /** Largest message, in bytes (after inflating). */
  readonly maxMessageSize: number;
  /** Reading pauses while the queued messages hold this many bytes. */
  readonly maxBufferedBytes: number;
  /** Reading pauses while this many messages are queued. */
  readonly maxQueuedMessages: number;
  /** Parsing and reading pause while the pongs not written yet take this many bytes. */
  readonly maxPongBytes: number;
}

/**
 * What reading asks of the actor that owns it. The owner is passed to every call, so
 * one host object serves every connection (no closures per connection).
 */
export interface ReadingHost<O> {
  /** The actor closed: its stream is no longer to be paused or resumed. */
  closed(owner: O): boolean;
  /** Our close frame went (or is queued): pings are no longer answered. */
  closeSent(owner: O): boolean;
  /** Server: the client's close frame arrived and nobody waits for what follows it. */
  inputDone(owner: O): boolean;
  /** A `wsDetach` is in progress: messages are read and dropped. */
  detaching(owner: O): boolean;
  /** The peer's close frame arrived. */
  peerClosed(owner: O, code: number, reason: string): void;
  /** The peer broke the protocol (the receiver's close `code` and `message`). */
  violation(owner: O, code: number, message: string): void;
  /** The peer's input ended (`failure` when the stream failed), after the frames before it. */
  inputEnded(owner: O, failure: DillError | null): void;
  /** Posts to the owner's mailbox that pongs of `size` bytes were written (or failed). */
  pongWritten(owner: O, size: number): void;
}

/** What reading tells the keepalive (see `./ws_keepalive.ts`). */
export interface ReadingKeepalive {
  /** Some bytes arrived. */
  inbound(): void;
  /** A message arrived. */
  activity(): void;
}

/**
 * Received bytes to frames to messages, with flow control.
 *
 * @example
 * ```ts
 * import { Reading } from "./ws_reading.ts";
 * import { Inbox } from "./ws_inbox.ts";
 * import { WS_BINARY } from "./ws_options.ts";
 *
 * const inbox = new Inbox(WS_BINARY, 16);
 * const limits = {
 *   maxMessageSize: 1024,
 *   maxBufferedBytes: 1024,
 *   maxQueuedMessages: 16,
 *   maxPongBytes: 1024,
 * };
 * const reading = new Reading(true, limits, { send() {} }, inbox, null, null, {
 *   closed: () => false,
 *   closeSent: () => false,
 *   inputDone: () => false,
 *   detaching: () => false,
 *   peerClosed() {},
 *   violation() {},
 *   inputEnded() {},
 *   pongWritten() {},
 * });
 * // A client reads unmasked frames: one binary frame with the payload 1, 2, 3.
 * reading.data(new Uint8Array([0x82, 3, 1, 2, 3]));
 * console.log(inbox.length, inbox.bytes); // 1 3
 * ```
 */
export class Reading<O> {
  readonly #masked: boolean;
  readonly #limits: ReadingLimits;
  readonly #lower: { send(msg: StreamMsg): void };
  readonly #inbox: Inbox;
  readonly #keepalive: ReadingKeepalive | null;
  readonly #owner: O;
  readonly #host: ReadingHost<O>;

  /**
   * Made when the first frame bytes arrive (see {@link Reading.#frames}): a connection
   * that has not received any holds none of its parsing state.
   */
  #receiver: Receiver | null = null;
  #stopped = false;
  /** Set once the actor closed: nothing more is kept. */
  #disposed = false;
  /** The peer's close frame stopped input (not a violation): what follows may be kept. */
  #peerClosed = false;
  /** Bytes that arrived after the peer's close frame, kept for a `wsDetach` (see `#keep`). */
  #after: Uint8Array[] | null = null;
  #afterBytes = 0;
  /** More than `maxBufferedBytes` followed the close frame: the rest was dropped. */
  #afterLost = false;
  /** The end of input, held until the frames read before it were handled. */
  #heldInputEnd: { readonly failure: DillError | null } | null = null;
  /** The negotiated permessage-deflate codec, or `null`. */
  #deflate: PerMessageDeflate | null = null;
  #paused = false;
  /** Bytes the stream delivered so far (its offsets, for a read target). */
  #inBytes = 0;
  /** Made at the first ping. */
  #pongs: PongBudget | null = null;

  /**
   * @param masked whether this is the client side (our frames are masked, the peer's not)
   * @param limits `maxMessageSize`, `maxBufferedBytes`, `maxQueuedMessages`, `maxPongBytes`
   * @param lower the bytestream the bytes come from (paused, resumed, given read targets)
   * @param inbox where messages go
   * @param keepalive told when bytes and messages arrive, or `null` when its timers are off
   * @param owner the actor this runs for, passed back to every `host` call
   * @param host what to do for it
   */
  constructor(
    masked: boolean,
    limits: ReadingLimits,
    lower: { send(msg: StreamMsg): void },
    inbox: Inbox,
    keepalive: ReadingKeepalive | null,
    owner: O,
    host: ReadingHost<O>,
  ) {
    this.#masked = masked;
    this.#limits = limits;
    this.#lower = lower;
    this.#inbox = inbox;
    this.#keepalive = keepalive;
    this.#owner = owner;
    this.#host = host;
  }

  /** No more frames are parsed (after a close frame, a violation, or the end of input). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Reading is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes the stream delivered to the opening handshake: the stream's offsets count them. */
  headBytes(n: number): void {
    this.#inBytes += n;
  }

  /** The connection opened: `rest` are the bytes that followed the handshake's head. */
  open(rest: Uint8Array | null, deflate: PerMessageDeflate | null): void {
    if (deflate) {
      // Compression was negotiated: from now on messages may be compressed both ways.
      this.#deflate = deflate;
      this.#receiver?.useInflater(deflate);
    }
    if (rest && rest.length > 0) this.#take(rest, false);
  }

  /**
   * Bytes the stream delivered; `reusable`: the stream takes the chunk's memory back for
   * another read once it is handed back with `recycle` (see `StreamEvent`).
   */
  data(chunk: Uint8Array, reusable = false): void {
    this.#inBytes += chunk.length;
    this.#take(chunk, reusable);
  }

  #take(chunk: Uint8Array, reusable: boolean): void {
    this.#keepalive?.inbound();
    if (this.#stopped) return this.#keep(chunk);
    this.#frames().feed(chunk, reusable);
    this.parse();
  }

  /**
   * Bytes after the peer's close frame are no frames of this connection: they belong to
   * whatever the application layers on the bytestream after `wsDetach`, which may come
   * any time later (libdill leaves them in the socket). So they are kept, up to
   * `maxBufferedBytes`. Past that they are dropped, and a later `wsDetach` fails rather
   * than hand over a stream with a hole in it; reading goes on, so that the end of the
   * stream (the peer's hang-up, which ends the closing handshake) is still seen. After a
   * violation nothing is kept: no detach can succeed any more. (A chunk kept is never
   * handed back with `recycle`, so no read reuses its memory.)
   */
  #keep(chunk: Uint8Array): void {
    if (this.#disposed || !this.#peerClosed || this.#afterLost || chunk.length === 0) return;
    if (this.#afterBytes + chunk.length > this.#limits.maxBufferedBytes && this.#afterBytes > 0) {
      this.#afterLost = true;
      this.#after = null;
      return;
    }
    (this.#after ??= []).push(chunk);
    this.#afterBytes += chunk.length;
  }

  /** The receiver, made on first use. */
  #frames(): Receiver {
    if (this.#receiver === null) {
      const role = this.#masked ? "client" : "server";
      this.#receiver = new Receiver({ role, maxMessageSize: this.#limits.maxMessageSize });
      if (this.#deflate) this.#receiver.useInflater(this.#deflate);
    }
    return this.#receiver;
  }

  /**
   * Handles the frames received so far, in order. Parsing holds (the rest stays in the
   * receiver, and reading pauses) while the application is behind or the pongs we owe use
   * up their budget: a read full of small compressed messages is then inflated one
   * message at a time as the application takes them, never the whole read at once, and a
   * ping flood costs at most `maxPongBytes` of pongs plus what was already read.
   */
  parse(): void {
    let drained = this.#stopped;
    while (!this.#stopped && !this.#inboxFull() && !this.#owesTooManyPongs()) {
      const ev = this.#receiver?.next();
      if (ev === undefined) {
        drained = true;
        break;
      }
      switch (ev.type) {
        case "message":
          this.#onMessage(ev);
          break;
        case "ping":
          // The pong joins this pass's batch (sent at its end), owed until written.
          if (!this.#host.closeSent(this.#owner)) {
            this.#pongs ??= new PongBudget(this.#limits.maxPongBytes, this.#masked);
            this.#pongs.answer(ev.data);
          }
          break;
        case "pong":
          break; // liveness is tracked per chunk; unsolicited pongs are ignored
        case "close":
          this.#peerClosed = true;
          this.#host.peerClosed(this.#owner, ev.code, ev.reason);
          break;
        case "error":
          this.#host.violation(this.#owner, ev.code, ev.message);
          break;
      }
    }
    this.sendPongs();
    if (!this.#stopped && this.#receiver !== null) {
      // The rest of a large message is read straight into its buffer (no copy).
      const target = this.#receiver.readTarget();
      if (target !== null) this.#lower.send({ kind: "readInto", buf: target, at: this.#inBytes });
      // A read whose bytes were all copied out (fragments, the head of a large message)
      // lends its buffer to the next read: no new zero-filled buffer.
      const done = this.#receiver.releasable();
      if (done !== null) this.#lower.send({ kind: "recycle", chunk: done });
    }
    // After the target: a resume starts a read at once, and the target should take it.
    this.#flowControl();
    if (this.#heldInputEnd && (drained || this.#stopped)) {
      const { failure } = this.#heldInputEnd;
      this.#heldInputEnd = null;
      this.#host.inputEnded(this.#owner, failure);
    }
  }

  #onMessage(ev: ReceivedMessage): void {
    // Detaching, or receiving failed: messages are read and dropped, and count for nothing
    // (not as activity for the idle timeout either: no message reaches the application).
    if (this.#host.detaching(this.#owner) || this.#inbox.refusing) return;
    this.#keepalive?.activity();
    this.#inbox.push(ev);
  }

  /**
   * A receive call: answered from the inbox, or parked with `park`. Returns whether it
   * was answered; taking a message may make room, and frames held back go on then.
   */
  recv(call: WsRecvCall, park: (req: PendingCall) => boolean): boolean {
    const taken = this.#inbox.recv(call, park);
    // Taking a message may make room; failing to wait ends receiving, which empties the
    // inbox: either way reading may go on.
    if (taken || this.#inbox.refusing) this.parse();
    return taken;
  }

  /**
   * Whether the application is behind: `maxBufferedBytes` or `maxQueuedMessages` reached
   * by messages it has not taken. An empty inbox is never behind, so a limit of 0 holds
   * at most one message (read when asked for) instead of never reading at all.
   */
  #inboxFull(): boolean {
    return this.#inbox.length > 0 && (this.#inbox.bytes >= this.#limits.maxBufferedBytes ||
      this.#inbox.length >= this.#limits.maxQueuedMessages);
  }

  /** Reading is paused because the application is behind (its queue is full). */
  get applicationBehind(): boolean {
    return this.#paused && this.#inboxFull();
  }

  /** Whether the pongs not written yet use up `maxPongBytes` (none are sent after our close). */
  #owesTooManyPongs(): boolean {
    return this.#pongs !== null && this.#pongs.exhausted && !this.#host.closeSent(this.#owner);
  }

  /**
   * Pauses the socket while the application is behind, or while the peer does not read
   * the pongs we owe it (their bytes use up `maxPongBytes`); resumes when that is over.
   * A server also stops reading once the client's close frame arrived: the server closes
   * TCP first (RFC 6455 7.1.1), so a read still pending then would only fail when it does
   * (in Deno, an error built per connection).
   */
  #flowControl(): void {
    if (this.#host.closed(this.#owner)) return;
    const behind = this.#inboxFull() || this.#owesTooManyPongs() ||
      this.#host.inputDone(this.#owner);
    if (behind === this.#paused) return;
    this.#paused = behind;
    // Once no more input is wanted (the peer's close frame came), not even the read a
    // pause lets go is started: closing then fails no pending read.
    this.#lower.send(
      behind ? { kind: "pause", final: this.#host.inputDone(this.#owner) } : { kind: "resume" },
    );
  }

  /** Sends the pongs of this pass, in one message; their bytes stay owed until written. */
  sendPongs(): void {
    const batch = this.#pongs?.take();
    if (!batch) return;
    const { chunks, size } = batch;
    const written = new Request<void>("pong", -1);
    const report = () => this.#host.pongWritten(this.#owner, size);
    written.promise.then(report, report);
    this.#lower.send({ kind: "send", chunks, req: written, internal: true });
  }

  /** Pongs of `size` bytes were written (or failed): frames held back for them go on. */
  pongWritten(size: number): void {
    this.#pongs!.written(size);
    this.parse();
  }

  /**
   * The bytestream reported the end of the peer's input (`failure` when it failed).
   * Frames the peer sent before it that still wait (the application is behind) are
   * handled first, and the end after them.
   */
  streamEnded(failure: DillError | null): void {
    if (!this.#stopped && (this.#receiver?.bufferedBytes ?? 0) > 0) {
      this.#heldInputEnd = { failure };
      return this.parse();
    }
    this.#host.inputEnded(this.#owner, failure);
  }

  /** Input is over: no more frames are parsed; receives fail with `error` once drained. */
  endInput(error: DillError): void {
    this.#stopped = true;
    this.#inbox.end(error);
  }

  /**
   * The actor is closed: parsing state goes, so that nothing that outlives the actor
   * (an error the application keeps refers to it through its stack) holds a
   * half-received message.
   */
  dispose(): void {
    this.#stopped = true;
    this.#disposed = true;
    this.#receiver = null;
    this.#heldInputEnd = null;
    this.#after = null;
  }

  /**
   * The bytes received after the last frame handled (what follows a close frame), or
   * `null` when more than `maxBufferedBytes` of them came and the rest was dropped.
   */
  leftover(): Uint8Array[] | null {
    if (this.#afterLost) return null;
    const rest = this.#receiver?.leftover() ?? [];
    return this.#after === null ? rest : [...rest, ...this.#after];
  }
}
