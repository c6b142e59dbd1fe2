/**
 * Small byte arrays carved out of a shared slab, as Node's `Buffer` pool does. In Deno a
 * `Uint8Array` of more than 64 bytes gets an `ArrayBuffer` of its own, and that
 * allocation (with the garbage collector's bookkeeping for it) costs more than filling
 * it: measured, 310 ns for a 70-byte copy of a read against 50 ns for a copy into a
 * slab. A slice held on to keeps at most its slab alive; slices never overlap, and a
 * slab is never reused, so nothing written to one slice shows in another.
 *
 * @module
 */

/**
 * A source of small, fresh byte arrays that share `ArrayBuffer`s of `size` bytes. Every
 * slice starts on an 8-byte boundary (so masking can go a word at a time).
 *
 * @example
 * ```ts
 * import { Slab } from "./slab.ts";
 *
 * const slab = new Slab(8192);
 * const a = slab.take(3);
 * const b = slab.take(5);
 * console.log(a.buffer === b.buffer, b.byteOffset); // true 8
 * const room = slab.take(12); // as much as may be needed...
 * room.set([1, 2]);
 * console.log(slab.shrink(room, 2)); // ...then keep what was used: Uint8Array(2) [ 1, 2 ]
 * ```
 */
export class Slab {
  /** Bytes of each shared buffer: the most one slice may have. */
  readonly size: number;
  #buffer = new Uint8Array(0);
  #used = 0;

  /**
   * Makes a slab source; no memory is taken until the first slice.
   *
   * @param size bytes of each shared buffer, a multiple of 8
   */
  constructor(size: number) {
    this.size = size;
  }

  /**
   * A fresh slice of `n` zeroed bytes, in the current slab or, when it has no room left,
   * in a new one (more than {@link Slab.size} bytes: an array of its own).
   */
  take(n: number): Uint8Array {
    if (n > this.size) return new Uint8Array(n);
    if (this.#buffer.length - this.#used < n) {
      this.#buffer = new Uint8Array(this.size);
      this.#used = 0;
    }
    const at = this.#used;
    this.#used = (at + n + 7) & ~7;
    return this.#buffer.subarray(at, at + n);
  }

  /**
   * Keeps only the first `n` bytes of `slice`, the slice taken last, and gives the rest
   * back for the next one: for a caller that takes room for the most it could write
   * (and wrote nothing past `n`, so that the next slice is zeroed too).
   */
  shrink(slice: Uint8Array, n: number): Uint8Array {
    const at = slice.byteOffset;
    if (slice.buffer === this.#buffer.buffer && ((at + slice.length + 7) & ~7) === this.#used) {
      this.#used = (at + n + 7) & ~7;
    }
    return slice.subarray(0, n);
  }
}
