/**
 * The one error type the whole stack throws: an errno-style `code` that programs
 * branch on, and a message a person can act on.
 *
 * @module
 */

/**
 * The errno-style codes used by dill-ws, as in libdill.
 *
 * - `EBADF`: the handle is not (or no longer) valid.
 * - `ECANCELED`: the handle was closed while the call was pending.
 * - `ECONNRESET`: the connection broke, or an earlier failure made this direction unusable.
 * - `EINVAL`: an argument is invalid.
 * - `EMSGSIZE`: a message or field is larger than the buffer or the configured limit.
 * - `ENOTSUP`: the operation does not apply to this kind of socket.
 * - `EPIPE`: the peer closed its side cleanly, or this side already closed its output.
 * - `EPROTO`: the peer broke the protocol.
 * - `ETIMEDOUT`: the deadline passed.
 * - `EAGAIN`: the information asked for is not available yet.
 * - `EBUSY`: too many calls are already waiting on this handle.
 * - `ENOMEM`: a buffer limit was reached.
 * - `EMFILE`: no more handles or file descriptors can be opened.
 * - `EADDRINUSE`: the address to listen on is taken.
 * - `ECONNREFUSED`: nobody listens at the address connected to.
 * - `EADDRNOTAVAIL`: the host name connected to could not be resolved to an address (as
 *   libdill's `ipaddr_remote` reports it).
 * - `ENOENT`: no socket file at a Unix socket path connected to, or the folder of one to
 *   listen on does not exist.
 * - `EACCES`: the process may not use that address or path (a Deno permission, such as
 *   `--allow-net`, was not granted, or the operating system refused).
 */
export type ErrorCode =
  | "EBADF"
  | "ECANCELED"
  | "ECONNRESET"
  | "EINVAL"
  | "EMSGSIZE"
  | "ENOTSUP"
  | "EPIPE"
  | "EPROTO"
  | "ETIMEDOUT"
  | "EAGAIN"
  | "EBUSY"
  | "ENOMEM"
  | "EMFILE"
  | "EADDRINUSE"
  | "ECONNREFUSED"
  | "EADDRNOTAVAIL"
  | "ENOENT"
  | "EACCES";

/**
 * An error raised by dill-ws. Branch on `code`; show `message` to people.
 *
 * @example
 * ```ts
 * import { DillError } from "./errors.ts";
 *
 * try {
 *   throw new DillError("ETIMEDOUT", "brecv: deadline passed");
 * } catch (e) {
 *   if (e instanceof DillError && e.code === "ETIMEDOUT") console.log("retry later");
 * }
 * ```
 */
export class DillError extends Error {
  /** The errno-style code. */
  readonly code: ErrorCode;

  /**
   * Makes an error; the message is prefixed with the code.
   *
   * @param code errno-style code
   * @param message what happened and, where useful, what to do about it
   * @param options the underlying cause, if any
   */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(`${code}: ${message}`, options);
    this.name = "DillError";
    this.code = code;
  }
}

/**
 * Tells whether `e` is a {@link DillError}, optionally with the given code.
 *
 * @example
 * ```ts
 * import { DillError, isDillError } from "./errors.ts";
 *
 * console.log(isDillError(new DillError("EPIPE", "closed"), "EPIPE")); // true
 * ```
 */
export function isDillError(e: unknown, code?: ErrorCode): e is DillError {
  return e instanceof DillError && (code === undefined || e.code === code);
}

/**
 * The message of `e` without the code it starts with: what a peer is told (an HTTP
 * refusal's body), where the code means nothing.
 *
 * @example
 * ```ts
 * import { DillError, errorDetail } from "./errors.ts";
 *
 * console.log(errorDetail(new DillError("EPROTO", "missing Host header"))); // missing Host header
 * ```
 */
export function errorDetail(e: DillError): string {
  return e.message.slice(e.code.length + 2);
}
