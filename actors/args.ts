/**
 * Argument checks shared by the API functions, so that a wrong argument is a clear
 * `EINVAL` and never a `TypeError` from deep inside.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { checkWholeNumber } from "../protocol/option_checks.ts";
import type { Deadline } from "./time.ts";

/**
 * Throws `EINVAL` unless `deadline` is `-1`, `0` or a finite positive number, or an
 * options bag `{ deadline?, signal? }` (a plain object with no other key) holding such a
 * number and an `AbortSignal`.
 * Throws `ECANCELED` when the signal has already aborted: the call is not made, and
 * the socket is left as it was.
 *
 * @example
 * ```ts
 * import { checkDeadline } from "./args.ts";
 *
 * checkDeadline("brecv", -1); // fine
 * checkDeadline("brecv", { signal: AbortSignal.timeout(1000) }); // fine
 * ```
 */
export function checkDeadline(op: string, deadline: Deadline): void {
  if (typeof deadline === "number") return checkDeadlineNumber(op, deadline);
  if (typeof deadline !== "object" || deadline === null || Array.isArray(deadline)) {
    throw new DillError(
      "EINVAL",
      `${op}: deadline must be a number or { deadline?, signal? }, not ${String(deadline)}`,
    );
  }
  checkBagKeys(op, deadline);
  if (deadline.deadline !== undefined) checkDeadlineNumber(op, deadline.deadline);
  const signal = deadline.signal;
  if (signal === undefined) return;
  if (!(signal instanceof AbortSignal)) {
    throw new DillError("EINVAL", `${op}: signal must be an AbortSignal`);
  }
  if (signal.aborted) throw abortError(op, signal);
}

/**
 * A misspelled key (`{ timeout: 1000 }`) or a boxed number (`new Number(5)`) must not
 * pass for a bag without a deadline, which waits forever.
 */
function checkBagKeys(op: string, bag: object): void {
  const proto = Object.getPrototypeOf(bag);
  if (proto !== Object.prototype && proto !== null) {
    throw new DillError(
      "EINVAL",
      `${op}: deadline must be a number or a plain { deadline?, signal? }`,
    );
  }
  for (const key in bag) {
    if (key !== "deadline" && key !== "signal") {
      throw new DillError(
        "EINVAL",
        `${op}: unknown key "${key}" in { deadline?, signal? } (-1 waits forever)`,
      );
    }
  }
}

/**
 * The error of a call cancelled by its `AbortSignal`: `ECANCELED`, with the signal's
 * reason as `cause`.
 *
 * @example
 * ```ts
 * import { abortError } from "./args.ts";
 *
 * const ctl = new AbortController();
 * ctl.abort();
 * console.log(abortError("mrecv", ctl.signal).code); // ECANCELED
 * ```
 */
export function abortError(op: string, signal: AbortSignal): DillError {
  return new DillError("ECANCELED", `${op}: cancelled by its AbortSignal`, {
    cause: signal.reason,
  });
}

function checkDeadlineNumber(op: string, deadline: unknown): void {
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

/**
 * Throws `EINVAL` unless `addr` is `{ hostname?: string, port }` with a port in 0–65535.
 *
 * @example
 * ```ts
 * import { checkTcpAddr } from "./args.ts";
 *
 * checkTcpAddr("tcpConnect", { hostname: "127.0.0.1", port: 8080 }); // fine
 * ```
 */
export function checkTcpAddr(op: string, addr: unknown): asserts addr is {
  hostname?: string;
  port: number;
} {
  const a = addr as { hostname?: unknown; port?: unknown } | null;
  if (typeof a !== "object" || a === null) {
    throw new DillError("EINVAL", `${op}: the address must be { hostname?, port }`);
  }
  if (!Number.isInteger(a.port) || (a.port as number) < 0 || (a.port as number) > 65535) {
    throw new DillError("EINVAL", `${op}: port must be an integer 0-65535, not ${String(a.port)}`);
  }
  if (a.hostname !== undefined && (typeof a.hostname !== "string" || a.hostname === "")) {
    throw new DillError("EINVAL", `${op}: hostname must be a non-empty string`);
  }
}

/**
 * Throws `EINVAL` unless `path` is a non-empty string (a Unix socket path).
 *
 * @example
 * ```ts
 * import { checkPath } from "./args.ts";
 *
 * checkPath("ipcConnect", "/tmp/app.sock"); // fine
 * ```
 */
export function checkPath(op: string, path: unknown): asserts path is string {
  if (typeof path !== "string" || path === "") {
    throw new DillError("EINVAL", `${op}: the socket path must be a non-empty string`);
  }
}

/**
 * The `maxConnections` option of `tcpListen`, `ipcListen` and `tlsListen`: `Infinity`
 * (the default, no bound) or a whole number >= 1; `EINVAL` for anything else.
 *
 * @example
 * ```ts
 * import { checkMaxConnections } from "./args.ts";
 *
 * console.log(checkMaxConnections("tcpListen", undefined)); // Infinity
 * console.log(checkMaxConnections("tcpListen", 10_000)); // 10000
 * ```
 */
export function checkMaxConnections(op: string, value: unknown): number {
  if (value === undefined || value === Infinity) return Infinity;
  checkWholeNumber(`${op}: maxConnections`, value, 1);
  return value;
}

/**
 * Throws `EINVAL` unless `backlog` (of `tcpListen`, `ipcListen`, `tlsListen`) is a whole
 * number >= 1.
 *
 * @example
 * ```ts
 * import { checkBacklog } from "./args.ts";
 *
 * checkBacklog("tcpListen", 128); // fine
 * ```
 */
export function checkBacklog(op: string, backlog: unknown): asserts backlog is number {
  checkWholeNumber(`${op}: backlog`, backlog, 1);
}

/**
 * Throws `EINVAL` unless `options` (a call's options argument) is an object.
 *
 * @example
 * ```ts
 * import { checkOptionsObject } from "./args.ts";
 *
 * checkOptionsObject("tcpListen", { reusePort: true }); // fine
 * ```
 */
export function checkOptionsObject(op: string, options: unknown): asserts options is object {
  if (typeof options !== "object" || options === null) {
    throw new DillError("EINVAL", `${op}: options must be an object`);
  }
}
