/**
 * dill-ws: libdill's layered socket stack for Deno. TCP, Unix sockets, in-memory
 * pipes, TLS and WebSocket are protocol layers stacked on each other; each layer is
 * an actor with a mailbox, and every blocking call takes a deadline.
 *
 * @example
 * ```ts
 * import { brecv, bsend, hclose, ipcPair, now } from "./mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new TextEncoder().encode("hello"), now() + 1000);
 * const buf = await brecv(b, new Uint8Array(5), now() + 1000);
 * console.log(new TextDecoder().decode(buf)); // hello
 * hclose(a);
 * hclose(b);
 * ```
 *
 * @module
 */

export { DillError, type ErrorCode, isDillError } from "./protocol/errors.ts";
export { type Deadline, now } from "./actors/time.ts";
export { Handle, hclose } from "./actors/handle.ts";
export type { StreamOptions } from "./actors/stream.ts";
export { brecv, brecvl, bsend, bsendl } from "./actors/bytestream.ts";
export {
  DEFAULT_BACKLOG,
  tcpAccept,
  type TcpAddr,
  tcpClose,
  tcpConnect,
  tcpDone,
  tcpListen,
  type TcpListenOptions,
  tcpLocalAddr,
} from "./actors/tcp.ts";
export {
  ipcAccept,
  ipcClose,
  ipcConnect,
  ipcDone,
  ipcListen,
  ipcPair,
  type PairOptions,
} from "./actors/ipc.ts";
export {
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  type WsClientOptions,
  type WsDeflateOptions,
  type WsOptions,
  type WsServerOptions,
  type WsType,
} from "./actors/ws_options.ts";
export { DeflateBudget } from "./protocol/deflate_budget.ts";
export {
  type DeflateCodecSettings,
  type InflateFailure,
  type MessageInflater,
  NegotiatedDeflate,
  PerMessageDeflate,
} from "./protocol/deflate_codec.ts";
export type { DeflateParams, PerMessageDeflateOptions } from "./protocol/permessage_deflate.ts";
export {
  mrecv,
  mrecvl,
  mrecvText,
  msend,
  msendl,
  wsAttachClient,
  wsAttachServer,
  type WsClientAttached,
  wsDetach,
  wsDone,
  type WsMessage,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
  type WsServerAttached,
  wsStatus,
} from "./actors/ws.ts";
export { wsRequestKey, wsResponseKey } from "./protocol/handshake_keys.ts";
export type { HttpLimits, HttpRequestHead } from "./protocol/http11.ts";

// ---- TLS ------------------------------------------------------------------------------
export {
  tlsAttachClient,
  tlsAttachServer,
  type TlsClientConfig,
  tlsDetach,
  tlsDone,
  type TlsInfo,
  tlsInfo,
  type TlsOptions,
  type TlsServerConfig,
} from "./actors/tls.ts";

// ---- Deno.serve, cancellation, iteration, Web Streams ----------------------------------
export { type DeadlineOptions } from "./actors/time.ts";
export { deadlineAfter, deadlineSignal } from "./actors/deadline_signal.ts";
export {
  wsUpgrade,
  type WsUpgraded,
  WsUpgradeError,
  type WsUpgradeOptions,
} from "./actors/ws_upgrade.ts";
export { messages } from "./actors/messages.ts";
export {
  type WsCloseInfo,
  type WsStream,
  wsStream,
  type WsStreamOpened,
  type WsStreamOptions,
} from "./actors/ws_stream.ts";
export { type ByteStreams, byteStreams, type ByteStreamsOptions } from "./actors/byte_streams.ts";
