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

// Everything `@dill/ws/serve` offers (errors, deadlines, handles, the message calls,
// wsUpgrade, iteration and Web Streams), then what needs raw sockets.
export * from "./serve.ts";

export { DEFAULT_CLOSE_LINGER_MS, type StreamOptions } from "./actors/stream_options.ts";
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
  type TcpStreamOptions,
} from "./actors/tcp.ts";
export {
  ipcAccept,
  ipcClose,
  ipcConnect,
  ipcDone,
  ipcListen,
  type IpcListenOptions,
  ipcPair,
  type PairOptions,
} from "./actors/ipc.ts";
export { WS_NOHTTP, type WsClientOptions, type WsDeflateOptions } from "./actors/ws_options.ts";
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
  wsAttachClient,
  wsAttachServer,
  type WsClientAttached,
  wsDetach,
  type WsServerAttached,
} from "./actors/ws.ts";
export { wsRequestKey, wsResponseKey } from "./protocol/handshake_keys.ts";
// Reading HTTP yourself, then attaching with WS_NOHTTP (or speaking HTTP before a handshake).
export { httpRecvRequest, httpRecvResponse } from "./actors/http_recv.ts";
export { type WsAcceptOptions, wsAcceptUpgrade } from "./actors/ws_accept_upgrade.ts";
export { type AcceptedUpgrade, HandshakeError } from "./protocol/handshake.ts";
export {
  HttpError,
  type HttpLimits,
  type HttpRequestHead,
  type HttpResponseHead,
} from "./protocol/http11.ts";
export {
  writeHttpErrorResponse,
  writeHttpRequest,
  writeHttpResponse,
} from "./protocol/http_write.ts";
export {
  tlsAttachClient,
  tlsAttachServer,
  tlsDetach,
  tlsDone,
  type TlsInfo,
  tlsInfo,
  type TlsOptions,
} from "./actors/tls.ts";
export type { TlsClientConfig, TlsServerConfig } from "./actors/tls_credentials.ts";
export {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_HANDSHAKES,
  tlsAccept,
  tlsListen,
  type TlsListenOptions,
} from "./actors/tls_listen.ts";
export { type ByteStreams, byteStreams, type ByteStreamsOptions } from "./actors/byte_streams.ts";
