/**
 * Byte strings for the raw peer: text as UTF-8 bytes, and parts joined into one array
 * (a frame right behind an HTTP head, in a single write).
 *
 * @module
 */

import { concatBytes } from "../../../protocol/bytes.ts";

const encoder = new TextEncoder();

/**
 * Bytes of `s` in UTF-8, or `s` itself.
 *
 * @example
 * ```ts
 * import { bytes } from "./bytes.ts";
 *
 * console.log(bytes("é")); // Uint8Array [ 195, 169 ]
 * ```
 */
export function bytes(s: Uint8Array | string): Uint8Array {
  return typeof s === "string" ? encoder.encode(s) : s;
}

/**
 * Concatenates byte arrays (a single part comes back as it is, not copied).
 *
 * @example
 * ```ts
 * import { bytes, concat } from "./bytes.ts";
 *
 * const headThenFrame = concat(bytes("HTTP/1.1 101 Switching Protocols\r\n\r\n"), new Uint8Array([0x81, 0]));
 * ```
 */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}
