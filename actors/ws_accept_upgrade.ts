/**
 * The server's side of the WebSocket handshake for an application that reads HTTP
 * itself: one port that answers plain requests and upgrades some of them, then attaches
 * the WebSocket layer with `WS_NOHTTP`. The checks and the answer are the ones
 * `wsAttachServer` makes; the options are its public ones.
 *
 * @module
 */

import { type AcceptedUpgrade, acceptUpgrade } from "../protocol/handshake.ts";
import type { HttpRequestHead } from "../protocol/http11.ts";
import { checkOptionsObject } from "./args.ts";
import { wsDeflate } from "./ws_deflate.ts";
import type { WsDeflateOptions, WsServerOptions } from "./ws_options.ts";

/** Options of {@link wsAcceptUpgrade}: those of `wsAttachServer` that shape the handshake. */
export interface WsAcceptOptions extends
  Pick<
    WsServerOptions,
    "maxResourceLength" | "maxHostLength" | "protocols" | "checkOrigin" | "responseHeaders"
  > {
  /**
   * Accept permessage-deflate offers: `true` for the default settings, or the settings
   * (as `wsAttachServer`'s option of the same name). **Off by default**, unlike
   * `wsAttachServer`: the codec this negotiates must then be handed to `wsAttachServer`
   * as `negotiatedDeflate` (or released), and a caller that ignores it would leave the
   * client sending compressed frames to a socket that does not expect them.
   */
  perMessageDeflate?: boolean | WsDeflateOptions;
}

/**
 * Validates a WebSocket upgrade request (RFC 6455 section 4.2.1) read by the
 * application (`httpRecvRequest`, or its own HTTP server) and builds the
 * `101 Switching Protocols` answer. Send `response` with `bsend`, then attach with
 * `wsAttachServer(s, WS_NOHTTP, ...)`, passing `deflate` (when not `null`) as the
 * `negotiatedDeflate` option; if the connection is dropped instead, call
 * `deflate.release()`. A request that must be refused throws a `HandshakeError` whose
 * `status` and `response` (a complete HTTP answer) say how to refuse it; the checks, in
 * order, are those of `wsAttachServer` (method, version, target, Host, no body,
 * `Upgrade`/`Connection`, version 13, key, origin, subprotocols, extensions).
 *
 * @param request the request head
 * @param options limits, subprotocols, origin check, extra answer headers and compression
 * @returns the requested resource and host, the chosen subprotocol, the negotiated
 *   compression and the answer to send
 * @throws {HandshakeError} when the request must be refused (`EPROTO`, or `EMSGSIZE`
 *   for an exceeded limit)
 * @throws {DillError} `EINVAL` when `options` is invalid (checked before the request) or
 *   `request` is not a request head
 *
 * @example
 * ```ts
 * import { wsAcceptUpgrade } from "../mod.ts";
 *
 * const headers = new Headers({
 *   "Host": "example.com",
 *   "Upgrade": "websocket",
 *   "Connection": "Upgrade",
 *   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
 *   "Sec-WebSocket-Version": "13",
 *   "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
 * });
 * const up = wsAcceptUpgrade(
 *   { method: "GET", target: "/chat", version: "HTTP/1.1", headers },
 *   { perMessageDeflate: true },
 * );
 * console.log(up.resource, up.deflate !== null); // /chat true
 * up.deflate?.release(); // not attaching here: give the memory reservation back
 * ```
 */
export function wsAcceptUpgrade(
  request: HttpRequestHead,
  options: WsAcceptOptions = {},
): AcceptedUpgrade {
  const where = "wsAcceptUpgrade";
  checkOptionsObject(where, options);
  const { perMessageDeflate = false, ...handshake } = options;
  const deflate = wsDeflate({ perMessageDeflate }, "server", where) ?? undefined;
  return acceptUpgrade(request, { ...handshake, perMessageDeflate: deflate }, where);
}
