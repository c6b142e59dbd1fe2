/**
 * The inbound side of a bytestream: bytes read ahead of the application, served to
 * exact-length receives in order, and the read buffer, sized to the traffic (it
 * grows while reads fill it and shrinks again when they get small, so an idle
 * connection's pending read pins little memory). A consumer may lend a buffer back
 * once done with it (`recycle`), or name where its next bytes should go (a read
 * target: the rest of a large message, read in place).
 *
 * @module
 */

import { blankLineStep } from "../protocol/http11.ts";
import { Slab } from "../protocol/slab.ts";
import { Fifo } from "./fifo.ts";

const KIB = 1024;
/**
 * The smallest read buffer, and the first. A pending read pins its buffer for as long as
 * the connection is idle (measured with Deno 2.9: a connection waiting on a 1 KiB read
 * costs 1.6 KiB more than one waiting on a 1-byte read), so an idle connection should
 * wait on a small one; a full read doubles the size, so a busy stream grows in a few reads.
 */
const READ_MIN = 256;
const READ_MAX = 256 * KIB;
/**
 * The unread rest of a read buffer serves the next read when it is at least this big
 * (and a quarter of the read size): a fresh buffer is zero-filled memory, about 100 ns
 * per KiB here, while a read into a smaller rest would only add reads.
 */
const TAIL_MIN = 32 * KIB;

/**
 * Small reads are copied out of the read buffer into slices of a shared {@link Slab}
 * instead of each into an `ArrayBuffer` of its own: a read per message is the common
 * case when messages come one at a time. A chunk held on to (a message the application
 * keeps) keeps at most its slab alive.
 */
const SLAB_SIZE = 8 * KIB;
const SLAB_MAX_CHUNK = SLAB_SIZE / 2;
const slab = new Slab(SLAB_SIZE);

function copyToSlab(bytes: Uint8Array): Uint8Array {
  const copy = slab.take(bytes.length);
  copy.set(bytes);
  return copy;
}

/** A receive being filled: its buffers and how far it got. */
export interface Fill {
  /** The caller's buffers, filled in order. */
  readonly bufs: Uint8Array[];
  /** Index of the buffer being filled. */
  index: number;
  /** Bytes already in `bufs[index]`. */
  offset: number;
}

/**
 * Bytes read ahead, and the buffers reads go into.
 *
 * @example
 * ```ts
 * import { ReadAhead } from "./read_ahead.ts";
 *
 * const inbound = new ReadAhead();
 * inbound.push(new Uint8Array([1, 2, 3]));
 * const fill = { bufs: [new Uint8Array(2)], index: 0, offset: 0 };
 * inbound.fill(fill);
 * console.log(fill.bufs[0], inbound.bytes); // Uint8Array(2) [ 1, 2 ] 1
 * ```
 */
export class ReadAhead {
  /** A Fifo: tiny reads can queue many chunks, and `Array.shift` would be quadratic. */
  #chunks: Fifo<Uint8Array> | null = null;
  #bytes = 0;
  #readSize = READ_MIN;
  #spare: Uint8Array | null = null;
  /** The read buffer last handed out in place (not copied): the only one `recycle` takes. */
  #lent: ArrayBufferLike | null = null;
  /** Where the consumer wants its next bytes ({@link ReadAhead.setTarget}), and how far it is filled. */
  #target: Uint8Array | null = null;
  #targetUsed = 0;
  /** The read in progress goes into the target (never to become a spare or lent buffer). */
  #readingTarget = false;

  /** Bytes buffered. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Buffers a chunk that was read. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    (this.#chunks ??= new Fifo()).push(chunk);
    this.#bytes += chunk.length;
  }

  /** Moves buffered bytes into `w`'s buffers, as far as both go. */
  fill(w: Fill): void {
    while (w.index < w.bufs.length && this.#bytes > 0) {
      const dst = w.bufs[w.index];
      const chunks = this.#chunks!;
      const src = chunks.peek()!;
      const n = Math.min(dst.length - w.offset, src.length);
      dst.set(n === src.length ? src : src.subarray(0, n), w.offset);
      w.offset += n;
      this.#bytes -= n;
      if (n === src.length) chunks.shift();
      else chunks.replaceFront(src.subarray(n));
      if (w.offset === dst.length) {
        w.index++;
        w.offset = 0;
        while (w.index < w.bufs.length && w.bufs[w.index].length === 0) w.index++;
      }
    }
  }

  /**
   * How many buffered bytes there are up to the end of the first blank line (CR LF CR LF,
   * the end of an HTTP head) within the first `max` bytes, or `-1` when it is not among
   * them. `matched`: how many bytes of CR LF CR LF the bytes before these ended with.
   */
  findBlankLine(matched: number, max: number): number {
    const chunks = this.#chunks;
    const end = Math.min(this.#bytes, max);
    let pos = 0; // stream offset of `chunk`'s first byte
    let c = 0;
    let chunk = chunks?.at(0);
    for (let p = 0; p < end; p++) {
      if (p - pos >= chunk!.length) {
        pos += chunk!.length;
        chunk = chunks!.at(++c);
      }
      matched = blankLineStep(matched, chunk![p - pos]);
      if (matched === 4) return p + 1;
    }
    return -1;
  }

  /** Removes and returns everything buffered. */
  takeAll(): Uint8Array[] {
    this.#bytes = 0;
    const chunks = this.#chunks;
    this.#chunks = null;
    return chunks === null ? [] : chunks.drain();
  }

  /** Drops everything buffered, the spare read buffer and the read target. */
  clear(): void {
    this.#chunks = null;
    this.#bytes = 0;
    this.#spare = null;
    this.#lent = null;
    this.#target = null;
  }

  /**
   * The consumer wants the next `target.length` bytes of the stream in `target`: reads
   * go straight into it, and bytes read elsewhere before (a read already in progress)
   * are copied into it by {@link ReadAhead.redirect}, so that every byte delivered
   * until it is full is a view of it, in order. Replaces an unfinished target (whose
   * consumer gave up on it).
   */
  setTarget(target: Uint8Array): void {
    this.#target = target.length > 0 ? target : null;
    this.#targetUsed = 0;
  }

  /** Forgets the read target (the consumer went away). */
  clearTarget(): void {
    this.#target = null;
  }

  /**
   * A chunk about to be delivered, taken into the read target if one is set and the
   * chunk is not already its next bytes: copies what fits into the target and returns
   * that view, leaving the rest of `chunk` (from the returned view's length on) for
   * the caller to pass here again. Returns `chunk` itself when there is no target or
   * the chunk was read into it.
   */
  redirect(chunk: Uint8Array): Uint8Array {
    const target = this.#target;
    if (target === null || chunk.buffer === target.buffer) return chunk;
    const at = this.#targetUsed;
    const n = Math.min(chunk.length, target.length - at);
    const view = target.subarray(at, at + n);
    view.set(n === chunk.length ? chunk : chunk.subarray(0, n));
    this.#advanceTarget(n);
    return view;
  }

  #advanceTarget(n: number): void {
    this.#targetUsed += n;
    if (this.#targetUsed === this.#target!.length) this.#target = null;
  }

  /**
   * A buffer for the next read: the rest of the read target, else the spare (a whole
   * buffer, or the unread tail of the last one), else a new one of the current read size.
   */
  readBuffer(): Uint8Array {
    this.#readingTarget = this.#target !== null;
    if (this.#target !== null) return this.#target.subarray(this.#targetUsed);
    const buf = this.#spare;
    this.#spare = null;
    // A buffer grown during a burst is dropped once reads got small: an idle connection's
    // pending read should not pin it. A tail (past its buffer's start) may be shorter than
    // the read size, down to #tailMin.
    if (buf !== null && buf.length <= 2 * this.#readSize) {
      const tail = buf.byteOffset > 0;
      if (buf.length >= (tail ? this.#tailMin() : this.#readSize)) {
        // Once a tail is read into, its buffer's head can no longer be taken back (`recycle`).
        if (tail) this.#lent = null;
        return buf;
      }
    }
    return new Uint8Array(this.#readSize);
  }

  #tailMin(): number {
    return Math.max(TAIL_MIN, this.#readSize >> 2);
  }

  /**
   * Whether `chunk` is a read buffer lent whole that {@link ReadAhead.recycle} would take
   * back now: not one that a read size changed since has made the wrong size (a consumer
   * would copy its bytes out for nothing).
   */
  lends(chunk: Uint8Array): boolean {
    const size = chunk.buffer.byteLength;
    return chunk.buffer === this.#lent && chunk.byteOffset === 0 && size >= this.#readSize &&
      size <= 2 * this.#readSize;
  }

  /**
   * A chunk this stream read was fully consumed by whoever it was handed to: if it
   * spans a whole read buffer of the current size, that buffer serves a later read
   * instead of a new (zero-filled) one. Saves an allocation per read on a busy stream.
   */
  recycle(chunk: Uint8Array): void {
    const buffer = chunk.buffer;
    // Only a read buffer lent whole (never a shared slab, never someone else's bytes),
    // and not once a read went into its tail (`readBuffer` forgets it then).
    if (buffer !== this.#lent) return;
    this.#lent = null;
    // A spare that is this buffer's own unread tail gives way to the whole buffer.
    if ((this.#spare !== null && this.#spare.buffer !== buffer) || chunk.byteOffset !== 0) return;
    const size = buffer.byteLength;
    if (size >= this.#readSize && size <= 2 * this.#readSize) this.#spare = new Uint8Array(buffer);
  }

  /**
   * A read put `n` bytes into `buf`: returns them as a chunk and adapts the read size.
   * A small read is copied out so the big buffer serves the next read; a larger one is
   * handed over in place, and the buffer's unused rest, if large, serves the next read.
   */
  chunkOf(buf: Uint8Array, n: number): Uint8Array {
    if (this.#readingTarget) {
      // Read into the target: delivered in place, whatever its size. (If the target was
      // dropped meanwhile, these are plain bytes in a buffer that is not the stream's.)
      this.#readingTarget = false;
      const target = this.#target;
      if (
        target !== null && buf.buffer === target.buffer &&
        buf.byteOffset === target.byteOffset + this.#targetUsed
      ) {
        this.#advanceTarget(n);
      }
      return buf.subarray(0, n);
    }
    // Reads into the smallest buffer are copied out too: the buffer then serves the next
    // read, and an idle connection's handshake buffer is not kept alive by its chunk.
    if (n < buf.length >> 3 || buf.length <= READ_MIN) {
      this.#spare = buf;
      if (n === buf.length) this.#readSize <<= 1;
      else if (n < buf.length >> 3 && this.#readSize > READ_MIN) this.#readSize >>= 1;
      return n <= SLAB_MAX_CHUNK ? copyToSlab(buf.subarray(0, n)) : buf.slice(0, n);
    }
    // A read into a tail lends nothing: its buffer's head may still be in use.
    if (buf.byteOffset === 0) {
      if (n === buf.length && this.#readSize < READ_MAX) this.#readSize <<= 1;
      this.#lent = buf.buffer;
    }
    if (buf.length - n >= this.#tailMin()) this.#spare = buf.subarray(n);
    return buf.subarray(0, n);
  }
}
