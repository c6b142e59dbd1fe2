/**
 * Checking and decoding a whole text message at once, as the receiver does for a
 * message that arrived in one piece or was just inflated.
 *
 * @module
 */

import { isValidUtf8, Utf8Validator } from "./utf8.ts";

/** Lossy decoding: it inserts U+FFFD for every invalid sequence, and keeps a leading BOM. */
const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decodes UTF-8 already known to be valid (a leading BOM is kept, as it is text).
 *
 * @example
 * ```ts
 * import { decodeValidText } from "./text_message.ts";
 *
 * console.log(decodeValidText(new Uint8Array([0x68, 0x69]))); // "hi"
 * ```
 */
export function decodeValidText(bytes: Uint8Array): string {
  return lossyDecoder.decode(bytes);
}

/**
 * Validates and decodes a whole text message in one native pass: a lossy decode that
 * produced no U+FFFD proves the bytes valid. Only a message containing U+FFFD (a real
 * one or a replacement) needs the exact check.
 *
 * @returns the text, or `null` for invalid UTF-8
 *
 * @example
 * ```ts
 * import { decodeWholeText } from "./text_message.ts";
 *
 * console.log(decodeWholeText(new Uint8Array([0xe2, 0x82, 0xac]))); // "€"
 * console.log(decodeWholeText(new Uint8Array([0xe2, 0x82]))); // null
 * ```
 */
export function decodeWholeText(bytes: Uint8Array): string | null {
  const text = lossyDecoder.decode(bytes);
  return text.indexOf("\uFFFD") === -1 || isValidUtf8(bytes) ? text : null;
}

/**
 * Why a whole text message is invalid, worded as the streaming check of a fragmented
 * message words it.
 *
 * @param bytes the message, known to be invalid UTF-8
 * @param validator a validator to use for it (reset first)
 *
 * @example
 * ```ts
 * import { invalidTextReason } from "./text_message.ts";
 * import { Utf8Validator } from "./utf8.ts";
 *
 * const validator = new Utf8Validator();
 * console.log(invalidTextReason(new Uint8Array([0xe2, 0x82]), validator));
 * // "text message ends in the middle of a UTF-8 sequence"
 * ```
 */
export function invalidTextReason(bytes: Uint8Array, validator: Utf8Validator): string {
  validator.reset();
  return validator.push(bytes)
    ? "text message ends in the middle of a UTF-8 sequence"
    : "text message is not valid UTF-8";
}
