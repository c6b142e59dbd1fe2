/**
 * The WebSocket calls around the messages: attach on either side, the closing
 * handshake, detach and status. (Sending and receiving messages are in
 * `ws_message_calls.ts`.) Each call is a message to the connection's {@link WsActor}.
 *
 * @module
 */

import { NegotiatedDeflate, PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { zlibLoaded } from "../protocol/zlib_sync.ts";
import { wsDeflate, wsDeflateOffer } from "./ws_deflate.ts";
import { DillError } from "../protocol/errors.ts";
import { encodeClosePayload, isSendableCloseCode } from "../protocol/close_codes.ts";
import { writeUpgradeRequest } from "../protocol/handshake_client.ts";
import { checkHttpLimits } from "../protocol/http11.ts";
import { checkServerHandshakeOptions } from "../protocol/handshake.ts";
import { wsRequestKey } from "../protocol/handshake_keys.ts";
import { call } from "./actor.ts";
import { checkDeadline } from "./args.ts";
import { type Handle, openHandle, takeLayer } from "./handle.ts";
import type { ByteStream } from "./stream.ts";
import type { Deadline } from "./time.ts";
import { WsActor, type WsAttachInfo, type WsMsg } from "./ws_actor.ts";
import { ClientAttached, ServerAttached } from "./ws_handshake.ts";
import { wsLayer } from "./ws_layer.ts";
import {
  WS_NOHTTP,
  WS_TEXT,
  type WsClientOptions,
  wsLimits,
  type WsServerOptions,
  type WsType,
} from "./ws_options.ts";

/** What {@link wsAttachServer} returns. */
export interface WsServerAttached {
  /** The WebSocket handle. */
  handle: Handle;
  /** The request target the client asked for (`""` with `WS_NOHTTP`). */
  resource: string;
  /** The client's Host header (`""` with `WS_NOHTTP`). */
  host: string;
  /** The negotiated subprotocol, or `null`. */
  protocol: string | null;
  /**
   * The client's request headers. Built when first read: until then the connection keeps
   * only the request head's text.
   */
  headers: Headers;
}

/** What {@link wsAttachClient} returns. */
export interface WsClientAttached {
  /** The WebSocket handle. */
  handle: Handle;
  /** The subprotocol the server chose, or `null`. */
  protocol: string | null;
  /** The server's response headers (built when first read, like the server's). */
  headers: Headers;
}

/**
 * Attaches the server side of WebSocket on a bytestream handle: reads the client's
 * upgrade request, validates it, answers `101 Switching Protocols` and returns the
 * message socket with the requested resource and host. A bad request gets a real
 * HTTP error answer (400, 403, 405, 414, 426, 431) and fails with `EPROTO` (or
 * `EMSGSIZE` for limits); the stack is closed then. While that answer is still being
 * written (a client that does not read), the deadline or an abort ends the call with
 * that same error, not `ETIMEDOUT`/`ECANCELED`: the request was at fault. `s` is taken
 * over at once, except when the call fails before starting (a bad argument, a signal
 * already aborted): `s` is then left as it was.
 * Unlike libdill, a permessage-deflate offer is accepted unless `perMessageDeflate` is
 * `false` (RFC 7692; see the README's "Compression" section).
 *
 * @example
 * ```ts
 * import { hclose, msend, mrecv, now, tcpAccept, tcpListen, wsAttachServer } from "../mod.ts";
 *
 * const ls = tcpListen({ port: 0 });
 * async function serveOne() {
 *   const { handle: tcp } = await tcpAccept(ls, -1);
 *   const { handle, resource } = await wsAttachServer(tcp, 0, now() + 5000);
 *   console.log("client asked for", resource);
 *   await msend(handle, await mrecv(handle, -1), -1); // echo one message
 *   hclose(handle);
 * }
 * hclose(ls);
 * ```
 */
export async function wsAttachServer(
  s: Handle,
  flags: number,
  deadline: Deadline,
  options: WsServerOptions = {},
): Promise<WsServerAttached> {
  const { socketType, noHttp } = parseFlags("wsAttachServer", flags);
  checkDeadline("wsAttachServer", deadline);
  const limits = wsLimits(options);
  // Checked here, as every option is, before the bytestream is taken over.
  if (!noHttp) {
    checkHttpLimits("wsAttachServer", options.httpLimits);
    checkServerHandshakeOptions("wsAttachServer", options);
  }
  const deflate = wsDeflate(options, "server");
  const negotiated = options.negotiatedDeflate ?? null;
  const compresses = noHttp ? negotiated instanceof NegotiatedDeflate : deflate !== null;
  if (compresses && !zlibLoaded()) await loadDeflateEngine("wsAttachServer", deadline);
  // After that wait: a concurrent attach may have taken the negotiation meanwhile.
  if (negotiated !== null) {
    if (!noHttp || !(negotiated instanceof NegotiatedDeflate) || !negotiated.available) {
      throw new DillError(
        "EINVAL",
        "wsAttachServer: negotiatedDeflate must be an unused wsAcceptUpgrade deflate, with WS_NOHTTP",
      );
    }
  }
  const lower = takeLayer<ByteStream>(s, "wsAttachServer", "bytestream");
  const http = noHttp ? null : { ...options, perMessageDeflate: deflate ?? undefined };
  const actor = new WsActor(
    lower,
    { side: "server", http, deflate: negotiated },
    socketType,
    limits,
    options.httpLimits,
  );
  const info = await attach(actor, "wsAttachServer", deadline);
  return new ServerAttached(openHandle(actor, "ws"), info);
}

/**
 * Attaches the client side of WebSocket on a bytestream handle: sends the upgrade
 * request for `resource` on `host` with a fresh key and validates the `101` answer.
 * Fails with `EPROTO` on a bad answer; the stack is closed then. `s` is taken over.
 * Unlike libdill, permessage-deflate is offered unless `perMessageDeflate` is `false`,
 * and an answer that breaks the offer is `EPROTO` (RFC 7692).
 *
 * @example
 * ```ts
 * import { hclose, mrecv, msend, now, tcpConnect, wsAttachClient } from "../mod.ts";
 *
 * async function ask(port: number) {
 *   const tcp = await tcpConnect({ port }, now() + 1000);
 *   const { handle } = await wsAttachClient(tcp, 0, "/echo", "localhost", now() + 1000);
 *   await msend(handle, new Uint8Array([1, 2, 3]), -1);
 *   console.log(await mrecv(handle, -1));
 *   hclose(handle);
 * }
 * ```
 */
export async function wsAttachClient(
  s: Handle,
  flags: number,
  resource: string,
  host: string,
  deadline: Deadline,
  options: WsClientOptions = {},
): Promise<WsClientAttached> {
  const { socketType, noHttp } = parseFlags("wsAttachClient", flags);
  checkDeadline("wsAttachClient", deadline);
  const limits = wsLimits(options);
  if (!noHttp) checkHttpLimits("wsAttachClient", options.httpLimits);
  let http = null;
  if (!noHttp) {
    if (typeof resource !== "string" || typeof host !== "string") {
      throw new DillError("EINVAL", "wsAttachClient: resource and host must be strings");
    }
    const config = wsDeflate(options, "client");
    if (config !== null && !zlibLoaded()) await loadDeflateEngine("wsAttachClient", deadline);
    const key = wsRequestKey();
    const deflate = wsDeflateOffer(config);
    try {
      const extensions = deflate?.offer;
      const request = writeUpgradeRequest(resource, host, key, { ...options, extensions });
      http = { request, key, protocols: options.protocols ?? [], deflate };
    } catch (e) {
      deflate?.budget.release(deflate.reserved);
      throw e;
    }
  }
  let lower;
  try {
    lower = takeLayer<ByteStream>(s, "wsAttachClient", "bytestream");
  } catch (e) {
    http?.deflate?.budget.release(http.deflate.reserved);
    throw e;
  }
  const actor = new WsActor(
    lower,
    { side: "client", http },
    socketType,
    limits,
    options.httpLimits,
  );
  const info = await attach(actor, "wsAttachClient", deadline);
  return new ClientAttached(openHandle(actor, "ws"), info);
}

/**
 * Imports the compression engine (not loaded at start-up: see
 * `../protocol/lazy_module.ts`) before the first connection that may compress takes its
 * bytestream. A failed import (`ENOTSUP`), or the call's signal aborting meanwhile
 * (`ECANCELED`), leaves the bytestream untouched, as a bad argument does; a deadline
 * that passes meanwhile fails the handshake as usual.
 */
async function loadDeflateEngine(op: string, deadline: Deadline): Promise<void> {
  await PerMessageDeflate.ready();
  checkDeadline(op, deadline);
}

/**
 * Sends a close frame and closes the outbound half: later sends fail with `EPIPE`;
 * the peer receives everything sent before, then `EPIPE`. `status` 0 sends no status;
 * otherwise 1000–4999 and not reserved; `reason` is at most 123 bytes of UTF-8.
 *
 * Difference from libdill: by default a peer's close frame is answered at once (RFC
 * 6455), so after the peer's `wsDone` our sending half is over too. With the option
 * `halfCloseTimeout`, it stays open as in libdill until this call (whose status is then
 * the reply), or until the timeout.
 *
 * It resolves once the close frame was written beneath, so it waits (up to its deadline
 * or signal) behind sends still waiting for room. If it fails then, it is a failed send
 * (libdill's rule): later sends and `wsDone` fail with `ECONNRESET`, not `EPIPE`, and
 * the close frame is dropped if it was still waiting for room. On a `wsUpgrade` socket
 * it resolves at once instead: Deno does not tell when a frame is written, so the close
 * frame is queued behind those sends (it goes after them) and the deadline only refuses
 * (`EINVAL`, a signal already aborted).
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, mrecv, wsAttachClient, wsAttachServer, wsDone, wsStatus, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await wsDone(c, 1000, "bye", -1);
 * await mrecv(s, -1).catch((e) => console.log(e.code)); // EPIPE
 * console.log(wsStatus(s)); // { status: 1000, reason: "bye" }
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsDone(
  h: Handle,
  status: number,
  reason: string,
  deadline: Deadline,
): Promise<void> {
  try {
    checkDeadline("wsDone", deadline);
    const payload = closePayload("wsDone", status, reason);
    const ws = wsLayer(h, "wsDone");
    return call<void, WsMsg>(ws, "wsDone", deadline, (req) => ({ kind: "done", payload, req }));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Ends the WebSocket layer cleanly and returns the bytestream beneath it: sends a
 * close frame (unless `wsDone` did), drops incoming messages until the peer's close
 * frame arrives, then hands back the underlying handle, still usable, with every byte
 * the peer sent after its close frame (kept since, up to `maxBufferedBytes`; past that
 * the rest was dropped, and this fails with `ENOMEM`). The stack is closed when the
 * detach fails (a timeout, a broken connection); a bad status, reason or deadline is
 * `EINVAL` and changes nothing, as in libdill's `ws_detach`. On a `wsUpgrade` socket it
 * fails with `ENOTSUP` and leaves the handle as it was: Deno owns the connection beneath
 * (use `wsDone`).
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, wsDetach, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * const [rawS, rawC] = await Promise.all([wsDetach(s, 1000, "", -1), wsDetach(c, 1000, "", -1)]);
 * hclose(rawS);
 * hclose(rawC);
 * ```
 */
export async function wsDetach(
  h: Handle,
  status: number,
  reason: string,
  deadline: Deadline,
): Promise<Handle> {
  checkDeadline("wsDetach", deadline);
  const payload = closePayload("wsDetach", status, reason);
  if (!(wsLayer(h, "wsDetach") instanceof WsActor)) {
    // wsUpgrade's socket lives inside Deno.serve: there is no bytestream to hand back.
    throw new DillError("ENOTSUP", "wsDetach: a wsUpgrade socket has no bytestream beneath it");
  }
  const ws = takeLayer<WsActor>(h, "wsDetach", "message");
  const lower = await call<ByteStream, WsMsg>(
    ws,
    "wsDetach",
    deadline,
    (req) => ({ kind: "detach", payload, req }),
  );
  return openHandle(lower, lower.name);
}

/**
 * The status and reason the peer closed with; synchronous, like libdill's `ws_status`
 * (it only reads the connection's state). Throws `EAGAIN` until the connection ended:
 * the peer's close frame arrived, or it ended without one. Status 1005 means the peer sent
 * no status; 1006 means the connection ended without a close frame (or was failed), where
 * libdill would still say `EAGAIN` (RFC 6455 7.1.5 names both). Throws `EBADF`/`ENOTSUP`
 * for a closed or non-WebSocket handle.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, wsStatus, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * try {
 *   wsStatus(s);
 * } catch (e) {
 *   console.log((e as { code: string }).code); // EAGAIN
 * }
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsStatus(h: Handle): { status: number; reason: string } {
  const status = wsLayer(h, "wsStatus").peerStatus;
  if (!status) throw new DillError("EAGAIN", "wsStatus: the peer has not closed yet");
  return status;
}

// ---- shared plumbing --------------------------------------------------------------

function attach(actor: WsActor, op: string, deadline: Deadline): Promise<WsAttachInfo> {
  return call<WsAttachInfo, WsMsg>(actor, op, deadline, (req) => ({ kind: "attach", req }));
}

function parseFlags(op: string, flags: number): { socketType: WsType; noHttp: boolean } {
  if (!Number.isInteger(flags) || (flags & ~(WS_TEXT | WS_NOHTTP)) !== 0) {
    throw new DillError("EINVAL", `${op}: flags must combine WS_TEXT/WS_BINARY and WS_NOHTTP`);
  }
  return { socketType: (flags & WS_TEXT) as WsType, noHttp: (flags & WS_NOHTTP) !== 0 };
}

function closePayload(op: string, status: number, reason: string): Uint8Array {
  if (!Number.isInteger(status) || (status !== 0 && !isSendableCloseCode(status))) {
    throw new DillError(
      "EINVAL",
      `${op}: status must be 0 (none) or a close code 1000-4999 that is not reserved, not ${status}`,
    );
  }
  if (typeof reason !== "string") throw new DillError("EINVAL", `${op}: reason must be a string`);
  try {
    return encodeClosePayload(status, reason);
  } catch (e) {
    if (e instanceof DillError) throw new DillError(e.code, `${op}: ${e.message}`);
    throw e;
  }
}
