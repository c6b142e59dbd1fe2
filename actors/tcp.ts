/**
 * TCP sockets: listen, accept, connect and the clean close.
 *
 * @module
 */

import { checkDeadline, checkTcpAddr } from "./args.ts";
import type { Handle } from "./handle.ts";
import {
  acceptConn,
  closeCleanly,
  connectWithin,
  halfClose,
  listenerAddr,
  listenerHandle,
  streamHandle,
} from "./sockets.ts";
import type { StreamOptions } from "./stream.ts";
import type { Deadline } from "./time.ts";
import { transportError } from "./transport.ts";

/** An IP address and port. `hostname` defaults to `127.0.0.1`. */
export interface TcpAddr {
  /** IP address or host name. */
  hostname?: string;
  /** Port number; `0` when listening picks a free one. */
  port: number;
}

/** Default number of accepted connections kept for callers that are not waiting yet. */
export const DEFAULT_BACKLOG = 128;

/**
 * Starts listening for TCP connections. `backlog` bounds the connections this layer
 * accepts ahead of `tcpAccept` calls (the kernel keeps its own queue beyond that).
 *
 * @example
 * ```ts
 * import { hclose, tcpListen, tcpLocalAddr } from "../mod.ts";
 *
 * const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
 * console.log(tcpLocalAddr(ls).port > 0); // true
 * hclose(ls);
 * ```
 */
export function tcpListen(addr: TcpAddr, backlog: number = DEFAULT_BACKLOG): Handle {
  checkTcpAddr("tcpListen", addr);
  try {
    const listener = Deno.listen({ hostname: addr.hostname ?? "127.0.0.1", port: addr.port });
    return listenerHandle(listener, "tcp", backlog);
  } catch (e) {
    throw transportError("tcpListen", e);
  }
}

/**
 * The local address of a TCP listener.
 *
 * @example
 * ```ts
 * import { hclose, tcpListen, tcpLocalAddr } from "../mod.ts";
 *
 * const ls = tcpListen({ port: 0 });
 * console.log(tcpLocalAddr(ls).hostname); // 127.0.0.1
 * hclose(ls);
 * ```
 */
export function tcpLocalAddr(listener: Handle): Required<TcpAddr> {
  const addr = listenerAddr(listener, "tcpLocalAddr") as Deno.NetAddr;
  return { hostname: addr.hostname, port: addr.port };
}

/**
 * Waits for a TCP connection; returns its handle and the peer's address.
 *
 * @example
 * ```ts
 * import { hclose, now, tcpAccept, tcpConnect, tcpListen, tcpLocalAddr } from "../mod.ts";
 *
 * const ls = tcpListen({ port: 0 });
 * const client = await tcpConnect(tcpLocalAddr(ls), now() + 1000);
 * const { handle, addr } = await tcpAccept(ls, now() + 1000);
 * console.log(addr.hostname); // 127.0.0.1
 * hclose(handle);
 * hclose(client);
 * hclose(ls);
 * ```
 */
export async function tcpAccept(
  listener: Handle,
  deadline: Deadline,
  options?: StreamOptions,
): Promise<{ handle: Handle; addr: Required<TcpAddr> }> {
  const conn = await acceptConn(listener, "tcpAccept", deadline) as Deno.TcpConn;
  noDelay(conn);
  const peer = conn.remoteAddr;
  return {
    handle: streamHandle(conn, "tcp", options),
    addr: { hostname: peer.hostname, port: peer.port },
  };
}

/**
 * Connects to a TCP address within the deadline.
 *
 * @example
 * ```ts
 * import { now, tcpConnect } from "../mod.ts";
 *
 * await tcpConnect({ port: 1 }, now() + 1000).catch((e) => console.log(e.code)); // ECONNREFUSED
 * ```
 */
export async function tcpConnect(
  addr: TcpAddr,
  deadline: Deadline,
  options?: StreamOptions,
): Promise<Handle> {
  checkDeadline("tcpConnect", deadline);
  checkTcpAddr("tcpConnect", addr);
  const conn = await connectWithin(
    "tcpConnect",
    deadline,
    (signal) => Deno.connect({ hostname: addr.hostname ?? "127.0.0.1", port: addr.port, signal }),
  );
  noDelay(conn as Deno.TcpConn);
  return streamHandle(conn, "tcp", options);
}

/**
 * Closes a TCP connection cleanly: flushes, half-closes, and waits until the peer
 * closes too (its remaining input is dropped). The handle is closed even when this
 * fails. On a listener it is the same as `hclose`.
 *
 * @example
 * ```ts
 * import { now, tcpClose, tcpListen } from "../mod.ts";
 *
 * await tcpClose(tcpListen({ port: 0 }), now() + 1000);
 * ```
 */
export function tcpClose(h: Handle, deadline: Deadline): Promise<void> {
  return closeCleanly(h, "tcpClose", deadline);
}

/** Our writes are already coalesced, so Nagle's delay would only add latency. */
function noDelay(conn: Deno.TcpConn): void {
  try {
    conn.setNoDelay(true);
  } catch {
    // Not every platform allows it; the connection still works.
  }
}

/**
 * Half-closes a TCP connection (libdill's `tcp_done`): flushes what was sent, then
 * sends a FIN. Receiving goes on; later sends fail with `EPIPE`, and so does a second
 * `tcpDone`. The peer receives everything sent before, then `EPIPE`. Resolves once
 * the FIN was handed to the OS. With deadline `0` it succeeds when that needs no
 * waiting (the socket buffer takes what is still queued). `ENOTSUP` on any other
 * handle (a listener, a TLS stream: use `tlsDone`). `tcpClose` is this followed by
 * reading and dropping input until the peer's FIN.
 *
 * @example
 * ```ts
 * import {
 *   brecv, bsend, hclose, now, tcpAccept, tcpConnect, tcpDone, tcpListen, tcpLocalAddr,
 * } from "../mod.ts";
 *
 * const ls = tcpListen({ port: 0 });
 * const client = await tcpConnect(tcpLocalAddr(ls), now() + 1000);
 * const { handle: server } = await tcpAccept(ls, now() + 1000);
 * await bsend(client, new TextEncoder().encode("query"), now() + 1000);
 * await tcpDone(client, now() + 1000); // nothing more from the client
 * await brecv(server, new Uint8Array(5), now() + 1000);
 * await brecv(server, new Uint8Array(1), now() + 1000).catch((e) => console.log(e.code)); // EPIPE
 * await bsend(server, new TextEncoder().encode("reply"), now() + 1000); // the server still answers
 * console.log(await brecv(client, new Uint8Array(5), now() + 1000)); // the reply
 * hclose(server);
 * hclose(client);
 * hclose(ls);
 * ```
 */
export function tcpDone(h: Handle, deadline: Deadline): Promise<void> {
  return halfClose(h, "tcpDone", deadline, ["tcp"]);
}
