/**
 * `wsUpgrade`: WebSocket inside a `Deno.serve` handler (and on Deno Deploy), where no
 * raw stream lies under a request. It validates the upgrade request exactly as
 * `wsAttachServer` does, lets `Deno.upgradeWebSocket` answer it, and gives back a
 * message-socket handle on which every WebSocket call works.
 *
 * @module
 */

import { DillError, type ErrorCode, errorDetail } from "../protocol/errors.ts";
import { checkAmount } from "../protocol/option_checks.ts";
import { acceptUpgrade, HandshakeError } from "../protocol/handshake.ts";
import type { HttpRequestHead } from "../protocol/http11.ts";
import { type Handle, openHandle } from "./handle.ts";
import {
  DEFAULT_SEND_HIGH_WATER,
  DEFAULT_UPGRADE_MAX_BUFFERED_BYTES,
  WsUpgradeActor,
} from "./ws_upgrade_actor.ts";
import { WS_TEXT, wsLimits, type WsServerOptions, type WsType } from "./ws_options.ts";

/**
 * Options of {@link wsUpgrade}: those of `wsAttachServer` that apply (with a larger
 * `maxBufferedBytes` default), and two of its own. No compression: Deno's `WebSocket`
 * does not speak permessage-deflate, so offers are not answered. Deno answers pings and
 * close frames and fails protocol violations itself, so `maxPongBytes`, `failGrace` and
 * `halfCloseTimeout` do not apply.
 */
export interface WsUpgradeOptions extends
  Omit<
    WsServerOptions,
    | "closeGrace"
    | "httpLimits"
    | "perMessageDeflate"
    | "negotiatedDeflate"
    | "maxBufferedBytes"
    // Deno answers pings and close frames and fails violations itself:
    | "maxPongBytes"
    | "failGrace"
    | "halfCloseTimeout"
  > {
  /**
   * Received bytes queued for a reader that is behind. Deno's `WebSocket` cannot pause
   * reading, so a message that arrives when this many are queued fails the connection
   * (close 1008; the reader gets the queued messages, then `ENOMEM`). Default 16 MiB,
   * more than a `wsAttachServer` socket's 1 MiB, where reaching it only pauses reading.
   */
  maxBufferedBytes?: number;
  /**
   * Send backpressure: a message is handed to Deno when it holds at most this many
   * unwritten bytes (`WebSocket.bufferedAmount`) and no earlier send waits, and its send
   * resolves once Deno is back at this mark (0: once everything is written). Sends made
   * meanwhile wait their turn without being handed over (at most `maxWaitingCalls`, then
   * `EBUSY`): Deno holds at most this plus one message. Default 256 KiB.
   */
  sendHighWater?: number;
  /**
   * When this signal aborts (a server shutting down, such as on `SIGINT`), the socket
   * sends a close frame with status 1001 (going away); sends waiting their turn and later
   * sends fail with `EPIPE` (a message Deno already has goes before the close frame, but
   * its send resolves at once: Deno counts no unwritten bytes once closing); receives end
   * with `EPIPE` once the peer answers.
   */
  shutdownSignal?: AbortSignal;
}

/** What {@link wsUpgrade} returns. */
export interface WsUpgraded {
  /** The `101 Switching Protocols` response: return it from the `Deno.serve` handler. */
  response: Response;
  /** The message-socket handle. */
  handle: Handle;
  /** The request target (path and query) the client asked for. */
  resource: string;
  /** The client's Host. */
  host: string;
  /** The negotiated subprotocol, or `null`. */
  protocol: string | null;
  /** The client's request headers. */
  headers: Headers;
}

/**
 * A refused upgrade: a `DillError` (`EPROTO`, or `EMSGSIZE` for a limit) that also
 * carries the HTTP answer for the client (400, 403, 405, 414, 426).
 *
 * @example
 * ```ts
 * import { WS_BINARY, wsUpgrade, WsUpgradeError } from "@dill/ws";
 *
 * try {
 *   wsUpgrade(new Request("http://localhost/"), WS_BINARY);
 * } catch (e) {
 *   if (e instanceof WsUpgradeError) console.log(e.code, e.response.status); // EPROTO 400 (no Host header)
 * }
 * ```
 */
export class WsUpgradeError extends DillError {
  /** The answer to return from the handler. */
  readonly response: Response;

  /**
   * Makes a refusal and the answer that goes with it.
   *
   * @param code `EPROTO` or `EMSGSIZE`
   * @param response the HTTP answer for the client
   * @param message what was wrong
   */
  constructor(code: ErrorCode, response: Response, message: string) {
    super(code, message);
    this.name = "WsUpgradeError";
    this.response = response;
  }
}

/**
 * Upgrades a `Deno.serve` request to a WebSocket. Return `response` from the handler and
 * use `handle` with the same calls as a `wsAttachServer` handle (`msend`/`mrecv` and
 * their `l` forms, `wsSend`/`wsRecv`, `wsDone`, `wsStatus`, `hclose`, deadlines and
 * signals, `WS_TEXT`/`WS_BINARY` typing). The request is checked as `wsAttachServer`
 * checks it (Origin, subprotocols, resource and host limits); a bad one throws a
 * {@link WsUpgradeError} carrying the HTTP answer. Only Deno Deploy's APIs are used.
 *
 * Differences from a `wsAttachServer` socket, because Deno's `WebSocket` owns the
 * connection: `wsDetach` fails with `ENOTSUP`; reading cannot pause, so a message
 * arriving while `maxBufferedBytes`/`maxQueuedMessages` are already queued fails the
 * connection (close 1008, `ENOMEM` after the queued messages); a send resolves when
 * Deno holds at most `sendHighWater` unwritten bytes; `maxMessageSize` is checked once
 * Deno has the whole message, and Deno puts a fragmented message together with no bound
 * of its own (bound message sizes in front of the server where clients are not trusted);
 * keepalive is Deno's `idleTimeout`, set to twice `pingInterval`: Deno pings after
 * `pingInterval` of silence (in whole seconds) and closes if nothing came within as long
 * again (`pongTimeout` is not used); after `wsDone`, Deno drops messages the peer still
 * sends; `hclose` sends a close frame with no status, and after any close frame of ours
 * Deno waits for the peer's answer without a time limit (a silent peer keeps its TCP
 * connection); `server.shutdown()` while Deno holds
 * unwritten bytes (a client that does not read) drops them without a close event, and
 * the calls waiting on the socket fail with `ECONNRESET` (the shutdown itself waits for
 * that client to close its connection). Calling `wsUpgrade` twice on one request throws
 * a {@link WsUpgradeError} (`EPROTO`, 400) the second time; the first handle stays good.
 * Deno aborts the request's own `signal` once the upgrade is answered: bound calls on
 * the socket with `shutdownSignal` or a signal of your own instead.
 *
 * @example
 * ```ts
 * import { hclose, mrecv, msend, now, WS_TEXT, wsUpgrade, WsUpgradeError } from "@dill/ws";
 *
 * function handler(request: Request): Response {
 *   try {
 *     const { response, handle } = wsUpgrade(request, WS_TEXT);
 *     (async () => {
 *       try {
 *         for (;;) await msend(handle, await mrecv(handle, -1), now() + 5000);
 *       } catch { // EPIPE: the client closed
 *       } finally {
 *         hclose(handle);
 *       }
 *     })();
 *     return response;
 *   } catch (e) {
 *     if (e instanceof WsUpgradeError) return e.response;
 *     throw e;
 *   }
 * }
 * // Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function wsUpgrade(
  request: Request,
  flags: number,
  options: WsUpgradeOptions = {},
): WsUpgraded {
  if (!(request instanceof Request)) {
    throw new DillError("EINVAL", "wsUpgrade: request must be the Request of a Deno.serve handler");
  }
  if (!Number.isInteger(flags) || (flags & ~WS_TEXT) !== 0) {
    throw new DillError("EINVAL", "wsUpgrade: flags must be WS_TEXT or WS_BINARY");
  }
  const limits = wsLimits({
    ...options,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_UPGRADE_MAX_BUFFERED_BYTES,
  });
  const sendHighWater = options.sendHighWater ?? DEFAULT_SEND_HIGH_WATER;
  checkAmount("option sendHighWater", sendHighWater);
  const shutdownSignal = options.shutdownSignal;
  if (shutdownSignal !== undefined && !(shutdownSignal instanceof AbortSignal)) {
    throw new DillError("EINVAL", "option shutdownSignal must be an AbortSignal");
  }
  const head: HttpRequestHead = {
    method: request.method,
    target: targetOf(request.url, request.headers.get("host")),
    version: "HTTP/1.1",
    headers: request.headers,
  };
  let accepted;
  try {
    // Deno answers the upgrade itself, without extensions: none may be negotiated here.
    accepted = acceptUpgrade(head, { ...options, perMessageDeflate: undefined });
  } catch (e) {
    if (e instanceof HandshakeError) throw refusal(e.code, e.status, errorDetail(e));
    throw e;
  }
  let upgraded;
  try {
    upgraded = Deno.upgradeWebSocket(request, {
      protocol: accepted.protocol ?? undefined,
      // Deno pings after half its idleTimeout of silence and closes after the whole, in
      // whole seconds: twice pingInterval pings after pingInterval. 0 turns it off.
      idleTimeout: limits.pingInterval > 0
        ? Math.max(2, Math.round(2 * limits.pingInterval / 1000))
        : 0,
    });
  } catch (e) {
    throw refusal("EPROTO", 400, `Deno cannot upgrade this request: ${(e as Error).message}`);
  }
  for (const [name, value] of options.responseHeaders ?? []) {
    upgraded.response.headers.append(name, value);
  }
  const actor = new WsUpgradeActor(upgraded.socket, {
    socketType: (flags & WS_TEXT) as WsType,
    limits,
    sendHighWater,
    shutdownSignal,
  });
  return {
    response: upgraded.response,
    handle: openHandle(actor, "ws"),
    resource: accepted.resource,
    host: accepted.host,
    protocol: accepted.protocol,
    headers: request.headers,
  };
}

/** A refusal whose answer says `text` (no error code: that is for the application). */
function refusal(code: ErrorCode, status: number, text: string): WsUpgradeError {
  const headers = new Headers({ "content-type": "text/plain; charset=utf-8" });
  if (status === 405) headers.set("allow", "GET");
  if (status === 426) headers.set("sec-websocket-version", "13");
  return new WsUpgradeError(code, new Response(text + "\n", { status, headers }), text);
}

/**
 * The request target as the client sent it, for the handshake's checks and `resource`:
 * `Deno.serve` keeps it in `request.url` as it came, where a `URL` would drop a fragment
 * (which the handshake refuses) and resolve dot segments (which `wsAttachServer` reports
 * as they are). `request.url` is the Host header's authority and the target for an
 * origin-form target, and the target itself for an absolute-form one: one whose
 * authority is not the Host header's goes to the handshake whole, so that it is checked
 * (scheme, credentials) and its host taken as `wsAttachServer` does.
 */
function targetOf(url: string, hostHeader: string | null): string {
  const start = url.indexOf("://") + 3;
  let end = start;
  while (end < url.length && url[end] !== "/" && url[end] !== "?" && url[end] !== "#") end++;
  if (hostHeader === null || url.slice(start, end).toLowerCase() !== hostHeader.toLowerCase()) {
    return url;
  }
  // An absolute-form target without a path ("http://h?q") has the root's.
  return url[end] === "/" ? url.slice(end) : `/${url.slice(end)}`;
}
