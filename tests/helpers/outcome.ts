/**
 * How a promise ended, captured at once so that a rejection is never left unhandled while
 * the test does more, then asserted: a failure with one of our error codes, or a success.
 *
 * @example
 * ```ts
 * import { brecv, hclose, ipcPair, now } from "../../mod.ts";
 * import { assertFailed, settle } from "./outcome.ts";
 *
 * const [a, b] = ipcPair();
 * const receiving = settle(brecv(a, new Uint8Array(1), now() + 100));
 * assertFailed(await receiving, "ETIMEDOUT", "brecv with nothing sent");
 * hclose(a);
 * hclose(b);
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { type DillError, type ErrorCode, isDillError } from "../../mod.ts";

/**
 * How a promise ended, captured so that a rejection is never left unhandled.
 *
 * @example
 * ```ts
 * import { type Outcome, settle } from "./outcome.ts";
 *
 * const outcome: Outcome<number> = await settle(Promise.resolve(1));
 * ```
 */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Captures the outcome of `p` at once (no unhandled rejection while the test does more).
 *
 * @example
 * ```ts
 * import { settle } from "./outcome.ts";
 *
 * const outcome = await settle(Promise.reject(new Error("no")));
 * console.log(outcome.ok); // false
 * ```
 */
export function settle<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false, error }));
}

/**
 * Asserts an outcome is a {@link DillError} failure with `code`; returns the error.
 *
 * @example
 * ```ts
 * import { DillError } from "../../mod.ts";
 * import { assertFailed, settle } from "./outcome.ts";
 *
 * const outcome = await settle(Promise.reject(new DillError("EPIPE", "closed")));
 * console.log(assertFailed(outcome, "EPIPE", "a send after close").message);
 * ```
 */
export function assertFailed<T>(outcome: Outcome<T>, code: ErrorCode, what: string): DillError {
  if (outcome.ok) assert.fail(`${what}: expected ${code}, but it succeeded`);
  const e = outcome.error;
  assert.ok(isDillError(e), `${what}: expected a DillError ${code}, got ${String(e)}`);
  assert.equal(e.code, code, `${what}: expected ${code}, got ${e.message}`);
  return e;
}

/**
 * Asserts an outcome succeeded; returns its value.
 *
 * @example
 * ```ts
 * import { assertOk, settle } from "./outcome.ts";
 *
 * console.log(assertOk(await settle(Promise.resolve(42)), "the answer")); // 42
 * ```
 */
export function assertOk<T>(outcome: Outcome<T>, what: string): T {
  if (!outcome.ok) {
    const e = outcome.error;
    assert.fail(`${what}: expected success, got ${e instanceof Error ? e.stack : String(e)}`);
  }
  return outcome.value;
}
