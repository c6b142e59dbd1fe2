/**
 * The receiving side of permessage-deflate (RFC 7692) inside the frame receiver: which
 * frames may carry RSV1, how large a compressed message may be before it is gathered,
 * and inflating a gathered message under the size limit.
 *
 * @module
 */

import { CloseCode } from "./close_codes.ts";
import type { MessageInflater } from "./deflate_codec.ts";
import { Opcode } from "./frame.ts";
import { decodeWholeText, invalidTextReason } from "./text_message.ts";
import type { Utf8Validator } from "./utf8.ts";

/**
 * Why a frame with RSV1 set breaks the rules (RFC 7692 section 6.1: RSV1 marks the first
 * frame of a compressed data message, and nothing else), or `null` when it may carry it.
 *
 * @param opcode the frame's opcode
 * @param deflate whether permessage-deflate was negotiated
 *
 * @example
 * ```ts
 * import { rsv1Violation } from "./compressed_message.ts";
 *
 * console.log(rsv1Violation(0x1, true)); // null: a compressed text message
 * console.log(rsv1Violation(0x1, false)); // "frame has RSV1 set but no extension was negotiated"
 * ```
 */
export function rsv1Violation(opcode: number, deflate: boolean): string | null {
  if (!deflate) return "frame has RSV1 set but no extension was negotiated";
  if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) return null;
  return opcode === Opcode.CONTINUATION
    ? "continuation frame has RSV1 set; only a message's first frame may"
    : "control or reserved frame has RSV1 set; only data messages are compressed";
}

/**
 * The limit on a message's inflated size: the receiver's own, or the inflater's when
 * lower.
 *
 * @example
 * ```ts
 * import { inflatedLimit } from "./compressed_message.ts";
 *
 * const inflater = { maxInflatedSize: 1000, inflate: () => new Uint8Array(0) };
 * console.log(inflatedLimit(1 << 20, null), inflatedLimit(1 << 20, inflater)); // 1048576 1000
 * ```
 */
export function inflatedLimit(maxMessageSize: number, inflater: MessageInflater | null): number {
  return Math.min(maxMessageSize, inflater?.maxInflatedSize ?? Infinity);
}

/**
 * Largest compressed size a message can have and still inflate under the limits:
 * stored blocks cost 5 bytes per 64 KiB, plus a few bytes of block headers. Larger
 * compressed messages fail with 1009 before they are gathered.
 *
 * @example
 * ```ts
 * import { compressedSizeLimit } from "./compressed_message.ts";
 *
 * console.log(compressedSizeLimit(65535, null)); // 65604
 * ```
 */
export function compressedSizeLimit(
  maxMessageSize: number,
  inflater: MessageInflater | null,
): number {
  const inflated = inflatedLimit(maxMessageSize, inflater);
  return Math.min(inflated + Math.ceil(inflated / 65535) * 5 + 64, Number.MAX_SAFE_INTEGER);
}

/**
 * Inflates a whole compressed message under the size limit and checks its text.
 *
 * @param inflater the connection's decompressor
 * @param compressed the gathered payload of the message's frames
 * @param binary whether it is a binary message
 * @param maxMessageSize the limit on the inflated payload
 * @param validator used to word an invalid text's error
 * @returns the message, or the close code and reason to fail the connection with
 *
 * @example
 * ```ts
 * import { inflateMessage } from "./compressed_message.ts";
 * import { Utf8Validator } from "./utf8.ts";
 *
 * // A stand-in inflater that "inflates" to fixed bytes.
 * const inflater = { inflate: () => new Uint8Array([0x68, 0x69]) };
 * const result = inflateMessage(inflater, new Uint8Array(1), false, 100, new Utf8Validator());
 * console.log(result); // { type: "message", binary: false, data: Uint8Array(2) [ 104, 105 ], text: "hi" }
 * ```
 */
export function inflateMessage(
  inflater: MessageInflater,
  compressed: Uint8Array,
  binary: boolean,
  maxMessageSize: number,
  validator: Utf8Validator,
):
  | { type: "message"; binary: boolean; data: Uint8Array; text?: string }
  | { type: "error"; code: number; message: string } {
  const inflated = inflater.inflate(compressed, maxMessageSize);
  if (!(inflated instanceof Uint8Array)) {
    const what = inflated.code === CloseCode.MESSAGE_TOO_BIG ? "" : "compressed message: ";
    return { type: "error", code: inflated.code, message: what + inflated.message };
  }
  if (binary) return { type: "message", binary: true, data: inflated };
  const text = decodeWholeText(inflated);
  if (text === null) {
    return {
      type: "error",
      code: CloseCode.INVALID_PAYLOAD,
      message: invalidTextReason(inflated, validator),
    };
  }
  return { type: "message", binary: false, data: inflated, text };
}
