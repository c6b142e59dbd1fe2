/**
 * What the WebSocket calls need of the actor behind a message-socket handle, so that
 * they work the same on every WebSocket actor: the one that runs RFC 6455 over a
 * bytestream (`wsAttachServer`/`wsAttachClient`) and the one over Deno's own
 * `WebSocket` (`wsUpgrade`, for `Deno.serve`). Both answer the same mailbox messages.
 *
 * @module
 */

import { type Handle, layerOf, type SocketLayer } from "./handle.ts";
import type { WsMsg } from "./ws_actor.ts";
import type { WsType } from "./ws_options.ts";

/**
 * A message-socket actor answering the WebSocket mailbox messages (`send`, `recv`,
 * `done`, `detach`, ...).
 *
 * @example
 * ```ts
 * import type { WsLayer } from "./ws_layer.ts";
 *
 * function typeOf(layer: WsLayer): string {
 *   return layer.socketType === 1 ? "text" : "binary";
 * }
 * ```
 */
export interface WsLayer extends SocketLayer<WsMsg> {
  /** The message type `msend`/`mrecv` use on this socket. */
  readonly socketType: WsType;
  /** How the peer closed (what `wsStatus` reports), or `null` while it has not. */
  readonly peerStatus: { status: number; reason: string } | null;
  /**
   * Text sent as a string is handed over as that string, not its UTF-8 bytes (Deno's
   * `WebSocket` encodes strings itself: bytes would be decoded back only to be encoded).
   */
  readonly takesStrings?: boolean;
}

/**
 * The actor behind a message-socket handle, over a bytestream or over Deno's
 * `WebSocket` (`wsUpgrade`); `EBADF` for a closed handle, `ENOTSUP` for a handle of
 * another kind, each naming `op`.
 *
 * @example
 * ```ts
 * import { wsLayer } from "./ws_layer.ts";
 * import { hclose, ipcPair, wsAttachClient, wsAttachServer, WS_NOHTTP } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * console.log(wsLayer(s, "example").peerStatus); // null
 * hclose(s);
 * hclose(c);
 * ```
 */
export function wsLayer(h: Handle, op: string): WsLayer {
  return layerOf<WsLayer>(h, op, "message");
}
