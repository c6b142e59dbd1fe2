/**
 * The bytestream actor: one per connection (TCP, Unix, in-memory pipe, TLS). It owns
 * the transport, reads ahead into a bounded buffer, serves exact-length `brecv`s,
 * and coalesces small writes into one transport write. When a protocol is attached
 * on top, the upper actor takes the read side: chunks are delivered to its mailbox,
 * paced by `pause`/`resume` so that a slow reader never makes memory grow.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { concatBytes } from "../protocol/bytes.ts";
import { DillError } from "../protocol/errors.ts";
import { Fifo } from "./fifo.ts";
import { SocketLayer } from "./handle.ts";
import type { PendingCall, Request } from "./request.ts";
import { type Transport, transportError } from "./transport.ts";

/** Limits of a bytestream socket. Every field is optional. */
export interface StreamOptions {
  /** Bytes read ahead before reading stops until the application catches up. Default 256 KiB. */
  readHighWater?: number;
  /** Bytes queued for writing before senders wait. Default 256 KiB. */
  writeHighWater?: number;
  /** Calls that may wait at once in each direction; more fail with `EBUSY`. Default 1024. */
  maxWaitingCalls?: number;
}

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
    /** Write at once instead of at the end of this turn (a close frame: the last word). */
    readonly urgent?: boolean;
  }
  | { readonly kind: "recv"; readonly bufs: Uint8Array[]; readonly req: Request<void> }
  | { readonly kind: "done"; readonly req: Request<void> }
  | { readonly kind: "shutdown"; readonly req: Request<void> }
  | { readonly kind: "attach"; readonly consumer: StreamConsumer }
  | { readonly kind: "detach"; readonly leftover: Uint8Array[] }
  | { readonly kind: "pause" }
  | { readonly kind: "resume" }
  | { readonly kind: "readDone"; readonly buf: Uint8Array; readonly n: number | null }
  | { readonly kind: "readFailed"; readonly error: unknown }
  | { readonly kind: "writeDone" }
  | { readonly kind: "flushNow" }
  | { readonly kind: "writeFailed"; readonly error: unknown }
  | { readonly kind: "closeWriteDone" };

const KIB = 1024;
/** Writes up to this size are copied into the coalescing buffer and answered at once. */
const COPY_LIMIT = 16 * KIB;
const COALESCE_SIZE = 64 * KIB;
/** Coalescing buffers kept for reuse by all streams: an idle connection holds none. */
const MAX_POOLED_BUFFERS = 16;
const bufferPool: Uint8Array[] = [];

function takeCoalescingBuffer(size: number): Uint8Array {
  if (size <= COALESCE_SIZE) {
    const pooled = bufferPool.pop();
    if (pooled) return pooled;
  }
  return new Uint8Array(Math.max(COALESCE_SIZE, size));
}

function returnCoalescingBuffer(buffer: ArrayBufferLike): void {
  if (buffer.byteLength === COALESCE_SIZE && bufferPool.length < MAX_POOLED_BUFFERS) {
    bufferPool.push(new Uint8Array(buffer));
  }
}
const READ_MIN = 1 * KIB;
const READ_MAX = 256 * KIB;

interface RecvWaiter {
  readonly bufs: Uint8Array[];
  readonly req: Request<void>;
  index: number;
  offset: number;
}

/** A queued write: our coalescing buffer or a caller's large buffer (written without copy). */
interface Segment {
  readonly bytes: Uint8Array;
  readonly ownBuffer: boolean;
  req: Request<void> | null;
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
  /** A Fifo: tiny reads can queue many chunks, and `Array.shift` would be quadratic. */
  readonly #inbound = new Fifo<Uint8Array>();
  #inBytes = 0;
  #recvWaiters: RecvWaiter[] = [];
  #reading = false;
  #readSize = READ_MIN;
  #spareReadBuf: Uint8Array | null = null;
  #eof = false;
  #readFailure: DillError | null = null;
  /** Set once a receive failed: later receives fail the same way. */
  #recvFailure: DillError | null = null;
  #consumer: StreamConsumer | null = null;
  #paused = false;
  #shutdownReq: Request<void> | null = null;

  // Outbound: segments queued in order, the coalescing tail, and waiting senders.
  #segments: Segment[] = [];
  #tail: Uint8Array | null = null;
  #tailLen = 0;
  #outBytes = 0;
  #writing = false;
  #sendWaiters: SendWaiter[] = [];
  /** Set once a send failed: later sends fail the same way. */
  #sendFailure: DillError | null = null;
  #outputDone = false;
  #doneReqs: Request<void>[] = [];
  #closeWriteStarted = false;
  /** A write is due at the end of this turn of the event loop. */
  #flushScheduled = false;
  #outputClosed = false;

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
    this.#pumpRead();
  }

  protected receive(msg: StreamMsg): void {
    switch (msg.kind) {
      case "send":
        return this.#send(msg.chunks, msg.req, msg.urgent === true);
      case "recv":
        return this.#recv(msg.bufs, msg.req);
      case "done":
        return this.#done(msg.req);
      case "shutdown":
        this.#shutdownReq = msg.req;
        this.#done(null);
        this.#serveInbound();
        if (this.#shutdownReq && !this.park(msg.req)) this.close(this.#timedOutClose());
        return;
      case "attach":
        return this.#attach(msg.consumer);
      case "detach":
        this.#consumer = null;
        this.#paused = false;
        for (const chunk of msg.leftover) this.#pushInbound(chunk);
        return this.#pumpRead();
      case "pause":
        this.#paused = true;
        return;
      case "resume":
        this.#paused = false;
        return this.#pumpRead();
      case "readDone":
        return this.#readDone(msg.buf, msg.n);
      case "readFailed":
        this.#reading = false;
        return this.#inputEnded(transportError(this.name, msg.error));
      case "flushNow":
        this.#flushScheduled = false;
        return this.#flush();
      case "writeDone":
        return this.#writeDone();
      case "writeFailed":
        this.#writing = false;
        return this.#failOutput(transportError(this.name, msg.error));
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
      this.#recvFailure ??= brokenAfter("receive", "ETIMEDOUT");
      return;
    }
    const s = this.#sendWaiters.findIndex((w) => w.req === req);
    if (s >= 0) this.#sendWaiters.splice(s, 1);
    const queued = this.#segments.some((seg) => seg.req === req);
    if (s >= 0 || queued || this.#doneReqs.includes(req as Request<void>)) {
      req.timeOut();
      this.#sendFailure ??= brokenAfter("send", "ETIMEDOUT");
    }
  }

  protected terminate(reason: DillError): void {
    this.#handOverAccepted();
    try {
      this.#transport.close();
    } catch {
      // Already closed by the peer or by a failed operation: nothing left to release.
    }
    for (const w of this.#recvWaiters.splice(0)) w.req.reject(reason);
    for (const w of this.#sendWaiters.splice(0)) w.req.reject(reason);
    for (const seg of this.#segments.splice(0)) seg.req?.reject(reason);
    for (const req of this.#doneReqs.splice(0)) req.reject(reason);
    this.#shutdownReq?.reject(reason);
    this.#inbound.clear();
    this.#segments = [];
    this.#tail = this.#spareReadBuf = null;
  }

  // ---- outbound -------------------------------------------------------------------

  #send(chunks: Uint8Array[], req: Request<void> | undefined, urgent: boolean): void {
    const failure = this.#sendFailure ??
      (this.#outputDone
        ? new DillError("EPIPE", `${this.name}: the output was already closed (done)`)
        : null);
    if (failure) return req?.reject(failure);
    // Internal frames (req undefined: pongs, close frames) never wait behind users.
    if (req && (this.#sendWaiters.length > 0 || this.#outBytes >= this.#writeHighWater)) {
      if (this.#sendWaiters.length >= this.#maxWaiting) {
        return req.reject(tooManyWaiting(this.name, "send", this.#maxWaiting));
      }
      this.#sendWaiters.push({ chunks, req });
      if (!this.park(req)) {
        this.#sendWaiters.pop();
        this.#sendFailure ??= brokenAfter("send", "ETIMEDOUT");
      }
      return;
    }
    this.#enqueue(chunks, req);
    if (urgent) this.#flush();
    else this.#scheduleFlush();
  }

  /**
   * Starts writing at the end of the current turn of the event loop rather than at
   * once: every send made in this turn (an application answering a batch of messages,
   * say) then goes out in one write, instead of one write for the first and another
   * for the rest.
   */
  #scheduleFlush(): void {
    if (this.#writing || this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.send({ kind: "flushNow" }));
  }

  /** Queues chunks in order; the request settles when its last referenced byte is written. */
  #enqueue(chunks: Uint8Array[], req: Request<void> | undefined): void {
    let waitsForWrite = false;
    const copyAll = req !== undefined && req.deadline === 0;
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      this.#outBytes += chunk.length;
      if (chunk.length <= COPY_LIMIT || copyAll) {
        this.#appendToTail(chunk);
      } else {
        this.#sealTail();
        this.#segments.push({ bytes: chunk, ownBuffer: false, req: null });
        waitsForWrite = true;
      }
    }
    if (!req) return;
    if (!waitsForWrite) return req.resolve();
    const last = this.#segments[this.#segments.length - 1];
    last.req = req;
    if (!this.park(req)) {
      last.req = null;
      this.#sendFailure ??= brokenAfter("send", "ETIMEDOUT");
    }
  }

  #appendToTail(chunk: Uint8Array): void {
    if (this.#tail && this.#tailLen + chunk.length > this.#tail.length) this.#sealTail();
    if (!this.#tail) {
      this.#tail = takeCoalescingBuffer(chunk.length);
      this.#tailLen = 0;
    }
    this.#tail.set(chunk, this.#tailLen);
    this.#tailLen += chunk.length;
  }

  #sealTail(): void {
    if (!this.#tail || this.#tailLen === 0) return;
    this.#segments.push({
      bytes: this.#tail.subarray(0, this.#tailLen),
      ownBuffer: true,
      req: null,
    });
    this.#tail = null;
    this.#tailLen = 0;
  }

  #flush(): void {
    if (this.#writing || this.closedReason) return;
    if (this.#segments.length === 0) this.#sealTail();
    const segment = this.#segments[0];
    if (segment === undefined) return this.#maybeCloseWrite();
    this.#writing = true;
    this.#writeSegment(segment.bytes);
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
    const segment = this.#segments.shift()!;
    this.#outBytes -= segment.bytes.length;
    // A written coalescing buffer goes back to the pool: no allocation per message, and
    // nothing held by a connection that went quiet.
    if (segment.ownBuffer) returnCoalescingBuffer(segment.bytes.buffer);
    segment.req?.resolve();
    while (
      this.#sendWaiters.length > 0 && this.#outBytes < this.#writeHighWater && !this.#sendFailure
    ) {
      const w = this.#sendWaiters.shift()!;
      if (!w.req.settled) this.#enqueue(w.chunks, w.req);
    }
    this.#flush();
  }

  #failOutput(error: DillError): void {
    this.#sendFailure ??= error;
    for (const seg of this.#segments.splice(0)) seg.req?.reject(error);
    for (const w of this.#sendWaiters.splice(0)) w.req.reject(error);
    for (const req of this.#doneReqs.splice(0)) req.reject(error);
    this.#tail = null;
    this.#outBytes = 0;
    this.#finishShutdown();
  }

  /** Closes the output once everything queued is written (TCP half-close). */
  #done(req: Request<void> | null): void {
    if (this.#sendFailure) return req?.reject(this.#sendFailure);
    this.#outputDone = true;
    if (req) {
      if (this.#outputClosed) return req.resolve();
      this.#doneReqs.push(req);
      if (!this.park(req)) {
        this.#doneReqs.pop();
        this.#sendFailure ??= brokenAfter("send", "ETIMEDOUT");
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

  /**
   * On an abrupt close, bytes that sends already reported as sent are still handed to
   * the transport, as a kernel socket keeps delivering what was written before close():
   * a write waiting for the end of this turn would otherwise be lost.
   */
  #handOverAccepted(): void {
    if (this.#writing || this.#sendFailure || !this.#flushScheduled) return;
    this.#sealTail();
    // Only bytes whose senders were told they were sent; one write, so that a partial
    // write can only cut the end off, never a piece from the middle.
    const accepted: Uint8Array[] = [];
    for (const segment of this.#segments) {
      if (segment.req) break;
      accepted.push(segment.bytes);
    }
    if (accepted.length === 0) return;
    const bytes = concatBytes(accepted);
    this.#transport.write(bytes).catch(() => {});
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
    if (!this.park(req)) {
      this.#recvWaiters.splice(this.#recvWaiters.findIndex((w) => w.req === req), 1);
      this.#recvFailure ??= brokenAfter("receive", "ETIMEDOUT");
    }
  }

  /** Moves buffered bytes into waiting receives, then reports an end of input. */
  #serveInbound(): void {
    if (this.#shutdownReq) {
      // Shutting down: the peer's remaining data is read and dropped until its FIN.
      this.#inbound.clear();
      this.#inBytes = 0;
    }
    while (this.#recvWaiters.length > 0 && this.#inBytes > 0) {
      const w = this.#recvWaiters[0];
      this.#fill(w);
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

  #fill(w: RecvWaiter): void {
    while (w.index < w.bufs.length && this.#inBytes > 0) {
      const dst = w.bufs[w.index];
      const src = this.#inbound.peek()!;
      const n = Math.min(dst.length - w.offset, src.length);
      dst.set(n === src.length ? src : src.subarray(0, n), w.offset);
      w.offset += n;
      this.#inBytes -= n;
      if (n === src.length) this.#inbound.shift();
      else this.#inbound.replaceFront(src.subarray(n));
      if (w.offset === dst.length) {
        w.index++;
        w.offset = 0;
        while (w.index < w.bufs.length && w.bufs[w.index].length === 0) w.index++;
      }
    }
  }

  #pushInbound(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#inbound.push(chunk);
    this.#inBytes += chunk.length;
  }

  #attach(consumer: StreamConsumer): void {
    this.#consumer = consumer;
    if (this.#recvWaiters.length > 0) {
      const failure = new DillError("ECANCELED", `${this.name}: a protocol was attached`);
      for (const w of this.#recvWaiters.splice(0)) w.req.reject(failure);
    }
    for (const chunk of this.#inbound.drain()) consumer.send({ kind: "data", chunk });
    this.#inBytes = 0;
    if (this.#readFailure) consumer.send({ kind: "fail", error: this.#readFailure });
    else if (this.#eof) consumer.send({ kind: "eof" });
    else this.#pumpRead();
  }

  #pumpRead(): void {
    if (this.#reading || this.#eof || this.#readFailure || this.closedReason) return;
    if (this.#consumer ? this.#paused : this.#inBytes >= this.#readHighWater) return;
    this.#reading = true;
    let buf = this.#spareReadBuf;
    this.#spareReadBuf = null;
    // A buffer grown during a burst is dropped once reads got small: an idle connection's
    // pending read should not pin it.
    if (!buf || buf.length < this.#readSize || buf.length > 2 * this.#readSize) {
      buf = new Uint8Array(this.#readSize);
    }
    this.#transport.read(buf).then(
      (n) => this.send({ kind: "readDone", buf, n }),
      (error) => this.send({ kind: "readFailed", error }),
    );
  }

  #readDone(buf: Uint8Array, n: number | null): void {
    this.#reading = false;
    if (n === null) return this.#inputEnded(null);
    let chunk: Uint8Array;
    if (n < buf.length >> 3) {
      // A small read is copied out so the big buffer serves the next read.
      chunk = buf.slice(0, n);
      this.#spareReadBuf = buf;
      if (this.#readSize > READ_MIN) this.#readSize >>= 1;
    } else {
      chunk = buf.subarray(0, n);
      if (n === buf.length && this.#readSize < READ_MAX) this.#readSize <<= 1;
    }
    if (this.#consumer) this.#consumer.send({ kind: "data", chunk });
    else this.#pushInbound(chunk);
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

function brokenAfter(direction: "send" | "receive", code: string): DillError {
  return new DillError(
    "ECONNRESET",
    `this socket can no longer ${direction}: an earlier ${direction} failed (${code})`,
  );
}

function tooManyWaiting(name: string, direction: string, limit: number): DillError {
  return new DillError(
    "EBUSY",
    `${name}: ${limit} calls already wait to ${direction} (option maxWaitingCalls)`,
  );
}
