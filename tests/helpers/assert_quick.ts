/**
 * A timing assertion for answers that must not wait for a deadline: our side answered a
 * violation at once instead of timing out.
 *
 * @module
 */

import assert from "node:assert/strict";
import { now } from "../../mod.ts";

/**
 * Asserts that the time elapsed since `startedAt` (a `now()` reading) is well under the
 * `budget` in ms, so that the work it measures did not wait for a deadline.
 *
 * @example
 * ```ts
 * import { now } from "../../mod.ts";
 * import { assertQuick } from "./assert_quick.ts";
 *
 * const t0 = now();
 * await Promise.resolve();
 * assertQuick(t0, "nothing at all", 100);
 * ```
 */
export function assertQuick(startedAt: number, what: string, budget = 1000): void {
  const elapsed = now() - startedAt;
  assert.ok(elapsed < budget, `${what} took ${elapsed.toFixed(0)} ms (budget ${budget} ms)`);
}
