/**
 * Fuzz target for the opening handshake (`protocol/handshake.ts`): upgrade requests and
 * 101 answers built from valid ones with header-level mutations (missing, repeated or
 * odd Host, Upgrade, Connection, version, key, origin, subprotocol and body headers;
 * absolute targets, fragments, long resources and hosts against small limits). Each is
 * read by `HttpHeadReader` whole and in pieces (which must agree), then checked by
 * `acceptUpgrade` or `checkUpgradeResponse` against `ref_handshake.ts`. Accepted requests
 * also have their 101 answer read back and checked as a client would.
 *
 * @module
 */

import { acceptUpgrade, HandshakeError } from "../protocol/handshake.ts";
import { checkUpgradeResponse } from "../protocol/handshake_client.ts";
import { HttpHeadReader, type HttpRequestHead, type HttpResponseHead } from "../protocol/http11.ts";
import { DillError } from "../protocol/errors.ts";
import { latin1Bytes } from "./gen_http.ts";
import type { FuzzTarget } from "./harness.ts";
import { hex, type Rng } from "./prng.ts";
import {
  type ClientOutcome,
  refAccept,
  refClient,
  refServer,
  type RefServerOptions,
  type ServerOutcome,
} from "./ref_handshake.ts";
import { referenceHead } from "./ref_http.ts";

/** One handshake input: which side, its settings, and the head bytes. */
export interface HandshakeCase {
  side: "server" | "client";
  /** Server side: the options. */
  server: RefServerOptions;
  /** Client side: the key sent and the subprotocols offered. */
  key: string;
  offered: string[];
  input: Uint8Array;
}

const PROTOCOLS = ["chat", "superchat", "v2.x"];

function genKey(rng: Rng): string {
  return btoa(String.fromCharCode(...rng.bytes(16)));
}

/** A header value from a list of tricky variants, or the valid `good` one. */
function variant(rng: Rng, good: string, odd: string[]): string {
  return rng.chance(0.88) ? good : rng.pick(odd);
}

/** Header lines, some repeated or dropped, in a shuffled order. */
function finish(rng: Rng, headers: [string, string][]): [string, string][] {
  const out: [string, string][] = [];
  for (const h of headers) {
    if (rng.chance(0.03)) continue;
    const name = rng.chance(0.8) ? h[0] : rng.pick([h[0].toLowerCase(), h[0].toUpperCase()]);
    out.push([name, h[1]]);
    if (rng.chance(0.04)) out.push([name, rng.chance(0.5) ? h[1] : ""]);
  }
  for (let i = out.length - 1; i > 0 && rng.chance(0.3); i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function serialize(start: string, headers: [string, string][], rng: Rng): Uint8Array {
  let text = start + "\r\n";
  for (const [name, value] of headers) text += `${name}:${rng.chance(0.9) ? " " : ""}${value}\r\n`;
  return latin1Bytes(text + "\r\n");
}

function genRequest(rng: Rng, key: string): Uint8Array {
  const longPath = "/" + "p".repeat(rng.range(1, 60));
  const target = rng.chance(0.6) ? rng.pick(["/", "/chat", "/chat?x=1"]) : rng.pick([
    longPath,
    "ws://a.example/chat",
    "WSS://a.example:8443",
    "http://a.example?q",
    "https://[::1]:80/p",
    "ws://u@a.example/",
    "ws://a.example,b/",
    "ws://" + "h".repeat(rng.range(1, 60)) + "/",
    "ftp://a.example/",
    "ws:/a",
    "/a#b",
    "*",
    "chat",
  ]);
  const method = variant(rng, "GET", ["POST", "get", "HEAD"]);
  const version = variant(rng, "HTTP/1.1", ["HTTP/1.0", "HTTP/1.2", "HTTP/1.9"]);
  const headers: [string, string][] = [
    [
      "Host",
      variant(rng, "a.example", [
        "a.example:8080",
        "[::1]:443",
        "127.0.0.1",
        "",
        "a.example, b.example",
        "a b",
        "a/b",
        "a@b",
        "[::1",
        "[]",
        "a:80:90",
        "a:",
        "%41.example",
        "h".repeat(rng.range(1, 60)),
      ]),
    ],
    [
      "Upgrade",
      variant(rng, "websocket", [
        "WebSocket",
        "h2c, websocket",
        "websocketx",
        "",
        "web socket",
        "websocket\xa0",
        "\xa0websocket",
        ",websocket,",
      ]),
    ],
    [
      "Connection",
      variant(rng, "Upgrade", [
        "keep-alive, upgrade",
        "upgrade\t",
        "Upgrade2",
        ",,UPGRADE,,",
        "close",
        "upgrade\xa0",
      ]),
    ],
    ["Sec-WebSocket-Version", variant(rng, "13", ["8", "013", "13 ", "", "13, 13", "14"])],
    [
      "Sec-WebSocket-Key",
      variant(rng, key, [
        key.slice(1),
        key + "A",
        "dGhlIHNhbXBsZSBub25jZR==",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhl IHNhbXBsZSBub25jZQ==",
        "dGhlIHNhbXBsZSBub25jZQ=\xa0",
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "////////////////////w==",
        key + ", " + key,
      ]),
    ],
  ];
  if (rng.chance(0.4)) {
    headers.push(["Origin", rng.pick(["https://a.example", "https://evil.example", "null"])]);
  }
  if (rng.chance(0.5)) {
    headers.push([
      "Sec-WebSocket-Protocol",
      rng.pick([
        "chat",
        "superchat, chat",
        "v2.x,chat",
        "other",
        "chat,,",
        ", ",
        "ch@t",
        "a b",
        "chat\xa0",
        "\tsuperchat\t",
      ]),
    ]);
  }
  if (rng.chance(0.1)) headers.push(["Content-Length", rng.pick(["0", "1", "00", " 0"])]);
  if (rng.chance(0.05)) headers.push(["Transfer-Encoding", "chunked"]);
  if (rng.chance(0.2)) headers.push(["Sec-WebSocket-Extensions", "permessage-deflate"]);
  if (rng.chance(0.2)) headers.push(["User-Agent", "fuzz/1.0 \xe9"]);
  return serialize(`${method} ${target} ${version}`, finish(rng, headers), rng);
}

function genResponse(rng: Rng, key: string, offered: string[]): Uint8Array {
  const status = variant(rng, "101", ["200", "100", "426"]);
  const version = variant(rng, "HTTP/1.1", ["HTTP/1.0", "HTTP/1.2"]);
  const headers: [string, string][] = [
    ["Upgrade", variant(rng, "websocket", ["WebSocket", "h2c", "", "websocket\xa0"])],
    ["Connection", variant(rng, "Upgrade", ["upgrade, keep-alive", "close", "\xa0upgrade"])],
    [
      "Sec-WebSocket-Accept",
      variant(rng, refAccept(key), [
        refAccept(genKey(rng)),
        refAccept(key).slice(1),
        refAccept(key) + " x",
        "",
      ]),
    ],
  ];
  if (rng.chance(0.4)) {
    const chosen = offered.length > 0 && rng.chance(0.7)
      ? rng.pick(offered)
      : rng.pick(["other", "chat, superchat", "", "chat\xa0", ...PROTOCOLS]);
    headers.push(["Sec-WebSocket-Protocol", chosen]);
  }
  if (rng.chance(0.05)) headers.push(["Sec-WebSocket-Extensions", "permessage-deflate"]);
  return serialize(`${version} ${status} Switching Protocols`, finish(rng, headers), rng);
}

function genCase(rng: Rng): HandshakeCase {
  const key = rng.chance(0.5) ? "dGhlIHNhbXBsZSBub25jZQ==" : genKey(rng);
  const offered = PROTOCOLS.filter(() => rng.chance(0.4));
  const server: RefServerOptions = {
    maxResourceLength: rng.chance(0.7) ? 1024 : rng.range(1, 40),
    maxHostLength: rng.chance(0.7) ? 256 : rng.range(1, 40),
    protocols: PROTOCOLS.filter(() => rng.chance(0.5)),
    refuseOrigin: rng.chance(0.5) ? "evil" : null,
  };
  const side = rng.chance(0.6) ? "server" : "client";
  const input = side === "server" ? genRequest(rng, key) : genResponse(rng, key, offered);
  return { side, server, key, offered, input };
}

/** Reads a head whole and in pieces; both must agree. Returns null if it is invalid. */
function readHead<K extends "request" | "response">(
  kind: K,
  input: Uint8Array,
  rng: Rng,
): (K extends "request" ? HttpRequestHead : HttpResponseHead) | null {
  const read = (pieces: Uint8Array[]) => {
    const reader = new HttpHeadReader(kind);
    try {
      for (const piece of pieces) {
        const done = reader.feed(piece);
        if (done) return done.head;
      }
    } catch (e) {
      if (e instanceof DillError) return null;
      throw e;
    }
    throw new Error("a complete head was not completed");
  };
  const whole = read([input]);
  const split = read(rng.split(input));
  const summary = (h: typeof whole) => h && JSON.stringify({ ...h, headers: [...h.headers] });
  if (summary(whole) !== summary(split)) {
    throw new Error(`head read differently in pieces: ${summary(whole)} vs ${summary(split)}`);
  }
  return whole;
}

function serverOutcome(head: HttpRequestHead, c: HandshakeCase): ServerOutcome {
  const o = c.server;
  try {
    const up = acceptUpgrade(head, {
      maxResourceLength: o.maxResourceLength,
      maxHostLength: o.maxHostLength,
      protocols: o.protocols,
      checkOrigin: o.refuseOrigin === null
        ? undefined
        : (origin) => origin === null || !origin.includes(o.refuseOrigin!),
    });
    checkAnswer(up.response, up.key, up.protocol, head);
    return { status: 101, resource: up.resource, host: up.host, protocol: up.protocol };
  } catch (e) {
    if (!(e instanceof HandshakeError)) throw e;
    const answer = new HttpHeadReader("response").feed(e.response);
    if (answer?.head.status !== e.status) throw new Error("refusal answer has another status");
    return { status: e.status, code: e.code as "EPROTO" | "EMSGSIZE" };
  }
}

/** The 101 answer must carry the right accept key and protocol, and satisfy a client. */
function checkAnswer(
  response: Uint8Array,
  key: string,
  protocol: string | null,
  request: HttpRequestHead,
): void {
  const done = new HttpHeadReader("response").feed(response);
  if (!done || done.rest.length !== 0) throw new Error("the 101 answer is not one head");
  const h = done.head.headers;
  if (done.head.status !== 101 || h.get("sec-websocket-accept") !== refAccept(key)) {
    throw new Error("the 101 answer has a wrong status or accept key");
  }
  if (h.get("sec-websocket-protocol") !== protocol) throw new Error("wrong protocol in the 101");
  const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) =>
    s.trim()
  );
  const client = checkUpgradeResponse(done.head, key, offered);
  if (client.protocol !== protocol) throw new Error("a client disagrees with the 101");
}

function clientOutcome(head: HttpResponseHead, c: HandshakeCase): ClientOutcome {
  try {
    return { ok: true, protocol: checkUpgradeResponse(head, c.key, c.offered).protocol };
  } catch (e) {
    if (!(e instanceof DillError) || e.code !== "EPROTO") throw e;
    return { ok: false };
  }
}

/** The handshake fuzz target. */
export const handshakeTarget: FuzzTarget<HandshakeCase> = {
  name: "handshake",
  generate: genCase,
  check(c: HandshakeCase, rng: Rng): void {
    const kind = c.side === "server" ? "request" : "response";
    const verdict = referenceHead(c.input, kind, { maxHeadBytes: 8192, maxHeaders: 64 });
    const head = readHead(kind, c.input, rng);
    if ((verdict.kind === "head") !== (head !== null)) {
      throw new Error(`head reader says ${head ? "valid" : "invalid"}, reference ${verdict.kind}`);
    }
    if (head === null || verdict.kind !== "head") return;
    const got = c.side === "server"
      ? serverOutcome(head as HttpRequestHead, c)
      : clientOutcome(head as HttpResponseHead, c);
    const want = c.side === "server"
      ? refServer(verdict.head, c.server)
      : refClient(verdict.head, c.key, c.offered);
    const a = JSON.stringify(got);
    const b = JSON.stringify(want);
    if (a !== b) throw new Error(`differs from the reference\n  got:  ${a}\n  want: ${b}`);
  },
  describe(c: HandshakeCase): string {
    return `side=${c.side} server=${JSON.stringify(c.server)} key=${c.key} ` +
      `offered=${JSON.stringify(c.offered)} bytes=${hex(c.input)}`;
  },
};
