/**
 * Unix domain sockets and the in-memory connected pair.
 *
 * @module
 */

import { checkPath } from "./args.ts";
import type { Handle } from "./handle.ts";
import { pipePair } from "./pipe.ts";
import {
  acceptConn,
  closeCleanly,
  connectWithin,
  listenerHandle,
  streamHandle,
} from "./sockets.ts";
import type { StreamOptions } from "./stream.ts";
import type { Deadline } from "./time.ts";
import { transportError } from "./transport.ts";
import { DEFAULT_BACKLOG } from "./tcp.ts";

/**
 * Starts listening on a Unix socket path. Accepting works as for `tcpListen`: only
 * while an `ipcAccept` call waits, skipping connections that failed before they were
 * accepted, and backing off while descriptors are exhausted.
 *
 * @example
 * ```ts
 * import { hclose, ipcListen } from "../mod.ts";
 *
 * const path = Deno.makeTempDirSync() + "/sock";
 * hclose(ipcListen(path));
 * ```
 */
export function ipcListen(path: string, backlog: number = DEFAULT_BACKLOG): Handle {
  checkPath("ipcListen", path);
  try {
    return listenerHandle(Deno.listen({ transport: "unix", path }), "ipc", backlog);
  } catch (e) {
    throw transportError("ipcListen", e);
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
 * const path = Deno.makeTempDirSync() + "/sock";
 * const ls = ipcListen(path);
 * const c = await ipcConnect(path, now() + 1000);
 * const s = await ipcAccept(ls, now() + 1000);
 * hclose(s);
 * hclose(c);
 * hclose(ls);
 * ```
 */
export async function ipcAccept(
  listener: Handle,
  deadline: Deadline,
  options?: StreamOptions,
): Promise<Handle> {
  return streamHandle(await acceptConn(listener, "ipcAccept", deadline), "ipc", options);
}

/**
 * Connects to a Unix socket path within the deadline.
 *
 * @example
 * ```ts
 * import { ipcConnect, now } from "../mod.ts";
 *
 * await ipcConnect("/nonexistent/sock", now() + 100).catch((e) => console.log(e.code));
 * ```
 */
export async function ipcConnect(
  path: string,
  deadline: Deadline,
  options?: StreamOptions,
): Promise<Handle> {
  checkPath("ipcConnect", path);
  const conn = await connectWithin(
    "ipcConnect",
    deadline,
    () => Deno.connect({ transport: "unix", path }),
  );
  return streamHandle(conn, "ipc", options);
}

/**
 * Closes a Unix socket connection cleanly, like `tcpClose`.
 *
 * @example
 * ```ts
 * import { ipcClose, ipcListen, now } from "../mod.ts";
 *
 * await ipcClose(ipcListen(Deno.makeTempDirSync() + "/sock"), now() + 1000);
 * ```
 */
export function ipcClose(h: Handle, deadline: Deadline): Promise<void> {
  return closeCleanly(h, "ipcClose", deadline);
}

/** Options of {@link ipcPair}. */
export interface PairOptions extends StreamOptions {
  /** Bytes each direction of the in-memory pipe buffers. Default 64 KiB. */
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
  const [a, b] = pipePair(options.pipeCapacity);
  return [streamHandle(a, "pipe", options), streamHandle(b, "pipe", options)];
}
