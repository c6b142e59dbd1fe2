/**
 * The WebSocket calls: attach on either side, message send and receive (typed by
 * the socket or explicit), the closing handshake, detach and status. Each call is
 * a message to the connection's {@link WsActor}.
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { NegotiatedDeflate } from "../protocol/deflate_codec.ts";
import { wsDeflate, wsDeflateOffer } from "./ws_deflate.ts";
import { DillError } from "../protocol/errors.ts";
import { encodeClosePayload, isSendableCloseCode } from "../protocol/close_codes.ts";
import { Opcode } from "../protocol/frame.ts";
import { writeUpgradeRequest } from "../protocol/handshake_client.ts";
import { wsRequestKey } from "../protocol/handshake_keys.ts";
import { isValidUtf8 } from "../protocol/utf8.ts";
import { encodeText } from "../protocol/text_encode.ts";
import { call } from "./actor.ts";
import type { Request } from "./request.ts";
import { checkByteList, checkBytes, checkDeadline } from "./args.ts";
import { type Handle, layerOf, openHandle, takeLayer } from "./handle.ts";
import type { ByteStream } from "./stream.ts";
import type { Deadline } from "./time.ts";
import { WsActor, type WsAttachInfo, type WsMsg, type WsReceived } from "./ws_actor.ts";
import { ClientAttached, ServerAttached } from "./ws_handshake.ts";
import type { WsLayer } from "./ws_layer.ts";
import {
  WS_BINARY,
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
 * A received message with its type: text as a string, binary as bytes (which may be a
 * view into a buffer that small reads share: `slice()` before transferring its buffer).
 */
export type WsMessage =
  | { type: typeof WS_TEXT; data: string }
  | { type: typeof WS_BINARY; data: Uint8Array };

/**
 * Attaches the server side of WebSocket on a bytestream handle: reads the client's
 * upgrade request, validates it, answers `101 Switching Protocols` and returns the
 * message socket with the requested resource and host. A bad request gets a real
 * HTTP error answer (400, 403, 405, 414, 426, 431) and fails with `EPROTO` (or
 * `EMSGSIZE` for limits); the stack is closed then. `s` is taken over at once.
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
  const deflate = wsDeflate(options, "server");
  const negotiated = options.negotiatedDeflate ?? null;
  if (negotiated !== null) {
    if (!noHttp || !(negotiated instanceof NegotiatedDeflate) || !negotiated.available) {
      throw new DillError(
        "EINVAL",
        "wsAttachServer: negotiatedDeflate must be an unused acceptUpgrade deflate, with WS_NOHTTP",
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
  let http = null;
  if (!noHttp) {
    if (typeof resource !== "string" || typeof host !== "string") {
      throw new DillError("EINVAL", "wsAttachClient: resource and host must be strings");
    }
    const key = wsRequestKey();
    const deflate = wsDeflateOffer(wsDeflate(options, "client"));
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
 * Sends one message typed by the socket (`WS_TEXT` or `WS_BINARY`). A string is
 * sent as its UTF-8 bytes; bytes sent on a text socket must be valid UTF-8 (`EINVAL`).
 * Resolves once the message was written to the layer beneath (so an `hclose` right
 * after loses nothing); fails with `EPIPE` once a close frame was sent.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, mrecv, msend, wsAttachClient, wsAttachServer, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await msend(c, new Uint8Array([1, 2]), -1);
 * console.log(await mrecv(s, -1)); // Uint8Array(2) [ 1, 2 ]
 * hclose(s);
 * hclose(c);
 * ```
 */
export function msend(h: Handle, data: Uint8Array | string, deadline: Deadline): Promise<void> {
  try {
    const ws = wsLayer(h, "msend");
    return sendMessage(ws, "msend", ws.socketType, data, deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Sends the concatenation of `bufs` as one message typed by the socket.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, msendl, wsAttachClient, wsAttachServer, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await msendl(c, [new Uint8Array([1]), new Uint8Array([2])], -1);
 * hclose(s);
 * hclose(c);
 * ```
 */
export function msendl(h: Handle, bufs: Uint8Array[], deadline: Deadline): Promise<void> {
  try {
    checkByteList("msendl", bufs);
    const ws = wsLayer(h, "msendl");
    return sendMessage(ws, "msendl", ws.socketType, concatBytes(bufs), deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Receives one message of the socket's type. With a buffer, copies the message
 * into it and resolves its size (`EMSGSIZE` if it does not fit); without one,
 * resolves the payload. A message of the other type fails with `EPROTO`. After the
 * peer's close frame (and every message before it), fails with `EPIPE`. `EPROTO` for
 * the type and `EMSGSIZE` consume that one message and keep the socket usable (the
 * next receive gets the next message); a timeout, a reset or a protocol violation
 * ends receiving (libdill's rule). A resolved payload may be a view into a buffer that
 * small reads share: `slice()` it before transferring its `buffer` or keeping the
 * whole `buffer` around.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, mrecv, msend, wsAttachClient, wsAttachServer, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await msend(c, new Uint8Array([9]), -1);
 * const buf = new Uint8Array(16);
 * console.log(await mrecv(s, buf, -1)); // 1
 * hclose(s);
 * hclose(c);
 * ```
 */
export function mrecv(h: Handle, buf: Uint8Array, deadline: Deadline): Promise<number>;
/** Receives one message of the socket's type and resolves its payload. */
export function mrecv(h: Handle, deadline: Deadline): Promise<Uint8Array>;
export function mrecv(
  h: Handle,
  bufOrDeadline: Uint8Array | Deadline,
  deadline?: Deadline,
): Promise<number | Uint8Array> {
  try {
    if (bufOrDeadline instanceof Uint8Array) {
      return receive(h, "mrecv", true, [bufOrDeadline], deadline!).then((m) => m.size);
    }
    return receive(h, "mrecv", true, null, bufOrDeadline).then((m) => m.data!);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Receives one message of the socket's type into the buffers, in order; resolves
 * its size. With no buffers at all (`[]`, libdill's `first = last = NULL`), the message
 * is dropped and its size resolved.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, mrecvl, msend, wsAttachClient, wsAttachServer, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await msend(c, new Uint8Array([1, 2, 3]), -1);
 * console.log(await mrecvl(s, [new Uint8Array(1), new Uint8Array(8)], -1)); // 3
 * hclose(s);
 * hclose(c);
 * ```
 */
export function mrecvl(h: Handle, bufs: Uint8Array[], deadline: Deadline): Promise<number> {
  try {
    checkByteList("mrecvl", bufs);
    return receive(h, "mrecvl", true, bufs, deadline).then((m) => m.size);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Receives one text message on a `WS_TEXT` socket and resolves it as a string.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, mrecvText, msend, wsAttachClient, wsAttachServer, WS_NOHTTP, WS_TEXT } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP | WS_TEXT, -1),
 *   wsAttachClient(b, WS_NOHTTP | WS_TEXT, "", "", -1),
 * ]);
 * await msend(c, "héllo", -1);
 * console.log(await mrecvText(s, -1)); // héllo
 * hclose(s);
 * hclose(c);
 * ```
 */
export function mrecvText(h: Handle, deadline: Deadline): Promise<string> {
  try {
    return receive(h, "mrecvText", true, null, deadline).then((m) => {
      if (m.type !== WS_TEXT) {
        throw new DillError("EPROTO", "mrecvText: the socket is binary; use mrecv or wsRecv");
      }
      return m.text!;
    });
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Sends one message with an explicit type (`WS_TEXT` or `WS_BINARY`), for mixing
 * types on one socket. Text given as bytes must be valid UTF-8 (`EINVAL` otherwise).
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, wsRecv, wsSend, WS_NOHTTP, WS_TEXT } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await wsSend(c, WS_TEXT, "hi", -1);
 * console.log(await wsRecv(s, -1)); // { type: 1, data: "hi" }
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsSend(
  h: Handle,
  flags: number,
  data: Uint8Array | string,
  deadline: Deadline,
): Promise<void> {
  try {
    const type = messageType("wsSend", flags);
    const ws = wsLayer(h, "wsSend");
    return sendMessage(ws, "wsSend", type, data, deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Sends the concatenation of `bufs` as one message of an explicit type.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, wsSendl, WS_BINARY, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await wsSendl(c, WS_BINARY, [new Uint8Array([1]), new Uint8Array([2])], -1);
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsSendl(
  h: Handle,
  flags: number,
  bufs: Uint8Array[],
  deadline: Deadline,
): Promise<void> {
  try {
    checkByteList("wsSendl", bufs);
    const type = messageType("wsSendl", flags);
    const ws = wsLayer(h, "wsSendl");
    return sendMessage(ws, "wsSendl", type, concatBytes(bufs), deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Receives one message of either type. With a buffer, copies it in and resolves
 * `{ size, type }`; without one, resolves `{ type, data }` with text as a string.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, wsRecv, wsSend, WS_BINARY, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await wsSend(c, WS_BINARY, new Uint8Array([5]), -1);
 * console.log(await wsRecv(s, new Uint8Array(4), -1)); // { size: 1, type: 0 }
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsRecv(
  h: Handle,
  buf: Uint8Array,
  deadline: Deadline,
): Promise<{ size: number; type: WsType }>;
/** Receives one message of either type: text as a string, binary as bytes. */
export function wsRecv(h: Handle, deadline: Deadline): Promise<WsMessage>;
export function wsRecv(
  h: Handle,
  bufOrDeadline: Uint8Array | Deadline,
  deadline?: Deadline,
): Promise<{ size: number; type: WsType } | WsMessage> {
  try {
    if (bufOrDeadline instanceof Uint8Array) {
      return receive(h, "wsRecv", false, [bufOrDeadline], deadline!).then((m) => ({
        size: m.size,
        type: m.type,
      }));
    }
    checkDeadline("wsRecv", bufOrDeadline);
    const ws = wsLayer(h, "wsRecv");
    // Answered in the WsMessage shape directly: no second promise per message.
    return call<WsMessage, WsMsg>(ws, "wsRecv", bufOrDeadline, (req) => ({
      kind: "recv",
      typed: false,
      into: null,
      asMessage: true,
      req: req as unknown as Request<WsReceived>,
    }));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Receives one message of either type into the buffers; resolves `{ size, type }`.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, wsRecvl, wsSend, WS_NOHTTP, WS_TEXT } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await wsSend(c, WS_TEXT, "abc", -1);
 * console.log(await wsRecvl(s, [new Uint8Array(2), new Uint8Array(2)], -1)); // { size: 3, type: 1 }
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsRecvl(
  h: Handle,
  bufs: Uint8Array[],
  deadline: Deadline,
): Promise<{ size: number; type: WsType }> {
  try {
    checkByteList("wsRecvl", bufs);
    return receive(h, "wsRecvl", false, bufs, deadline).then((m) => ({
      size: m.size,
      type: m.type,
    }));
  } catch (e) {
    return Promise.reject(e);
  }
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
 * frame arrives, then hands back the underlying handle, still usable. The stack is
 * closed even when this fails. On a `wsUpgrade` socket it fails with `ENOTSUP` and
 * leaves the handle as it was: Deno owns the connection beneath (use `wsDone`).
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
 * (it only reads the connection's state). Throws `EAGAIN` until the peer's close frame
 * has arrived. Status 1005 means the peer sent no status; 1006 means the connection
 * ended without a close frame (or was failed). Throws `EBADF`/`ENOTSUP` for a closed or
 * non-WebSocket handle.
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

/** The actor behind a message handle: over a bytestream, or over Deno's WebSocket (wsUpgrade). */
function wsLayer(h: Handle, op: string): WsLayer {
  return layerOf<WsLayer>(h, op, "message");
}

/**
 * Every send goes through here: a string becomes its UTF-8 bytes; bytes sent as text must
 * already be valid UTF-8 (a string always is), whichever call sent them.
 */
function sendMessage(
  ws: WsLayer,
  op: string,
  type: WsType,
  data: Uint8Array | string,
  deadline: Deadline,
): Promise<void> {
  checkDeadline(op, deadline);
  let payload: Uint8Array;
  if (typeof data === "string") {
    payload = encodeText(data); // slab-backed: see protocol/text_encode.ts
  } else {
    checkBytes(op, data, "data");
    if (type === WS_TEXT && !isValidUtf8(data)) {
      throw new DillError("EINVAL", `${op}: a text message must be valid UTF-8`);
    }
    payload = data;
  }
  const opcode = type === WS_TEXT ? Opcode.TEXT : Opcode.BINARY;
  return call<void, WsMsg>(ws, op, deadline, (req) => ({ kind: "send", opcode, payload, req }));
}

function receive(
  h: Handle,
  op: string,
  typed: boolean,
  into: Uint8Array[] | null,
  deadline: Deadline,
): Promise<WsReceived> {
  checkDeadline(op, deadline);
  const ws = wsLayer(h, op);
  return call<WsReceived, WsMsg>(ws, op, deadline, (req) => ({ kind: "recv", typed, into, req }));
}

function parseFlags(op: string, flags: number): { socketType: WsType; noHttp: boolean } {
  if (!Number.isInteger(flags) || (flags & ~(WS_TEXT | WS_NOHTTP)) !== 0) {
    throw new DillError("EINVAL", `${op}: flags must combine WS_TEXT/WS_BINARY and WS_NOHTTP`);
  }
  return { socketType: (flags & WS_TEXT) as WsType, noHttp: (flags & WS_NOHTTP) !== 0 };
}

function messageType(op: string, flags: number): WsType {
  if (flags !== WS_TEXT && flags !== WS_BINARY) {
    throw new DillError("EINVAL", `${op}: flags must be WS_TEXT or WS_BINARY`);
  }
  return flags;
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
