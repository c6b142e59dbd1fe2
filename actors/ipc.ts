/**
 * Unix domain sockets and the in-memory connected pair.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { checkBacklog, checkMaxConnections, checkOptionsObject, checkPath } from "./args.ts";
import { checkWholeNumber } from "../protocol/option_checks.ts";
import type { Handle } from "./handle.ts";
import { pipePair } from "./pipe.ts";
import {
  acceptConn,
  closeCleanly,
  connectWithin,
  halfClose,
  listenerHandle,
  streamHandle,
} from "./sockets.ts";
import { checkStreamOptions, type StreamOptions } from "./stream_options.ts";
import type { Deadline } from "./time.ts";
import { addressError } from "./transport.ts";
import { DEFAULT_BACKLOG } from "./tcp.ts";

/** Options of {@link ipcListen}. */
export interface IpcListenOptions {
  /**
   * Accepted connections that may be open at once; at that many the listener stops
   * accepting, as `tcpListen`'s option of that name. Default: no bound.
   */
  maxConnections?: number;
}

/**
 * Starts listening on a Unix socket path. Accepting works as for `tcpListen`: only
 * while an `ipcAccept` call waits, skipping connections that failed before they were
 * accepted, backing off while descriptors are exhausted, and pausing while
 * `options.maxConnections` accepted connections are open.
 *
 * @example
 * ```ts
 * import { hclose, ipcListen } from "../mod.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * hclose(ipcListen(`${dir}/sock`));
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function ipcListen(
  path: string,
  backlog: number = DEFAULT_BACKLOG,
  options: IpcListenOptions = {},
): Handle {
  checkPath("ipcListen", path);
  checkBacklog("ipcListen", backlog);
  checkOptionsObject("ipcListen", options);
  const maxConnections = checkMaxConnections("ipcListen", options.maxConnections);
  try {
    const listener = Deno.listen({ transport: "unix", path });
    return listenerHandle(listener, "ipc", backlog, maxConnections);
  } catch (e) {
    // Binding reports a missing folder as "not found", which for a connect means that
    // nobody listens: here it is the path's fault, as bind's ENOENT says.
    if (e instanceof Deno.errors.NotFound) {
      throw new DillError("ENOENT", `ipcListen: the folder of ${path} does not exist`, {
        cause: e,
      });
    }
    throw addressError("ipcListen", e);
  }
}

/**
 * Waits for a connection on a Unix socket listener. As with `tcpAccept`, a connection
 * that failed before it could be accepted is skipped and the call waits for the next.
 *
 * @example
 * ```ts
 * import { hclose, ipcAccept, ipcConnect, ipcListen, now } from "../mod.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * const ls = ipcListen(`${dir}/sock`);
 * const c = await ipcConnect(`${dir}/sock`, now() + 1000);
 * const s = await ipcAccept(ls, now() + 1000);
 * hclose(s);
 * hclose(c);
 * hclose(ls);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function ipcAccept(
  listener: Handle,
  deadline: Deadline,
  options?: StreamOptions,
): Promise<Handle> {
  checkStreamOptions("ipcAccept", options);
  return streamHandle(await acceptConn(listener, "ipcAccept", deadline), "ipc", options);
}

/**
 * Connects to a Unix socket path within the deadline.
 *
 * @example
 * ```ts
 * import { ipcConnect, now } from "../mod.ts";
 *
 * await ipcConnect("/nonexistent/sock", now() + 100).catch((e) => console.log(e.code)); // ENOENT
 * ```
 */
export async function ipcConnect(
  path: string,
  deadline: Deadline,
  options?: StreamOptions,
): Promise<Handle> {
  checkPath("ipcConnect", path);
  checkStreamOptions("ipcConnect", options);
  const conn = await connectWithin(
    "ipcConnect",
    deadline,
    () =>
      Deno.connect({ transport: "unix", path }).catch((e) => Promise.reject(missingPath(e, path))),
  );
  return streamHandle(conn, "ipc", options);
}

/**
 * No socket file at the path connected to is `ENOENT`, as libdill's `ipc_connect` says
 * (`ECONNREFUSED` is left for a socket file nobody listens on).
 */
function missingPath(e: unknown, path: string): unknown {
  if (!(e instanceof Deno.errors.NotFound)) return e;
  return new DillError("ENOENT", `ipcConnect: there is no socket at ${path}`, { cause: e });
}

/**
 * Closes a Unix socket connection cleanly, like `tcpClose`.
 *
 * @example
 * ```ts
 * import { ipcClose, ipcListen, now } from "../mod.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * await ipcClose(ipcListen(`${dir}/sock`), now() + 1000);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function ipcClose(h: Handle, deadline: Deadline): Promise<void> {
  return closeCleanly(h, "ipcClose", deadline);
}

/** Options of {@link ipcPair}. */
export interface PairOptions extends StreamOptions {
  /** Bytes each direction of the in-memory pipe buffers (a whole number >= 1). Default 64 KiB. */
  pipeCapacity?: number;
}

/**
 * Two connected in-memory bytestream handles, for tests and in-process use.
 *
 * @example
 * ```ts
 * import { brecv, bsend, hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new TextEncoder().encode("ABC"), -1);
 * const buf = new Uint8Array(3);
 * await brecv(b, buf, -1);
 * console.log(new TextDecoder().decode(buf)); // ABC
 * hclose(a);
 * hclose(b);
 * ```
 */
export function ipcPair(options: PairOptions = {}): [Handle, Handle] {
  checkStreamOptions("ipcPair", options);
  const capacity = options.pipeCapacity;
  // 0 (or NaN) would leave no room: every send would wait forever.
  if (capacity !== undefined) checkWholeNumber("ipcPair: option pipeCapacity", capacity, 1);
  const [a, b] = pipePair(capacity);
  return [streamHandle(a, "pipe", options), streamHandle(b, "pipe", options)];
}

/**
 * Half-closes a Unix socket connection or one end of an {@link ipcPair} (libdill's
 * `ipc_done`), like `tcpDone`: flushes what was sent, then closes the output. Receiving
 * goes on; later sends and a second `ipcDone` fail with `EPIPE`; the peer receives
 * everything sent before, then `EPIPE`. `ENOTSUP` on any other handle.
 *
 * @example
 * ```ts
 * import { brecv, bsend, hclose, ipcDone, ipcPair, now } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new Uint8Array([1, 2]), now() + 1000);
 * await ipcDone(a, now() + 1000);
 * console.log(await brecv(b, new Uint8Array(2), now() + 1000)); // Uint8Array(2) [ 1, 2 ]
 * await brecv(b, new Uint8Array(1), now() + 1000).catch((e) => console.log(e.code)); // EPIPE
 * await bsend(b, new Uint8Array([3]), now() + 1000); // b can still send to a
 * console.log(await brecv(a, new Uint8Array(1), now() + 1000)); // Uint8Array(1) [ 3 ]
 * hclose(a);
 * hclose(b);
 * ```
 */
export function ipcDone(h: Handle, deadline: Deadline): Promise<void> {
  return halfClose(h, "ipcDone", deadline, ["ipc", "pipe"]);
}
