/**
 * What a failed `accept()` means for the listener that made it. Unlike libdill's
 * `tcp_accept`, which hands every error to its caller, a listener here must survive
 * the errors that concern one connection only: a client that connects and resets
 * before it is accepted must never stop a server.
 *
 * @module
 */

/**
 * The kind of an accept failure:
 * - `"connection"`: one connection failed between the kernel's handshake and the
 *   accept (it was reset, aborted, refused by a firewall rule...). The listener is
 *   fine: skip it and accept the next one.
 * - `"exhausted"`: the process or the system ran out of descriptors or memory. The
 *   connection stays in the kernel's queue: wait a little and try again.
 * - `"closed"`: the listener was closed under the call.
 * - `"fatal"`: the listening socket itself is broken; no later accept can succeed.
 */
export type AcceptFailure = "connection" | "exhausted" | "closed" | "fatal";

/** Errno names of failures that concern the one connection being accepted. */
const CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  "ECONNABORTED",
  "ECONNRESET",
  "ENOTCONN",
  "EPROTO",
  "EPERM",
  "ETIMEDOUT",
  "EHOSTDOWN",
  "EHOSTUNREACH",
  "ENETDOWN",
  "ENETUNREACH",
  "ENONET",
  "ENOPROTOOPT",
  "EOPNOTSUPP",
  "EINTR",
  "EAGAIN",
  "EWOULDBLOCK",
]);

/** Errno names of resource exhaustion: retry later. */
const EXHAUSTION_ERRORS: ReadonlySet<string> = new Set(["EMFILE", "ENFILE", "ENOMEM", "ENOBUFS"]);

/**
 * Classifies an error thrown by `Deno.Listener.accept()`. Deno puts the errno name in
 * the error's `code`; its error classes are used when there is none.
 *
 * @example
 * ```ts
 * import { classifyAcceptError } from "./accept_errors.ts";
 *
 * console.log(classifyAcceptError(new Deno.errors.NotConnected("reset before accept"))); // connection
 * console.log(classifyAcceptError(Object.assign(new Error("Too many open files"), { code: "EMFILE" }))); // exhausted
 * ```
 */
export function classifyAcceptError(e: unknown): AcceptFailure {
  if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) {
    return "closed";
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (CONNECTION_ERRORS.has(code)) return "connection";
    if (EXHAUSTION_ERRORS.has(code)) return "exhausted";
  }
  if (
    e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.ConnectionReset ||
    e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.ConnectionRefused ||
    e instanceof Deno.errors.TimedOut
  ) {
    return "connection";
  }
  return "fatal";
}
