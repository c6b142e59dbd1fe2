/**
 * The bytestream actor: one per connection (TCP, Unix, in-memory pipe, TLS). It owns
 * the transport, reads ahead into a bounded buffer ({@link ReadAhead}), serves
 * exact-length `brecv`s, and writes what senders queued ({@link WriteQueue}, which
 * coalesces small writes into one transport write). When a protocol is attached
 * on top, the upper actor takes the read side: chunks are delivered to its mailbox,
 * paced by `pause`/`resume` so that a slow reader never makes memory grow. A send
 * completes once the transport wrote its last byte, never earlier (unless the socket
 * was given a send buffer: {@link StreamOptions.sendBuffer}).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { concatBytes } from "../protocol/bytes.ts";
import { DillError } from "../protocol/errors.ts";
import { SocketLayer } from "./handle.ts";
import { type Fill, ReadAhead } from "./read_ahead.ts";
import { brokenAfter, type PendingCall, type Request } from "./request.ts";
import { closeTransport, lingerThenClose, type Transport, transportError } from "./transport.ts";
import { recycleBuffers, WriteQueue } from "./write_queue.ts";
import { now } from "./time.ts";
import { type StreamOptions, tooManyWaiting } from "./stream_options.ts";

/** Events a bytestream delivers to the protocol attached on top of it. */
export type StreamEvent =
  | { readonly kind: "data"; readonly chunk: Uint8Array }
  | { readonly kind: "eof" }
  | { readonly kind: "fail"; readonly error: DillError };

/** The mailbox of whoever consumes a stream's input. */
export interface StreamConsumer {
  /** Delivers one stream event. */
  send(event: StreamEvent): void;
}

/** Messages a bytestream actor understands. */
export type StreamMsg =
  | {
    readonly kind: "send";
    readonly chunks: Uint8Array[];
    readonly req?: Request<void>;
    /** Write at once instead of once the running code finished (a close frame: the last word). */
    readonly urgent?: boolean;
    /**
     * A frame the protocol above sent on its own with a request to learn when it was
     * written (its pongs): it never waits behind the application's sends, and like
     * frames sent without a request it is still written after an `hclose`.
     */
    readonly internal?: boolean;
    /** The only chunk is a view of a buffer from `takeWriteBuffer`: the queue owns it. */
    readonly pooled?: boolean;
  }
  | { readonly kind: "recv"; readonly bufs: Uint8Array[]; readonly req: Request<void> }
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
  | { readonly kind: "writeDone" }
  | { readonly kind: "flushNow" }
  /**
   * The protocol on top waits for input (its application called receive and nothing
   * is there): bytes held back to batch sends (see `sendBuffer`) go out now.
   */
  | { readonly kind: "consumerWaits" }
  /** Reads on, after what the consumer answered to the chunk just delivered (a read target). */
  | { readonly kind: "readOn"; readonly evenIfPaused: boolean }
  | { readonly kind: "writeFailed"; readonly error: unknown }
  | { readonly kind: "closeWriteDone" }
  | { readonly kind: "turnEnded" };

const KIB = 1024;

interface RecvWaiter extends Fill {
  readonly req: Request<void>;
}

interface SendWaiter {
  readonly chunks: Uint8Array[];
  readonly req: Request<void>;
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
  readonly #writeHighWater: number;
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

  // Outbound: bytes queued in order, and the senders waiting for room.
  readonly #outbound: WriteQueue;
  #writing = false;
  /** The transport write in progress (it settles when the write ended either way). */
  #inflight: Promise<void> | null = null;
  #sendWaiters: SendWaiter[] = [];
  /** Set once a send failed: later sends fail the same way. */
  #sendFailure: DillError | null = null;
  #outputDone = false;
  #doneReqs: Request<void>[] = [];
  #closeWriteStarted = false;
  /** A write is due once the running code finished (a microtask is queued). */
  #flushScheduled = false;
  /** A write is due once the running code stops adding bytes (no send waits for it). */
  #lateFlushScheduled = false;
  #lateSeenBytes = 0;
  #lateIdleHops = 0;
  #outputClosed = false;
  /** Calls with deadline 0 (or past) that must complete within this turn. */
  #mustWriteNow: PendingCall[] = [];
  #turnCheckScheduled = false;

  /**
   * @param name label for messages, such as `"tcp"`
   * @param transport the connection this actor now owns
   * @param options buffer limits
   */
  constructor(name: string, transport: Transport, options: StreamOptions = {}) {
    super(name);
    this.#transport = transport;
    this.#readHighWater = options.readHighWater ?? 256 * KIB;
    this.#writeHighWater = options.writeHighWater ?? 256 * KIB;
    this.#maxWaiting = options.maxWaitingCalls ?? 1024;
    this.#outbound = new WriteQueue(options.sendBuffer ?? 0);
    this.#pumpRead();
  }

  protected receive(msg: StreamMsg): void {
    switch (msg.kind) {
      case "send":
        return this.#send(
          msg.chunks,
          msg.req,
          msg.urgent === true,
          msg.internal === true,
          msg.pooled === true,
        );
      case "recv":
        return this.#recv(msg.bufs, msg.req);
      case "done":
        return this.#done(msg.req, msg.once === true);
      case "shutdown":
        this.#shutdownReq = msg.req;
        this.#done(null, false);
        this.#serveInbound();
        if (this.#shutdownReq && !this.#parkOrTurn(msg.req)) this.close(this.#timedOutClose());
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
        this.#flushScheduled = false;
        return this.#flush();
      case "consumerWaits":
        if (this.#lateFlushScheduled) this.#flush();
        return;
      case "readOn":
        return this.#pumpRead(msg.evenIfPaused && !this.#inputStopped);
      case "writeDone":
        return this.#writeDone();
      case "writeFailed":
        this.#writing = false;
        this.#inflight = null;
        return this.#failOutput(transportError(this.name, msg.error));
      case "turnEnded":
        this.#turnCheckScheduled = false;
        // What could be done without waiting was done: calls still pending would wait.
        for (const req of this.#mustWriteNow.splice(0)) if (!req.settled) this.expired(req);
        return;
      case "closeWriteDone":
        this.#outputClosed = true;
        for (const req of this.#doneReqs.splice(0)) req.resolve();
        return this.#finishShutdown();
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
    const s = this.#sendWaiters.findIndex((w) => w.req === req);
    if (s >= 0) this.#sendWaiters.splice(s, 1);
    const queued = s < 0 && [...this.#outbound.waiting()].includes(req as Request<void>);
    const d = this.#doneReqs.indexOf(req as Request<void>);
    if (d >= 0) this.#doneReqs.splice(d, 1);
    if (s >= 0 || queued || d >= 0) this.#sendTimedOut(req);
  }

  protected terminate(reason: DillError): void {
    const unclaimed = this.#sendFailure ? [] : this.#outbound.unclaimed(this.#writing);
    const buffers = this.#outbound.takeBuffers();
    if (this.#inflight || unclaimed.length > 0) {
      lingerThenClose(this.#transport, this.#inflight, unclaimed).then((done) => {
        if (done) recycleBuffers(buffers);
      });
    } else {
      closeTransport(this.#transport);
      recycleBuffers(buffers);
    }
    for (const w of this.#recvWaiters.splice(0)) w.req.reject(reason);
    for (const w of this.#sendWaiters.splice(0)) w.req.reject(reason);
    for (const req of this.#outbound.clear()) req.reject(reason);
    for (const req of this.#doneReqs.splice(0)) req.reject(reason);
    this.#mustWriteNow = [];
    this.#shutdownReq?.reject(reason);
    this.#inbound.clear();
  }

  // ---- outbound -------------------------------------------------------------------

  #send(
    chunks: Uint8Array[],
    req: Request<void> | undefined,
    urgent: boolean,
    internal: boolean,
    pooled: boolean,
  ): void {
    const failure = this.#sendFailure ??
      (this.#outputDone
        ? new DillError("EPIPE", `${this.name}: the output was already closed (done)`)
        : null);
    if (failure) return req?.reject(failure);
    // Frames the protocol sends on its own (pongs, close echoes) never wait behind users.
    const waits = req !== undefined && !internal;
    if (waits && (this.#sendWaiters.length > 0 || this.#outbound.bytes >= this.#writeHighWater)) {
      if (this.#sendWaiters.length >= this.#maxWaiting) {
        return req.reject(tooManyWaiting(this.name, "send", this.#maxWaiting));
      }
      this.#sendWaiters.push({ chunks, req });
      if (!this.park(req)) {
        this.#sendWaiters.pop();
        this.#sendFailure ??= brokenAfter("send", req);
      }
      return;
    }
    const waiting = this.#enqueue(chunks, req, waits, pooled);
    if (urgent || this.#mustWriteNow.length > 0) this.#flush();
    else if (this.#outbound.sendBuffer > 0 && !waiting && this.#outbound.waitingSends === 0) {
      this.#scheduleLateFlush();
    } else this.#scheduleFlush();
  }

  /**
   * Starts writing once the code running now has finished (a microtask), rather than
   * at once: every send made meanwhile (an application answering a batch of messages,
   * a protocol adding a frame) goes out in the same write, and sends arriving while a
   * write is in progress go out together in the next one. Not later than that: every
   * send waits for its write, so an application that awaits each send (an echo loop)
   * makes one write per message whatever is done here, and an event-loop turn of delay
   * per write would only add to it (measured: about 2.5 times fewer echoes per second
   * than with a microtask).
   */
  #scheduleFlush(): void {
    if (this.#writing || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.send({ kind: "flushNow" }));
  }

  /**
   * Starts writing once the running code stopped adding bytes, when no send waits for
   * the write (they all fit in the send buffer): an echo loop that awaits each send
   * then answers every message of a read before the one write that carries them all.
   * "Stopped" is the application waiting to receive (the consumer on top says so with
   * `consumerWaits`, a `brecv` parks), or else {@link LATE_FLUSH_IDLE_HOPS} microtasks in
   * a row without new bytes: an echo loop's next send comes 2 or 3 promise hops after
   * the last one completed. Microtasks, not an event-loop turn: `setImmediate` was
   * measured, one in-flight round trip 1.6 times slower.
   */
  #scheduleLateFlush(): void {
    if (this.#writing || this.#flushScheduled || this.#lateFlushScheduled) return;
    this.#lateFlushScheduled = true;
    this.#lateSeenBytes = this.#outbound.bytes;
    this.#lateIdleHops = 0;
    queueMicrotask(this.#lateFlushCheck);
  }

  readonly #lateFlushCheck = (): void => {
    if (this.#writing || this.closedReason) {
      this.#lateFlushScheduled = false; // a write started: it takes what was queued
      return;
    }
    const bytes = this.#outbound.bytes;
    if (bytes !== this.#lateSeenBytes) {
      this.#lateSeenBytes = bytes;
      this.#lateIdleHops = 0;
    } else if (++this.#lateIdleHops >= LATE_FLUSH_IDLE_HOPS) {
      this.#lateFlushScheduled = false;
      return this.send({ kind: "flushNow" });
    }
    queueMicrotask(this.#lateFlushCheck);
  };

  /**
   * Queues chunks in order; the request settles once the transport took its last byte
   * (or at once, when it fits in the send buffer). Waiting for the write is what every
   * other send does: its deadline is watched like any parked call's, by the
   * process-wide deadline scheduler (one heap entry, no timer of its own).
   */
  #enqueue(
    chunks: Uint8Array[],
    req: Request<void> | undefined,
    claimed: boolean,
    pooled = false,
  ): boolean {
    if (!this.#outbound.append(chunks, req ?? null, claimed, pooled)) {
      req?.resolve();
      return false;
    }
    if (req) this.#watchSend(req);
    return req !== undefined;
  }

  #watchSend(req: Request<void>): void {
    if (!this.watchAbort(req)) return this.#sendTimedOut(req);
    if (req.deadline < 0) return;
    if (req.deadline === 0 || req.deadline <= now()) return this.#withinTurn(req);
    if (!this.park(req)) this.#sendFailure ??= brokenAfter("send", req);
  }

  /**
   * Deadline 0 (or past) means "only if it can be done without waiting". The local
   * I/O it takes (a write into a socket buffer with room, a FIN, a read of what the
   * peer already sent) completes within the current turn of the event loop, while
   * anything that needs the peer does not: a call still pending when the turn ends
   * would wait, and fails as its deadline requires.
   */
  #withinTurn(req: PendingCall): void {
    this.#mustWriteNow.push(req);
    if (!this.#turnCheckScheduled) {
      this.#turnCheckScheduled = true;
      setImmediate(() => this.send({ kind: "turnEnded" }));
    }
  }

  /** Parks `req`; with deadline 0 or past, gives it until the end of this turn instead. */
  #parkOrTurn(req: PendingCall): boolean {
    if (req.deadline === 0 || (req.deadline > 0 && req.deadline <= now())) {
      this.#withinTurn(req);
      return true;
    }
    return this.park(req);
  }

  #sendTimedOut(req: PendingCall): void {
    if (req.settled) return;
    req.timeOut();
    this.#sendFailure ??= brokenAfter("send", req);
  }

  #flush(): void {
    if (this.#writing || this.closedReason) return;
    const segment = this.#outbound.next();
    if (segment === undefined) return this.#maybeCloseWrite();
    this.#writing = true;
    this.#inflight = this.#writeSegment(segment.bytes);
  }

  async #writeSegment(segment: Uint8Array): Promise<void> {
    try {
      let off = 0;
      while (off < segment.length) {
        off += await this.#transport.write(off === 0 ? segment : segment.subarray(off));
      }
      this.send({ kind: "writeDone" });
    } catch (error) {
      this.send({ kind: "writeFailed", error });
    }
  }

  #writeDone(): void {
    this.#writing = false;
    this.#inflight = null;
    for (const req of this.#outbound.written().reqs) req.resolve();
    while (
      this.#sendWaiters.length > 0 && this.#outbound.bytes < this.#writeHighWater &&
      !this.#sendFailure
    ) {
      const w = this.#sendWaiters.shift()!;
      if (!w.req.settled) this.#enqueue(w.chunks, w.req, true);
    }
    this.#flush();
  }

  #failOutput(error: DillError): void {
    this.#sendFailure ??= error;
    for (const req of this.#outbound.clear()) req.reject(error);
    for (const w of this.#sendWaiters.splice(0)) w.req.reject(error);
    for (const req of this.#doneReqs.splice(0)) req.reject(error);
    this.#finishShutdown();
  }

  /**
   * Closes the output once everything queued is written (TCP FIN, TLS close_notify);
   * input goes on. With `once`, a second close of the output is `EPIPE`.
   */
  #done(req: Request<void> | null, once: boolean): void {
    if (once && this.#outputDone) {
      return req?.reject(new DillError("EPIPE", `${this.name}: the output was already closed`));
    }
    if (this.#sendFailure) return req?.reject(this.#sendFailure);
    this.#outputDone = true;
    if (req) {
      if (this.#outputClosed) return req.resolve();
      this.#doneReqs.push(req);
      if (!this.#parkOrTurn(req)) {
        this.#doneReqs.pop();
        this.#sendFailure ??= brokenAfter("send", req);
        return;
      }
    }
    this.#flush();
  }

  #maybeCloseWrite(): void {
    if (!this.#outputDone || this.#closeWriteStarted || this.#sendWaiters.length > 0) return;
    this.#closeWriteStarted = true;
    this.#transport.closeWrite().then(
      () => this.send({ kind: "closeWriteDone" }),
      (error) => this.send({ kind: "writeFailed", error }),
    );
  }

  // ---- inbound --------------------------------------------------------------------

  #recv(bufs: Uint8Array[], req: Request<void>): void {
    if (this.#consumer) {
      return req.reject(new DillError("EBUSY", `${this.name}: the input belongs to a protocol`));
    }
    if (this.#recvFailure) return req.reject(this.#recvFailure);
    if (this.#recvWaiters.length >= this.#maxWaiting) {
      return req.reject(tooManyWaiting(this.name, "receive", this.#maxWaiting));
    }
    this.#recvWaiters.push({ bufs, req, index: 0, offset: 0 });
    this.#serveInbound();
    if (req.settled) return;
    if (this.#lateFlushScheduled) this.#flush(); // the application waits: batch over
    if (!this.park(req)) {
      this.#recvWaiters.splice(this.#recvWaiters.findIndex((w) => w.req === req), 1);
      this.#recvFailure ??= brokenAfter("receive", req);
    }
  }

  /** Moves buffered bytes into waiting receives, then reports an end of input. */
  #serveInbound(): void {
    if (this.#shutdownReq) {
      // Shutting down: the peer's remaining data is read and dropped until its FIN.
      this.#inbound.clear();
    }
    while (this.#recvWaiters.length > 0 && this.#inbound.bytes > 0) {
      const w = this.#recvWaiters[0];
      this.#inbound.fill(w);
      if (w.index === w.bufs.length) {
        this.#recvWaiters.shift();
        w.req.resolve();
      }
    }
    while (this.#recvWaiters.length > 0 && this.#recvWaiters[0].bufs.every((b) => !b.length)) {
      this.#recvWaiters.shift()!.req.resolve();
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
    if (!this.#outputClosed && !this.#sendFailure) return;
    this.#shutdownReq = null;
    const failure = this.#readFailure ?? this.#sendFailure;
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
    const buf = this.#inbound.readBuffer();
    this.#transport.read(buf).then(
      (n) => this.send({ kind: "readDone", buf, n }),
      (error) => this.send({ kind: "readFailed", error }),
    );
  }

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
    this.send({ kind: "readOn", evenIfPaused });
  }

  /** Hands a chunk to the consumer: into its read target first, while it has one. */
  #deliver(chunk: Uint8Array): void {
    for (;;) {
      const part = this.#inbound.redirect(chunk);
      this.#delivered += part.length;
      this.#consumer!.send({ kind: "data", chunk: part });
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

/**
 * Microtasks in a row without a new send after which a send-buffered stream writes
 * what it holds (see `ByteStream.#scheduleLateFlush`).
 */
const LATE_FLUSH_IDLE_HOPS = 16;

/** Handed-over chunks smaller than this on average are joined before going up. */
const SMALL_CHUNK = 4 * KIB;

function totalLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const chunk of chunks) n += chunk.length;
  return n;
}
