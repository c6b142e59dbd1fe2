/**
 * A token bucket, the rate limit the demo's rooms use twice: for what one member may send
 * to its room, and for how often a process answers "who is there".
 *
 * @module
 */

/**
 * Holds up to `capacity` tokens and gains `perMs` a millisecond. {@link TokenBucket.take}
 * may overdraw it: the caller then waits as long as the bucket needs to be back at 0.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 *
 * const bucket = new TokenBucket(2, 1 / 100, 0); // 2 at once, then one per 100 ms
 * console.log(bucket.take(1, 0), bucket.take(1, 0), bucket.take(1, 0)); // 0 0 100
 * console.log(bucket.take(2, 250)); // 50: back at 1.5 (after the debt of 1), less 2
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  /**
   * @param capacity the most it holds, and what it starts with
   * @param perMs tokens gained a millisecond
   * @param at the time it starts full (ms, on the clock the caller passes to `take`)
   */
  constructor(readonly capacity: number, readonly perMs: number, at: number) {
    this.#tokens = capacity;
    this.#at = at;
  }

  /** Takes `cost` tokens at time `t`; returns the ms until it is back at 0 (0: not overdrawn). */
  take(cost: number, t: number): number {
    this.#tokens = Math.min(this.capacity, this.#tokens + (t - this.#at) * this.perMs);
    this.#at = t;
    this.#tokens -= cost;
    return this.#tokens >= 0 ? 0 : -this.#tokens / this.perMs;
  }
}
