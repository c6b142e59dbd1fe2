/**
 * The client side of the WebSocket opening handshake (RFC 6455 section 4.1), without
 * I/O: writing the upgrade request, and validating the server's answer (status, headers,
 * `Sec-WebSocket-Accept`, the chosen subprotocol, and a permessage-deflate answer
 * against what was offered).
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { parseExtensions } from "./extensions.ts";
import { isWsKey, wsResponseKey } from "./handshake_keys.ts";
import { isHost, quote, tokenList } from "./header_values.ts";
import { headerLookup, type HttpResponseHead } from "./http11.ts";
import { checkHeaderLines, checkTokenList, writeHttpRequest } from "./http_write.ts";
import {
  checkDeflateAnswer,
  type DeflateParams,
  type ResolvedDeflateOptions,
} from "./permessage_deflate.ts";

/** What a client asks for in its upgrade request. */
export interface ClientHandshakeOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string[];
  /**
   * Extra request headers, such as `Authorization`. They may not set the headers the
   * handshake writes (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*`), nor a body.
   */
  headers?: [string, string][];
  /** The `Origin` header to send, as browsers do. */
  origin?: string;
  /** The `Sec-WebSocket-Extensions` offer, such as `deflateOffer`'s (`./permessage_deflate.ts`). */
  extensions?: string;
}

/** Headers the handshake itself writes in the request; options may not set them. */
const CLIENT_OWNED_HEADERS = new Set([
  "host",
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "sec-websocket-accept",
  // Bytes after the head must be WebSocket frames, so the request cannot have a body.
  "content-length",
  "transfer-encoding",
]);

/**
 * Writes the upgrade request that opens a WebSocket (RFC 6455 section 4.1): `GET resource`,
 * `Host`, `Upgrade: websocket`, `Connection: Upgrade`, the key, `Sec-WebSocket-Version: 13`,
 * then `Sec-WebSocket-Protocol` if protocols are offered, `Sec-WebSocket-Extensions` if
 * an extension offer is given, `Origin` if given, and the extra headers.
 *
 * @param resource path and query, starting with `/`
 * @param host the `Host` header: host name or address, with a port if not the default
 * @param key a key from {@link wsRequestKey}
 * @param options subprotocols, origin and extra headers
 * @returns the request bytes
 * @throws {DillError} `EINVAL` for an invalid argument, a duplicate or invalid
 *   subprotocol, or an extra header that would override a handshake header
 *
 * @example
 * ```ts
 * import { writeUpgradeRequest } from "./handshake_client.ts";
 * import { wsRequestKey } from "./handshake_keys.ts";
 *
 * const bytes = writeUpgradeRequest("/chat", "example.com:8080", wsRequestKey(), {
 *   protocols: ["chat"],
 *   origin: "https://example.com",
 * });
 * console.log(new TextDecoder().decode(bytes).split("\r\n")[0]); // GET /chat HTTP/1.1
 * ```
 */
export function writeUpgradeRequest(
  resource: string,
  host: string,
  key: string,
  options: ClientHandshakeOptions = {},
): Uint8Array {
  const where = "writeUpgradeRequest";
  if (!/^\/[\x21-\x7e]*$/.test(resource) || resource.includes("#")) {
    throw new DillError(
      "EINVAL",
      `${where}: resource must start with "/" and be visible ASCII without a fragment`,
    );
  }
  if (!isHost(host)) throw new DillError("EINVAL", `${where}: malformed host ${quote(host)}`);
  if (!isWsKey(key)) {
    throw new DillError("EINVAL", `${where}: key must be the base64 encoding of 16 bytes`);
  }
  const protocols = options.protocols ?? [];
  checkTokenList(where, protocols, "protocols");
  const extra = options.headers ?? [];
  checkHeaderLines(where, extra, "headers");
  if (options.origin !== undefined && typeof options.origin !== "string") {
    throw new DillError("EINVAL", `${where}: origin must be a string`);
  }
  for (const [name] of extra) {
    const lower = name.toLowerCase();
    if (CLIENT_OWNED_HEADERS.has(lower) || (lower === "origin" && options.origin !== undefined)) {
      throw new DillError("EINVAL", `${where}: headers may not set ${name}; the handshake owns it`);
    }
  }
  const lines: [string, string][] = [
    ["Host", host],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", key],
    ["Sec-WebSocket-Version", "13"],
  ];
  if (protocols.length > 0) lines.push(["Sec-WebSocket-Protocol", protocols.join(", ")]);
  if (options.extensions !== undefined) {
    lines.push(["Sec-WebSocket-Extensions", options.extensions]);
  }
  if (options.origin !== undefined) lines.push(["Origin", options.origin]);
  lines.push(...extra);
  // writeHttpRequest refuses invalid names and values (header injection) with EINVAL.
  return writeHttpRequest("GET", resource, lines);
}

/**
 * Validates the server's answer to an upgrade request (RFC 6455 section 4.1): status 101,
 * HTTP/1.1 or a later 1.x, `Upgrade` listing `websocket`, `Connection` listing `upgrade`,
 * `Sec-WebSocket-Accept` matching the key, `Sec-WebSocket-Extensions` absent unless
 * permessage-deflate was offered (then it must be a valid answer to that offer, RFC 7692
 * 7.1), and `Sec-WebSocket-Protocol` either absent or a single one of the offered
 * subprotocols.
 *
 * @param response the response head, as read by `HttpHeadReader` (`./http11.ts`)
 * @param key the key sent in the request
 * @param offeredProtocols the subprotocols offered in the request
 * @param deflateOffer the permessage-deflate settings offered (and whether the offer
 *   asked for no context takeover both ways), or `null` if none was offered
 * @returns the subprotocol the server chose, or `null`, and, when deflate was offered,
 *   the negotiated permessage-deflate parameters, or `null` if the server declined
 * @throws {DillError} `EPROTO` naming the first rule the answer breaks; `EINVAL` if `key`
 *   is not a valid key
 *
 * @example
 * ```ts
 * import { checkUpgradeResponse } from "./handshake_client.ts";
 *
 * const headers = new Headers({
 *   "Upgrade": "websocket",
 *   "Connection": "Upgrade",
 *   "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
 * });
 * const head = { version: "HTTP/1.1", status: 101, reason: "Switching Protocols", headers };
 * console.log(checkUpgradeResponse(head, "dGhlIHNhbXBsZSBub25jZQ==", []).protocol); // null
 * ```
 */
export function checkUpgradeResponse(
  response: HttpResponseHead,
  key: string,
  offeredProtocols: string[],
  deflateOffer: { options: ResolvedDeflateOptions; stateless: boolean } | null = null,
): { protocol: string | null; deflate?: DeflateParams | null } {
  if (!isWsKey(key)) {
    throw new DillError("EINVAL", "checkUpgradeResponse: key must be the base64 of 16 bytes");
  }
  const { status, reason, version } = response;
  const headers = headerLookup(response);
  if (status !== 101) {
    const phrase = reason === "" ? "" : ` ${quote(reason)}`;
    throw new DillError(
      "EPROTO",
      `server answered the WebSocket upgrade with status ${status}${phrase} instead of 101`,
    );
  }
  if (!/^HTTP\/1\.[1-9]$/.test(version)) {
    throw new DillError("EPROTO", `server answered the upgrade in ${quote(version)}`);
  }
  const upgrade = tokenList(headers.get("upgrade")).map((t) => t.toLowerCase());
  if (!upgrade.includes("websocket")) {
    throw new DillError("EPROTO", "server's 101 answer has no Upgrade: websocket");
  }
  const connection = tokenList(headers.get("connection")).map((t) => t.toLowerCase());
  if (!connection.includes("upgrade")) {
    throw new DillError("EPROTO", "server's 101 answer has no Connection: Upgrade");
  }
  const accept = headers.get("sec-websocket-accept");
  if (accept === null) {
    throw new DillError("EPROTO", "server's 101 answer has no Sec-WebSocket-Accept");
  }
  if (accept !== wsResponseKey(key)) {
    throw new DillError(
      "EPROTO",
      `server's Sec-WebSocket-Accept ${quote(accept)} does not match the key sent`,
    );
  }
  const extensions = headers.get("sec-websocket-extensions");
  let deflate: DeflateParams | null = null;
  if (extensions !== null) {
    if (deflateOffer === null) {
      throw new DillError(
        "EPROTO",
        "server accepted a WebSocket extension although none was offered",
      );
    }
    deflate = checkDeflateAnswer(
      parseExtensions(extensions),
      deflateOffer.options,
      deflateOffer.stateless,
    );
  }
  const chosen = headers.get("sec-websocket-protocol");
  const result = (protocol: string | null) =>
    deflateOffer === null ? { protocol } : { protocol, deflate };
  if (chosen === null) return result(null);
  if (offeredProtocols.length === 0) {
    throw new DillError(
      "EPROTO",
      `server chose subprotocol ${quote(chosen)} although none was offered`,
    );
  }
  if (!offeredProtocols.includes(chosen)) {
    throw new DillError(
      "EPROTO",
      chosen.includes(",")
        ? `server chose more than one subprotocol (${quote(chosen)})`
        : `server chose subprotocol ${quote(chosen)}, which was not offered`,
    );
  }
  return result(chosen);
}
