/**
 * The bytestream actor: one per connection (TCP, Unix, in-memory pipe, TLS). It owns
 * the transport, reads ahead into a bounded buffer ({@link ReadAhead}), serves
 * exact-length `brecv`s, and writes what senders queued ({@link StreamOutput}, which
 * coalesces small writes into one transport write). When a protocol is attached
 * on top, the upper actor takes the read side: chunks are delivered to its mailbox,
 * paced by `pause`/`resume` so that a slow reader never makes memory grow. A send
 * completes once the transport wrote its last byte, never earlier (unless the socket
 * was given a send buffer: {@link StreamOptions.sendBuffer}).
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { DillError } from "../protocol/errors.ts";
import { SocketLayer } from "./handle.ts";
import { type Fill, ReadAhead } from "./read_ahead.ts";
import { brokenAfter, type PendingCall, type Request } from "./request.ts";
import {
  type OutputSend,
  StreamOutput,
  type StreamOutputHost,
  type StreamOutputMsg,
} from "./stream_output.ts";
import { type Transport, transportError } from "./transport.ts";
import { DEFAULT_HIGH_WATER, type StreamOptions, tooManyWaiting } from "./stream_options.ts";

/** Events a bytestream delivers to the protocol attached on top of it. */
export type StreamEvent =
  | {
    readonly kind: "data";
    readonly chunk: Uint8Array;
    /**
     * The chunk is a read buffer the stream takes back (`recycle`, the chunk itself) for
     * another read once the consumer is done with it; no other chunk is ever read into
     * again.
     */
    readonly reusable?: boolean;
  }
  | { readonly kind: "eof" }
  | { readonly kind: "fail"; readonly error: DillError };

/** The mailbox of whoever consumes a stream's input. */
export interface StreamConsumer {
  /** Delivers one stream event. */
  send(event: StreamEvent): void;
}

/** Messages a bytestream actor understands. */
export type StreamMsg =
  /** Bytes to write, and how (see {@link OutputSend}). */
  | ({ readonly kind: "send" } & OutputSend)
  | { readonly kind: "recv"; readonly bufs: Uint8Array[]; readonly req: Request<void> }
  /**
   * Receives the bytes there are (waiting for at least one), at most `max`, but none
   * past the first blank line (CR LF CR LF: the end of an HTTP head); `matched`: how
   * many bytes of CR LF CR LF the bytes received before ended with.
   */
  | {
    readonly kind: "recvHead";
    readonly max: number;
    readonly matched: number;
    readonly req: Request<Uint8Array>;
  }
  | {
    readonly kind: "done";
    readonly req: Request<void>;
    /** Fail with `EPIPE` if the output was already closed (tcpDone and the like). */
    readonly once?: boolean;
  }
  | { readonly kind: "shutdown"; readonly req: Request<void> }
  | { readonly kind: "attach"; readonly consumer: StreamConsumer }
  | { readonly kind: "detach"; readonly leftover: Uint8Array[] }
  | {
    readonly kind: "pause";
    /** No more input is wanted: not even the one read a pause lets go (see `readOn`). */
    readonly final?: boolean;
  }
  /** The consumer is done with a chunk it was given: its buffer may serve another read. */
  | { readonly kind: "recycle"; readonly chunk: Uint8Array }
  /**
   * The consumer wants the bytes of the stream from offset `at` (counted from its
   * attach) on in `buf` (the rest of a large message, read in place): those not
   * delivered yet go there, each chunk of them a view of `buf` in order (see
   * {@link ReadAhead.setTarget}); those already on their way it copies in itself.
   */
  | { readonly kind: "readInto"; readonly buf: Uint8Array; readonly at: number }
  | { readonly kind: "resume" }
  | { readonly kind: "readDone"; readonly buf: Uint8Array; readonly n: number | null }
  | { readonly kind: "chunksRead"; readonly chunks: Uint8Array[] | null }
  | { readonly kind: "readFailed"; readonly error: unknown }
  /**
   * The protocol on top waits for input (its application called receive and nothing
   * is there): bytes held back to batch sends (see `sendBuffer`) go out now.
   */
  | { readonly kind: "consumerWaits" }
  /** Reads on, after what the consumer answered to the chunk just delivered (a read target). */
  | { readonly kind: "readOn"; readonly evenIfPaused: boolean }
  /** The output's own messages: writes ended, a scheduled write is due, a turn ended. */
  | StreamOutputMsg;

const KIB = 1024;
// Posted after every read a consumer took: made once.
const READ_ON: StreamMsg = { kind: "readOn", evenIfPaused: false };
const READ_ON_EVEN_IF_PAUSED: StreamMsg = { kind: "readOn", evenIfPaused: true };

interface RecvWaiter extends Fill {
  /** Resolved with nothing (a `recv`) or with the one buffer filled (a `recvHead`). */
  readonly req: Request<void> | Request<Uint8Array>;
  /**
   * A `recvHead` (resolved with its buffer): until the bytes it takes are known, `bufs`
   * is empty.
   */
  readonly head: { readonly max: number; readonly matched: number } | null;
}

/**
 * A bytestream socket layer over a {@link Transport}.
 *
 * @example
 * ```ts
 * import { ByteStream } from "./stream.ts";
 * import { openHandle } from "./handle.ts";
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 8080 }).catch(() => null);
 * if (conn) {
 *   const handle = openHandle(new ByteStream("tcp", conn), "tcp");
 *   console.log(String(handle));
 * }
 * ```
 */
export class ByteStream extends SocketLayer<StreamMsg> {
  readonly kind = "bytestream" as const;
  readonly #transport: Transport;
  readonly #readHighWater: number;
  readonly #maxWaiting: number;

  // Inbound: chunks read ahead, and the calls waiting for bytes.
  readonly #inbound = new ReadAhead();
  #recvWaiters: RecvWaiter[] = [];
  #reading = false;
  #eof = false;
  #readFailure: DillError | null = null;
  /** Set once a receive failed: later receives fail the same way. */
  #recvFailure: DillError | null = null;
  #consumer: StreamConsumer | null = null;
  /** Bytes delivered to the consumer since it attached. */
  #delivered = 0;
  #paused = false;
  /** The consumer wants no more input (a final pause). */
  #inputStopped = false;
  #shutdownReq: Request<void> | null = null;

  // Outbound: what senders queued, written in order.
  readonly #output: StreamOutput<ByteStream>;

  /** What the output does, for every connection. */
  static readonly #outputHost: StreamOutputHost<ByteStream> = {
    post: (s, msg) => s.send(msg),
    park: (s, req) => s.park(req),
    watchAbort: (s, req) => s.watchAbort(req),
    expire: (s, req) => s.expired(req),
    closed: (s) => s.closedReason !== null,
    ended: (s) => s.#finishShutdown(),
  };

  /**
   * @param name label for messages, such as `"tcp"`
   * @param transport the connection this actor now owns
   * @param options buffer limits
   */
  constructor(name: string, transport: Transport, options: StreamOptions = {}) {
    super(name);
    this.#transport = transport;
    this.#readHighWater = options.readHighWater ?? DEFAULT_HIGH_WATER;
    this.#maxWaiting = options.maxWaitingCalls ?? 1024;
    this.#output = new StreamOutput(name, transport, options, this, ByteStream.#outputHost);
    this.#pumpRead();
  }

  protected receive(msg: StreamMsg): void {
    switch (msg.kind) {
      case "send":
        return this.#output.send(msg);
      case "recv":
        return this.#recv(msg.bufs, msg.req, null);
      case "recvHead":
        return this.#recv([], msg.req, { max: msg.max, matched: msg.matched });
      case "done":
        return this.#output.done(msg.req, msg.once === true);
      case "shutdown":
        this.#shutdownReq = msg.req;
        this.#output.done(null, false);
        this.#serveInbound();
        if (this.#shutdownReq && !this.#output.parkOrTurn(msg.req)) {
          this.close(this.#timedOutClose());
        }
        return;
      case "attach":
        return this.#attach(msg.consumer);
      case "detach":
        this.#consumer = null;
        this.#paused = false;
        this.#inputStopped = false;
        this.#inbound.clearTarget();
        for (const chunk of msg.leftover) this.#inbound.push(chunk);
        return this.#pumpRead();
      case "pause":
        this.#paused = true;
        this.#inputStopped = msg.final === true;
        return;
      case "recycle":
        return this.#inbound.recycle(msg.chunk);
      case "readInto": {
        const sent = this.#delivered - msg.at;
        if (this.#consumer && sent < msg.buf.length) {
          this.#inbound.setTarget(msg.buf.subarray(sent));
        }
        return;
      }
      case "resume":
        this.#paused = false;
        this.#inputStopped = false;
        return this.#pumpRead();
      case "readDone":
        return this.#readDone(msg.buf, msg.n);
      case "chunksRead":
        return this.#chunksRead(msg.chunks);
      case "readFailed":
        this.#reading = false;
        return this.#inputEnded(transportError(this.name, msg.error));
      case "flushNow":
        return this.#output.flushNow();
      case "consumerWaits":
        return this.#output.consumerWaits();
      case "readOn":
        return this.#pumpRead(msg.evenIfPaused && !this.#inputStopped);
      case "writeDone":
        return this.#output.writeDone();
      case "writeFailed":
        return this.#output.writeFailed(transportError(this.name, msg.error));
      case "turnEnded":
        return this.#output.turnEnded();
      case "closeWriteDone":
        return this.#output.closeWriteDone();
    }
  }

  protected expired(req: PendingCall): void {
    if (req === this.#shutdownReq) return this.close(this.#timedOutClose());
    const r = this.#recvWaiters.findIndex((w) => w.req === req);
    if (r >= 0) {
      this.#recvWaiters.splice(r, 1);
      req.timeOut();
      this.#recvFailure ??= brokenAfter("receive", req);
      return;
    }
    this.#output.expired(req);
  }

  protected terminate(reason: DillError): void {
    for (const w of this.#recvWaiters.splice(0)) w.req.reject(reason);
    // The output closes the transport (once completed sends are written).
    this.#output.terminate(reason);
    this.#shutdownReq?.reject(reason);
    this.#inbound.clear();
  }

  // ---- inbound --------------------------------------------------------------------

  #recv(
    bufs: Uint8Array[],
    req: Request<void> | Request<Uint8Array>,
    head: RecvWaiter["head"],
  ): void {
    if (this.#consumer) {
      return req.reject(new DillError("EBUSY", `${this.name}: the input belongs to a protocol`));
    }
    if (this.#recvFailure) return req.reject(this.#recvFailure);
    if (this.#recvWaiters.length >= this.#maxWaiting) {
      return req.reject(tooManyWaiting(this.name, "receive", this.#maxWaiting));
    }
    this.#recvWaiters.push({ bufs, req, index: 0, offset: 0, head });
    this.#serveInbound();
    if (req.settled) return;
    this.#output.consumerWaits(); // the application waits: batch over
    if (!this.park(req)) {
      this.#recvWaiters.splice(this.#recvWaiters.findIndex((w) => w.req === req), 1);
      this.#recvFailure ??= brokenAfter("receive", req);
    }
  }

  /**
   * A `recvHead` at the front, with bytes buffered: its buffer is made for those it
   * takes (through the blank line, or all there are up to `max`).
   */
  #sizeHead(w: RecvWaiter): void {
    const { max, matched } = w.head!;
    const n = this.#inbound.findBlankLine(matched, max);
    w.bufs.push(new Uint8Array(n < 0 ? Math.min(this.#inbound.bytes, max) : n));
  }

  /** Moves buffered bytes into waiting receives, then reports an end of input. */
  #serveInbound(): void {
    if (this.#shutdownReq) {
      // Shutting down: the peer's remaining data is read and dropped until its FIN.
      this.#inbound.clear();
    }
    while (this.#recvWaiters.length > 0 && this.#inbound.bytes > 0) {
      const w = this.#recvWaiters[0];
      if (w.head !== null && w.bufs.length === 0) this.#sizeHead(w);
      this.#inbound.fill(w);
      if (w.index === w.bufs.length) {
        this.#recvWaiters.shift();
        if (w.head !== null) (w.req as Request<Uint8Array>).resolve(w.bufs[0]);
        else (w.req as Request<void>).resolve();
      }
    }
    while (
      this.#recvWaiters.length > 0 && this.#recvWaiters[0].head === null &&
      this.#recvWaiters[0].bufs.every((b) => !b.length)
    ) {
      (this.#recvWaiters.shift()!.req as Request<void>).resolve();
    }
    if (this.#eof || this.#readFailure) {
      const failure = this.#readFailure ??
        new DillError("EPIPE", `${this.name}: the peer closed the connection`);
      if (this.#recvWaiters.length > 0) {
        this.#recvFailure ??= failure;
        for (const w of this.#recvWaiters.splice(0)) w.req.reject(failure);
      }
      if (this.#shutdownReq) return this.#finishShutdown();
    }
    this.#pumpRead();
  }

  /**
   * A clean close ends when both directions have: the peer's input ended, and our
   * output was flushed and half-closed (or failed). Then the transport is released.
   */
  #finishShutdown(): void {
    const req = this.#shutdownReq;
    if (!req || !(this.#eof || this.#readFailure)) return;
    if (!this.#output.closed && !this.#output.failure) return;
    this.#shutdownReq = null;
    const failure = this.#readFailure ?? this.#output.failure;
    if (failure) req.reject(failure);
    else req.resolve();
    this.close(new DillError("ECANCELED", `${this.name} was closed`));
  }

  #attach(consumer: StreamConsumer): void {
    this.#consumer = consumer;
    this.#delivered = 0;
    if (this.#recvWaiters.length > 0) {
      const failure = new DillError("ECANCELED", `${this.name}: a protocol was attached`);
      for (const w of this.#recvWaiters.splice(0)) w.req.reject(failure);
    }
    for (const chunk of this.#inbound.takeAll()) this.#deliver(chunk);
    if (this.#readFailure) consumer.send({ kind: "fail", error: this.#readFailure });
    else if (this.#eof) consumer.send({ kind: "eof" });
    else this.#pumpRead();
  }

  #pumpRead(evenIfPaused = false): void {
    if (this.#reading || this.#eof || this.#readFailure || this.closedReason) return;
    if (
      this.#consumer ? this.#paused && !evenIfPaused : this.#inbound.bytes >= this.#readHighWater
    ) {
      return;
    }
    this.#reading = true;
    if (this.#transport.readChunks) {
      this.#transport.readChunks().then(
        (chunks) => this.send({ kind: "chunksRead", chunks }),
        (error) => this.send({ kind: "readFailed", error }),
      );
      return;
    }
    this.#readBuf = this.#inbound.readBuffer();
    this.#transport.read(this.#readBuf).then(this.#readSettled, this.#readSettled);
  }

  /** The buffer of the read in progress (one at a time: `#reading`). */
  #readBuf: Uint8Array | null = null;
  /**
   * The read's outcome: a count or `null` (EOF) when it returned, an error when it threw.
   * One function made per stream, not per read (a read per message is the common case),
   * and one for both outcomes: every callback is kept by every idle connection.
   */
  readonly #readSettled = (outcome: unknown): void => {
    const buf = this.#readBuf!;
    this.#readBuf = null;
    if (typeof outcome === "number" || outcome === null) {
      this.send({ kind: "readDone", buf, n: outcome });
    } else this.send({ kind: "readFailed", error: outcome });
  };

  #readDone(buf: Uint8Array, n: number | null): void {
    this.#reading = false;
    if (n === null) return this.#inputEnded(null);
    const chunk = this.#inbound.chunkOf(buf, n);
    if (!this.#consumer) {
      this.#inbound.push(chunk);
      return this.#serveInbound();
    }
    // The next read starts once the consumer's answers, queued behind this message, were
    // handled: a read target it set takes that read. A pause among them still lets that
    // one read go, as if it had started at once (reading stops after it).
    const evenIfPaused = !this.#paused;
    this.#deliver(chunk);
    this.send(evenIfPaused ? READ_ON_EVEN_IF_PAUSED : READ_ON);
  }

  /** Hands a chunk to the consumer: into its read target first, while it has one. */
  #deliver(chunk: Uint8Array): void {
    for (;;) {
      const part = this.#inbound.redirect(chunk);
      this.#delivered += part.length;
      this.#consumer!.send({ kind: "data", chunk: part, reusable: this.#inbound.lends(part) });
      if (part.length === chunk.length) return;
      chunk = chunk.subarray(part.length);
    }
  }

  /** A transport that hands its chunks over (see {@link Transport.readChunks}) read some. */
  #chunksRead(chunks: Uint8Array[] | null): void {
    this.#reading = false;
    if (chunks === null) return this.#inputEnded(null);
    // Many small chunks (small records) go up as one: one message instead of many.
    const joined = chunks.length > 1 && chunks.length * SMALL_CHUNK > totalLength(chunks)
      ? [concatBytes(chunks)]
      : chunks;
    for (const chunk of joined) {
      if (this.#consumer) this.#deliver(chunk);
      else this.#inbound.push(chunk);
    }
    this.#consumer ? this.#pumpRead() : this.#serveInbound();
  }

  #inputEnded(failure: DillError | null): void {
    if (failure) this.#readFailure = failure;
    else this.#eof = true;
    if (this.#consumer) {
      this.#consumer.send(failure ? { kind: "fail", error: failure } : { kind: "eof" });
    } else {
      this.#serveInbound();
    }
  }

  #timedOutClose(): DillError {
    return new DillError("ETIMEDOUT", `${this.name}: the peer did not close before the deadline`);
  }
}

/** Handed-over chunks smaller than this on average are joined before going up. */
const SMALL_CHUNK = 4 * KIB;

function totalLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const chunk of chunks) n += chunk.length;
  return n;
}
