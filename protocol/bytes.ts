/**
 * Byte-array helpers shared by the layers.
 *
 * @module
 */

/**
 * Joins byte arrays into one new array; a single part is returned as it is.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 *
 * console.log(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])])); // Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const part of parts) size += part.length;
  const joined = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
