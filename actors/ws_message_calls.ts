/**
 * The message calls of a WebSocket handle: send and receive, typed by the socket
 * (`msend`, `mrecv` and their vectored and text forms) or explicitly (`wsSend`,
 * `wsRecv`). They work on both WebSocket actors (over a bytestream, and over Deno's
 * `WebSocket` from `wsUpgrade`): each call is a message to the actor behind the handle.
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { DillError } from "../protocol/errors.ts";
import { Opcode } from "../protocol/frame.ts";
import { isValidUtf8 } from "../protocol/utf8.ts";
import { encodeText } from "../protocol/text_encode.ts";
import { Request } from "./request.ts";
import { checkByteList, checkBytes, checkDeadline } from "./args.ts";
import type { Handle } from "./handle.ts";
import type { Deadline } from "./time.ts";
import type { WsMsg, WsReceived } from "./ws_actor.ts";
import { type WsLayer, wsLayer } from "./ws_layer.ts";
import { WS_BINARY, WS_TEXT, type WsType } from "./ws_options.ts";

/**
 * A received message with its type: text as a string, binary as bytes (which may be a
 * view into a buffer that small reads share: `slice()` before transferring its buffer).
 */
export type WsMessage =
  | { type: typeof WS_TEXT; data: string }
  | { type: typeof WS_BINARY; data: Uint8Array };

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
    const req = new Request<WsMessage>("wsRecv", bufOrDeadline);
    const msg: WsMsg = {
      kind: "recv",
      typed: false,
      into: null,
      asMessage: true,
      req: req as unknown as Request<WsReceived>,
    };
    ws.send(msg);
    return req.promise;
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

// ---- shared plumbing --------------------------------------------------------------

/** The payload of a text message handed over as its string (see `WsLayer.takesStrings`). */
const NO_BYTES = new Uint8Array(0);

/**
 * Every send goes through here: a string becomes its UTF-8 bytes, except text for a layer
 * that takes strings (a `wsUpgrade` socket: Deno encodes it); bytes sent as text must
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
    if (type === WS_TEXT && ws.takesStrings) {
      const req = new Request<void>(op, deadline);
      ws.send({ kind: "send", opcode: Opcode.TEXT, payload: NO_BYTES, text: data, req });
      return req.promise;
    }
    payload = encodeText(data); // slab-backed: see protocol/text_encode.ts
  } else {
    checkBytes(op, data, "data");
    if (type === WS_TEXT && !isValidUtf8(data)) {
      throw new DillError("EINVAL", `${op}: a text message must be valid UTF-8`);
    }
    payload = data;
  }
  const opcode = type === WS_TEXT ? Opcode.TEXT : Opcode.BINARY;
  // As `call` does, without its builder closure: this runs for every message.
  const req = new Request<void>(op, deadline);
  ws.send({ kind: "send", opcode, payload, req });
  return req.promise;
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
  const req = new Request<WsReceived>(op, deadline);
  ws.send({ kind: "recv", typed, into, req });
  return req.promise;
}

function messageType(op: string, flags: number): WsType {
  if (flags !== WS_TEXT && flags !== WS_BINARY) {
    throw new DillError("EINVAL", `${op}: flags must be WS_TEXT or WS_BINARY`);
  }
  return flags;
}
