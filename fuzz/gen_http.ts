/**
 * Structure-aware generation of HTTP/1.1 heads for the head-reader and handshake
 * fuzzers: request and status lines and header fields built from realistic parts
 * (upgrade requests, real header names, optional whitespace, obs-text, long values),
 * then mutated at the line level (bare CR or LF, obs-fold, whitespace before the colon,
 * odd versions) and the byte level (flips, control bytes, cuts, duplicates).
 *
 * @module
 */

import type { Rng } from "./prng.ts";

/** A head as a model: start line parts and header lines, before serialization. */
export interface ModelHead {
  start: string;
  headers: [string, string][];
  /** Separator between a header name and its value (normally ":" plus OWS). */
  eol: string;
}

const METHODS = ["GET", "GET", "GET", "POST", "get", "M-SEARCH", "OPTIONS", "G:T", "", "GET\t"];
const TARGETS = [
  "/",
  "/chat",
  "/chat?room=1&x=%20",
  "ws://a.example/p?q",
  "wss://a.example:443",
  "http://[::1]:8080/x",
  "https://u@h/",
  "*",
  "/a#frag",
  "a",
  "/\x7f",
  "/é",
  "ws://a.example,b.example/",
  "HTTP://A.EXAMPLE?x",
];
const VERSIONS = [
  "HTTP/1.1",
  "HTTP/1.1",
  "HTTP/1.1",
  "HTTP/1.0",
  "HTTP/1.9",
  "HTTP/2.0",
  "HTTP/0.9",
  "http/1.1",
  "HTTP/1",
  "HTTP/11",
  "HTTP/1.1 ",
  "HTTP/a.1",
];
const STATUSES = ["101", "101", "101", "200", "404", "099", "600", "1010", "10", "abc", "599"];
const REASONS = ["Switching Protocols", "", "OK", "caf\xe9", "tab\there", "x\x7f", " lead"];

const NAMES = [
  "Host",
  "Upgrade",
  "Connection",
  "Sec-WebSocket-Key",
  "Sec-WebSocket-Version",
  "Sec-WebSocket-Protocol",
  "Sec-WebSocket-Extensions",
  "Sec-WebSocket-Accept",
  "Origin",
  "Content-Length",
  "Transfer-Encoding",
  "X-Custom",
  "x-custom",
  "Set-Cookie",
  "!#$%&'*+-.^_`|~09",
];

/** Values that are valid field content, with OWS, obs-text and list syntax. */
const VALUES = [
  "websocket",
  "Upgrade",
  "keep-alive, Upgrade",
  "a.example",
  "a.example:8080",
  "[::1]:80",
  "dGhlIHNhbXBsZSBub25jZQ==",
  "13",
  "chat, superchat",
  "",
  " ",
  "  padded  ",
  "\tx\t",
  "caf\xe9 \x80\xff",
  "a" + " ".repeat(40) + "b",
  "0",
  'q=1;x="y"',
];

function token(rng: Rng): string {
  const chars = "abcXYZ09-_.!~";
  let s = "";
  const n = rng.range(1, 8);
  for (let i = 0; i < n; i++) s += chars[rng.int(chars.length)];
  return s;
}

function value(rng: Rng): string {
  if (rng.chance(0.8)) return rng.pick(VALUES);
  let s = "";
  const n = rng.size(60);
  for (let i = 0; i < n; i++) {
    s += String.fromCharCode(
      rng.chance(0.9) ? rng.range(0x20, 0x7e) : rng.pick([0x09, 0xa0, 0xff, 0x80]),
    );
  }
  return s;
}

/** A request or response head model. */
export function genHead(rng: Rng, kind: "request" | "response"): ModelHead {
  const version = rng.chance(0.85) ? "HTTP/1.1" : rng.pick(VERSIONS);
  const start = kind === "request"
    ? `${rng.chance(0.85) ? "GET" : rng.pick(METHODS)} ${rng.pick(TARGETS)} ${version}`
    : `${version} ${rng.chance(0.85) ? "101" : rng.pick(STATUSES)}` +
      (rng.chance(0.2) ? "" : " " + (rng.chance(0.8) ? "Switching Protocols" : rng.pick(REASONS)));
  const headers: [string, string][] = [];
  const count = rng.size(12);
  for (let i = 0; i < count; i++) {
    const name = rng.chance(0.8) ? rng.pick(NAMES) : token(rng);
    headers.push([name, value(rng)]);
  }
  return { start, headers, eol: "\r\n" };
}

/** Serializes a model head, with OWS chosen at random. */
export function serializeHead(rng: Rng, head: ModelHead): string {
  let text = head.start + head.eol;
  for (const [name, v] of head.headers) {
    const ows = rng.chance(0.7) ? " " : rng.pick(["", "  ", "\t", " \t "]);
    text += `${name}:${ows}${v}${rng.chance(0.9) ? "" : rng.pick([" ", "\t", " \t"])}${head.eol}`;
  }
  return text + head.eol;
}

const SPECIAL = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff, 0x2c];

/** Line-level mutations on the serialized head. */
function mutateText(rng: Rng, text: string): string {
  const at = rng.int(text.length + 1);
  switch (rng.int(7)) {
    case 0:
      return text.slice(0, at) + rng.pick(["\n", "\r", "\r\r\n", "\r\n ", " \r\n"]) +
        text.slice(at);
    case 1: {
      // Obsolete line folding: a header line that starts with whitespace.
      const eol = text.indexOf("\r\n", at);
      if (eol < 0) return text;
      return text.slice(0, eol + 2) + rng.pick([" ", "\t"]) + "folded\r\n" + text.slice(eol + 2);
    }
    case 2: {
      const colon = text.indexOf(":", at);
      if (colon < 0) return text;
      return text.slice(0, colon) + rng.pick([" ", "\t", ""]) + text.slice(colon);
    }
    case 3:
      return "\r\n" + text;
    case 4:
      return text.replace("\r\n\r\n", rng.pick(["\n\n", "\r\n\n", "\n\r\n"]));
    case 5: {
      const end = Math.min(text.length, at + rng.range(1, 30));
      return text.slice(0, end) + text.slice(at, end) + text.slice(end);
    }
    default:
      return text.slice(0, at) + text.slice(at + rng.range(1, 4));
  }
}

/** Byte-level mutations. */
function mutateBytes(rng: Rng, bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0) return bytes;
  const out = bytes.slice();
  const at = rng.int(out.length);
  if (rng.chance(0.5)) out[at] ^= 1 << rng.int(8);
  else out[at] = rng.pick(SPECIAL);
  return out;
}

/** Latin-1 bytes of a string (every character below U+0100). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** One fuzz input for the head reader. */
export interface HeadCase {
  kind: "request" | "response";
  maxHeadBytes: number | undefined;
  maxHeaders: number | undefined;
  input: Uint8Array;
}

/** Generates one head-reader input: a mutated head, maybe cut, maybe followed by bytes. */
export function genHeadCase(rng: Rng): HeadCase {
  const kind = rng.chance(0.5) ? "request" : "response";
  let text = serializeHead(rng, genHead(rng, kind));
  if (rng.chance(0.4)) {
    const n = rng.range(1, 3);
    for (let i = 0; i < n; i++) text = mutateText(rng, text);
  }
  if (rng.chance(0.3)) text += "\x81\x05hello".slice(0, rng.int(8));
  let input = latin1Bytes(text);
  if (rng.chance(0.25)) input = mutateBytes(rng, input);
  if (rng.chance(0.1)) input = input.slice(0, rng.int(input.length + 1));
  if (rng.chance(0.02)) input = rng.bytes(rng.size(100));
  const maxHeadBytes = rng.chance(0.75) ? undefined : rng.range(1, input.length + 8);
  const maxHeaders = rng.chance(0.8) ? undefined : rng.int(10);
  return { kind, maxHeadBytes, maxHeaders, input };
}
