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

/**
 * The longest time, in ms, a timer can wait: 2^31 - 1, about 24.8 days. `setTimeout`
 * fires after 1 ms when asked for more, so every duration option is bounded by it
 * (`EINVAL` beyond), and a deadline farther away than this is waited for in steps.
 *
 * @example
 * ```ts
 * import { MAX_TIMER_MS } from "./time.ts";
 *
 * console.log(MAX_TIMER_MS / 86_400_000); // about 24.86 days
 * ```
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long, in ms, a timer that fired late waits before it judges anything: a timer runs
 * before the runtime reads what arrived while the event loop was held, and an immediate
 * (`setImmediate`) does not make it read either; the runtime polls for I/O while it waits
 * for a timer. Measured: the reads come within about 2 ms of the stall's end.
 *
 * @example
 * ```ts
 * import { SETTLE_MS } from "./time.ts";
 *
 * console.log(SETTLE_MS); // 5
 * ```
 */
export const SETTLE_MS = 5;

/**
 * A deadline: `-1` (forever), `0` (no waiting) or an absolute {@link now} time; or an
 * options bag with such a `deadline` (default `-1`) and/or an `AbortSignal`, the Deno way.
 * An aborted signal fails the call with `ECANCELED`.
 */
export type Deadline = number | DeadlineOptions;

/**
 * The options-bag form of a {@link Deadline}: `{ signal }`, `{ deadline }` or both
 * (whichever comes first ends the call).
 */
export interface DeadlineOptions {
  /** Absolute deadline on the {@link now} clock, `-1` (the default) or `0`. */
  deadline?: number;
  /** Cancels the call when it aborts: the call fails with `ECANCELED`. */
  signal?: AbortSignal;
}

/**
 * The numeric deadline inside a {@link Deadline} (`-1` when an options bag has none).
 *
 * @example
 * ```ts
 * import { deadlineOf } from "./time.ts";
 *
 * console.log(deadlineOf(5), deadlineOf({ signal: new AbortController().signal })); // 5 -1
 * ```
 */
export function deadlineOf(deadline: Deadline): number {
  return typeof deadline === "number" ? deadline : deadline.deadline ?? -1;
}

/**
 * The `AbortSignal` inside a {@link Deadline}, or `null`.
 *
 * @example
 * ```ts
 * import { signalOf } from "./time.ts";
 *
 * console.log(signalOf(-1)); // null
 * ```
 */
export function signalOf(deadline: Deadline): AbortSignal | null {
  return typeof deadline === "number" ? null : deadline.signal ?? null;
}

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
export function remaining(d: Deadline): number {
  const deadline = deadlineOf(d);
  if (deadline < 0) return Infinity;
  if (deadline === 0) return 0;
  const left = deadline - now();
  return left > 0 ? left : 0;
}
