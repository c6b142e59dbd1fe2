/**
 * Reading WebSocket frame headers (RFC 6455 section 5.2) from fed bytes: every field is
 * checked as soon as its bytes are there, so a broken header is reported without
 * waiting for the rest of it.
 *
 * @module
 */

import { CloseCode } from "./close_codes.ts";
import type { ByteQueue } from "./byte_queue.ts";
import { rsv1Violation } from "./compressed_message.ts";
import { MAX_CONTROL_PAYLOAD, MAX_FRAME_HEADER_LENGTH, Opcode } from "./frame.ts";
import { applyMask, MASK_LENGTH } from "./mask.ts";

/**
 * Returned by the readers of the receiver when the queued bytes do not reach the end of
 * what they read: feed more and call again.
 *
 * @example
 * ```ts
 * import { ByteQueue } from "./byte_queue.ts";
 * import { FrameHeaderReader, NEED_MORE } from "./frame_header.ts";
 *
 * const queue = new ByteQueue();
 * queue.push(new Uint8Array([0x82])); // half a header
 * const reader = new FrameHeaderReader(false);
 * const idle = { inMessage: false, tooLong: () => null };
 * console.log(reader.read(queue, idle) === NEED_MORE); // true
 * ```
 */
export const NEED_MORE = 0;

/**
 * Returned by {@link FrameHeaderReader.read} when a whole header was read and consumed.
 *
 * @example
 * ```ts
 * import { ByteQueue } from "./byte_queue.ts";
 * import { FrameHeaderReader, HEADER_READ } from "./frame_header.ts";
 *
 * const queue = new ByteQueue();
 * queue.push(new Uint8Array([0x89, 0x00])); // an empty ping
 * const reader = new FrameHeaderReader(false);
 * const idle = { inMessage: false, tooLong: () => null };
 * console.log(reader.read(queue, idle) === HEADER_READ, reader.opcode); // true 9
 * ```
 */
export const HEADER_READ = 1;

/**
 * A broken rule: the close code to answer it with (1002, 1007 or 1009) and why.
 *
 * @example
 * ```ts
 * import type { FrameViolation } from "./frame_header.ts";
 *
 * const violation: FrameViolation = { code: 1002, message: "frame has reserved opcode 3" };
 * console.log(violation.code);
 * ```
 */
export interface FrameViolation {
  /** The close code to send. */
  readonly code: number;
  /** What the peer did wrong. */
  readonly message: string;
}

/**
 * What a header is checked against beyond itself: the data message in progress.
 *
 * @example
 * ```ts
 * import type { MessageSequence } from "./frame_header.ts";
 *
 * // No message in progress, and no size limit.
 * const idle: MessageSequence = { inMessage: false, tooLong: () => null };
 * console.log(idle.inMessage);
 * ```
 */
export interface MessageSequence {
  /** A fragmented data message is in progress: the next data frame must continue it. */
  readonly inMessage: boolean;
  /**
   * Why a data frame announcing `length` payload bytes would take its message past a
   * size limit, or `null` when it fits.
   */
  tooLong(opcode: number, rsv1: boolean, length: number): FrameViolation | null;
}

/** Reads a big-endian unsigned 32-bit integer. */
/** Where {@link FrameHeaderReader.unmask} spells out the key for `applyMask`, during the call. */
const SHARED_KEY = new Uint8Array(MASK_LENGTH);

function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

function violation(code: number, message: string): FrameViolation {
  return { code, message };
}

/**
 * Reads one frame header at a time and keeps the fields of the frame whose payload
 * follows, with the unmasking state of that payload.
 *
 * @example
 * ```ts
 * import { ByteQueue } from "./byte_queue.ts";
 * import { FrameHeaderReader, HEADER_READ } from "./frame_header.ts";
 *
 * const queue = new ByteQueue();
 * // A masked binary frame of 2 bytes, as a client sends it, key 01 02 03 04.
 * queue.push(new Uint8Array([0x82, 0x82, 1, 2, 3, 4, 0x0b, 0x0c]));
 * const reader = new FrameHeaderReader(true);
 * const idle = { inMessage: false, tooLong: () => null };
 * if (reader.read(queue, idle) === HEADER_READ) {
 *   const payload = queue.front.subarray(queue.offset, queue.offset + reader.remaining);
 *   reader.unmask(payload);
 *   console.log(reader.fin, reader.opcode, payload); // true 2 Uint8Array(2) [ 10, 14 ]
 * }
 * ```
 */
export class FrameHeaderReader {
  /** A server requires masked frames, a client unmasked ones. */
  readonly expectMasked: boolean;
  /** permessage-deflate was negotiated: RSV1 may mark a compressed message. */
  deflate = false;

  // The frame whose payload follows the header last read.
  /** FIN: the frame ends its message. */
  fin = false;
  /** The frame's opcode. */
  opcode = 0;
  /** RSV1: the frame starts a compressed message. */
  rsv1 = false;
  /** The payload is masked (see {@link FrameHeaderReader.unmask}). */
  masked = false;
  /**
   * The masking key of a masked frame, its 4 bytes in one number (first byte lowest):
   * a number field costs 8 bytes, a key array of its own about 250 on every connection.
   */
  #maskKey = 0;
  /** Payload bytes announced by the header. */
  length = 0;
  /** Payload bytes not read yet. */
  remaining = 0;
  /** Payload bytes read so far, modulo 4: where the key continues. */
  maskOffset = 0;

  /** Gathers a header that is split across chunks; allocated on first need. */
  #scratch: Uint8Array | null = null;

  /**
   * Creates a reader for one connection.
   *
   * @param expectMasked whether frames must be masked (a server) or must not (a client)
   */
  constructor(expectMasked: boolean) {
    this.expectMasked = expectMasked;
  }

  /**
   * Parses the next frame header, checking each field as soon as its bytes are there,
   * and consumes it once whole.
   *
   * @param queue the fed bytes
   * @param message the data message in progress, for the fragmentation and size rules
   * @returns {@link HEADER_READ}, {@link NEED_MORE}, or the rule the header breaks
   */
  read(
    queue: ByteQueue,
    message: MessageSequence,
  ): typeof NEED_MORE | typeof HEADER_READ | FrameViolation {
    const queued = queue.size;
    if (queued === 0) return NEED_MORE;
    let src = queue.front;
    let p = queue.offset;
    let available = src.length - p;

    // The first byte alone can break most rules: check it before waiting for more.
    const byte0 = src[p];
    const fin = (byte0 & 0x80) !== 0;
    const opcode = byte0 & 0x0f;
    const rsv1 = (byte0 & 0x40) !== 0;
    if ((byte0 & 0x30) !== 0) {
      return violation(
        CloseCode.PROTOCOL_ERROR,
        "frame has RSV2 or RSV3 set but no extension defines them",
      );
    }
    if (rsv1) {
      const why = rsv1Violation(opcode, this.deflate);
      if (why !== null) return violation(CloseCode.PROTOCOL_ERROR, why);
    }
    if (opcode >= Opcode.CLOSE) {
      if (opcode > Opcode.PONG) {
        return violation(CloseCode.PROTOCOL_ERROR, `frame has reserved opcode ${opcode}`);
      }
      if (!fin) {
        return violation(CloseCode.PROTOCOL_ERROR, "control frame is fragmented (FIN is 0)");
      }
    } else if (opcode === Opcode.CONTINUATION) {
      if (!message.inMessage) {
        return violation(
          CloseCode.PROTOCOL_ERROR,
          "continuation frame without a fragmented message in progress",
        );
      }
    } else if (opcode <= Opcode.BINARY) {
      if (message.inMessage) {
        return violation(
          CloseCode.PROTOCOL_ERROR,
          "new data frame while a fragmented message is in progress",
        );
      }
    } else {
      return violation(CloseCode.PROTOCOL_ERROR, `frame has reserved opcode ${opcode}`);
    }

    if (queued < 2) return NEED_MORE;
    if (available < MAX_FRAME_HEADER_LENGTH && available < queued) {
      // The header may continue in the next chunks: gather its bytes first.
      // Allocated on first need: most connections never see a header split across reads.
      src = this.#scratch ??= new Uint8Array(MAX_FRAME_HEADER_LENGTH);
      available = queue.peek(src);
      p = 0;
    }
    const byte1 = src[p + 1];
    const masked = (byte1 & 0x80) !== 0;
    let length = byte1 & 0x7f;
    if (masked !== this.expectMasked) {
      return violation(
        CloseCode.PROTOCOL_ERROR,
        masked ? "server sent a masked frame" : "client sent an unmasked frame",
      );
    }
    if (opcode >= Opcode.CLOSE) {
      if (length > MAX_CONTROL_PAYLOAD) {
        return violation(
          CloseCode.PROTOCOL_ERROR,
          `control frame payload is longer than ${MAX_CONTROL_PAYLOAD} bytes`,
        );
      }
      if (opcode === Opcode.CLOSE && length === 1) {
        return violation(
          CloseCode.PROTOCOL_ERROR,
          "close frame body is 1 byte: too short for a status code",
        );
      }
    }

    let headerLength = 2;
    if (length === 126) {
      if (available < 4) return NEED_MORE;
      length = (src[p + 2] << 8) | src[p + 3];
      if (length < 126) {
        return violation(
          CloseCode.PROTOCOL_ERROR,
          `frame length ${length} uses the 16-bit form; it must use the 7-bit form`,
        );
      }
      headerLength = 4;
    } else if (length === 127) {
      if (available > 2 && src[p + 2] >= 0x80) {
        return violation(CloseCode.PROTOCOL_ERROR, "frame length has its most significant bit set");
      }
      if (available < 10) return NEED_MORE;
      const high = readUint32(src, p + 2);
      const low = readUint32(src, p + 6);
      if (high === 0 && low <= 0xffff) {
        return violation(
          CloseCode.PROTOCOL_ERROR,
          `frame length ${low} uses the 64-bit form; it must use a shorter form`,
        );
      }
      length = high * 0x1_0000_0000 + low;
      headerLength = 10;
    }
    if (opcode < Opcode.CLOSE) {
      const tooLong = message.tooLong(opcode, rsv1, length);
      if (tooLong !== null) return tooLong;
    }

    if (masked) {
      if (available < headerLength + MASK_LENGTH) return NEED_MORE;
      const k = p + headerLength;
      this.#maskKey = src[k] | (src[k + 1] << 8) | (src[k + 2] << 16) | (src[k + 3] << 24);
      headerLength += MASK_LENGTH;
    }
    queue.skip(headerLength);

    this.fin = fin;
    this.opcode = opcode;
    this.rsv1 = rsv1;
    this.masked = masked;
    this.length = length;
    this.remaining = length;
    this.maskOffset = 0;
    return HEADER_READ;
  }

  /** Unmasks, in place, the next payload bytes of the frame (if it is masked). */
  unmask(piece: Uint8Array): void {
    if (!this.masked) return;
    // The key goes into one array shared by every reader only for this call.
    const key = SHARED_KEY;
    const k = this.#maskKey;
    key[0] = k;
    key[1] = k >>> 8;
    key[2] = k >>> 16;
    key[3] = k >>> 24;
    applyMask(piece, key, this.maskOffset);
    this.maskOffset = (this.maskOffset + piece.length) & 3;
  }
}
