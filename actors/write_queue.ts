/**
 * The outbound side of a bytestream: bytes queued for the transport, in order, each
 * send attached to the segment that holds its last byte (it completes when that
 * segment was written), or, with a send buffer, completed as soon as it is queued
 * while the queue holds no more than the buffer's bytes (those bytes are then written
 * even if the stream is closed right after). Small sends are copied into a shared coalescing buffer so
 * that many of them go out in one write; large ones are queued as they are (no
 * copy). Coalescing buffers come from a small pool shared by every stream, so an
 * idle connection holds none.
 *
 * @module
 */

import type { Request } from "./request.ts";

const KIB = 1024;
/** Writes up to this size are copied into the coalescing buffer. */
const COPY_LIMIT = 16 * KIB;
/**
 * Coalescing buffers come in two sizes. A tail starts small (a send answering one
 * message needs no more) and moves to a large buffer only when a batch outgrows it.
 * Every connection with a write in progress holds one, so with many busy connections
 * the small ones are what the pool must cover: a pool of 64 KiB buffers ran out at a
 * few dozen connections, and each 64 B echo then allocated (and zero-filled) 64 KiB.
 */
const SMALL_SIZE = 4 * KIB;
const COALESCE_SIZE = 64 * KIB;
/** Buffers of each size kept for reuse by all streams (1 MiB each): an idle connection holds none. */
const MAX_POOLED_SMALL = 256;
const MAX_POOLED_LARGE = 16;
const smallPool: Uint8Array[] = [];
const largePool: Uint8Array[] = [];

function takeCoalescingBuffer(size: number): Uint8Array {
  if (size <= SMALL_SIZE) return smallPool.pop() ?? new Uint8Array(SMALL_SIZE);
  if (size <= COALESCE_SIZE) return largePool.pop() ?? new Uint8Array(COALESCE_SIZE);
  return new Uint8Array(size);
}

/**
 * Write buffers larger than a coalescing buffer (a client's masked frames of up to
 * 4 MiB), kept for reuse up to 4 MiB in all, process-wide, instead of a fresh
 * zero-filled buffer per frame. Sizes are rounded up to 64 KiB so that frames of about
 * one size share buffers.
 */
const MAX_BIG_WRITE = 4 * 1024 * KIB;
const MAX_POOLED_BIG_BYTES = 4 * 1024 * KIB;
const bigPool: Uint8Array[] = [];
let bigPooledBytes = 0;
/** The big buffers handed out by takeWriteBuffer: only these go back to bigPool. */
const bigBuffers = new WeakSet<ArrayBufferLike>();

function takeBigBuffer(size: number): Uint8Array {
  for (let i = 0; i < bigPool.length; i++) {
    const buffer = bigPool[i];
    // A pooled buffer at most a quarter larger than needed.
    if (buffer.length >= size && buffer.length - size <= size >> 2) {
      bigPool.splice(i, 1);
      bigPooledBytes -= buffer.length;
      return buffer;
    }
  }
  const buffer = new Uint8Array(Math.ceil(size / COALESCE_SIZE) * COALESCE_SIZE);
  bigBuffers.add(buffer.buffer);
  return buffer;
}

function returnCoalescingBuffer(buffer: ArrayBufferLike): void {
  if (buffer.byteLength > COALESCE_SIZE) {
    if (!bigBuffers.has(buffer) || bigPooledBytes + buffer.byteLength > MAX_POOLED_BIG_BYTES) {
      return;
    }
    bigPool.push(new Uint8Array(buffer));
    bigPooledBytes += buffer.byteLength;
  } else if (buffer.byteLength === SMALL_SIZE) {
    if (smallPool.length < MAX_POOLED_SMALL) smallPool.push(new Uint8Array(buffer));
  } else if (buffer.byteLength === COALESCE_SIZE && largePool.length < MAX_POOLED_LARGE) {
    largePool.push(new Uint8Array(buffer));
  }
}

/**
 * Gives coalescing buffers taken out of a queue with {@link WriteQueue.takeBuffers}
 * back to the pool, once no write uses them any more.
 *
 * @example
 * ```ts
 * import { recycleBuffers, WriteQueue } from "./write_queue.ts";
 *
 * const q = new WriteQueue();
 * q.append([new Uint8Array([1, 2])], null);
 * recycleBuffers(q.takeBuffers());
 * ```
 */
export function recycleBuffers(buffers: readonly ArrayBufferLike[]): void {
  for (const buffer of buffers) returnCoalescingBuffer(buffer);
}

/**
 * A pooled buffer of at least `size` bytes for a caller to build one large write in
 * (a masked frame, instead of a fresh zero-filled buffer per frame): queued with
 * {@link WriteQueue.append}'s `pooled`, it goes back to the pool once written. `null`
 * for a write the queue would copy into its coalescing buffer anyway (at most 16 KiB),
 * or one over 4 MiB.
 *
 * @example
 * ```ts
 * import { takeWriteBuffer, WriteQueue } from "./write_queue.ts";
 *
 * const buffer = takeWriteBuffer(20_000)!;
 * const frame = buffer.subarray(0, 20_000); // filled by the caller
 * const q = new WriteQueue();
 * q.append([frame], null, false, true);
 * console.log(q.next()!.ownBuffer); // true: back to the pool once written
 * ```
 */
export function takeWriteBuffer(size: number): Uint8Array | null {
  if (size <= COPY_LIMIT || size > MAX_BIG_WRITE) return null;
  return size <= COALESCE_SIZE ? takeCoalescingBuffer(size) : takeBigBuffer(size);
}

/**
 * The requests of a segment that completes none: shared, never written to (the type says
 * so; not frozen, so that code iterating segments' lists sees one kind of array).
 */
const NO_REQS: readonly Request<void>[] = [];

/** One transport write's worth of bytes: a coalescing buffer or a caller's large buffer. */
export interface Segment {
  /** The bytes to write. */
  readonly bytes: Uint8Array;
  /** Whether `bytes` is a pooled coalescing buffer (returned to the pool once written). */
  readonly ownBuffer: boolean;
  /** The sends that complete when this segment is written. */
  readonly reqs: readonly Request<void>[];
  /** Whether bytes of an application's send are in it (not only frames a layer sent on its own). */
  readonly claimed: boolean;
  /**
   * Whether it ends inside one send's bytes (a frame's header, say, whose payload is the
   * next segment): once it is written, the segments up to that send's end must be too.
   */
  readonly open: boolean;
}

/**
 * The queue of bytes waiting for the transport, with small writes coalesced.
 *
 * @example
 * ```ts
 * import { WriteQueue } from "./write_queue.ts";
 *
 * const q = new WriteQueue();
 * q.append([new Uint8Array([1, 2]), new Uint8Array([3])], null);
 * const segment = q.next()!;
 * console.log(segment.bytes); // Uint8Array(3) [ 1, 2, 3 ]
 * q.written();
 * console.log(q.bytes); // 0
 * ```
 */
export class WriteQueue {
  readonly #sendBuffer: number;
  /** Segments to write, oldest first; made on the first one (an idle stream holds none). */
  #segments: Segment[] | null = null;
  #tail: Uint8Array | null = null;
  #tailLen = 0;
  /** Sends whose last byte is in the tail; made on the first one. */
  #tailReqs: Request<void>[] | null = null;
  /** Whether bytes of an application's send are in the tail. */
  #tailClaimed = false;
  #bytes = 0;
  /** Sends waiting for their write (attached to a segment or to the tail). */
  #waitingSends = 0;
  /**
   * Bytes from the head of the queue that belong to sends already completed (with a
   * send buffer): they must be written even after the stream was closed.
   */
  #committed = 0;

  /**
   * @param sendBuffer bytes a send may leave queued and still complete at once (see
   *   `StreamOptions.sendBuffer`); 0: every send waits for its write
   */
  constructor(sendBuffer = 0) {
    this.#sendBuffer = sendBuffer;
  }

  /** Bytes a send may leave queued and still complete at once. */
  get sendBuffer(): number {
    return this.#sendBuffer;
  }

  /** Sends waiting for their write. */
  get waitingSends(): number {
    return this.#waitingSends;
  }

  /** Bytes queued and not yet written. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queues `chunks` in order: small ones are copied into the coalescing tail, large
   * ones queued without a copy. `req` completes when the segment holding its last
   * byte was written. `claimed` says the bytes are an application's send (not a frame
   * a protocol layer sent on its own, such as a pong or a close echo): see
   * {@link WriteQueue.unclaimed}. `pooled` says the only chunk is a view of a buffer
   * from {@link takeWriteBuffer}: it is queued as it is and returns to the pool once
   * written. Returns `false` (and keeps nothing of `req`: the caller completes it) when
   * there was nothing to send, or when the send may complete at once: no earlier send
   * waits and the queue, with it, fits in the send buffer.
   */
  append(
    chunks: readonly Uint8Array[],
    req: Request<void> | null,
    claimed = req !== null,
    pooled = false,
  ): boolean {
    let last: Segment & { readonly reqs: Request<void>[] } | null = null;
    let any = false;
    if (req && this.#committed > this.#bytes - this.#tailLen && !this.#fits(chunks)) {
      // The tail holds bytes of completed sends, which are written even if the stream
      // closes now, while this send will wait: it starts a segment of its own, so that a
      // close hands over the completed bytes without any of this send's (not its frame
      // header without the payload queued after it, nor bytes of a send that then fails).
      this.#sealTail();
    }
    if (pooled) {
      this.#sealTail();
      any = true;
      this.#bytes += chunks[0].length;
      last = { bytes: chunks[0], ownBuffer: true, reqs: [], claimed, open: false };
      (this.#segments ??= []).push(last);
    } else {
      let end = chunks.length;
      while (end > 0 && chunks[end - 1].length === 0) end--;
      // Whether the tail holds bytes of this send: a segment sealed then ends inside it.
      let inTail = false;
      for (let i = 0; i < end; i++) {
        const chunk = chunks[i];
        if (chunk.length === 0) continue;
        any = true;
        this.#bytes += chunk.length;
        if (chunk.length <= COPY_LIMIT) {
          // A protocol's own frame does not join an application's bytes still queued: at
          // close those may be left out, and the frame must not go with them.
          if (!claimed && this.#tailClaimed && !inTail) this.#sealTail();
          this.#appendToTail(chunk, inTail);
          this.#tailClaimed ||= claimed;
          inTail = true;
          last = null;
        } else {
          this.#sealTail(inTail);
          inTail = false;
          last = { bytes: chunk, ownBuffer: false, reqs: [], claimed, open: i < end - 1 };
          (this.#segments ??= []).push(last);
        }
      }
    }
    if (!any) return false;
    if (req && this.#waitingSends === 0 && this.#bytes <= this.#sendBuffer) {
      this.#committed = this.#bytes;
      return false;
    }
    if (req) {
      this.#waitingSends++;
      if (last) last.reqs.push(req);
      else (this.#tailReqs ??= []).push(req);
    }
    return true;
  }

  /** The next segment to write (the coalescing tail is sealed if nothing else is queued). */
  next(): Segment | undefined {
    if (this.#segments === null || this.#segments.length === 0) this.#sealTail();
    return this.#segments?.[0];
  }

  /** The segment from {@link WriteQueue.next} was written: drops it and returns it. */
  written(): Segment {
    const segment = this.#segments!.shift()!;
    this.#bytes -= segment.bytes.length;
    this.#committed = Math.max(0, this.#committed - segment.bytes.length);
    this.#waitingSends -= segment.reqs.length;
    // A written coalescing buffer goes back to the pool: no allocation per message, and
    // nothing held by a connection that went quiet.
    if (segment.ownBuffer) returnCoalescingBuffer(segment.bytes.buffer);
    return segment;
  }

  /** Whether nothing is queued. */
  get empty(): boolean {
    return (this.#segments === null || this.#segments.length === 0) && this.#tailLen === 0;
  }

  /** The sends waiting for queued bytes, oldest first. */
  waiting(): Request<void>[] {
    const reqs: Request<void>[] = [];
    for (const segment of this.#segments ?? []) for (const req of segment.reqs) reqs.push(req);
    for (const req of this.#tailReqs ?? NO_REQS) reqs.push(req);
    return reqs;
  }

  /** Whether `req` is one of the sends waiting for queued bytes. */
  holds(req: unknown): boolean {
    for (const segment of this.#segments ?? []) {
      if (segment.reqs.includes(req as Request<void>)) return true;
    }
    return this.#tailReqs !== null && this.#tailReqs.includes(req as Request<void>);
  }

  /**
   * The queued bytes that must be written even though the stream is closing: those of
   * sends already completed (with a send buffer), and frames a protocol layer sent on
   * its own (pongs, close frames). The segments holding bytes of a send still waiting
   * are left out whole, the rest of that send with them; what comes after them still
   * goes. A send whose first bytes are written (or in the write in progress) is
   * finished, so no frame is ever cut; `skip` leaves out the head segment (the write in
   * progress).
   */
  unclaimed(skip: boolean): Uint8Array[] {
    if (!this.#tailClaimed || this.#committed > this.#bytes - this.#tailLen) this.#sealTail();
    const out: Uint8Array[] = [];
    const segments = this.#segments ?? [];
    let offset = 0;
    let finishing = false; // the previous segment ended inside a send that was started
    let leavingOut = false; // the previous segment ended inside a send that is left out
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i];
      const start = offset;
      offset += segment.bytes.length;
      if (i === 0 && skip) {
        finishing = segment.open;
      } else if (
        leavingOut || (segment.claimed && start >= this.#committed && !finishing)
      ) {
        leavingOut = segment.open;
      } else {
        finishing = segment.open;
        out.push(segment.bytes);
      }
    }
    return out;
  }

  /**
   * The pooled buffers the queue holds (queued segments and the tail), for a closing
   * stream: it returns them with {@link recycleBuffers} once no write uses them, so a
   * connection that closes with bytes queued (the echo of a close frame) leaves its
   * buffer to the next one instead of to the garbage collector. Call before
   * {@link WriteQueue.clear}.
   */
  takeBuffers(): ArrayBufferLike[] {
    const out: ArrayBufferLike[] = [];
    for (const segment of this.#segments ?? []) {
      if (segment.ownBuffer) out.push(segment.bytes.buffer);
    }
    if (this.#tail) out.push(this.#tail.buffer);
    return out;
  }

  /** Empties the queue; returns the sends that waited for it. */
  clear(): Request<void>[] {
    const reqs = this.waiting();
    this.#tail = null;
    this.#tailLen = 0;
    this.#tailReqs = null;
    this.#tailClaimed = false;
    this.#bytes = 0;
    this.#waitingSends = 0;
    this.#committed = 0;
    this.#segments = null;
    return reqs;
  }

  /** Whether a send of `chunks` would complete at once (see {@link WriteQueue.append}). */
  #fits(chunks: readonly Uint8Array[]): boolean {
    if (this.#waitingSends > 0) return false;
    let total = this.#bytes;
    for (const chunk of chunks) total += chunk.length;
    return total <= this.#sendBuffer;
  }

  /** `open`: the tail already holds bytes of the send `chunk` belongs to. */
  #appendToTail(chunk: Uint8Array, open: boolean): void {
    const need = this.#tailLen + chunk.length;
    if (this.#tail && need > this.#tail.length) {
      if (this.#tail.length < COALESCE_SIZE && need <= COALESCE_SIZE) this.#growTail();
      else this.#sealTail(open);
    }
    if (!this.#tail) {
      this.#tail = takeCoalescingBuffer(chunk.length);
      this.#tailLen = 0;
    }
    this.#tail.set(chunk, this.#tailLen);
    this.#tailLen += chunk.length;
  }

  /** Moves a small tail that a batch outgrew into a large buffer. */
  #growTail(): void {
    const small = this.#tail!;
    const large = takeCoalescingBuffer(COALESCE_SIZE);
    large.set(small.subarray(0, this.#tailLen));
    returnCoalescingBuffer(small.buffer);
    this.#tail = large;
  }

  /** `open`: the tail ends inside a send, whose next bytes follow in a segment of their own. */
  #sealTail(open = false): void {
    if (!this.#tail || this.#tailLen === 0) return;
    (this.#segments ??= []).push({
      bytes: this.#tail.subarray(0, this.#tailLen),
      ownBuffer: true,
      reqs: this.#tailReqs ?? NO_REQS,
      claimed: this.#tailClaimed,
      open,
    });
    this.#tail = null;
    this.#tailLen = 0;
    this.#tailReqs = null;
    this.#tailClaimed = false;
  }
}
