/**
 * Writing HTTP/1.1 heads: the 101 and error responses a server answers with and the
 * upgrade request a client sends. Every header name, value, reason and target is
 * checked first, so nothing a caller passes can inject a header line (`EINVAL`).
 * Reading heads is `http11.ts`.
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { isHttpToken } from "./http11.ts";

const EMPTY = new Uint8Array(0);

/**
 * The bytes of a head already checked to be printable ASCII: one per character, without
 * a `TextEncoder` call (a native call per handshake).
 */
function asciiBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Standard reason phrases for the statuses this stack answers with. */
const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  414: "URI Too Long",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/**
 * The standard reason phrase for an HTTP status, or `"Error"` for one not in the table.
 *
 * @example
 * ```ts
 * import { httpReasonPhrase } from "./http_write.ts";
 *
 * console.log(httpReasonPhrase(426)); // Upgrade Required
 * ```
 */
export function httpReasonPhrase(status: number): string {
  return REASONS[status] ?? "Error";
}

/**
 * Checks header lines a caller gives as an option (`responseHeaders`, `headers`): an
 * array of `[name, value]` string pairs, each a valid header line. Anything else is
 * `EINVAL` naming `option`, before anything is written or taken over.
 *
 * @example
 * ```ts
 * import { checkHeaderLines } from "./http_write.ts";
 *
 * checkHeaderLines("wsAttachClient", [["Authorization", "Bearer x"]], "headers"); // fine
 * ```
 */
export function checkHeaderLines(
  where: string,
  lines: unknown,
  option: string,
): asserts lines is [string, string][] {
  if (!Array.isArray(lines)) {
    throw new DillError("EINVAL", `${where}: ${option} must be an array of [name, value] pairs`);
  }
  for (const line of lines) {
    if (
      !Array.isArray(line) || line.length !== 2 || typeof line[0] !== "string" ||
      typeof line[1] !== "string"
    ) {
      throw new DillError(
        "EINVAL",
        `${where}: each of ${option} must be a [name, value] pair of strings`,
      );
    }
    checkHeader(line[0], line[1], where);
  }
}

/**
 * Checks a list of HTTP tokens a caller gives as an option (subprotocol names): an
 * array of strings, each a token, none twice. Anything else is `EINVAL` naming `option`.
 *
 * @example
 * ```ts
 * import { checkTokenList } from "./http_write.ts";
 *
 * checkTokenList("wsAttachServer", ["chat", "superchat"], "protocols"); // fine
 * ```
 */
export function checkTokenList(
  where: string,
  tokens: unknown,
  option: string,
): asserts tokens is string[] {
  if (!Array.isArray(tokens)) {
    throw new DillError("EINVAL", `${where}: ${option} must be an array of strings`);
  }
  for (const token of tokens) {
    if (typeof token !== "string" || !isHttpToken(token)) {
      throw new DillError("EINVAL", `${where}: invalid ${option} entry ${JSON.stringify(token)}`);
    }
  }
  // Checked on every handshake (twice on wsAttachServer's): no Set for the usual 0 or 1.
  if (tokens.length > 1 && new Set(tokens).size !== tokens.length) {
    throw new DillError("EINVAL", `${where}: ${option} entries must be unique`);
  }
}

/** Checks one header line the caller wants written; header injection is `EINVAL`. */
function checkHeader(name: string, value: string, where: string): void {
  if (!isHttpToken(name)) {
    throw new DillError("EINVAL", `${where}: invalid header name ${JSON.stringify(name)}`);
  }
  if (!isPrintableAscii(value, true)) {
    throw new DillError(
      "EINVAL",
      `${where}: header "${name}" value must be printable ASCII without CR, LF or NUL`,
    );
  }
}

/** Whether `s` is visible ASCII, and with `spaces` also SP and HTAB. */
function isPrintableAscii(s: string, spaces: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const visible = c > 0x20 && c < 0x7f;
    if (!visible && !(spaces && (c === 0x20 || c === 0x09))) return false;
  }
  return true;
}

/** Serializes the header lines and the blank line that ends a head. */
function headerLines(headers: [string, string][], where: string): string {
  let text = "";
  for (const [name, value] of headers) {
    checkHeader(name, value, where);
    text += `${name}: ${value}\r\n`;
  }
  return text + "\r\n";
}

/**
 * Writes an HTTP/1.1 response: status line, headers in the order given, blank line and an
 * optional UTF-8 body. With a body, `Content-Length` is added unless present (and then
 * must match).
 *
 * @param status the status code, 100-599
 * @param reason the reason phrase (printable ASCII, may be empty)
 * @param headers header lines as `[name, value]`, written exactly in this order
 * @param body an optional body, encoded as UTF-8
 * @returns the response bytes
 * @throws {DillError} `EINVAL` for an invalid status, reason, header name or value (CR, LF
 *   and other control characters are refused, so no header can be injected)
 *
 * @example
 * ```ts
 * import { writeHttpResponse } from "./http_write.ts";
 *
 * const bytes = writeHttpResponse(404, "Not Found", [["Connection", "close"]], "no\n");
 * console.log(new TextDecoder().decode(bytes));
 * // HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 3\r\n\r\nno\n
 * ```
 */
export function writeHttpResponse(
  status: number,
  reason: string,
  headers: [string, string][],
  body?: string,
): Uint8Array {
  const where = "writeHttpResponse";
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new DillError("EINVAL", `${where}: status must be an integer in 100-599`);
  }
  if (!isPrintableAscii(reason, true)) {
    throw new DillError("EINVAL", `${where}: reason phrase must be printable ASCII`);
  }
  const bodyBytes = body === undefined ? EMPTY : new TextEncoder().encode(body);
  const lines = [...headers];
  if (body !== undefined) {
    const given = headers.filter(([name]) => name.toLowerCase() === "content-length");
    if (given.length === 0) lines.push(["Content-Length", String(bodyBytes.length)]);
    else if (given.length > 1 || given[0][1].trim() !== String(bodyBytes.length)) {
      throw new DillError("EINVAL", `${where}: Content-Length does not match the body`);
    }
  }
  const head = asciiBytes(`HTTP/1.1 ${status} ${reason}\r\n${headerLines(lines, where)}`);
  if (bodyBytes.length === 0) return head;
  const bytes = new Uint8Array(head.length + bodyBytes.length);
  bytes.set(head);
  bytes.set(bodyBytes, head.length);
  return bytes;
}

/**
 * Writes an HTTP/1.1 request head: request line, headers in the order given, blank line.
 *
 * @param method the method, an HTTP token (`"GET"`)
 * @param target the request-target, visible ASCII without spaces (`"/chat"`)
 * @param headers header lines as `[name, value]`, written exactly in this order
 * @returns the request head bytes
 * @throws {DillError} `EINVAL` for an invalid method, target, header name or value
 *
 * @example
 * ```ts
 * import { writeHttpRequest } from "./http_write.ts";
 *
 * const bytes = writeHttpRequest("GET", "/", [["Host", "example.com"]]);
 * console.log(new TextDecoder().decode(bytes)); // GET / HTTP/1.1\r\nHost: example.com\r\n\r\n
 * ```
 */
export function writeHttpRequest(
  method: string,
  target: string,
  headers: [string, string][],
): Uint8Array {
  const where = "writeHttpRequest";
  if (!isHttpToken(method)) {
    throw new DillError("EINVAL", `${where}: invalid method ${JSON.stringify(method)}`);
  }
  if (target === "" || !isPrintableAscii(target, false)) {
    throw new DillError("EINVAL", `${where}: target must be visible ASCII without spaces`);
  }
  return asciiBytes(`${method} ${target} HTTP/1.1\r\n${headerLines(headers, where)}`);
}

/**
 * Writes the short plain-text error answer a server sends before closing the connection
 * on a request it refuses: `Connection: close`, `Content-Type: text/plain; charset=utf-8`,
 * `Content-Length` and `message` as the body. Headers in `headers` come after those; a
 * `Connection` header there replaces the default one.
 *
 * @param status the status code, 100-599; the reason phrase is the standard one
 * @param message a short explanation for the peer (one line; a newline is appended)
 * @param headers extra header lines, such as `["Allow", "GET"]`
 * @returns the response bytes
 * @throws {DillError} `EINVAL` for an invalid status or header
 *
 * @example
 * ```ts
 * import { HttpError } from "./http11.ts";
 * import { writeHttpErrorResponse } from "./http_write.ts";
 *
 * const e = new HttpError("EMSGSIZE", 431, "too many header fields");
 * const answer = writeHttpErrorResponse(e.status, "too many header fields");
 * console.log(new TextDecoder().decode(answer).split("\r\n")[0]);
 * // HTTP/1.1 431 Request Header Fields Too Large
 * ```
 */
export function writeHttpErrorResponse(
  status: number,
  message: string,
  headers: [string, string][] = [],
): Uint8Array {
  const hasConnection = headers.some(([name]) => name.toLowerCase() === "connection");
  const lines: [string, string][] = [
    ...(hasConnection ? [] : [["Connection", "close"] as [string, string]]),
    ["Content-Type", "text/plain; charset=utf-8"],
    ...headers,
  ];
  return writeHttpResponse(status, httpReasonPhrase(status), lines, message + "\n");
}
