/**
 * The keys of the WebSocket opening handshake (RFC 6455 section 4): a client's fresh
 * `Sec-WebSocket-Key`, its shape, and the `Sec-WebSocket-Accept` a server derives from it.
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { quote } from "./header_values.ts";
import { sha1Base64 } from "./sha1.ts";

/** The GUID that RFC 6455 appends to the key before hashing. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Canonical base64 of exactly 16 bytes: 21 free characters, a last character whose four
 * unused low bits are zero, and the `==` padding.
 */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Whether `key` is a well-formed `Sec-WebSocket-Key`: the base64 of exactly 16 bytes.
 *
 * @example
 * ```ts
 * import { isWsKey } from "./handshake_keys.ts";
 *
 * console.log(isWsKey("dGhlIHNhbXBsZSBub25jZQ=="), isWsKey("short")); // true false
 * ```
 */
export function isWsKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/**
 * A fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded.
 *
 * @returns the key, 24 characters
 *
 * @example
 * ```ts
 * import { wsRequestKey } from "./handshake_keys.ts";
 *
 * console.log(wsRequestKey().length); // 24
 * ```
 */
export function wsRequestKey(): string {
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...nonce));
}

/**
 * The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
 *
 * @param requestKey the client's key
 * @returns the accept key, 28 characters
 * @throws {DillError} `EPROTO` unless `requestKey` is the base64 encoding of exactly 16
 *   bytes
 *
 * @example
 * ```ts
 * import { wsResponseKey } from "./handshake_keys.ts";
 *
 * // The example of RFC 6455 section 1.3.
 * console.log(wsResponseKey("dGhlIHNhbXBsZSBub25jZQ==")); // s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
 * ```
 */
export function wsResponseKey(requestKey: string): string {
  if (!isWsKey(requestKey)) {
    throw new DillError(
      "EPROTO",
      `Sec-WebSocket-Key ${quote(requestKey)} is not the base64 encoding of 16 bytes`,
    );
  }
  // SHA-1 is what RFC 6455 prescribes; it proves the server read this key, nothing more.
  return sha1Base64(requestKey + WS_GUID);
}
