/**
 * The data message a receiver is assembling from frames: its kind, its announced
 * length against the size limits, and its payload gathered from views into the fed
 * chunks, copied into one buffer only when it has to be.
 *
 * @module
 */

import { CloseCode } from "./close_codes.ts";
import { compressedSizeLimit, inflatedLimit } from "./compressed_message.ts";
import type { MessageInflater } from "./deflate_codec.ts";
import type { FrameViolation, MessageSequence } from "./frame_header.ts";
import { Opcode } from "./frame.ts";

/** More pieces than this in a partial message get gathered into one buffer. */
const MAX_PARTS = 64;
/** Chunk memory a partial message may pin beyond twice its own size before being gathered. */
const RETAINED_SLACK = 64 * 1024;
/** Smallest buffer allocated to gather a partial message. */
const MIN_ASSEMBLY_CAPACITY = 4096;
/**
 * A final frame whose missing payload is at least this long may have it read straight
 * into the message's buffer ({@link MessageAssembly.reserveRest}); shorter remainders
 * arrive within a read or two, and copying them costs less than arranging that.
 */
export const READ_TARGET_MIN = 64 * 1024;
/**
 * The buffer for a message's whole payload is allocated ahead of its bytes only once
 * at least this fraction of them arrived: memory stays within this many times the
 * bytes received, whatever length a peer announces.
 */
const RESERVE_FACTOR = 8;

/**
 * One data message in progress. Pieces are kept as views while they are few and pin
 * little of their chunks' memory; past that they are gathered into one buffer that
 * grows with the bytes received, never with an announced length.
 *
 * @example
 * ```ts
 * import { MessageAssembly } from "./message_assembly.ts";
 *
 * const message = new MessageAssembly(1 << 20);
 * message.begin(true, false);
 * message.announce(3);
 * message.add(new Uint8Array([1]), false);
 * message.add(new Uint8Array([2, 3]), true);
 * console.log(message.take()); // Uint8Array(3) [ 1, 2, 3 ]
 * message.end();
 * ```
 */
export class MessageAssembly implements MessageSequence {
  /** Largest payload of one data message (after inflating, for a compressed one). */
  readonly maxMessageSize: number;
  #inflater: MessageInflater | null = null;
  /** Largest compressed size of a message: the inflated limit plus DEFLATE's worst overhead. */
  #maxWireSize: number;

  /** A data message is in progress. */
  inMessage = false;
  /** Its first frame was binary. */
  binary = false;
  /** Its first frame had RSV1: its payload is DEFLATE data. */
  compressed = false;
  /** Payload bytes announced by its frames so far. */
  length = 0;

  /** Received pieces, as views into fed chunks; they follow #assembly's bytes. */
  #parts: Uint8Array[] = [];
  #partsBytes = 0;
  /** Bytes of the chunk buffers the pieces keep alive (counted once per piece). */
  #partsRetained = 0;
  /** Earlier pieces gathered into one buffer, when there were many or they pinned much. */
  #assembly: Uint8Array | null = null;
  #assemblyLength = 0;
  /** #assembly holds the whole payload's room, given out by reserveRest; #parts stays empty. */
  #reserved = false;
  /** Payload length of the message before (a likely size for the next). */
  #previousLength = 0;

  /**
   * Creates the message state of one connection, with no message in progress.
   *
   * @param maxMessageSize largest payload of a message, at most 2^53 - 1
   */
  constructor(maxMessageSize: number) {
    this.maxMessageSize = maxMessageSize;
    this.#maxWireSize = compressedSizeLimit(maxMessageSize, null);
  }

  /** The inflater of compressed messages, whose own limit may lower the compressed size limit. */
  set inflater(inflater: MessageInflater | null) {
    this.#inflater = inflater;
    this.#maxWireSize = compressedSizeLimit(this.maxMessageSize, inflater);
  }

  /** Payload bytes held for the message so far. */
  get bufferedBytes(): number {
    return this.#assemblyLength + this.#partsBytes;
  }

  /** Nothing of the message's payload is held yet. */
  get isEmpty(): boolean {
    return this.#partsBytes === 0 && this.#assembly === null;
  }

  /** Why a data frame of `length` bytes takes the message past its limit, or `null`. */
  tooLong(opcode: number, rsv1: boolean, length: number): FrameViolation | null {
    const messageLength = this.length + length;
    const compressed = opcode === Opcode.CONTINUATION ? this.compressed : rsv1;
    if (messageLength <= (compressed ? this.#maxWireSize : this.maxMessageSize)) return null;
    return {
      code: CloseCode.MESSAGE_TOO_BIG,
      message: compressed
        ? `compressed message of ${messageLength}+ bytes cannot inflate under the limit of ${
          inflatedLimit(this.maxMessageSize, this.#inflater)
        }`
        : `message of ${messageLength}+ bytes is over the limit of ${this.maxMessageSize}`,
    };
  }

  /** Starts a message with its first frame. */
  begin(binary: boolean, compressed: boolean): void {
    this.inMessage = true;
    this.binary = binary;
    this.compressed = compressed;
  }

  /** Counts the payload a frame of the message announced. */
  announce(length: number): void {
    this.length += length;
  }

  /** Ends the message (its payload taken or dropped). */
  end(): void {
    this.inMessage = false;
    this.#previousLength = this.length;
    this.length = 0;
  }

  /**
   * Adds a piece of payload, gathering pieces when they get many or pin much. Once
   * {@link MessageAssembly.reserveRest} gave out the payload's buffer, pieces go
   * straight into it: one that was read into its place there is only counted.
   *
   * @param piece a view, kept as is
   * @param lastFrame whether it is from the message's final frame (the total is known)
   */
  add(piece: Uint8Array, lastFrame: boolean): void {
    if (piece.length === 0) return;
    if (this.#reserved) {
      // The buffer of the whole payload is there: a piece read into it is in place, and
      // one that was on its way before is copied to where it belongs.
      const assembly = this.#assembly!;
      const at = this.#assemblyLength;
      if (piece.buffer !== assembly.buffer || piece.byteOffset !== assembly.byteOffset + at) {
        assembly.set(piece, at);
      }
      this.#assemblyLength = at + piece.length;
      return;
    }
    const parts = this.#parts;
    const last = parts.length > 0 ? parts[parts.length - 1] : null;
    if (
      last !== null && last.buffer === piece.buffer &&
      last.byteOffset + last.length === piece.byteOffset
    ) {
      // Read right after the previous piece into the same memory (a transport that reads
      // into one arena, as TLS does a record at a time): one wider view, and no copy when
      // the message completes.
      parts[parts.length - 1] = new Uint8Array(
        last.buffer,
        last.byteOffset,
        last.length + piece.length,
      );
      this.#partsBytes += piece.length;
      return;
    }
    parts.push(piece);
    this.#partsBytes += piece.length;
    this.#partsRetained += piece.buffer.byteLength;
    // Views keep whole chunk buffers alive: tiny fragments each in its own big read buffer
    // would otherwise pin far more memory than the message size limit suggests.
    if (
      parts.length > 1 &&
      (parts.length >= MAX_PARTS || this.#partsRetained > 2 * this.#partsBytes + RETAINED_SLACK)
    ) {
      this.#gather(lastFrame);
    }
  }

  /** The complete payload, once its final frame was read: the single piece itself when there is one, else one copy. */
  take(): Uint8Array {
    let data: Uint8Array;
    const parts = this.#parts;
    if (this.#assembly !== null) {
      data = this.#gather(true).subarray(0, this.#assemblyLength);
    } else if (parts.length === 1) {
      data = parts[0];
    } else if (parts.length === 0) {
      data = new Uint8Array(0);
    } else {
      data = new Uint8Array(this.#partsBytes);
      let at = 0;
      for (const part of parts) {
        data.set(part, at);
        at += part.length;
      }
    }
    this.drop();
    return data;
  }

  /**
   * Gives out the place where the rest of the message's payload goes, so that it can be
   * read there directly instead of being copied from read buffers: the buffer of the
   * whole payload is allocated (the bytes held so far are moved in) and the view of its
   * missing `rest` bytes is returned. Pieces added later go to their place in it (those
   * read there cost no copy: {@link MessageAssembly.add}), and
   * {@link MessageAssembly.take} returns the buffer itself. Only in the message's final frame (so the total is known), for at
   * least {@link READ_TARGET_MIN} missing bytes, and once the bytes received are at
   * least an eighth of the total; otherwise returns `null`.
   *
   * @param rest payload bytes of the message not received yet (all in its final frame)
   */
  reserveRest(rest: number): Uint8Array | null {
    const total = this.length;
    const held = this.#assemblyLength + this.#partsBytes;
    if (
      this.#reserved || rest < READ_TARGET_MIN || held + rest !== total ||
      held * RESERVE_FACTOR < total
    ) {
      return null;
    }
    if (this.#assembly === null || this.#assembly.length < total) {
      const whole = new Uint8Array(total);
      if (this.#assembly !== null) whole.set(this.#assembly.subarray(0, this.#assemblyLength));
      this.#assembly = whole;
    }
    this.#gather(true);
    this.#reserved = true;
    return this.#assembly.subarray(held, total);
  }

  /**
   * Copies the pieces that are views of `buffer` into the message's own buffer, so
   * that nothing here refers to `buffer` any more; `false` when `buffer` is that own
   * buffer (bytes read in place: see {@link MessageAssembly.reserveRest}).
   *
   * @param buffer the memory of a chunk about to be reused
   * @param lastFrame whether the message's final frame is being read (the total is known)
   */
  release(buffer: ArrayBufferLike, lastFrame: boolean): boolean {
    if (this.#assembly?.buffer === buffer) return false;
    if (this.#parts.some((part) => part.buffer === buffer)) this.#gather(lastFrame);
    return true;
  }

  /** Forgets the payload held. */
  drop(): void {
    this.#reserved = false;
    this.#parts = [];
    this.#partsBytes = 0;
    this.#partsRetained = 0;
    this.#assembly = null;
    this.#assemblyLength = 0;
  }

  /** Appends the pieces to #assembly, growing it with the data received; returns it. */
  #gather(lastFrame: boolean): Uint8Array {
    const needed = this.#assemblyLength + this.#partsBytes;
    let assembly = this.#assembly;
    if (assembly === null || assembly.length < needed) {
      // Double for amortized appends: the buffer stays within twice the bytes received.
      // In the final frame the total is known, so the buffer never goes past it (and the
      // last one is exact); before it, more fragments may come, and capping at what was
      // announced so far would regrow and recopy the whole message for every few frames.
      // A message as long as the previous one is likely (a peer sending fragmented
      // messages of one size): that size is taken at once when it is within 8 times the
      // bytes received, sparing the regrowths (each a new zero-filled buffer and a copy).
      let size = Math.max(needed, 2 * (assembly?.length ?? 0), MIN_ASSEMBLY_CAPACITY);
      const likely = this.#previousLength;
      if (likely > size && likely <= RESERVE_FACTOR * needed) size = likely;
      const cap = lastFrame ? this.length : this.maxMessageSize;
      const grown = new Uint8Array(Math.max(needed, Math.min(size, cap)));
      if (assembly !== null) grown.set(assembly.subarray(0, this.#assemblyLength));
      this.#assembly = assembly = grown;
    }
    let at = this.#assemblyLength;
    for (const part of this.#parts) {
      assembly.set(part, at);
      at += part.length;
    }
    this.#assemblyLength = at;
    this.#parts.length = 0;
    this.#partsBytes = 0;
    this.#partsRetained = 0;
    return assembly;
  }
}
