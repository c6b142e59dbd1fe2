/**
 * The fast path for the common TLS server stack, TLS directly over TCP: `tlsListen`
 * listens with Deno's own TLS (`Deno.listenTls`, rustls in native code) and
 * `tlsAccept` returns TLS bytestream handles whose handshake already completed. They
 * behave like the handles `tcpAccept` + `tlsAttachServer` give (`bsend`/`brecv`,
 * `wsAttachServer`, `tlsDone`, `tlsInfo`, `tcpClose`, deadlines, `StreamOptions`), at a
 * fraction of the CPU; only `tlsDetach` is refused (`ENOTSUP`), since Deno gives no
 * way back to the TCP socket beneath.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { call } from "./actor.ts";
import {
  checkBacklog,
  checkDeadline,
  checkMaxConnections,
  checkOptionsObject,
  checkTcpAddr,
} from "./args.ts";
import { checkWholeNumber } from "../protocol/option_checks.ts";
import { type Handle, layerOf, openHandle } from "./handle.ts";
import { checkStreamOptions } from "./stream_options.ts";
import type { TcpAddr } from "./tcp.ts";
import { DEFAULT_BACKLOG } from "./tcp.ts";
import { type Deadline, MAX_TIMER_MS } from "./time.ts";
import { nativeTlsHandle, type TlsOptions } from "./tls.ts";
import { serverCredentials, type TlsServerConfig } from "./tls_credentials.ts";
import { type HandshakenConn, TlsListenerActor, type TlsListenerMsg } from "./tls_listener.ts";
import { addressError } from "./transport.ts";

/**
 * Default of {@link TlsListenOptions.handshakeTimeout}: 10 s.
 *
 * @example
 * ```ts
 * import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from "./tls_listen.ts";
 *
 * console.log(DEFAULT_HANDSHAKE_TIMEOUT_MS); // 10000
 * ```
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Default of {@link TlsListenOptions.maxHandshakes}: TLS handshakes run at once.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_HANDSHAKES } from "./tls_listen.ts";
 *
 * console.log(DEFAULT_MAX_HANDSHAKES); // 128
 * ```
 */
export const DEFAULT_MAX_HANDSHAKES = 128;

/** Limits of {@link tlsListen}; every field is optional. */
export interface TlsListenOptions {
  /**
   * Longest a client may take to complete its TLS handshake, in ms from the moment its
   * TCP connection was accepted; a client still not done (silent, slow, or stuck
   * half-way) is dropped: its handshake slot goes to the next client, and its connection
   * is closed once its handshake ends (Deno cannot close it sooner). Default
   * {@link DEFAULT_HANDSHAKE_TIMEOUT_MS} (10 s).
   */
  handshakeTimeout?: number;
  /**
   * Handshakes that may run at once. While that many run, further connections wait in
   * the kernel's queue, so that a flood of clients that never finish their handshake
   * costs bounded memory. Default {@link DEFAULT_MAX_HANDSHAKES}.
   */
  maxHandshakes?: number;
  /**
   * Accepted connections that may be open at once (handshaking, waiting for
   * `tlsAccept`, handed out, or past `handshakeTimeout` with their handshake not ended,
   * whose sockets Deno cannot close yet); at that many the listener stops accepting, as
   * `tcpListen`'s option of that name. Clients that connect and never send a byte hold
   * their slots for as long as they stay, so that many of them stop the listener until
   * they leave: for untrusted clients, `tcpAccept` + `tlsAttachServer` closes dropped
   * sockets at once. A handed-out connection counts until it is closed, though Deno may
   * keep its socket longer for a peer that does not read. Default: no bound.
   */
  maxConnections?: number;
}

/**
 * Starts listening for TLS connections directly over TCP, with Deno's own TLS
 * (`Deno.listenTls`): the fast path for a TLS or wss server. `config` is the same as
 * {@link tlsAttachServer}'s (PEM text or files, optional ALPN); bad credentials fail
 * with `EINVAL` here, before anything listens. `backlog` bounds the connections whose
 * handshake completed but that no `tlsAccept` took yet (as `tcpListen`'s `backlog`
 * bounds accepted ones); `options` bound the handshakes (see {@link TlsListenOptions}).
 *
 * Handshakes run concurrently, each with its own timeout: a client that is silent,
 * slow, sends garbage or resets costs one handshake slot until it fails, and is then
 * dropped without failing the listener or any `tlsAccept`. Like `tcpListen`'s, the
 * listener accepts only while a `tlsAccept` waits (and a handshake slot is free), so
 * `hclose` frees the port at once; `hclose` also ends every handshake in progress.
 * `tcpLocalAddr` gives its address, `tcpClose` on it is `hclose`.
 *
 * Use it when TLS runs directly over TCP and is never removed. `tcpAccept` +
 * `tlsAttachServer` runs TLS over any bytestream and can `tlsDetach` back to it, at
 * more CPU per message (about 1.6 times as much on 16 KiB wss echo, the same on
 * 1 MiB). Deno's TLS connections offer no `TCP_NODELAY`: a write of more than one TLS
 * record (16 KiB) goes out as several TCP sends under Nagle's algorithm, and a peer
 * that waits for the whole reply may wait for its delayed ACK (about 40 ms on Linux
 * loopback); pipelined traffic does not. Closing a Deno TLS connection leaves its
 * socket open while Deno still has work on it, with no time limit (as with
 * `Deno.serve`): a client dropped during its handshake keeps its socket until it sends
 * or leaves, and so does a peer that does not read what a closed connection wrote.
 * `maxHandshakes` bounds the handshakes waited for, not those sockets; for clients you
 * do not trust, prefer `tcpAccept` + `tlsAttachServer`, which closes every socket it
 * drops at once. libdill has no such call (its TLS is attached only).
 *
 * @example
 * ```ts
 * import { hclose, tcpLocalAddr, tlsListen } from "../mod.ts";
 *
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const ls = await tlsListen({ port: 0 }, {
 *   certFile: new URL("cert.pem", dir).pathname,
 *   keyFile: new URL("key.pem", dir).pathname,
 * }, 128, { handshakeTimeout: 5000 });
 * console.log(tcpLocalAddr(ls).port > 0); // true
 * hclose(ls);
 * ```
 */
export async function tlsListen(
  addr: TcpAddr,
  config: TlsServerConfig,
  backlog: number = DEFAULT_BACKLOG,
  options: TlsListenOptions = {},
): Promise<Handle> {
  const op = "tlsListen";
  checkTcpAddr(op, addr);
  checkBacklog(op, backlog);
  const limits = checkListenOptions(op, options, backlog);
  const { cert, key, alpn } = await serverCredentials(op, config);
  let listener: Deno.TlsListener;
  try {
    listener = Deno.listenTls({
      hostname: addr.hostname ?? "127.0.0.1",
      port: addr.port,
      cert,
      key,
      ...(alpn.length > 0 ? { alpnProtocols: alpn } : {}),
    });
  } catch (e) {
    throw addressError(op, e);
  }
  const name = "tls listener";
  return openHandle(new TlsListenerActor(name, listener, limits), name);
}

/**
 * Waits for a TLS connection on a {@link tlsListen} listener whose handshake
 * completed; returns its TLS bytestream handle and the peer's address. Connections
 * come in the order their handshakes completed; failed and timed-out handshakes are
 * skipped. With deadline `0` it takes a connection whose handshake has already
 * completed (a handshake itself always needs a round trip). `options` are the handle's
 * limits (`StreamOptions`, as for `tcpAccept`). `ENOTSUP` on a listener that is not a
 * TLS one (for those: `tcpAccept`, then `tlsAttachServer`).
 *
 * The handle is a TLS handle like `tlsAttachServer`'s: `tlsDone` sends `close_notify`
 * and half-closes, `tcpClose` closes cleanly, `tlsInfo` gives the ALPN protocol (its
 * `version` is `null`: Deno does not report it). `tlsDetach` fails with `ENOTSUP` and
 * leaves the handle usable (see README, "Differences from libdill").
 *
 * @example
 * ```ts
 * import {
 *   brecv, hclose, now, tcpConnect, tcpLocalAddr, tlsAccept, tlsAttachClient, tlsListen, bsend,
 * } from "../mod.ts";
 *
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const pem = (name: string) => Deno.readTextFileSync(new URL(name, dir));
 * const ls = await tlsListen({ port: 0 }, { cert: pem("cert.pem"), key: pem("key.pem") });
 * const connecting = tcpConnect(tcpLocalAddr(ls), now() + 1000).then((tcp) =>
 *   tlsAttachClient(tcp, { hostname: "localhost", caCerts: [pem("ca.pem")] }, now() + 5000)
 * );
 * const { handle: server } = await tlsAccept(ls, now() + 5000);
 * const client = await connecting;
 * await bsend(client, new TextEncoder().encode("hello"), now() + 1000);
 * console.log(new TextDecoder().decode(await brecv(server, new Uint8Array(5), now() + 1000)));
 * hclose(client);
 * hclose(server);
 * hclose(ls);
 * ```
 */
export async function tlsAccept(
  listener: Handle,
  deadline: Deadline,
  options?: TlsOptions,
): Promise<{ handle: Handle; addr: Required<TcpAddr> }> {
  const op = "tlsAccept";
  checkDeadline(op, deadline);
  checkStreamOptions(op, options);
  const layer = layerOf(listener, op, "listener");
  if (!(layer instanceof TlsListenerActor)) {
    throw new DillError(
      "ENOTSUP",
      `${op}: ${listener} is not a tlsListen listener; use tcpAccept, then tlsAttachServer`,
    );
  }
  const { conn, session } = await call<HandshakenConn, TlsListenerMsg>(
    layer,
    op,
    deadline,
    (req) => ({ kind: "accept", req }),
  );
  const peer = conn.remoteAddr;
  return {
    handle: nativeTlsHandle(conn, session, options),
    addr: { hostname: peer.hostname, port: peer.port },
  };
}

function checkListenOptions(op: string, options: unknown, backlog: number) {
  checkOptionsObject(op, options);
  const {
    handshakeTimeout = DEFAULT_HANDSHAKE_TIMEOUT_MS,
    maxHandshakes = DEFAULT_MAX_HANDSHAKES,
  } = options as TlsListenOptions;
  if (!(handshakeTimeout > 0 && handshakeTimeout <= MAX_TIMER_MS)) {
    throw new DillError(
      "EINVAL",
      `${op}: handshakeTimeout must be a number of ms > 0 and at most ${MAX_TIMER_MS}`,
    );
  }
  checkWholeNumber(`${op}: maxHandshakes`, maxHandshakes, 1);
  const maxConnections = checkMaxConnections(op, (options as TlsListenOptions).maxConnections);
  return { handshakeTimeout, maxHandshakes, backlog, maxConnections };
}
