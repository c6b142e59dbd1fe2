/**
 * Argument checks shared by the API functions, so that a wrong argument is a clear
 * `EINVAL` and never a `TypeError` from deep inside.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import type { Deadline } from "./time.ts";

/**
 * Throws `EINVAL` unless `deadline` is `-1`, `0` or a finite positive number.
 *
 * @example
 * ```ts
 * import { checkDeadline } from "./args.ts";
 *
 * checkDeadline("brecv", -1); // fine
 * ```
 */
export function checkDeadline(op: string, deadline: Deadline): void {
  if (
    typeof deadline !== "number" || !(deadline === -1 || (deadline >= 0 && deadline < Infinity))
  ) {
    throw new DillError(
      "EINVAL",
      `${op}: deadline must be -1 (forever), 0 (no waiting) or now() + ms, not ${String(deadline)}`,
    );
  }
}

/**
 * Throws `EINVAL` unless `buf` is a `Uint8Array`.
 *
 * @example
 * ```ts
 * import { checkBytes } from "./args.ts";
 *
 * checkBytes("bsend", new Uint8Array(3)); // fine
 * ```
 */
export function checkBytes(op: string, buf: unknown, what = "buffer"): asserts buf is Uint8Array {
  if (!(buf instanceof Uint8Array)) {
    throw new DillError("EINVAL", `${op}: ${what} must be a Uint8Array`);
  }
}

/**
 * Throws `EINVAL` unless `bufs` is an array of `Uint8Array`s.
 *
 * @example
 * ```ts
 * import { checkByteList } from "./args.ts";
 *
 * checkByteList("bsendl", [new Uint8Array(1), new Uint8Array(2)]); // fine
 * ```
 */
export function checkByteList(op: string, bufs: unknown): asserts bufs is Uint8Array[] {
  if (!Array.isArray(bufs)) throw new DillError("EINVAL", `${op}: expected an array of buffers`);
  for (const b of bufs) checkBytes(op, b, "every buffer");
}
