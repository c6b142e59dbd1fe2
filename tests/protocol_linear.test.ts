/**
 * Parsing stays linear in its input (issue 8 item 2): each pathological input a peer can
 * send to the head reader, the handshake checks or the frame receiver is processed at size
 * n and 8n, and one 8n input must cost about as much as eight n inputs (linear) rather
 * than eight times more (quadratic). Work is compared by growth, never by wall time.
 * Limits are raised so the large inputs are accepted as far as the parser goes.
 */
import assert from "node:assert/strict";
import { concatBytes } from "../protocol/bytes.ts";
import { encodeFrameHeader, Opcode } from "../protocol/frame.ts";
import { acceptUpgrade, HandshakeError } from "../protocol/handshake.ts";
import { checkUpgradeResponse } from "../protocol/handshake_client.ts";
import { HttpHeadReader, type HttpRequestHead, type HttpResponseHead } from "../protocol/http11.ts";
import { Receiver } from "../protocol/receiver.ts";
import { assertLinear } from "./helpers/growth.ts";

const BIG = { maxHeadBytes: 1 << 22, maxHeaders: 1 << 20 };
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** Reads a whole request head, fed in `pieces` chunks of about equal size. */
function readRequest(bytes: Uint8Array, pieceSize = bytes.length): HttpRequestHead {
  const reader = new HttpHeadReader("request", BIG);
  for (let at = 0; at < bytes.length; at += pieceSize) {
    const done = reader.feed(bytes.subarray(at, at + pieceSize));
    if (done) return done.head;
  }
  throw new Error("head incomplete");
}

function readResponse(bytes: Uint8Array): HttpResponseHead {
  const done = new HttpHeadReader("response", BIG).feed(bytes);
  if (!done) throw new Error("head incomplete");
  return done.head;
}

/** A valid upgrade request with `extra` header lines appended (and `host`, `target`). */
function upgradeRequest(extra: string, target = "/", host = "a.example"): Uint8Array {
  return latin1(
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      `${extra}\r\n`,
  );
}

const SERVER_BIG = { maxHostLength: 1 << 22, maxResourceLength: 1 << 22 };

/** Parses and validates an upgrade request, as the server does; returns the refusal, if any. */
function serverHandshake(bytes: Uint8Array): number {
  try {
    acceptUpgrade(readRequest(bytes), SERVER_BIG);
    return 101;
  } catch (e) {
    if (e instanceof HandshakeError) return e.status;
    throw e;
  }
}

Deno.test("linear: header value of 'a', many spaces, 'b' (trailing-whitespace bait)", () => {
  const make = (n: number) => {
    const head = latin1(`GET / HTTP/1.1\r\nX: a${" ".repeat(n)}b\r\n\r\n`);
    return () => assert.equal(readRequest(head).headers.get("x")?.length, n + 2);
  };
  assertLinear("value with inner spaces", make, 1024);
  // Mixed SP/HTAB runs, and the same bait with real trailing whitespace after it.
  const mixed = (n: number) => {
    const value = "a" + " \t".repeat(n / 2) + "b" + " \t".repeat(n / 2);
    const head = latin1(`GET / HTTP/1.1\r\nX: ${value}\r\n\r\n`);
    return () => assert.equal(readRequest(head).headers.get("x")?.length, n + 2);
  };
  assertLinear("value with mixed whitespace and trailing whitespace", mixed, 1024);
});

Deno.test("linear: a large head in one-byte chunks is not rescanned", () => {
  const make = (n: number) => {
    const head = latin1(`GET /${"p".repeat(n)} HTTP/1.1\r\nX: ${"v".repeat(n)}\r\n\r\n`);
    return () => assert.equal(readRequest(head, 1).target.length, n + 1);
  };
  assertLinear("one-byte chunks", make, 1024);
  const chunks = (n: number) => {
    const head = latin1(`GET / HTTP/1.1\r\n${"X: y \r\n".repeat(n)}\r\n`);
    return () => assert.equal(readRequest(head, 3).headers.get("x")?.length, 3 * n - 2);
  };
  assertLinear("many repeated header lines in three-byte chunks", chunks, 256);
});

Deno.test("linear: long responses (reason phrase, header values)", () => {
  const make = (n: number) => {
    const head = latin1(`HTTP/1.1 101 ${"r ".repeat(n)}\r\nUpgrade:${" x".repeat(n)}\t\r\n\r\n`);
    return () => assert.equal(readResponse(head).reason.length, 2 * n);
  };
  assertLinear("long reason and value", make, 512);
});

Deno.test("linear: handshake token lists (Upgrade, Connection, subprotocols)", () => {
  const lists = (n: number) => {
    const list = " ,".repeat(n) + "a ,\t".repeat(n);
    const bytes = upgradeRequest(
      `Upgrade: ${list}\r\nConnection: ${list}\r\nSec-WebSocket-Protocol: ${list}\r\n`,
    );
    // Joined with the request's own Upgrade and Connection lines, so still valid.
    return () => assert.equal(serverHandshake(bytes), 101);
  };
  assertLinear("long token lists", lists, 512);
  const protocols = (n: number) => {
    const offer = Array.from({ length: n }, (_, i) => `p${i}`).join(", ");
    const bytes = upgradeRequest(`Sec-WebSocket-Protocol: ${offer}\r\n`);
    return () => assert.equal(serverHandshake(bytes), 101);
  };
  assertLinear("many offered subprotocols", protocols, 256);
});

Deno.test("linear: long hosts and targets with backtracking bait", () => {
  const cases: [string, (n: number) => Uint8Array, number][] = [
    ["host name then a slash", (n) => upgradeRequest("", "/", "a".repeat(n) + "/"), 400],
    ["IPv6 host never closed", (n) => upgradeRequest("", "/", "[" + ":".repeat(n)), 400],
    ["host with a long bad port", (n) => upgradeRequest("", "/", "a:" + "1".repeat(n) + "x"), 400],
    ["host then colons", (n) => upgradeRequest("", "/", "a" + ":1".repeat(n)), 400],
    ["long valid host", (n) => upgradeRequest("", "/", "a.".repeat(n) + "b"), 101],
    ["long path", (n) => upgradeRequest("", "/" + "a/".repeat(n)), 101],
    ["absolute target, long authority", (n) => upgradeRequest("", "ws://" + "a".repeat(n)), 101],
    ["absolute target, bad authority", (n) => upgradeRequest("", "ws://" + "a@".repeat(n)), 400],
    ["scheme-like target", (n) => upgradeRequest("", "w".repeat(n) + ":/"), 400],
    ["target with a late fragment", (n) => upgradeRequest("", "/" + "a".repeat(n) + "#"), 400],
  ];
  for (const [what, request, status] of cases) {
    const make = (n: number) => {
      const bytes = request(n);
      return () => assert.equal(serverHandshake(bytes), status, what);
    };
    assertLinear(what, make, 1024);
  }
});

Deno.test("linear: checkUpgradeResponse on long lists and protocol values", () => {
  const make = (n: number) => {
    const head = latin1(
      `HTTP/1.1 101 OK\r\nUpgrade: ${"x, ".repeat(n)}websocket\r\n` +
        `Connection: ${", ".repeat(n)}upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n` +
        `Sec-WebSocket-Protocol: ${"a,".repeat(n)}\r\n\r\n`,
    );
    return () => {
      assert.throws(() => checkUpgradeResponse(readResponse(head), KEY, ["a"]), /more than one/);
    };
  };
  assertLinear("long response lists", make, 1024);
});

/** Unmasked frames as a server sends them: the receiver side is a client. */
function frame(opcode: number, payload: Uint8Array, fin: boolean): Uint8Array {
  return concatBytes([encodeFrameHeader(opcode, payload.length, fin, null), payload]);
}

function receiveAll(chunks: Uint8Array[]): number {
  const receiver = new Receiver({ role: "client", maxMessageSize: Infinity });
  let messages = 0;
  for (const chunk of chunks) {
    receiver.feed(chunk);
    for (let event = receiver.next(); event; event = receiver.next()) {
      assert.equal(event.type, "message");
      messages++;
    }
  }
  return messages;
}

function oneByteChunks(bytes: Uint8Array): Uint8Array[] {
  return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
}

Deno.test("linear: receiver on a text message in one-byte chunks", () => {
  const make = (n: number) => {
    const text = new TextEncoder().encode("é€".repeat(n / 5));
    const chunks = oneByteChunks(frame(Opcode.TEXT, text, true));
    return () => assert.equal(receiveAll(chunks), 1);
  };
  assertLinear("one text frame in one-byte chunks", make, 4096);
});

Deno.test("linear: receiver on many tiny fragments and empty continuations", () => {
  const make = (n: number) => {
    const parts = [frame(Opcode.TEXT, latin1("a"), false)];
    for (let i = 0; i < n; i++) {
      parts.push(frame(Opcode.CONTINUATION, latin1(i % 2 ? "" : "b"), false));
    }
    parts.push(frame(Opcode.CONTINUATION, new Uint8Array(0), true));
    const chunks = oneByteChunks(concatBytes(parts));
    return () => assert.equal(receiveAll(chunks), 1);
  };
  assertLinear("fragments in one-byte chunks", make, 1024);
  const subviews = (n: number) => {
    // Tiny pieces that are views into one big buffer pin it: the receiver gathers them.
    const bytes = frame(Opcode.BINARY, new Uint8Array(n), true);
    const chunks = Array.from(
      { length: Math.ceil(bytes.length / 3) },
      (_, i) => bytes.subarray(3 * i, 3 * i + 3),
    );
    return () => assert.equal(receiveAll(chunks), 1);
  };
  assertLinear("binary frame in 3-byte views of one buffer", subviews, 4096);
});
