/** The checks every numeric or on/off option goes through (protocol/option_checks.ts). */

import assert from "node:assert/strict";
import { isDillError } from "../protocol/errors.ts";
import { checkAmount, checkBoolean, checkWholeNumber } from "../protocol/option_checks.ts";

function einval(fn: () => void, message: RegExp): void {
  assert.throws(fn, (e) => isDillError(e, "EINVAL") && message.test(e.message));
}

Deno.test("option checks: an amount is a number from 0 to its bound, fractions and Infinity allowed", () => {
  for (const ok of [0, 0.5, 1 << 20, Infinity]) checkAmount("option x", ok);
  checkAmount("option t", 2 ** 31 - 1, 2 ** 31 - 1, " ms");
  for (const bad of [-1, NaN, "5", null, undefined, 5n]) {
    einval(() => checkAmount("option x", bad), /^EINVAL: option x must be a number >= 0, not /);
  }
  einval(
    () => checkAmount("option t", Infinity, 100, " ms"),
    /option t must be at most 100 ms, not Infinity/,
  );
  einval(
    () => checkAmount("option t", 101, 100, " ms"),
    /option t must be at most 100 ms, not 101/,
  );
});

Deno.test("option checks: a whole number is a safe integer in its range", () => {
  checkWholeNumber("backlog", 1, 1);
  checkWholeNumber("bits", 15, 8, 15);
  for (const bad of [0, 1.5, Infinity, NaN, 2 ** 53, "3", null]) {
    einval(
      () => checkWholeNumber("backlog", bad, 1),
      /^EINVAL: backlog must be a whole number >= 1, not /,
    );
  }
  einval(
    () => checkWholeNumber("bits", 16, 8, 15),
    /bits must be a whole number from 8 to 15, not 16/,
  );
});

Deno.test("option checks: a switch is a boolean, nothing that merely looks like one", () => {
  for (const ok of [true, false]) checkBoolean("option x", ok);
  for (const bad of [1, 0, "true", null, undefined]) {
    einval(() => checkBoolean("option x", bad), /^EINVAL: option x must be a boolean, not /);
  }
});
