/**
 * Streaming UTF-8 validation (RFC 3629) for text messages and close reasons. Bytes can
 * arrive in pieces that split code points anywhere; invalid input is reported at the
 * first byte that proves it invalid, without waiting for the rest of the message.
 *
 * @module
 */

/**
 * Inputs at least this long get the word-at-a-time ASCII scan; for shorter ones building
 * the word view costs more than it saves.
 */
const WORD_SCAN_MIN_LENGTH = 32;

/** The high bit of each byte of a 32-bit word: zero in all four means four ASCII bytes. */
const NON_ASCII_BITS = 0x80808080;

/**
 * Checks that a stream of bytes is valid UTF-8, piece by piece.
 *
 * Rejects everything RFC 3629 forbids: stray continuation bytes, overlong forms, UTF-16
 * surrogates (U+D800..U+DFFF), code points above U+10FFFF, the bytes 0xC0, 0xC1 and
 * 0xF5..0xFF, and (in {@link Utf8Validator.finish}) a stream cut in the middle of a code
 * point. Each byte is checked against the exact range allowed at its position, so e.g.
 * `E0 80`, `ED A0` and `F4 90` are rejected at their second byte.
 *
 * @example
 * ```ts
 * import { Utf8Validator } from "./utf8.ts";
 *
 * const validator = new Utf8Validator();
 * console.log(validator.push(new Uint8Array([0x68, 0xe2, 0x82]))); // true: "h" + 2/3 of "€"
 * console.log(validator.finish()); // false: ends mid code point
 * console.log(validator.push(new Uint8Array([0xac]))); // true: "€" complete
 * console.log(validator.finish()); // true
 * console.log(validator.push(new Uint8Array([0xed, 0xa0]))); // false: a surrogate
 * validator.reset(); // ready for a new stream
 * ```
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current code point. */
  #needed = 0;
  /** Smallest value allowed for the next continuation byte. */
  #lower = 0x80;
  /** Largest value allowed for the next continuation byte. */
  #upper = 0xbf;
  #failed = false;

  /**
   * Checks the next bytes of the stream.
   *
   * @param bytes the next piece of the stream (not modified, not retained)
   * @returns `false` as soon as the bytes seen so far cannot be the start of valid UTF-8;
   * from then on every call returns `false` until {@link Utf8Validator.reset}
   */
  push(bytes: Uint8Array): boolean {
    if (this.#failed) return false;
    let needed = this.#needed;
    let lower = this.#lower;
    let upper = this.#upper;
    const length = bytes.length;

    // Word view over the 4-byte-aligned part of `bytes`, used to skip ASCII runs.
    let words: Uint32Array | null = null;
    let wordStart = 0;
    let wordCount = 0;
    if (length >= WORD_SCAN_MIN_LENGTH) {
      wordStart = (4 - (bytes.byteOffset & 3)) & 3;
      wordCount = (length - wordStart) >>> 2;
      words = new Uint32Array(bytes.buffer, bytes.byteOffset + wordStart, wordCount);
    }

    let i = 0;
    while (i < length) {
      if (needed === 0 && words !== null) {
        const fromWordStart = i - wordStart;
        if (fromWordStart >= 0 && (fromWordStart & 3) === 0) {
          let w = fromWordStart >>> 2;
          while (w < wordCount && (words[w] & NON_ASCII_BITS) === 0) w++;
          i = wordStart + (w << 2);
          if (i >= length) break;
        }
      }
      const byte = bytes[i++];
      if (needed === 0) {
        if (byte < 0x80) continue;
        if (byte >= 0xc2 && byte <= 0xdf) {
          needed = 1;
        } else if (byte >= 0xe0 && byte <= 0xef) {
          // E0 must not encode a code point below U+0800 (overlong); ED must not encode
          // a surrogate.
          if (byte === 0xe0) lower = 0xa0;
          else if (byte === 0xed) upper = 0x9f;
          needed = 2;
        } else if (byte >= 0xf0 && byte <= 0xf4) {
          // F0 must not encode a code point below U+10000 (overlong); F4 must not go past
          // U+10FFFF.
          if (byte === 0xf0) lower = 0x90;
          else if (byte === 0xf4) upper = 0x8f;
          needed = 3;
        } else {
          // A continuation byte with nothing to continue, C0/C1 (always overlong), F5..FF.
          this.#failed = true;
          return false;
        }
      } else {
        if (byte < lower || byte > upper) {
          this.#failed = true;
          return false;
        }
        lower = 0x80;
        upper = 0xbf;
        needed--;
      }
    }

    this.#needed = needed;
    this.#lower = lower;
    this.#upper = upper;
    return true;
  }

  /**
   * Tells whether the stream seen so far is complete, valid UTF-8: no invalid byte and
   * no code point left unfinished. Does not change the state; more bytes may follow.
   */
  finish(): boolean {
    return !this.#failed && this.#needed === 0;
  }

  /** Forgets everything seen, to validate a new stream. */
  reset(): void {
    this.#needed = 0;
    this.#lower = 0x80;
    this.#upper = 0xbf;
    this.#failed = false;
  }
}

/** Shared by {@link isValidUtf8}: safe because a check runs to completion without yielding. */
const sharedValidator = new Utf8Validator();

/**
 * Tells whether `bytes` is, as a whole, valid UTF-8 (see {@link Utf8Validator} for the
 * rules).
 *
 * @example
 * ```ts
 * import { isValidUtf8 } from "./utf8.ts";
 *
 * console.log(isValidUtf8(new TextEncoder().encode("héllo €𝄞"))); // true
 * console.log(isValidUtf8(new Uint8Array([0xc0, 0xaf]))); // false: overlong "/"
 * console.log(isValidUtf8(new Uint8Array([0xe2, 0x82]))); // false: truncated
 * ```
 */
export function isValidUtf8(bytes: Uint8Array): boolean {
  sharedValidator.reset();
  return sharedValidator.push(bytes) && sharedValidator.finish();
}
