/**
 * TCP sockets: listen, accept, connect and the clean close.
 *
 * @module
 */

import {
  checkBacklog,
  checkDeadline,
  checkMaxConnections,
  checkOptionsObject,
  checkTcpAddr,
} from "./args.ts";
import { DillError } from "../protocol/errors.ts";
import { checkBoolean } from "../protocol/option_checks.ts";
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
import { checkStreamOptions, type StreamOptions } from "./stream_options.ts";
import type { Deadline } from "./time.ts";
import { addressError } from "./transport.ts";

/** An IP address and port. `hostname` defaults to `127.0.0.1`. */
export interface TcpAddr {
  /** IP address or host name. */
  hostname?: string;
  /** Port number; `0` when listening picks a free one. */
  port: number;
}

/**
 * Default `backlog` of `tcpListen` (and `ipcListen`, `tlsListen`): accepted connections
 * kept after the call that asked for them gave up.
 *
 * @example
 * ```ts
 * import { DEFAULT_BACKLOG } from "./tcp.ts";
 *
 * console.log(DEFAULT_BACKLOG); // 128
 * ```
 */
export const DEFAULT_BACKLOG = 128;

/**
 * Options of a TCP connection ({@link tcpAccept}, {@link tcpConnect}): the limits every
 * bytestream has, and Nagle's algorithm.
 */
export interface TcpStreamOptions extends StreamOptions {
  /**
   * Sets `TCP_NODELAY`: every write goes out at once instead of waiting, while earlier
   * bytes are unacknowledged, to be merged with the next writes (Nagle's algorithm).
   * Default `true`: our writes are already coalesced (one per event-loop turn), so
   * Nagle's wait would only add latency. `false` gives libdill's behaviour (it leaves
   * Nagle on) and Deno's `WebSocket` client's: an application that awaits each of many
   * small sends (without `sendBuffer`) then makes fewer, larger TCP segments, at less
   * CPU per message, while a peer that waits for a reply split over two writes may wait
   * for its delayed acknowledgement (up to 40 ms on Linux).
   */
  noDelay?: boolean;
}

/** Socket options of {@link tcpListen}. */
export interface TcpListenOptions {
  /**
   * Sets `SO_REUSEPORT`, so that several listeners (usually in several processes) can bind
   * the same address and port; the kernel spreads incoming connections among them. Every
   * listener on the port must set it. Linux balances the connections; other systems
   * accept the option but may hand every connection to one listener. Deno keeps this
   * option behind its `--unstable-net` flag (or `"unstable": ["net"]` in `deno.json`);
   * without it `tcpListen` fails with `ENOTSUP` instead of letting Deno end the process.
   * Default `false`.
   */
  reusePort?: boolean;
  /**
   * Connections accepted from this listener that may be open at once: at that many it
   * stops accepting, and further clients wait in the kernel's queue (calls keep waiting,
   * up to their deadlines) until one of them is closed. Set it below the process's descriptor
   * limit, so that clients alone cannot take every descriptor. Default: no bound.
   */
  maxConnections?: number;
}

/**
 * Starts listening for TCP connections. Connections wait in the kernel's queue (Deno
 * sets its length) until a `tcpAccept` call takes them: the listener accepts only while
 * a call waits, so that `hclose` frees the port at once. `backlog` bounds the
 * connections kept that were accepted for a call whose deadline then passed.
 *
 * A connection that fails before it is accepted (a client that resets at once) is
 * skipped: the listener and the waiting `tcpAccept` carry on. Running out of file
 * descriptors makes the listener retry after a growing pause (`ACCEPT_BACKOFF_MIN_MS`
 * to `ACCEPT_BACKOFF_MAX_MS`); libdill returns these errors to the caller instead.
 *
 * `options.reusePort` lets several processes listen on one port (see
 * {@link TcpListenOptions}); libdill's `tcp_listen` has no such option, Deno's
 * `Deno.listen` does.
 *
 * @example
 * ```ts
 * import { hclose, tcpListen, tcpLocalAddr } from "../mod.ts";
 *
 * const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
 * console.log(tcpLocalAddr(ls).port > 0); // true
 * hclose(ls);
 * ```
 *
 * @example Two listeners on one port
 * ```ts
 * import { hclose, tcpListen, tcpLocalAddr } from "../mod.ts";
 *
 * const a = tcpListen({ port: 0 }, 128, { reusePort: true });
 * const b = tcpListen({ port: tcpLocalAddr(a).port }, 128, { reusePort: true });
 * hclose(b);
 * hclose(a);
 * ```
 */
export function tcpListen(
  addr: TcpAddr,
  backlog: number = DEFAULT_BACKLOG,
  options: TcpListenOptions = {},
): Handle {
  checkTcpAddr("tcpListen", addr);
  checkBacklog("tcpListen", backlog);
  const { reusePort, maxConnections } = checkListenOptions(options);
  try {
    const hostname = addr.hostname ?? "127.0.0.1";
    // Deno asks for --unstable-net only when reusePort is set, so the default path needs no flag.
    const listener = reusePort
      ? Deno.listen({ hostname, port: addr.port, reusePort })
      : Deno.listen({ hostname, port: addr.port });
    return listenerHandle(listener, "tcp", backlog, maxConnections);
  } catch (e) {
    throw addressError("tcpListen", e);
  }
}

/** `EINVAL` for anything but an options object with valid `reusePort` and `maxConnections`. */
function checkListenOptions(
  options: TcpListenOptions,
): { reusePort: boolean; maxConnections: number } {
  checkOptionsObject("tcpListen", options);
  const { reusePort = false } = options;
  checkBoolean("tcpListen: reusePort", reusePort);
  // Without --unstable-net, Deno.listen({ reusePort }) exits the whole process rather than
  // throwing. The flag also exposes Deno.listenDatagram, which is how we can tell.
  if (reusePort && typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
    throw new DillError(
      "ENOTSUP",
      'tcpListen: reusePort needs Deno\'s --unstable-net flag (or "unstable": ["net"] in deno.json)',
    );
  }
  return { reusePort, maxConnections: checkMaxConnections("tcpListen", options.maxConnections) };
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
 * Waits for a TCP connection; returns its handle and the peer's address. A connection
 * that was reset or aborted before it could be accepted is skipped, and the call waits
 * for the next one (libdill's `tcp_accept` returns that error instead: here one client
 * that resets cannot stop a server). With deadline `0` it takes a connection that the
 * kernel has already established, if Deno completes the accept at once: it does, except
 * after a burst of ready I/O in the same turn of the event loop (about 128 operations,
 * the runtime's fairness budget), when it defers the accept to a later turn and the call
 * fails with `ETIMEDOUT` although a connection is queued. To drain a queue, use a short
 * deadline (`now() + 10`) rather than `0`. An abort or deadline that ends the call never
 * loses a connection: one the call had already taken goes to the next `tcpAccept`
 * (as many as the listener's backlog; beyond, it is closed).
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
  options?: TcpStreamOptions,
): Promise<{ handle: Handle; addr: Required<TcpAddr> }> {
  const noDelay = checkTcpStreamOptions("tcpAccept", options);
  const conn = await acceptConn(listener, "tcpAccept", deadline) as Deno.TcpConn;
  setNoDelay(conn, noDelay);
  const peer = conn.remoteAddr;
  return {
    handle: streamHandle(conn, "tcp", options),
    addr: { hostname: peer.hostname, port: peer.port },
  };
}

/**
 * Connects to a TCP address within the deadline (a host name is resolved first; one that
 * does not resolve is `EADDRNOTAVAIL`).
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
  options?: TcpStreamOptions,
): Promise<Handle> {
  checkDeadline("tcpConnect", deadline);
  checkTcpAddr("tcpConnect", addr);
  const noDelay = checkTcpStreamOptions("tcpConnect", options);
  const conn = await connectWithin(
    "tcpConnect",
    deadline,
    (signal) => Deno.connect({ hostname: addr.hostname ?? "127.0.0.1", port: addr.port, signal }),
  );
  setNoDelay(conn as Deno.TcpConn, noDelay);
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

/** Checks a connection's options; returns its `noDelay`. */
function checkTcpStreamOptions(op: string, options: TcpStreamOptions | undefined): boolean {
  checkStreamOptions(op, options);
  const noDelay = options?.noDelay === undefined ? true : options.noDelay;
  checkBoolean(`${op}: option noDelay`, noDelay);
  return noDelay;
}

/** Sets `TCP_NODELAY` either way: what a socket starts with is not ours to assume. */
function setNoDelay(conn: Deno.TcpConn, noDelay: boolean): void {
  try {
    conn.setNoDelay(noDelay);
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
