/**
 * SHA-1 (FIPS 180-4) of a short ASCII string, synchronously, for the one place RFC 6455
 * prescribes it: `Sec-WebSocket-Accept`. `node:crypto`'s `createHash` costs several
 * native calls and objects per handshake (about 10 µs, a twentieth of a whole connection
 * in the connect storm); Web Crypto's `digest` is asynchronous, which the I/O-free
 * handshake cannot wait for. This is a plain loop over 60 bytes. SHA-1 is used only
 * because the RFC names it: the key proves the server read the request, nothing more.
 *
 * @module
 */

import { DillError } from "./errors.ts";

/** The message schedule, reused: one handshake runs at a time (no I/O in between). */
const W = new Int32Array(80);

/**
 * The SHA-1 digest of `text` (code units below 256, one byte each) in base64.
 *
 * @param text the message, as a string of bytes (ASCII or Latin-1)
 * @returns the 20-byte digest, base64-encoded (28 characters)
 * @throws {DillError} `EINVAL` if a code unit of `text` is above 255
 *
 * @example
 * ```ts
 * import { sha1Base64 } from "./sha1.ts";
 *
 * // RFC 6455 section 1.3's example: key + GUID -> Sec-WebSocket-Accept
 * const accept = sha1Base64("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
 * console.log(accept); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export function sha1Base64(text: string): string {
  const length = text.length;
  // The message, a 0x80 byte, zeros, and the bit length in the last 8 bytes of a block.
  const blocks = ((length + 8) >>> 6) + 1;
  let h0 = 0x67452301,
    h1 = 0xefcdab89 | 0,
    h2 = 0x98badcfe | 0,
    h3 = 0x10325476,
    h4 = 0xc3d2e1f0 | 0;
  for (let block = 0; block < blocks; block++) {
    const base = block * 64;
    for (let t = 0; t < 16; t++) {
      let word = 0;
      for (let b = 0; b < 4; b++) {
        const at = base + t * 4 + b;
        const byte = at < length ? byteAt(text, at) : at === length ? 0x80 : 0;
        word = (word << 8) | byte;
      }
      W[t] = word;
    }
    if (block === blocks - 1) {
      // Bit length; messages here are far below 2^29 bytes, so the high word is 0.
      W[14] = 0;
      W[15] = length * 8;
    }
    for (let t = 16; t < 80; t++) {
      const x = W[t - 3] ^ W[t - 8] ^ W[t - 14] ^ W[t - 16];
      W[t] = (x << 1) | (x >>> 31);
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number, k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc | 0;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6 | 0;
      }
      const temp = (((a << 5) | (a >>> 27)) + f + e + k + W[t]) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  return base64Words(h0, h1, h2, h3, h4);
}

function byteAt(text: string, at: number): number {
  const code = text.charCodeAt(at);
  if (code > 0xff) {
    throw new DillError("EINVAL", "sha1Base64: the text must be bytes (code units < 256)");
  }
  return code;
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The digest's bytes and the base64 character codes, reused like {@link W}. */
const DIGEST = new Uint8Array(21); // 20 bytes, and a zero that pads the last group
const DIGEST_VIEW = new DataView(DIGEST.buffer);
const CHARS: number[] = new Array(28).fill(0);

/** Base64 of five big-endian 32-bit words (20 bytes: 27 characters and one `=`). */
function base64Words(h0: number, h1: number, h2: number, h3: number, h4: number): string {
  DIGEST_VIEW.setInt32(0, h0);
  DIGEST_VIEW.setInt32(4, h1);
  DIGEST_VIEW.setInt32(8, h2);
  DIGEST_VIEW.setInt32(12, h3);
  DIGEST_VIEW.setInt32(16, h4);
  for (let i = 0, o = 0; i < 21; i += 3, o += 4) {
    const n = (DIGEST[i] << 16) | (DIGEST[i + 1] << 8) | DIGEST[i + 2];
    CHARS[o] = BASE64.charCodeAt(n >>> 18);
    CHARS[o + 1] = BASE64.charCodeAt((n >>> 12) & 63);
    CHARS[o + 2] = BASE64.charCodeAt((n >>> 6) & 63);
    CHARS[o + 3] = BASE64.charCodeAt(n & 63);
  }
  CHARS[27] = 0x3d; // "=": 20 bytes leave one byte short of a last group
  return String.fromCharCode.apply(null, CHARS);
}
