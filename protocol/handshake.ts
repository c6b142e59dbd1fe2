/**
 * The server side of the WebSocket opening handshake (RFC 6455 section 4.2), without
 * I/O: validating an upgrade request and writing the `101 Switching Protocols` answer
 * (or the HTTP error to send instead). Heads come from `HttpHeadReader` (`./http11.ts`);
 * the keys are in `./handshake_keys.ts`, the client side in `./handshake_client.ts`.
 *
 * The one extension negotiated is permessage-deflate (RFC 7692), when the options
 * enable it (`./permessage_deflate.ts` holds the rules): other extension offers are
 * ignored by the server, and a server answer that accepts anything not offered is
 * refused by the client.
 *
 * @module
 */

import type { DeflateBudget } from "./deflate_budget.ts";
import { NegotiatedDeflate } from "./deflate_codec.ts";
import { DillError, type ErrorCode, errorDetail } from "./errors.ts";
import { checkWholeNumber } from "./option_checks.ts";
import { parseExtensions } from "./extensions.ts";
import { isWsKey, wsResponseKey } from "./handshake_keys.ts";
import { isHost, listHasToken, quote, tokenList } from "./header_values.ts";
import { negotiateDeflate, type ResolvedDeflateOptions } from "./permessage_deflate.ts";
import { type HeaderLookup, headerLookup, type HttpRequestHead, isHttpToken } from "./http11.ts";
import { ParsedRequestHead } from "./http_head.ts";
import {
  checkHeaderLines,
  checkTokenList,
  writeHttpErrorResponse,
  writeHttpResponse,
} from "./http_write.ts";

/** Default for {@link ServerHandshakeOptions.maxResourceLength} (libdill's `resourcelen`). */
const DEFAULT_MAX_RESOURCE_LENGTH = 1024;
/** Default for {@link ServerHandshakeOptions.maxHostLength} (libdill's `hostlen`). */
const DEFAULT_MAX_HOST_LENGTH = 256;

/** What a server accepts in an upgrade request. */
export interface ServerHandshakeOptions {
  /**
   * Longest resource (path and query) accepted; longer is refused with 414 and
   * `EMSGSIZE`. Default 1024, libdill's `resourcelen`.
   */
  maxResourceLength?: number;
  /**
   * Longest Host accepted; longer is refused with 400 and `EMSGSIZE`. Default 256,
   * libdill's `hostlen`.
   */
  maxHostLength?: number;
  /**
   * Subprotocols the server speaks. The chosen one is the first protocol in the client's
   * offer (which RFC 6455 orders by the client's preference) that is in this list; none
   * is chosen when nothing matches.
   */
  protocols?: string[];
  /**
   * Decides whether a request from `origin` (the `Origin` header, `null` if absent) may
   * connect. Returning `false` refuses it with 403. Without it every origin is accepted.
   */
  checkOrigin?: (origin: string | null, request: HttpRequestHead) => boolean;
  /** Extra header lines for the 101 answer, such as `["Set-Cookie", "..."]`. */
  responseHeaders?: [string, string][];
  /**
   * Accept permessage-deflate offers with these settings, reserving the memory of kept
   * windows from `budget` (when it is spent, no context takeover is negotiated both
   * ways). Absent: offers are ignored.
   */
  perMessageDeflate?: { options: ResolvedDeflateOptions; budget: DeflateBudget };
}

/** A valid upgrade request, and the answer that completes the handshake. */
export interface AcceptedUpgrade {
  /** The requested resource: path and query, always starting with `/`. */
  resource: string;
  /** The requested host: the `Host` header, or the authority of an absolute-form target. */
  host: string;
  /** The client's `Sec-WebSocket-Key`. */
  key: string;
  /** The chosen subprotocol, or `null` if none. */
  protocol: string | null;
  /**
   * The negotiated permessage-deflate, or `null`. Its bytes are reserved in the budget:
   * the caller owns them, and either hands it to `wsAttachServer` (the `negotiatedDeflate`
   * option with `WS_NOHTTP`, which takes the reservation over) or calls its `release()`.
   */
  deflate: NegotiatedDeflate | null;
  /** The request this was derived from. */
  request: HttpRequestHead;
  /** The full `101 Switching Protocols` answer to send. */
  response: Uint8Array;
}

/**
 * A refused upgrade request. `status` is the HTTP status to answer with and `response` the
 * full answer to send before closing the connection: `Connection: close`, a plain-text
 * body saying what was wrong, `Allow: GET` for 405, and `Upgrade: websocket` plus
 * `Sec-WebSocket-Version: 13` for 426. `code` is `EMSGSIZE` when a length limit was
 * exceeded and `EPROTO` otherwise.
 *
 * @example
 * ```ts
 * import { acceptUpgrade, HandshakeError } from "./handshake.ts";
 *
 * try {
 *   acceptUpgrade({ method: "POST", target: "/", version: "HTTP/1.1", headers: new Headers() });
 * } catch (e) {
 *   if (e instanceof HandshakeError) console.log(e.status, e.code); // 405 EPROTO
 * }
 * ```
 */
export class HandshakeError extends DillError {
  /** The HTTP status to answer with. */
  readonly status: number;
  /** The full HTTP answer to send before closing. */
  readonly response: Uint8Array;

  /**
   * Makes a refusal and the answer that goes with it.
   *
   * @param code `EMSGSIZE` for an exceeded limit, `EPROTO` otherwise
   * @param status the HTTP status to answer with
   * @param message what was wrong, also sent to the peer as the body
   * @param headers extra header lines for the answer
   */
  constructor(code: ErrorCode, status: number, message: string, headers: [string, string][] = []) {
    super(code, message);
    this.name = "HandshakeError";
    this.status = status;
    this.response = writeHttpErrorResponse(status, message, headers);
  }
}

/** Headers the handshake itself writes in the 101 answer; options may not set them. */
const SERVER_OWNED_HEADERS = new Set([
  "upgrade",
  "connection",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "sec-websocket-version",
  // A 1xx answer has no body (RFC 9110 section 8.6).
  "content-length",
  "transfer-encoding",
]);

/**
 * Validates an HTTP upgrade request (RFC 6455 section 4.2.1) and builds the answer that
 * completes the handshake. Checks, in order, each refusal being a {@link HandshakeError}:
 *
 * - method `GET` (else 405 with `Allow: GET`);
 * - version HTTP/1.1 or a later 1.x (HTTP/1.0 and malformed versions 400; 2.0 and later
 *   505, since they never carry this handshake);
 * - target in origin-form (`/path?query`) or absolute-form (`ws://host/path`, also `wss`,
 *   `http`, `https`; then the resource is its path and query, and its authority is the
 *   host, as RFC 9112 section 3.2.2 asks) and without a fragment (else 400); the resource
 *   no longer than `maxResourceLength` (else 414, `EMSGSIZE`);
 * - exactly one non-empty, well-formed `Host` (else 400; a comma counts as a repeated
 *   header, as repeats are joined with commas), no longer than `maxHostLength` (else
 *   400, `EMSGSIZE`);
 * - no request body: no `Transfer-Encoding`, `Content-Length` absent or 0 (else 400),
 *   because bytes after the head must be WebSocket frames;
 * - `Upgrade` lists `websocket` and `Connection` lists `upgrade`, case-insensitively
 *   (else 400);
 * - `Sec-WebSocket-Version` is exactly 13 (else 426 naming version 13); checked before
 *   the key so that clients of older drafts learn which version to use;
 * - one `Sec-WebSocket-Key`, the base64 encoding of 16 bytes (else 400);
 * - `checkOrigin` accepts the origin (else 403);
 * - `Sec-WebSocket-Protocol` offers, across repeated headers, are tokens (else 400);
 * - with `perMessageDeflate`, `Sec-WebSocket-Extensions` is well-formed (else 400); the
 *   first acceptable permessage-deflate offer is accepted (RFC 7692 7.1), offers with
 *   unknown or repeated parameters or invalid values are declined, other extensions
 *   are ignored. Without it, extension offers are ignored.
 *
 * @param request the request head, as read by `HttpHeadReader` (`./http11.ts`)
 * @param options limits, subprotocols, origin check and extra answer headers
 * @param where the call named in `EINVAL` messages
 * @returns the handshake result and the 101 answer to send
 * @throws {HandshakeError} when the request must be refused
 * @throws {DillError} `EINVAL` when `options` is invalid (checked before the request) or
 *   `request` is not a request head
 *
 * @example
 * ```ts
 * import { acceptUpgrade } from "./handshake.ts";
 *
 * const headers = new Headers({
 *   "Host": "example.com",
 *   "Upgrade": "websocket",
 *   "Connection": "keep-alive, Upgrade",
 *   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
 *   "Sec-WebSocket-Version": "13",
 *   "Sec-WebSocket-Protocol": "chat, superchat",
 * });
 * const up = acceptUpgrade(
 *   { method: "GET", target: "/chat", version: "HTTP/1.1", headers },
 *   { protocols: ["superchat"] },
 * );
 * console.log(up.resource, up.host, up.protocol); // /chat example.com superchat
 * console.log(new TextDecoder().decode(up.response).split("\r\n")[0]);
 * // HTTP/1.1 101 Switching Protocols
 * ```
 */
export function acceptUpgrade(
  request: HttpRequestHead,
  options: ServerHandshakeOptions = {},
  where = "acceptUpgrade",
): AcceptedUpgrade {
  checkServerHandshakeOptions(where, options);
  checkRequestHead(where, request);
  const maxResourceLength = options.maxResourceLength ?? DEFAULT_MAX_RESOURCE_LENGTH;
  const maxHostLength = options.maxHostLength ?? DEFAULT_MAX_HOST_LENGTH;
  const supported = options.protocols ?? [];
  const extraHeaders = options.responseHeaders ?? [];

  const { method, version } = request;
  // A head from HttpHeadReader is looked up without building its Headers.
  const headers = headerLookup(request);
  if (method !== "GET") {
    throw new HandshakeError(
      "EPROTO",
      405,
      `method ${quote(method)} cannot open a WebSocket; use GET`,
      [["Allow", "GET"]],
    );
  }
  const versionMatch = /^HTTP\/(\d)\.(\d)$/.exec(version);
  if (!versionMatch) {
    throw new HandshakeError("EPROTO", 400, `malformed HTTP version ${quote(version)}`);
  }
  if (versionMatch[1] !== "1") {
    throw new HandshakeError("EPROTO", 505, `${version} cannot carry this handshake`);
  }
  if (versionMatch[2] === "0") {
    throw new HandshakeError("EPROTO", 400, "a WebSocket upgrade needs HTTP/1.1 or later");
  }

  const { resource, authority } = splitTarget(request.target);
  if (resource.length > maxResourceLength) {
    throw new HandshakeError(
      "EMSGSIZE",
      414,
      `resource is ${resource.length} bytes long; the limit is ${maxResourceLength}`,
    );
  }

  const hostHeader = headers.get("host");
  if (hostHeader === null) throw refuse("missing Host header");
  if (hostHeader.includes(",")) throw refuse("more than one Host header");
  if (!isHost(hostHeader)) throw refuse(`malformed Host header ${quote(hostHeader)}`);
  const host = authority ?? hostHeader;
  if (host.length > maxHostLength) {
    throw new HandshakeError(
      "EMSGSIZE",
      400,
      `host is ${host.length} bytes long; the limit is ${maxHostLength}`,
    );
  }

  if (headers.has("transfer-encoding")) throw refuse("an upgrade request has no body");
  const contentLength = headers.get("content-length");
  if (contentLength !== null && contentLength !== "0") {
    throw refuse("an upgrade request has no body");
  }

  if (!listHasToken(headers.get("upgrade"), "websocket")) {
    throw refuse("Upgrade header must list websocket");
  }
  if (!listHasToken(headers.get("connection"), "upgrade")) {
    throw refuse("Connection header must list upgrade");
  }

  const wsVersion = headers.get("sec-websocket-version");
  if (wsVersion !== "13") {
    throw new HandshakeError(
      "EPROTO",
      426,
      wsVersion === null
        ? "missing Sec-WebSocket-Version; this server speaks version 13"
        : `Sec-WebSocket-Version ${quote(wsVersion)} is not supported; use 13`,
      [["Connection", "Upgrade, close"], ["Upgrade", "websocket"], [
        "Sec-WebSocket-Version",
        "13",
      ]],
    );
  }

  const key = headers.get("sec-websocket-key");
  if (key === null) throw refuse("missing Sec-WebSocket-Key");
  if (key.includes(",")) throw refuse("more than one Sec-WebSocket-Key");
  if (!isWsKey(key)) {
    throw refuse(`Sec-WebSocket-Key ${quote(key)} is not the base64 encoding of 16 bytes`);
  }

  if (options.checkOrigin && !options.checkOrigin(headers.get("origin"), request)) {
    throw new HandshakeError("EPROTO", 403, "origin not allowed");
  }

  const offered = tokenList(headers.get("sec-websocket-protocol"));
  for (const name of offered) {
    if (!isHttpToken(name)) throw refuse(`invalid subprotocol name ${quote(name)}`);
  }
  const protocol = offered.find((name) => supported.includes(name)) ?? null;

  const accept = wsResponseKey(key);
  const answer: [string, string][] = [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", accept],
  ];
  if (protocol !== null) answer.push(["Sec-WebSocket-Protocol", protocol]);
  // Last: nothing can refuse the request after the budget is reserved.
  const deflate = negotiateServerDeflate(headers, options.perMessageDeflate, answer);
  if (answer.length === 3 && extraHeaders.length === 0) {
    // The usual answer: the same bytes as below, from a template (no checks, no encoding).
    return { resource, host, key, protocol, deflate, request, response: plainAnswer(accept) };
  }
  answer.push(...extraHeaders);
  let response: Uint8Array;
  try {
    response = writeHttpResponse(101, "Switching Protocols", answer);
  } catch (e) {
    // An invalid extra header value: give the reservation back before refusing.
    deflate?.release();
    throw e;
  }
  return { resource, host, key, protocol, deflate, request, response };
}

/**
 * The server's permessage-deflate decision: parses the offers (400 when malformed),
 * negotiates with context takeover if the budget has room for its windows, else
 * without, and appends the answer header.
 */
function negotiateServerDeflate(
  headers: HeaderLookup,
  config: ServerHandshakeOptions["perMessageDeflate"],
  answer: [string, string][],
): NegotiatedDeflate | null {
  const header = headers.get("sec-websocket-extensions");
  if (config === undefined || header === null) return null;
  let offers;
  try {
    offers = parseExtensions(header);
  } catch (e) {
    // The parser's EPROTO carries its code in the message already; the refusal adds it.
    throw refuse(errorDetail(e as DillError));
  }
  const { options, budget } = config;
  let agreed = negotiateDeflate(offers, options, false);
  if (agreed === null) return null;
  if (!budget.tryReserve(NegotiatedDeflate.reservation(agreed.params, options))) {
    // Without context takeover nothing is kept: the reservation is 0 bytes.
    agreed = negotiateDeflate(offers, options, true)!;
  }
  answer.push(["Sec-WebSocket-Extensions", agreed.answer]);
  return new NegotiatedDeflate(agreed.params, options, budget);
}

const PLAIN_HEAD = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
  "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
const PLAIN_PREFIX = Uint8Array.from(PLAIN_HEAD, (c) => c.charCodeAt(0));
/** Length of an accept key: base64 of a 20-byte digest. */
const ACCEPT_LENGTH = 28;

/**
 * `writeHttpResponse(101, "Switching Protocols", [Upgrade, Connection, Sec-WebSocket-Accept])`
 * for a 28-character accept key, written into a template.
 */
function plainAnswer(accept: string): Uint8Array {
  const at = PLAIN_PREFIX.length;
  const bytes = new Uint8Array(at + ACCEPT_LENGTH + 4);
  bytes.set(PLAIN_PREFIX);
  for (let i = 0; i < ACCEPT_LENGTH; i++) bytes[at + i] = accept.charCodeAt(i);
  bytes[at + ACCEPT_LENGTH] = bytes[at + ACCEPT_LENGTH + 2] = 0x0d;
  bytes[at + ACCEPT_LENGTH + 1] = bytes[at + ACCEPT_LENGTH + 3] = 0x0a;
  return bytes;
}

/**
 * Throws `EINVAL` for server handshake options that could never work: lengths that are
 * not whole numbers >= 1, subprotocols that are not a list of distinct tokens, a
 * `checkOrigin` that is not a function, response headers that are not valid lines or
 * that set what the handshake owns. A caller that takes a socket over checks them
 * first (`wsAttachServer`), so a misconfigured server fails its call, not every client.
 *
 * @example
 * ```ts
 * import { checkServerHandshakeOptions } from "./handshake.ts";
 *
 * checkServerHandshakeOptions("wsAttachServer", { protocols: ["chat"] }); // fine
 * ```
 */
export function checkServerHandshakeOptions(
  where: string,
  options: Omit<ServerHandshakeOptions, "perMessageDeflate">,
): void {
  const maxResourceLength = options.maxResourceLength ?? DEFAULT_MAX_RESOURCE_LENGTH;
  const maxHostLength = options.maxHostLength ?? DEFAULT_MAX_HOST_LENGTH;
  checkWholeNumber(`${where}: maxResourceLength`, maxResourceLength, 1);
  checkWholeNumber(`${where}: maxHostLength`, maxHostLength, 1);
  checkTokenList(where, options.protocols ?? [], "protocols");
  if (options.checkOrigin !== undefined && typeof options.checkOrigin !== "function") {
    throw new DillError("EINVAL", `${where}: checkOrigin must be a function`);
  }
  const responseHeaders = options.responseHeaders ?? [];
  checkHeaderLines(where, responseHeaders, "responseHeaders");
  for (const [name] of responseHeaders) {
    if (SERVER_OWNED_HEADERS.has(name.toLowerCase())) {
      throw new DillError(
        "EINVAL",
        `${where}: responseHeaders may not set ${name}; the handshake owns it`,
      );
    }
  }
}

/**
 * `EINVAL` unless `request` has the shape of a request head: string method, target and
 * version, and `Headers` (a head the reader parsed keeps its headers as text until
 * asked for them, so they are not built here).
 */
function checkRequestHead(where: string, request: HttpRequestHead): void {
  const head = request as Partial<HttpRequestHead> | null;
  if (
    typeof head !== "object" || head === null || typeof head.method !== "string" ||
    typeof head.target !== "string" || typeof head.version !== "string" ||
    !(head instanceof ParsedRequestHead || head.headers instanceof Headers)
  ) {
    throw new DillError(
      "EINVAL",
      `${where}: request must be a request head ({ method, target, version, headers: Headers })`,
    );
  }
}

/**
 * Splits a request-target into the resource and, for absolute-form, the authority.
 * Throws a 400 {@link HandshakeError} for any other form.
 */
function splitTarget(target: string): { resource: string; authority: string | null } {
  if (!/^[\x21-\x7e]+$/.test(target)) throw refuse("malformed request target");
  if (target.includes("#")) throw refuse("request target must not contain a fragment");
  if (target.startsWith("/")) return { resource: target, authority: null };
  const absolute = /^(?:wss?|https?):\/\/([^/?]*)(.*)$/i.exec(target);
  if (!absolute) {
    throw refuse(`request target ${quote(target)} must be a path starting with "/"`);
  }
  const [, authority, rest] = absolute;
  // Credentials in the target are refused rather than silently dropped.
  if (!isHost(authority)) throw refuse(`malformed authority in target ${quote(target)}`);
  const resource = rest === "" ? "/" : rest.startsWith("?") ? "/" + rest : rest;
  return { resource, authority };
}

/** A 400 refusal with code `EPROTO`. */
function refuse(message: string): HandshakeError {
  return new HandshakeError("EPROTO", 400, message);
}
