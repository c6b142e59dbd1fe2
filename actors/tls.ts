/**
 * The TLS calls: attach on either side of any bytestream (TCP, Unix socket, in-memory
 * pair, even another TLS stream), detach with the `close_notify` exchange, and what
 * the handshake settled. The result of an attach is a bytestream handle like any
 * other: `bsend`/`brecv` and `wsAttachServer`/`wsAttachClient` work on it, and
 * `tcpClose` on it sends `close_notify` and waits for the peer's.
 *
 * Certificates and keys are read and checked in `tls_credentials.ts`.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { call } from "./actor.ts";
import { checkDeadline } from "./args.ts";
import { type Handle, layerOf, openHandle, takeLayer } from "./handle.ts";
import { halfClose } from "./sockets.ts";
import { ByteStream, type StreamMsg } from "./stream.ts";
import { checkStreamOptions, DEFAULT_HIGH_WATER, type StreamOptions } from "./stream_options.ts";
import type { Deadline } from "./time.ts";
import { TlsConnTransport } from "./tls_conn_transport.ts";
import {
  clientTrust,
  serverCredentials,
  type TlsClientConfig,
  type TlsServerConfig,
} from "./tls_credentials.ts";
import { TlsActor, type TlsMsg, type TlsSession, type TlsStart } from "./tls_actor.ts";
import { loadTlsEngine } from "./tls_engine.ts";

/** Limits of the TLS bytestream (the decrypted side); every field is optional. */
export type TlsOptions = StreamOptions;

/** What a TLS handshake settled; see {@link tlsInfo}. */
export type TlsInfo = TlsSession;

/** The TLS actor beneath each TLS bytestream, for detach and info. */
const tlsBeneath = new WeakMap<ByteStream, TlsActor>();

/** TLS bytestreams on Deno's own TLS (from `tlsAccept`): what their handshake settled. */
const nativeSessions = new WeakMap<ByteStream, TlsSession>();

/**
 * Attaches the server side of TLS to a bytestream handle and runs the handshake.
 * `s` is taken over at once (using it afterwards fails with `EBADF`); on failure the
 * whole stack is closed. Fails with `EPROTO` when the client does not speak TLS or
 * rejects the handshake, `ECONNRESET` when it goes away, `ETIMEDOUT` at the deadline,
 * and `EINVAL` for unusable credentials or `ENOTSUP` without `node:tls` (both leaving `s`
 * untouched; the engine is imported by the first TLS attach). Deadline `0` (or
 * past) always fails with `ETIMEDOUT`, even when the client's hello is already there:
 * the handshake ends only with the client's answer to our flight, a round trip that
 * is waiting by definition.
 *
 * @example
 * ```ts
 * import { brecv, hclose, now, tcpAccept, tcpListen, tlsAttachServer } from "../mod.ts";
 *
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const cert = Deno.readTextFileSync(new URL("cert.pem", dir));
 * const key = Deno.readTextFileSync(new URL("key.pem", dir));
 * const ls = tcpListen({ port: 0 });
 * async function serveOne() {
 *   const { handle: tcp } = await tcpAccept(ls, -1);
 *   const s = await tlsAttachServer(tcp, { cert, key }, now() + 5000);
 *   console.log(await brecv(s, new Uint8Array(5), now() + 5000));
 *   hclose(s);
 * }
 * hclose(ls);
 * ```
 */
export async function tlsAttachServer(
  s: Handle,
  config: TlsServerConfig,
  deadline: Deadline,
  options: TlsOptions = {},
): Promise<Handle> {
  const op = "tlsAttachServer";
  checkDeadline(op, deadline);
  const { cert, key, alpn } = await serverCredentials(op, config);
  await loadTlsEngine();
  return await attach(op, s, { side: "server", cert, key, alpn }, deadline, options);
}

/**
 * Wraps a `Deno.TlsConn` whose handshake completed in a TLS bytestream handle (label
 * `"tls"`): `tlsDone`, `tlsInfo` and the clean close work on it as on an attached
 * TLS, `tlsDetach` fails with `ENOTSUP`.
 *
 * @example
 * ```ts
 * import { nativeTlsHandle } from "./tls.ts";
 * import type { Handle } from "./handle.ts";
 *
 * function wrap(conn: Deno.TlsConn): Handle {
 *   return nativeTlsHandle(conn, { version: null, alpnProtocol: null });
 * }
 * ```
 */
export function nativeTlsHandle(
  conn: Deno.TlsConn,
  session: TlsSession,
  options?: TlsOptions,
): Handle {
  const transport = new TlsConnTransport(conn, options?.readHighWater ?? DEFAULT_HIGH_WATER);
  const top = new ByteStream("tls", transport, options);
  nativeSessions.set(top, session);
  return openHandle(top, "tls");
}

/**
 * Attaches the client side of TLS to a bytestream handle and runs the handshake:
 * the server's certificate must chain to `caCerts` (or the bundled Mozilla roots)
 * and be valid for `hostname`. `s` is taken over at once; on failure the whole stack
 * is closed. Fails with `EPROTO` for an untrusted certificate, a wrong host name or
 * a server that does not speak TLS, `ECONNRESET` when the server goes away,
 * `ETIMEDOUT` at the deadline, and `EINVAL` for bad arguments or `ENOTSUP` without
 * `node:tls` (both leaving `s` untouched).
 * Deadline `0` (or past) always fails with `ETIMEDOUT`: the handshake needs the
 * server's answer to our hello, a round trip that is waiting by definition.
 *
 * @example
 * ```ts
 * import { bsend, hclose, now, tcpConnect, tlsAttachClient } from "../mod.ts";
 *
 * async function hello(port: number, caPem: string) {
 *   const tcp = await tcpConnect({ port }, now() + 1000);
 *   const s = await tlsAttachClient(tcp, { hostname: "localhost", caCerts: [caPem] }, now() + 5000);
 *   await bsend(s, new TextEncoder().encode("hello"), now() + 1000);
 *   hclose(s);
 * }
 * ```
 */
export async function tlsAttachClient(
  s: Handle,
  config: TlsClientConfig,
  deadline: Deadline,
  options: TlsOptions = {},
): Promise<Handle> {
  const op = "tlsAttachClient";
  checkDeadline(op, deadline);
  const { hostname, caCerts, alpn } = await clientTrust(op, config);
  const start: TlsStart = { side: "client", hostname, caCerts, alpn };
  await loadTlsEngine();
  return await attach(op, s, start, deadline, options);
}

/**
 * Ends TLS cleanly and returns the bytestream beneath it, still usable: flushes what
 * was sent, sends `close_notify`, drops incoming data until the peer's
 * `close_notify`, then hands back the lower handle (with any bytes the peer sent
 * after its `close_notify`). Both sides call it. The stack is closed when it fails
 * (`ETIMEDOUT`, `ECONNRESET` if the peer closed without `close_notify`, `EPROTO`);
 * `ENOTSUP` if `s` is not a TLS handle (then `s` stays valid). With deadline `0` it
 * succeeds when the peer's `close_notify` has already arrived (ours is sent without
 * waiting). Calls still pending on `s` fail with `ECANCELED` once it is detached, but
 * a `brecv` that reads the peer's `close_notify` first fails with `EPIPE`, as it would
 * without the detach.
 *
 * @example
 * ```ts
 * import { hclose, now, tlsDetach } from "../mod.ts";
 * import type { Handle } from "../mod.ts";
 *
 * async function backToPlain(tlsHandle: Handle) {
 *   const plain = await tlsDetach(tlsHandle, now() + 5000);
 *   hclose(plain);
 * }
 * ```
 */
export async function tlsDetach(s: Handle, deadline: Deadline): Promise<Handle> {
  const op = "tlsDetach";
  checkDeadline(op, deadline);
  const stream = layerOf<ByteStream>(s, op, "bytestream");
  if (nativeSessions.has(stream)) {
    throw new DillError(
      "ENOTSUP",
      `${op}: ${s} runs on Deno's own TLS (tlsAccept), which cannot hand back the TCP ` +
        "socket beneath; for a detachable TLS, accept with tcpAccept and attach tlsAttachServer",
    );
  }
  const tlsActor = tlsBeneath.get(stream);
  if (!tlsActor) throw new DillError("ENOTSUP", `${op}: ${s} is not a TLS socket`);
  const top = takeLayer<ByteStream>(s, op, "bytestream");
  try {
    // Everything sent so far goes out first; then the close_notify.
    await call<void, StreamMsg>(top, op, deadline, (req) => ({ kind: "done", req }));
    const lower = await call<ByteStream, TlsMsg>(
      tlsActor,
      op,
      deadline,
      (req) => ({ kind: "detach", req }),
    );
    top.close(new DillError("ECANCELED", `${s} was detached by ${op}`));
    return openHandle(lower, lower.name);
  } catch (e) {
    // The stack closes under the calls still pending on `s`: they fail with the
    // connection's error, or ECANCELED when it is the detach's own deadline that passed
    // (theirs may have none).
    const own = !(e instanceof DillError) || e.code === "ETIMEDOUT";
    top.close(own ? new DillError("ECANCELED", `${op} failed, which closed ${s}`) : e);
    throw e;
  }
}

/**
 * Half-closes a TLS connection (libdill's `tls_done`): flushes what was sent, then
 * sends `close_notify`; resolves once it was written to the stream beneath. Receiving
 * goes on; later sends and a second `tlsDone` fail with `EPIPE`; the peer receives
 * everything sent before, then `EPIPE`. The stream beneath stays open (the handle
 * still closes it). `ENOTSUP` if `s` is not a TLS handle.
 *
 * @example
 * ```ts
 * import { bsend, hclose, now, tlsDone } from "../mod.ts";
 * import type { Handle } from "../mod.ts";
 *
 * async function lastWord(tlsHandle: Handle) {
 *   await bsend(tlsHandle, new TextEncoder().encode("bye"), now() + 1000);
 *   await tlsDone(tlsHandle, now() + 1000); // the peer reads "bye", then EPIPE
 *   hclose(tlsHandle);
 * }
 * ```
 */
export function tlsDone(s: Handle, deadline: Deadline): Promise<void> {
  try {
    checkDeadline("tlsDone", deadline);
    const stream = layerOf<ByteStream>(s, "tlsDone", "bytestream");
    if (!tlsBeneath.has(stream) && !nativeSessions.has(stream)) {
      throw new DillError("ENOTSUP", `tlsDone: ${s} is not a TLS socket`);
    }
    return halfClose(s, "tlsDone", deadline, ["tls"]);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * What the handshake of a TLS handle settled: the protocol version and the ALPN
 * protocol. Fails with `ENOTSUP` on a handle that is not TLS.
 *
 * @example
 * ```ts
 * import { tlsInfo } from "../mod.ts";
 * import type { Handle } from "../mod.ts";
 *
 * function describe(h: Handle) {
 *   const { version, alpnProtocol } = tlsInfo(h);
 *   console.log(version, alpnProtocol); // TLSv1.3 http/1.1
 * }
 * ```
 */
export function tlsInfo(s: Handle): TlsInfo {
  const stream = layerOf<ByteStream>(s, "tlsInfo", "bytestream");
  const native = nativeSessions.get(stream);
  if (native) return { ...native };
  const tlsActor = tlsBeneath.get(stream);
  if (!tlsActor?.session) throw new DillError("ENOTSUP", `tlsInfo: ${s} is not a TLS socket`);
  return { ...tlsActor.session };
}

async function attach(
  op: string,
  s: Handle,
  start: TlsStart,
  deadline: Deadline,
  options: TlsOptions,
): Promise<Handle> {
  checkStreamOptions(op, options);
  const lower = takeLayer<ByteStream>(s, op, "bytestream");
  let tlsActor: TlsActor;
  try {
    tlsActor = new TlsActor(lower, start, {
      readHighWater: options.readHighWater ?? DEFAULT_HIGH_WATER,
    });
  } catch (e) {
    const error = new DillError("EINVAL", `${op}: the TLS engine refused the settings (${e})`, {
      cause: e,
    });
    lower.close(error);
    throw error;
  }
  await call<TlsSession, TlsMsg>(tlsActor, op, deadline, (req) => ({ kind: "handshake", req }));
  const top = new ByteStream("tls", tlsActor.plaintext, options);
  tlsBeneath.set(top, tlsActor);
  return openHandle(top, "tls");
}
