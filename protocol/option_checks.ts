/**
 * The checks every numeric or on/off option goes through, so that a bad value is `EINVAL`
 * with the same wording whichever option it is: counts are whole numbers in a range, sizes
 * and durations are numbers from 0 up (`Infinity` where no upper bound is given), switches
 * are booleans.
 *
 * @module
 */

import { DillError } from "./errors.ts";

/**
 * Throws `EINVAL` unless `value` is a whole number from `min` to `max`; `subject` names
 * it in the message (`"tcpListen: backlog"`, `"option maxWaitingCalls"`).
 *
 * @example
 * ```ts
 * import { checkWholeNumber } from "./option_checks.ts";
 *
 * checkWholeNumber("tcpListen: backlog", 128, 1); // fine
 * ```
 */
export function checkWholeNumber(
  subject: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new DillError("EINVAL", `${subject} must be a whole number ${range}, not ${value}`);
  }
}

/**
 * Throws `EINVAL` unless `value` is a number from 0 to `max` (a size or a duration;
 * fractions allowed, `Infinity` too while `max` is). `unit` follows `max` in the message.
 *
 * @example
 * ```ts
 * import { checkAmount } from "./option_checks.ts";
 *
 * checkAmount("option maxMessageSize", 1 << 20); // fine
 * checkAmount("option idleTimeout", 30_000, 2 ** 31 - 1, " ms"); // fine
 * ```
 */
export function checkAmount(
  subject: string,
  value: unknown,
  max = Infinity,
  unit = "",
): asserts value is number {
  if (typeof value !== "number" || !(value >= 0)) {
    throw new DillError("EINVAL", `${subject} must be a number >= 0, not ${String(value)}`);
  }
  if (value > max) {
    throw new DillError("EINVAL", `${subject} must be at most ${max}${unit}, not ${value}`);
  }
}

/**
 * Throws `EINVAL` unless `value` is a boolean; `subject` names it in the message.
 *
 * @example
 * ```ts
 * import { checkBoolean } from "./option_checks.ts";
 *
 * checkBoolean("tcpListen: reusePort", true); // fine
 * ```
 */
export function checkBoolean(subject: string, value: unknown): asserts value is boolean {
  if (typeof value !== "boolean") {
    throw new DillError("EINVAL", `${subject} must be a boolean, not ${String(value)}`);
  }
}
