/**
 * Monotonic time and deadlines, as in libdill: a deadline is an absolute point in
 * time in milliseconds on the {@link now} clock, `-1` waits forever and `0` means
 * "only if it can be done without waiting".
 *
 * @module
 */

/**
 * The current monotonic time in milliseconds, for building deadlines. Like libdill's
 * `now()`, it is a clock, not a stopwatch: it counts from the process's time origin
 * (`performance.timeOrigin`, the Unix epoch in ms when the process started) and
 * advances with `performance.now()`, so it never goes back, and a value such as
 * `now() - 100000` is a valid deadline in the past (`ETIMEDOUT`), never a negative
 * number (`EINVAL`).
 *
 * @example
 * ```ts
 * import { now } from "./time.ts";
 *
 * const deadline = now() + 1000; // one second from now
 * console.log(deadline > now());
 * ```
 */
export function now(): number {
  // timeOrigin is fixed for the life of the process: the sum is as monotonic as performance.now().
  return performance.timeOrigin + performance.now();
}

/** A deadline: `-1` (forever), `0` (no waiting) or an absolute {@link now} time. */
export type Deadline = number;

/**
 * Milliseconds left until `deadline`: `Infinity` for `-1`, `0` when it has passed.
 *
 * @example
 * ```ts
 * import { now, remaining } from "./time.ts";
 *
 * console.log(remaining(-1)); // Infinity
 * console.log(remaining(now() + 50) <= 50); // true
 * ```
 */
export function remaining(deadline: Deadline): number {
  if (deadline < 0) return Infinity;
  if (deadline === 0) return 0;
  const left = deadline - now();
  return left > 0 ? left : 0;
}
