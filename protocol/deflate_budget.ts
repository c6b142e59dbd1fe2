/**
 * Memory accounting of permessage-deflate: what a kept zlib state costs, and the
 * budget that caps those states for a group of connections (by default the whole
 * process). See `./deflate_codec.ts` for how connections use it.
 *
 * @module
 */

import { checkAmount } from "./option_checks.ts";

/**
 * Estimated bytes of zlib state: a compressor with this window and memory level, or a
 * decompressor (`memLevel` `null`) with this window. The formulas follow the layout of
 * Deno's zlib (a fixed 128 KiB hash table, a 2-window buffer, a 2-byte-per-position
 * chain, 4 bytes per literal slot) plus measured overhead; `tests/deflate_memory.test.ts`
 * checks them against the memory a process really uses.
 *
 * @param windowBits the LZ77 window, 8 to 15
 * @param memLevel the compressor's memory level, or `null` for a decompressor
 * @returns bytes
 *
 * @example
 * ```ts
 * import { deflateMemory } from "./deflate_budget.ts";
 *
 * console.log(deflateMemory(12, 5) / 1024, deflateMemory(15, null) / 1024); // 160 48
 * ```
 */
export function deflateMemory(windowBits: number, memLevel: number | null): number {
  return memLevel === null
    ? (1 << windowBits) + 16 * 1024
    : 136 * 1024 + (1 << (windowBits + 2)) + (1 << (memLevel + 8));
}

/**
 * A cap on the bytes of zlib state kept between messages, shared by the connections
 * that use it. {@link DeflateBudget.shared} is the process-wide default.
 *
 * @example
 * ```ts
 * import { DeflateBudget } from "./deflate_budget.ts";
 *
 * const budget = new DeflateBudget(100_000);
 * console.log(budget.tryReserve(60_000), budget.tryReserve(60_000)); // true false
 * budget.release(60_000);
 * console.log(budget.reserved); // 0
 * ```
 */
export class DeflateBudget {
  /** The default budget of every connection: 64 MiB for the whole process. */
  static readonly shared: DeflateBudget = new DeflateBudget(64 * 1024 * 1024);

  /** Largest total of reserved bytes. */
  readonly maxBytes: number;
  #reserved = 0;

  /**
   * Makes a budget of `maxBytes`, with nothing reserved.
   *
   * @param maxBytes the cap, in bytes
   * @throws {DillError} `EINVAL` unless `maxBytes` is a number >= 0
   */
  constructor(maxBytes: number) {
    checkAmount("DeflateBudget: maxBytes", maxBytes);
    this.maxBytes = maxBytes;
  }

  /** Bytes reserved now. */
  get reserved(): number {
    return this.#reserved;
  }

  /** Reserves `bytes` if they fit under the cap; tells whether they did. */
  tryReserve(bytes: number): boolean {
    if (this.#reserved + bytes > this.maxBytes) return false;
    this.#reserved += bytes;
    return true;
  }

  /** Gives back bytes reserved earlier. */
  release(bytes: number): void {
    this.#reserved = Math.max(0, this.#reserved - bytes);
  }
}
