/**
 * The HTTP upgrade (RFC 6455 section 4) as the raw peer speaks it: requests and 101
 * answers written by hand, the accept key computed independently of our code, the heads
 * our side sends parsed, and our client's request checked.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { bytes } from "./bytes.ts";

/**
 * An HTTP response head our side sent, plus the body announced by Content-Length.
 *
 * @example
 * ```ts
 * import type { ParsedResponse } from "./handshake.ts";
 *
 * const refused = (res: ParsedResponse) => res.status === 400 && res.body.length > 0;
 * ```
 */
export interface ParsedResponse {
  version: string;
  status: number;
  reason: string;
  headers: Headers;
  body: string;
  /** The head as text, for messages. */
  raw: string;
}

/**
 * An HTTP request head our side sent.
 *
 * @example
 * ```ts
 * import type { ParsedRequest } from "./handshake.ts";
 *
 * const offersDeflate = (req: ParsedRequest) =>
 *   req.headers.get("sec-websocket-extensions")?.startsWith("permessage-deflate") ?? false;
 * ```
 */
export interface ParsedRequest {
  method: string;
  target: string;
  version: string;
  headers: Headers;
  raw: string;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * The `Sec-WebSocket-Accept` for `key`, computed independently of our code.
 *
 * @example
 * ```ts
 * import { acceptKey, SAMPLE_KEY } from "./handshake.ts";
 *
 * console.log(acceptKey(SAMPLE_KEY)); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (RFC 6455 section 1.3)
 * ```
 */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/**
 * The RFC 6455 sample key (section 1.3).
 *
 * @example
 * ```ts
 * import { SAMPLE_KEY, upgradeRequest } from "./handshake.ts";
 *
 * const request = upgradeRequest({ headers: { "Sec-WebSocket-Key": SAMPLE_KEY } });
 * ```
 */
export const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/**
 * A raw upgrade request; `headers` replace or extend the default header lines.
 *
 * @example
 * ```ts
 * import { upgradeRequest } from "./handshake.ts";
 *
 * // No Sec-WebSocket-Version, and the Upgrade header twice.
 * const bad = upgradeRequest({ headers: { "Sec-WebSocket-Version": null }, extra: ["Upgrade: x"] });
 * ```
 */
export function upgradeRequest(
  options: {
    method?: string;
    target?: string;
    version?: string;
    /** Header lines; `null` drops the default line of that name. */
    headers?: Record<string, string | null>;
    /** Extra raw lines appended as they are (e.g. repeated headers). */
    extra?: string[];
  } = {},
): Uint8Array {
  const defaults: Record<string, string> = {
    "Host": "example.com",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": SAMPLE_KEY,
    "Sec-WebSocket-Version": "13",
  };
  const lines: string[] = [];
  const given = options.headers ?? {};
  const givenLower = new Map(Object.keys(given).map((k) => [k.toLowerCase(), k]));
  for (const [name, value] of Object.entries(defaults)) {
    const override = givenLower.get(name.toLowerCase());
    if (override === undefined) lines.push(`${name}: ${value}`);
  }
  for (const [name, value] of Object.entries(given)) {
    if (value !== null) lines.push(`${name}: ${value}`);
  }
  lines.push(...(options.extra ?? []));
  const start = `${options.method ?? "GET"} ${options.target ?? "/chat"} ${
    options.version ?? "HTTP/1.1"
  }`;
  return bytes(`${start}\r\n${lines.map((l) => l + "\r\n").join("")}\r\n`);
}

/**
 * A response head as text (up to its blank line), parsed; the body is for the reader of
 * the stream to take.
 *
 * @example
 * ```ts
 * import { parseResponseHead } from "./handshake.ts";
 *
 * const head = parseResponseHead("HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n");
 * console.log(head.status); // 426
 * ```
 */
export function parseResponseHead(raw: string): Omit<ParsedResponse, "body"> {
  const [startLine, ...lines] = raw.slice(0, -4).split("\r\n");
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(startLine);
  assert.ok(m, `malformed status line ${JSON.stringify(startLine)}`);
  return {
    version: m[1],
    status: Number(m[2]),
    reason: m[3],
    headers: parseHeaderLines(lines),
    raw,
  };
}

/**
 * A request head as text (up to its blank line), parsed.
 *
 * @example
 * ```ts
 * import { parseRequestHead } from "./handshake.ts";
 *
 * const req = parseRequestHead("GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n");
 * console.log(req.target, req.headers.get("host")); // "/chat", "example.com"
 * ```
 */
export function parseRequestHead(raw: string): ParsedRequest {
  const [startLine, ...lines] = raw.slice(0, -4).split("\r\n");
  const m = /^(\S+) (\S+) (HTTP\/\d\.\d)$/.exec(startLine);
  assert.ok(m, `malformed request line ${JSON.stringify(startLine)}`);
  return { method: m[1], target: m[2], version: m[3], headers: parseHeaderLines(lines), raw };
}

function parseHeaderLines(lines: string[]): Headers {
  const headers = new Headers();
  for (const line of lines) {
    const i = line.indexOf(":");
    assert.ok(i > 0, `malformed header line ${JSON.stringify(line)}`);
    headers.append(line.slice(0, i), line.slice(i + 1).trim());
  }
  return headers;
}

/**
 * A 101 answer for `key`, with extra raw header lines.
 *
 * @example
 * ```ts
 * import { switchingProtocols } from "./handshake.ts";
 *
 * const answer = switchingProtocols("dGhlIHNhbXBsZSBub25jZQ==", ["Sec-WebSocket-Protocol: chat"]);
 * ```
 */
export function switchingProtocols(key: string, extra: string[] = []): Uint8Array {
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${acceptKey(key)}`,
    ...extra,
  ];
  return bytes(lines.join("\r\n") + "\r\n\r\n");
}

/**
 * Checks the upgrade request our client sent (RFC 6455 4.1) for the resource `/chat` on
 * `example.com`, as the client rig asks for it; returns its key.
 *
 * @example
 * ```ts
 * import { checkClientRequest, parseRequestHead, switchingProtocols } from "./handshake.ts";
 *
 * function answer(head: string): Uint8Array {
 *   return switchingProtocols(checkClientRequest(parseRequestHead(head)));
 * }
 * ```
 */
export function checkClientRequest(req: ParsedRequest): string {
  assert.equal(req.method, "GET");
  assert.equal(req.target, "/chat");
  assert.equal(req.version, "HTTP/1.1");
  assert.equal(req.headers.get("host"), "example.com");
  assert.equal(req.headers.get("upgrade")?.toLowerCase(), "websocket");
  assert.ok(/(^|,)\s*upgrade\s*(,|$)/i.test(req.headers.get("connection") ?? ""));
  assert.equal(req.headers.get("sec-websocket-version"), "13");
  // The only extension our client may offer is permessage-deflate (on by default).
  const offer = req.headers.get("sec-websocket-extensions");
  if (offer !== null) assert.match(offer, /^permessage-deflate(;|$)/, "unexpected offer");
  const key = req.headers.get("sec-websocket-key") ?? "";
  assert.equal(atob(key).length, 16, `key ${key} is not 16 bytes of base64`);
  return key;
}
