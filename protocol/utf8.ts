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

/** The word view of an input too short to scan by words: no word is ever looked at. */
const NO_WORDS: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * By lead byte: how many bytes its sequence has (2 to 4), for a code point that the end
 * of a piece cuts; such a lead byte was already found valid.
 */
const SEQUENCE_SIZE = new Uint8Array(256);
/**
 * By lead byte: the range of the second byte. Narrower than 80..BF after E0 (no
 * overlong), ED (no UTF-16 surrogate), F0 (no overlong) and F4 (nothing past U+10FFFF).
 */
const SECOND_MIN = new Uint8Array(256);
const SECOND_MAX = new Uint8Array(256);
for (let lead = 0xc2; lead <= 0xf4; lead++) {
  SEQUENCE_SIZE[lead] = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
  SECOND_MIN[lead] = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
  SECOND_MAX[lead] = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
}

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
    const length = bytes.length;
    // The rest of a code point that the previous piece cut.
    let i = this.#continuation(bytes, 0);
    if (i < 0) return false;

    // Word view over the 4-byte-aligned part of `bytes`, used to skip ASCII runs.
    let words = NO_WORDS;
    let wordStart = 0;
    let wordCount = 0;
    if (length - i >= WORD_SCAN_MIN_LENGTH) {
      wordStart = (4 - (bytes.byteOffset & 3)) & 3;
      wordCount = (length - wordStart) >>> 2;
      words = new Uint32Array(bytes.buffer, bytes.byteOffset + wordStart, wordCount);
    }

    // Whole code points, one per turn: checking a sequence's bytes together, rather than
    // carrying a state from byte to byte, makes mixed text about twice as fast.
    while (i < length) {
      const lead = bytes[i];
      if (lead < 0x80) {
        // ASCII: on a word boundary, skip the whole ASCII words from here.
        const fromWordStart = i - wordStart;
        if ((fromWordStart & 3) === 0 && fromWordStart >= 0) {
          let w = fromWordStart >>> 2;
          while (w < wordCount && (words[w] & NON_ASCII_BITS) === 0) w++;
          const after = wordStart + (w << 2);
          i = after > i ? after : i + 1;
        } else {
          i++;
        }
        continue;
      }
      if (lead < 0xe0) {
        if (lead < 0xc2) return this.#fail(); // a stray continuation byte, or C0/C1
        if (i + 1 >= length) break; // cut by the end of the piece: finished below
        if ((bytes[i + 1] & 0xc0) !== 0x80) return this.#fail();
        i += 2;
      } else if (lead < 0xf0) {
        if (i + 2 >= length) break;
        const second = bytes[i + 1];
        if ((second & 0xc0) !== 0x80 || (bytes[i + 2] & 0xc0) !== 0x80) return this.#fail();
        // No overlong form after E0, no UTF-16 surrogate after ED.
        if (lead === 0xe0 ? second < 0xa0 : lead === 0xed && second > 0x9f) return this.#fail();
        i += 3;
      } else {
        if (lead > 0xf4) return this.#fail();
        if (i + 3 >= length) break;
        const second = bytes[i + 1];
        if (
          (second & 0xc0) !== 0x80 || (bytes[i + 2] & 0xc0) !== 0x80 ||
          (bytes[i + 3] & 0xc0) !== 0x80
        ) return this.#fail();
        // No overlong form after F0, nothing past U+10FFFF after F4.
        if (lead === 0xf0 ? second < 0x90 : lead === 0xf4 && second > 0x8f) return this.#fail();
        i += 4;
      }
    }

    // A code point cut by the end of this piece: check the bytes there are, expect the rest.
    if (i < length) {
      const lead = bytes[i];
      this.#needed = SEQUENCE_SIZE[lead] - 1;
      this.#lower = SECOND_MIN[lead];
      this.#upper = SECOND_MAX[lead];
      return this.#continuation(bytes, i + 1) >= 0;
    }
    return true;
  }

  /**
   * Checks the continuation bytes the current code point still needs, from `bytes[start]`
   * on, as far as `bytes` goes; returns where they end, or -1 (and fails) at a bad one.
   */
  #continuation(bytes: Uint8Array, start: number): number {
    let i = start;
    for (; this.#needed > 0 && i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte < this.#lower || byte > this.#upper) {
        this.#fail();
        return -1;
      }
      this.#lower = 0x80;
      this.#upper = 0xbf;
      this.#needed--;
    }
    return i;
  }

  /** Remembers the failure: every later push returns `false` until a reset. */
  #fail(): false {
    this.#failed = true;
    return false;
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
