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

/**
 * A 16 KiB message split across two reads that land one after the other in one buffer,
 * as the TLS transport reads a record at a time into an arena. Returns the arena and
 * where the first read ends (inside the payload).
 */
function arenaReads(): { arena: Uint8Array; split: number; payload: Uint8Array } {
  const payload = new Uint8Array(16 * 1024).map((_, i) => i * 31);
  const arena = new Uint8Array(64 * 1024);
  arena.set([0x82, 126, payload.length >> 8, payload.length & 0xff]);
  arena.set(payload, 4);
  return { arena, split: 4 + 10_000, payload };
}

Deno.test("ws reading: a message across adjacent reads the stream will not reuse stays a view, uncopied", async () => {
  const { reading: r, log } = reading();
  const { arena, split, payload } = arenaReads();
  r.data(arena.subarray(0, split), false);
  r.data(arena.subarray(split, 4 + payload.length), false);
  const call = recvCall();
  r.recv(call, () => true);
  const { data } = await call.req.promise;
  assert.ok(data instanceof Uint8Array);
  assert.deepEqual(data, payload);
  assert.equal(data.buffer, arena.buffer, "the message is a view of the reads' memory");
  assert.equal(data.byteOffset, 4);
  assert.deepEqual(log.stream.filter((m) => m.kind === "recycle"), [], "nothing to give back");
});

Deno.test("ws reading: a read buffer the stream reuses is given back, its part of a message copied out", async () => {
  const { reading: r, log } = reading();
  const { arena, split, payload } = arenaReads();
  const first = arena.subarray(0, split);
  r.data(first, true);
  const recycled = log.stream.filter((m) => m.kind === "recycle");
  assert.equal(recycled.length, 1, "the first read's buffer goes back at once");
  assert.ok(recycled[0].kind === "recycle" && recycled[0].chunk === first);
  first.fill(0); // as the stream's next read would
  r.data(arena.subarray(split, 4 + payload.length), false);
  const call = recvCall();
  r.recv(call, () => true);
  const { data } = await call.req.promise;
  assert.deepEqual(data, payload, "the part read first was copied out before the reuse");
  assert.notEqual(data.buffer, arena.buffer);
});
