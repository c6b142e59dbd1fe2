/**
 * The WS actor's reading side ({@link Reading}) on its own, with a recording stand-in
 * for the bytestream: the stream offsets its read targets carry count the handshake's
 * head too, reading pauses when the inbox is full and resumes when a message is taken,
 * and an input end waits for the frames read before it.
 */

import assert from "node:assert/strict";
import { DillError } from "../protocol/errors.ts";
import type { StreamMsg } from "../actors/stream.ts";
import { Request } from "../actors/request.ts";
import { Inbox, type WsReceived } from "../actors/ws_inbox.ts";
import { WS_BINARY } from "../actors/ws_options.ts";
import { Reading, type ReadingHost } from "../actors/ws_reading.ts";

const LIMITS = {
  maxMessageSize: 1 << 20,
  maxBufferedBytes: 1 << 20,
  maxQueuedMessages: 2,
  maxPongBytes: 1024,
};

/** What the reading asked of the stream and of its host. */
interface Log {
  stream: StreamMsg[];
  ended: (DillError | null)[];
}

const HOST: ReadingHost<Log> = {
  closed: () => false,
  closeSent: () => false,
  inputDone: () => false,
  detaching: () => false,
  peerClosed() {},
  violation() {},
  inputEnded: (log, failure) => void log.ended.push(failure),
  pongWritten() {},
};

/** A client-side reading (unmasked frames from the peer) and what it did. */
function reading(): { reading: Reading<Log>; inbox: Inbox; log: Log } {
  const log: Log = { stream: [], ended: [] };
  const inbox = new Inbox(WS_BINARY, 16);
  const lower = { send: (msg: StreamMsg) => void log.stream.push(msg) };
  return { reading: new Reading(true, LIMITS, lower, inbox, null, log, HOST), inbox, log };
}

/** An unmasked binary frame's header for a payload of `size` bytes (64-bit length form). */
function bigHeader(size: number): Uint8Array {
  const header = new Uint8Array(10);
  header[0] = 0x82;
  header[1] = 127;
  new DataView(header.buffer).setBigUint64(2, BigInt(size));
  return header;
}

/** An unmasked binary frame with a small payload. */
function small(...payload: number[]): Uint8Array {
  return new Uint8Array([0x82, payload.length, ...payload]);
}

function recvCall(): { kind: "recv"; typed: false; into: null; req: Request<WsReceived> } {
  return { kind: "recv", typed: false, into: null, req: new Request<WsReceived>("mrecv", -1) };
}

Deno.test("ws reading: a read target's stream offset counts the handshake's head", () => {
  const { reading: r, log } = reading();
  r.headBytes(120); // the head, delivered before the connection opened
  // The buffer for the whole message is made once an eighth of it arrived.
  const first = new Uint8Array(32 * 1024);
  first.set(bigHeader(200_000));
  r.data(first);
  const target = log.stream.find((m) => m.kind === "readInto");
  assert.ok(target && target.kind === "readInto", "the rest of the message gets a read target");
  assert.equal(target.at, 120 + first.length);
  assert.equal(target.buf.length, 200_000 - (first.length - 10));
});

Deno.test("ws reading: the bytes after the head are frames, counted with the head", () => {
  const { reading: r, inbox, log } = reading();
  const head = new Uint8Array(80);
  const chunk = new Uint8Array(80 + 3 + 10 + 40_000);
  chunk.set(small(9), 80);
  chunk.set(bigHeader(200_000), 83);
  r.headBytes(chunk.length); // the whole chunk went to the handshake...
  r.open(chunk.subarray(head.length), null); // ...and what followed its head are frames
  assert.equal(inbox.length, 1);
  const target = log.stream.find((m) => m.kind === "readInto");
  assert.ok(target && target.kind === "readInto");
  assert.equal(target.at, chunk.length);
  assert.equal(target.buf.length, 200_000 - 40_000);
});

Deno.test("ws reading: pauses when the inbox is full, resumes when a message is taken", async () => {
  const { reading: r, inbox, log } = reading();
  r.data(new Uint8Array([...small(1), ...small(2), ...small(3)]));
  assert.equal(inbox.length, 2, "parsing holds at maxQueuedMessages");
  assert.equal(r.paused, true);
  assert.deepEqual(log.stream.map((m) => m.kind), ["pause"]);
  const call = recvCall();
  assert.equal(r.recv(call, () => true), true);
  assert.deepEqual((await call.req.promise).data, new Uint8Array([1]));
  assert.equal(inbox.length, 2, "the held frame went on into the room made");
  assert.equal(r.paused, true);
  for (let i = 0; i < 2; i++) r.recv(recvCall(), () => true);
  assert.equal(r.paused, false);
  assert.deepEqual(log.stream.map((m) => m.kind), ["pause", "resume"]);
});

Deno.test("ws reading: an input end waits for the frames read before it", () => {
  const { reading: r, inbox, log } = reading();
  r.data(new Uint8Array([...small(1), ...small(2), ...small(3), ...small(4)]));
  r.streamEnded(null);
  assert.deepEqual(log.ended, [], "two frames are still held");
  r.recv(recvCall(), () => true);
  assert.deepEqual(log.ended, [], "one frame is still held");
  r.recv(recvCall(), () => true);
  assert.equal(inbox.length, 2, "every frame was handled");
  // The end is reported once a pass over the frames finds none left.
  r.recv(recvCall(), () => true);
  assert.deepEqual(log.ended, [null], "the end comes after the last frame");
  r.endInput(new DillError("ECONNRESET", "gone"));
  assert.equal(r.stopped, true);
});
