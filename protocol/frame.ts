/**
 * Encoding WebSocket frames (RFC 6455 section 5.2): opcodes, headers with the minimal
 * length form, and whole frames masked or not.
 *
 * ```text
 *  byte 0: FIN | RSV1 | RSV2 | RSV3 | opcode (4 bits)
 *  byte 1: MASK | length (7 bits: 0-125, or 126 = 16-bit length follows, 127 = 64-bit)
 *  [2 or 8 bytes of big-endian extended length] [4 bytes of masking key] payload
 * ```
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { applyMask, MASK_LENGTH, writeRandomMask } from "./mask.ts";
import { Slab } from "./slab.ts";

/**
 * The frame opcodes of RFC 6455. Opcodes 3–7 and 11–15 are reserved.
 *
 * @example
 * ```ts
 * import { Opcode } from "./frame.ts";
 *
 * console.log(Opcode.TEXT, Opcode.PING); // 1 9
 * ```
 */
export const Opcode = {
  /** A further fragment of the message started by a TEXT or BINARY frame. */
  CONTINUATION: 0,
  /** First (or only) frame of a text message: the payload is UTF-8. */
  TEXT: 1,
  /** First (or only) frame of a binary message. */
  BINARY: 2,
  /** Starts or answers the closing handshake. */
  CLOSE: 8,
  /** Asks the peer for a PONG carrying the same payload. */
  PING: 9,
  /** Answers a PING (or, unsolicited, serves as a heartbeat). */
  PONG: 10,
} as const;

/** One of the {@link Opcode} values. */
export type Opcode = typeof Opcode[keyof typeof Opcode];

/** Largest payload of a control frame (CLOSE, PING, PONG). */
export const MAX_CONTROL_PAYLOAD = 125;

/** Largest frame header: 2 bytes + 8 bytes of length + 4 bytes of masking key. */
export const MAX_FRAME_HEADER_LENGTH = 14;

/**
 * Tells whether `opcode` denotes a control frame (CLOSE, PING, PONG or a reserved
 * control opcode 11–15): control opcodes have their high bit set.
 *
 * @example
 * ```ts
 * import { isControlOpcode, Opcode } from "./frame.ts";
 *
 * console.log(isControlOpcode(Opcode.PING)); // true
 * console.log(isControlOpcode(Opcode.BINARY)); // false
 * ```
 */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

function isKnownOpcode(opcode: number): boolean {
  return opcode === Opcode.CONTINUATION || opcode === Opcode.TEXT ||
    opcode === Opcode.BINARY || opcode === Opcode.CLOSE || opcode === Opcode.PING ||
    opcode === Opcode.PONG;
}

/**
 * The length of a frame header: 2, 4 or 10 bytes depending on the payload length (the
 * shortest form that fits), plus 4 for a masking key.
 *
 * @param payloadLength payload length in bytes
 * @param masked whether the header carries a masking key
 *
 * @example
 * ```ts
 * import { frameHeaderLength } from "./frame.ts";
 *
 * console.log(frameHeaderLength(125, false)); // 2
 * console.log(frameHeaderLength(126, true)); // 8
 * console.log(frameHeaderLength(65536, false)); // 10
 * ```
 */
export function frameHeaderLength(payloadLength: number, masked: boolean): number {
  const lengthBytes = payloadLength <= 125 ? 2 : payloadLength <= 0xffff ? 4 : 10;
  return masked ? lengthBytes + MASK_LENGTH : lengthBytes;
}

/** Throws EINVAL unless a frame with these fields may be sent. */
function checkFrameFields(opcode: number, payloadLength: number, fin: boolean): void {
  if (!isKnownOpcode(opcode)) {
    throw new DillError("EINVAL", `opcode ${opcode} is not a defined WebSocket opcode`);
  }
  if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) {
    throw new DillError("EINVAL", `payload length ${payloadLength} is not a byte count`);
  }
  if (isControlOpcode(opcode)) {
    if (!fin) throw new DillError("EINVAL", "control frames cannot be fragmented");
    if (payloadLength > MAX_CONTROL_PAYLOAD) {
      throw new DillError(
        "EINVAL",
        `control frame payload is ${payloadLength} bytes; the limit is ${MAX_CONTROL_PAYLOAD}`,
      );
    }
  }
}

/**
 * Writes a header at `target[offset]`, with the mask bit set when `masked`; the caller
 * fills the 4 key bytes at the end. Returns the header length. Fields are pre-checked.
 */
function writeHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  payloadLength: number,
  fin: boolean,
  masked: boolean,
  rsv1 = false,
): number {
  target[offset] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = masked ? 0x80 : 0;
  let p = offset + 2;
  if (payloadLength <= 125) {
    target[offset + 1] = maskBit | payloadLength;
  } else if (payloadLength <= 0xffff) {
    target[offset + 1] = maskBit | 126;
    target[p++] = payloadLength >>> 8;
    target[p++] = payloadLength & 0xff;
  } else {
    target[offset + 1] = maskBit | 127;
    // Lengths stay below 2^53, so the high word is exact and its top bit is clear.
    const high = Math.floor(payloadLength / 0x1_0000_0000);
    const low = payloadLength >>> 0;
    target[p++] = high >>> 24;
    target[p++] = (high >>> 16) & 0xff;
    target[p++] = (high >>> 8) & 0xff;
    target[p++] = high & 0xff;
    target[p++] = low >>> 24;
    target[p++] = (low >>> 16) & 0xff;
    target[p++] = (low >>> 8) & 0xff;
    target[p++] = low & 0xff;
  }
  return p - offset + (masked ? MASK_LENGTH : 0);
}

/**
 * Encodes a frame header, using the shortest length form that fits.
 *
 * @param opcode one of {@link Opcode}
 * @param payloadLength length in bytes of the payload that follows the header
 * @param fin whether this is the final frame of its message (always `true` for control)
 * @param mask the 4-byte masking key to put in the header, or `null` for an unmasked frame
 * (the payload must then be masked with this key by the caller)
 * @returns a fresh header of {@link frameHeaderLength} bytes
 * @throws {DillError} `EINVAL` for an unknown opcode, a length that is not a byte count,
 * a control frame with `fin` false or a payload over 125 bytes, or a key that is not 4
 * bytes
 *
 * @example
 * ```ts
 * import { encodeFrameHeader, Opcode } from "./frame.ts";
 *
 * console.log(encodeFrameHeader(Opcode.TEXT, 5, true, null)); // Uint8Array(2) [ 129, 5 ]
 * console.log(encodeFrameHeader(Opcode.BINARY, 300, false, null)); // [ 2, 126, 1, 44 ]
 * ```
 */
export function encodeFrameHeader(
  opcode: number,
  payloadLength: number,
  fin: boolean,
  mask: Uint8Array | null,
): Uint8Array {
  checkFrameFields(opcode, payloadLength, fin);
  if (mask !== null && mask.length !== MASK_LENGTH) {
    throw new DillError("EINVAL", `masking key is ${mask.length} bytes; it must be 4`);
  }
  const header = new Uint8Array(frameHeaderLength(payloadLength, mask !== null));
  writeHeader(header, 0, opcode, payloadLength, fin, mask !== null);
  if (mask !== null) header.set(mask, header.length - MASK_LENGTH);
  return header;
}

/** Options of {@link encodeFrame}. */
export interface EncodeFrameOptions {
  /** Whether this is the final frame of its message. Default `true`. */
  fin?: boolean;
  /** Whether to mask the payload with a fresh random key: `true` for clients. */
  masked: boolean;
  /**
   * Sets RSV1: the payload is compressed (permessage-deflate, RFC 7692). Only on the
   * first frame of a data message. Default `false`.
   */
  rsv1?: boolean;
}

/**
 * Masked frames up to this many bytes (with their padding) are slices of a shared slab,
 * and so is every unmasked frame's header: in Deno a `new Uint8Array(n)`, however small,
 * is an `ArrayBuffer` of its own and costs about 0.5 µs, a slice about 30 ns.
 */
export const FRAME_SLAB_MAX = 4096;
const frameSlab = new Slab(16 * 1024);

/**
 * Encodes a whole frame as the chunks to write, in order. Never modifies `payload`.
 *
 * - Unmasked (servers): `[header, payload]`, where `payload` is the caller's array
 *   itself, not a copy, and `header` a slice of a shared {@link Slab}.
 * - Masked (clients): one array holding the header, with a random key from
 *   {@link writeRandomMask}, and a masked copy of the payload. The payload part starts
 *   on an 8-byte boundary so it is masked a word at a time (see also
 *   {@link encodeMaskedFrameInto}). A frame of up to {@link FRAME_SLAB_MAX} bytes is a
 *   slice of a shared {@link Slab} (a client sending small messages allocates no
 *   buffer per frame); a larger one has a buffer of its own.
 *
 * @param opcode one of {@link Opcode}
 * @param payload the payload bytes
 * @param options whether the frame is final (default `true`) and whether to mask it
 * @returns the chunks making up the frame
 * @throws {DillError} `EINVAL` as for {@link encodeFrameHeader} (e.g. a control frame
 * payload over 125 bytes), or RSV1 on a control or continuation frame
 *
 * @example
 * ```ts
 * import { encodeFrame, Opcode } from "./frame.ts";
 *
 * const payload = new TextEncoder().encode("hi");
 * const [header, body] = encodeFrame(Opcode.TEXT, payload, { masked: false });
 * console.log(header, body === payload); // Uint8Array(2) [ 129, 2 ] true
 * const [frame] = encodeFrame(Opcode.TEXT, payload, { masked: true });
 * console.log(frame.length); // 8: 2 header + 4 key + 2 masked payload
 * ```
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: EncodeFrameOptions,
): Uint8Array[] {
  const fin = options.fin ?? true;
  const rsv1 = options.rsv1 ?? false;
  if (rsv1 && opcode !== Opcode.TEXT && opcode !== Opcode.BINARY) {
    throw new DillError("EINVAL", "RSV1 (compressed) is only for a data message's first frame");
  }
  checkFrameFields(opcode, payload.length, fin);
  if (!options.masked) {
    const header = frameSlab.take(frameHeaderLength(payload.length, false));
    writeHeader(header, 0, opcode, payload.length, fin, false, rsv1);
    return [header, payload];
  }

  const size = maskedFrameSpace(payload.length);
  const space = size <= FRAME_SLAB_MAX ? frameSlab.take(size) : new Uint8Array(size);
  return [writeMasked(space, opcode, payload, fin, rsv1)];
}

/**
 * Room that {@link encodeMaskedFrameInto} needs for a frame of `payloadLength` payload
 * bytes: the frame, plus up to 7 bytes of leading padding that put its payload on an
 * 8-byte boundary (masked 8 bytes at a time).
 *
 * @param payloadLength payload length in bytes
 *
 * @example
 * ```ts
 * import { maskedFrameSpace } from "./frame.ts";
 *
 * console.log(maskedFrameSpace(16384)); // 16399: 8 header + 16384 + 7
 * ```
 */
export function maskedFrameSpace(payloadLength: number): number {
  return frameHeaderLength(payloadLength, true) + payloadLength + 7;
}

/**
 * Encodes a masked frame (as a client sends it) into `target`, which the caller owns
 * (a pooled buffer, say), instead of a fresh buffer: the frame is one view of
 * `target`, its header with a random key from {@link writeRandomMask} and a masked
 * copy of the payload. Never modifies `payload`.
 *
 * @param target where to build the frame, at least {@link maskedFrameSpace} bytes
 * @param opcode one of {@link Opcode}
 * @param payload the payload bytes
 * @param options whether the frame is final (default `true`), and RSV1
 * @returns the frame: a view of `target`
 * @throws {DillError} `EINVAL` as {@link encodeFrame} does, or when `target` is too small
 *
 * @example
 * ```ts
 * import { encodeMaskedFrameInto, maskedFrameSpace, Opcode } from "./frame.ts";
 *
 * const payload = new TextEncoder().encode("hi");
 * const target = new Uint8Array(maskedFrameSpace(payload.length));
 * const frame = encodeMaskedFrameInto(target, Opcode.TEXT, payload);
 * console.log(frame.buffer === target.buffer, frame.length); // true 8
 * ```
 */
export function encodeMaskedFrameInto(
  target: Uint8Array,
  opcode: number,
  payload: Uint8Array,
  options: Omit<EncodeFrameOptions, "masked"> = {},
): Uint8Array {
  const fin = options.fin ?? true;
  const rsv1 = options.rsv1 ?? false;
  if (rsv1 && opcode !== Opcode.TEXT && opcode !== Opcode.BINARY) {
    throw new DillError("EINVAL", "RSV1 (compressed) is only for a data message's first frame");
  }
  checkFrameFields(opcode, payload.length, fin);
  if (target.length < maskedFrameSpace(payload.length)) {
    throw new DillError("EINVAL", `${target.length} bytes are too few for this frame`);
  }
  return writeMasked(target, opcode, payload, fin, rsv1);
}

/** Builds a masked frame in `space` (fields pre-checked), its payload 8-byte aligned. */
function writeMasked(
  space: Uint8Array,
  opcode: number,
  payload: Uint8Array,
  fin: boolean,
  rsv1: boolean,
): Uint8Array {
  const headerLength = frameHeaderLength(payload.length, true);
  const padding = (8 - ((space.byteOffset + headerLength) & 7)) & 7;
  const frame = space.subarray(padding, padding + headerLength + payload.length);
  writeHeader(frame, 0, opcode, payload.length, fin, true, rsv1);
  const keyOffset = headerLength - MASK_LENGTH;
  writeRandomMask(frame, keyOffset);
  frame.set(payload, headerLength);
  applyMask(frame.subarray(headerLength), frame.subarray(keyOffset, headerLength), 0);
  return frame;
}
