/**
 * The outbound side of a bytestream: bytes queued for the transport, in order.
 * Small sends are copied into a shared coalescing buffer so that many of them go out
 * in one write; large ones are queued as they are (no copy). Coalescing buffers come
 * from a small pool shared by every stream, so an idle connection holds none.
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import type { Request } from "./request.ts";

const KIB = 1024;
/** Writes up to this size are copied into the coalescing buffer. */
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

/** One transport write's worth of bytes: a coalescing buffer or a caller's large buffer. */
export interface Segment {
  /** The bytes to write. */
  readonly bytes: Uint8Array;
  /** Whether `bytes` is a pooled coalescing buffer (returned to the pool once written). */
  readonly ownBuffer: boolean;
  /** The send that completes when this segment is written, if any. */
  req: Request<void> | null;
}

/**
 * The queue of bytes waiting for the transport, with small writes coalesced.
 *
 * @example
 * ```ts
 * import { WriteQueue } from "./write_queue.ts";
 *
 * const q = new WriteQueue();
 * q.append([new Uint8Array([1, 2]), new Uint8Array([3])], false);
 * const segment = q.next()!;
 * console.log(segment.bytes); // Uint8Array(3) [ 1, 2, 3 ]
 * q.written();
 * console.log(q.bytes); // 0
 * ```
 */
export class WriteQueue {
  #segments: Segment[] = [];
  #tail: Uint8Array | null = null;
  #tailLen = 0;
  #bytes = 0;

  /** Bytes queued and not yet written. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queues `chunks` in order. Small chunks (all of them when `copyAll`) are copied
   * into the coalescing tail; large ones are queued without a copy. Returns the
   * segment holding the last uncopied chunk (a sender must wait until it is written,
   * since its buffer is still in use), or `null` when everything was copied.
   */
  append(chunks: readonly Uint8Array[], copyAll: boolean): Segment | null {
    let last: Segment | null = null;
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      this.#bytes += chunk.length;
      if (chunk.length <= COPY_LIMIT || copyAll) {
        this.#appendToTail(chunk);
      } else {
        this.#sealTail();
        last = { bytes: chunk, ownBuffer: false, req: null };
        this.#segments.push(last);
      }
    }
    return last;
  }

  /** The next segment to write (the coalescing tail is sealed if nothing else is queued). */
  next(): Segment | undefined {
    if (this.#segments.length === 0) this.#sealTail();
    return this.#segments[0];
  }

  /** The segment from {@link WriteQueue.next} was written: drops it and returns it. */
  written(): Segment {
    const segment = this.#segments.shift()!;
    this.#bytes -= segment.bytes.length;
    // A written coalescing buffer goes back to the pool: no allocation per message, and
    // nothing held by a connection that went quiet.
    if (segment.ownBuffer) returnCoalescingBuffer(segment.bytes.buffer);
    return segment;
  }

  /** Whether `req` waits for a queued segment. */
  holds(req: unknown): boolean {
    return this.#segments.some((seg) => seg.req === req);
  }

  /** Empties the queue; returns the segments that were in it. */
  clear(): Segment[] {
    this.#tail = null;
    this.#tailLen = 0;
    this.#bytes = 0;
    return this.#segments.splice(0);
  }

  /**
   * The bytes at the head of the queue that no sender waits for (they were reported
   * as sent), as one buffer, or `null`.
   */
  accepted(): Uint8Array | null {
    this.#sealTail();
    const accepted: Uint8Array[] = [];
    for (const segment of this.#segments) {
      if (segment.req) break;
      accepted.push(segment.bytes);
    }
    return accepted.length === 0 ? null : concatBytes(accepted);
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
}
