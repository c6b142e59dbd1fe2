/**
 * The `Deno.serve` / Deno Deploy entry point of dill-ws: WebSocket on top of
 * `Deno.upgradeWebSocket` with the message-socket API, and nothing that Deno Deploy
 * lacks (no raw TCP listener, no Unix sockets, no TLS engine, no file reads, no
 * subprocesses). Import it as `@dill/ws/serve`; the full stack is `@dill/ws`.
 *
 * @example
 * ```ts
 * import { hclose, messages, msend, now, WS_TEXT, wsUpgrade, WsUpgradeError } from "@dill/ws/serve";
 *
 * const shutdown = new AbortController(); // abort it on SIGINT: every socket closes with 1001
 * function handler(request: Request): Response {
 *   try {
 *     const { response, handle } = wsUpgrade(request, WS_TEXT, { shutdownSignal: shutdown.signal });
 *     (async () => {
 *       for await (const m of messages(handle)) await msend(handle, m.data, now() + 5000);
 *     })().catch(console.error).finally(() => hclose(handle));
 *     return response;
 *   } catch (e) {
 *     if (e instanceof WsUpgradeError) return e.response;
 *     throw e;
 *   }
 * }
 * // Deno.serve({ signal: shutdown.signal }, handler);
 * ```
 *
 * @module
 */

export { DillError, type ErrorCode, isDillError } from "./protocol/errors.ts";
export { type Deadline, type DeadlineOptions, now } from "./actors/time.ts";
export { deadlineAfter, deadlineSignal } from "./actors/deadline_signal.ts";
export { Handle, hclose } from "./actors/handle.ts";
export {
  WS_BINARY,
  WS_TEXT,
  type WsOptions,
  type WsServerOptions,
  type WsType,
} from "./actors/ws_options.ts";
export {
  mrecv,
  mrecvl,
  mrecvText,
  msend,
  msendl,
  type WsMessage,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
} from "./actors/ws_message_calls.ts";
export { wsDone, wsStatus } from "./actors/ws.ts";
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
export type { HttpRequestHead } from "./protocol/http11.ts";
