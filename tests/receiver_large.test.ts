/**
 * Large messages in the receiver: read straight into their buffer (Receiver.readTarget
 * with the read target of actors/read_ahead.ts) and read buffers given back for reuse
 * (Receiver.releasable), byte-exact under random traffic, random read sizes, every
 * masking alignment, and reads already in progress (or bytes already delivered) when
 * the target is set; the target's bookkeeping in ReadAhead; and the size a fragmented
 * message is assembled in.
 */

import assert from "node:assert/strict";
import { Receiver, type ReceiverEvent } from "../protocol/receiver.ts";
import { Opcode } from "../protocol/frame.ts";
import { READ_TARGET_MIN } from "../protocol/message_assembly.ts";
import { ReadAhead } from "../actors/read_ahead.ts";

type Role = "server" | "client";

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A frame built byte by byte from RFC 6455's layout, masked with `key` unless null. */
function rawFrame(
  opcode: number,
  payload: Uint8Array,
  fin: boolean,
  key: Uint8Array | null,
): Uint8Array {
  const length = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const maskBit = key ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else if (length < 65536) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    head.push(maskBit | 127);
    for (let shift = 7; shift >= 0; shift--) {
      head.push(Math.floor(length / 2 ** (8 * shift)) & 0xff);
    }
  }
  if (key) head.push(...key);
  const out = new Uint8Array(head.length + length);
  out.set(head);
  for (let i = 0; i < length; i++) {
    out[head.length + i] = key ? payload[i] ^ key[i & 3] : payload[i];
  }
  return out;
}

function randomBytes(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (random() * 256) | 0;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function assertSameBytes(got: Uint8Array, want: Uint8Array, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${label}: byte ${i} is ${got[i]}, not ${want[i]}`);
  }
}

/**
 * Random traffic as a peer of `role` sends it: small and large binary messages, large
 * ones also fragmented (a large final frame), text, pings; each frame masked with its
 * own random key when the receiver is a server. Returns the wire bytes and the
 * messages expected, in order.
 */
function traffic(role: Role, random: () => number): { wire: Uint8Array; messages: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  const messages: Uint8Array[] = [];
  const key = () => role === "server" ? randomBytes(random, 4) : null;
  for (let m = 0; m < 14; m++) {
    const kind = random();
    if (kind < 0.3) {
      const data = randomBytes(random, Math.floor(random() * 3000));
      frames.push(rawFrame(Opcode.BINARY, data, true, key()));
      messages.push(data);
    } else if (kind < 0.4) {
      frames.push(rawFrame(Opcode.PING, randomBytes(random, 5), true, key()));
    } else if (kind < 0.8) {
      // Large, in one frame: sizes around the threshold and well past it.
      const size = READ_TARGET_MIN - 100 + Math.floor(random() * 600_000);
      const data = randomBytes(random, size);
      frames.push(rawFrame(Opcode.BINARY, data, true, key()));
      messages.push(data);
    } else {
      // Large and fragmented: small leading fragments, a ping between, a large final one.
      const data = randomBytes(random, 200_000 + Math.floor(random() * 400_000));
      const cut1 = Math.floor(random() * 5000);
      const cut2 = cut1 + Math.floor(random() * 60_000);
      frames.push(rawFrame(Opcode.BINARY, data.subarray(0, cut1), false, key()));
      frames.push(rawFrame(Opcode.PING, new Uint8Array(0), true, key()));
      frames.push(rawFrame(Opcode.CONTINUATION, data.subarray(cut1, cut2), false, key()));
      frames.push(rawFrame(Opcode.CONTINUATION, data.subarray(cut2), true, key()));
      messages.push(data);
    }
  }
  return { wire: concat(frames), messages };
}

/**
 * Plays `wire` through a ReadAhead and a Receiver the way actors/stream.ts and
 * actors/ws_actor.ts drive them, with random read sizes and random interleavings: a
 * read is issued, delivered chunks wait a while before they are fed (as in a mailbox),
 * and the receiver's read target (with the stream offset of its first byte) is set
 * while a read is in progress or chunks are on their way.
 */
function play(role: Role, wire: Uint8Array, random: () => number) {
  const inbound = new ReadAhead();
  const receiver = new Receiver({ role, maxMessageSize: 1 << 24 });
  const events: ReceiverEvent[] = [];
  const targets: Uint8Array[] = [];
  const transit: Uint8Array[] = [];
  let read = 0; // wire bytes read
  let delivered = 0; // stream offset: bytes delivered to the consumer
  let fed = 0; // consumer offset: bytes fed to the receiver
  let inflight: Uint8Array | null = null;
  let released = 0;

  const consume = (count: number) => {
    for (let i = 0; i < count && transit.length > 0; i++) {
      const chunk = transit.shift()!;
      fed += chunk.length;
      receiver.feed(chunk);
      for (let e = receiver.next(); e !== undefined; e = receiver.next()) events.push(e);
      const target = receiver.readTarget();
      if (target !== null) {
        targets.push(target);
        // The stream's "readInto": bytes already delivered are the consumer's to copy.
        const sent = delivered - fed;
        if (sent < target.length) inbound.setTarget(target.subarray(sent));
      }
      const done = receiver.releasable();
      if (done !== null) {
        // Reused at once (as by the next read): any view of it still held would show.
        released++;
        done.fill(0xee);
        inbound.recycle(done);
      }
    }
  };

  while (read < wire.length || inflight !== null || transit.length > 0) {
    if (inflight === null && read < wire.length) inflight = inbound.readBuffer();
    if (transit.length > 0 && random() < 0.5) consume(1 + Math.floor(random() * 3));
    if (inflight !== null && random() < 0.6) {
      const want = random() < 0.5 ? inflight.length : 1 + Math.floor(random() * inflight.length);
      const n = Math.min(want, wire.length - read);
      inflight.set(wire.subarray(read, read + n));
      read += n;
      let chunk = inbound.chunkOf(inflight, n);
      inflight = null;
      for (;;) {
        const part = inbound.redirect(chunk);
        delivered += part.length;
        transit.push(part);
        if (part.length === chunk.length) break;
        chunk = chunk.subarray(part.length);
      }
    }
    if (inflight === null && read === wire.length) consume(transit.length);
  }
  return { events, targets, released };
}

for (const role of ["server", "client"] as const) {
  Deno.test(`receiver large (${role}): random traffic is byte-exact, read in place, chunks given back`, () => {
    let inPlace = 0;
    let releasedTotal = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const random = prng(seed * 7919 + (role === "server" ? 1 : 2));
      const { wire, messages } = traffic(role, random);
      const { events, targets, released } = play(role, wire.slice(), random);
      releasedTotal += released;
      const got = events.filter((e) => e.type === "message");
      assert.equal(events.filter((e) => e.type === "error").length, 0, `seed ${seed}: no error`);
      assert.equal(got.length, messages.length, `seed ${seed}: message count`);
      got.forEach((e, i) => {
        assert.ok(e.type === "message");
        assertSameBytes(e.data, messages[i], `seed ${seed} message ${i}`);
      });
      const buffers = new Set(targets.map((t) => t.buffer));
      inPlace += got.filter((e) => e.type === "message" && buffers.has(e.data.buffer)).length;
    }
    assert.ok(inPlace >= 10, `large messages were assembled in their read target (${inPlace})`);
    assert.ok(releasedTotal >= 10, `read chunks were given back (${releasedTotal})`);
  });
}

Deno.test("read target: a message read in place is its target's buffer, exactly its size", () => {
  const random = prng(3);
  const data = randomBytes(random, 300_000);
  for (let lead = 0; lead < 8; lead++) {
    // Every alignment of the target, and of the key over it, in a masked frame.
    const key = randomBytes(random, 4);
    const frame = rawFrame(Opcode.BINARY, data, true, key);
    const receiver = new Receiver({ role: "server", maxMessageSize: 1 << 20 });
    const first = 100_000 + lead;
    receiver.feed(frame.slice(0, first));
    assert.equal(receiver.next(), undefined);
    const target = receiver.readTarget();
    assert.ok(target !== null);
    assert.equal(receiver.readTarget(), null, "given out once per frame");
    assert.equal(target.length, frame.length - first);
    assert.equal(target.buffer.byteLength, data.length, "the whole payload's buffer");
    // The rest arrives read into the target, in uneven pieces.
    let at = 0;
    for (const size of [1, 7, 65536, 3]) {
      const n = Math.min(size, target.length - at);
      target.set(frame.subarray(first + at, first + at + n), at);
      receiver.feed(target.subarray(at, at + n));
      at += n;
      assert.equal(receiver.next(), undefined);
    }
    target.set(frame.subarray(first + at), at);
    receiver.feed(target.subarray(at));
    const event = receiver.next();
    assert.ok(event?.type === "message");
    assert.equal(event.data.buffer, target.buffer, "no copy at the end");
    assertSameBytes(event.data, data, `lead ${lead}`);
  }
});

Deno.test("read target: none for short rests, non-final frames, or too little received", () => {
  const data = new Uint8Array(1 << 20);
  const frame = rawFrame(Opcode.BINARY, data, true, null);
  const partial = (cut: number, fin = true) => {
    const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 21 });
    receiver.feed((fin ? frame : rawFrame(Opcode.BINARY, data, false, null)).slice(0, cut));
    assert.equal(receiver.next(), undefined);
    return receiver.readTarget();
  };
  assert.equal(partial(frame.length - READ_TARGET_MIN + 1), null, "rest under 64 KiB");
  assert.equal(partial(frame.length - READ_TARGET_MIN)?.length, READ_TARGET_MIN);
  assert.equal(partial(10 + (1 << 17) - 1), null, "less than an eighth received");
  assert.equal(partial(10 + (1 << 17))?.length, (1 << 20) - (1 << 17));
  assert.equal(partial(10 + (1 << 19), false), null, "the message may go on: size unknown");
  // Bytes still queued (parsing held): the target would not come next.
  const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 21 });
  receiver.feed(frame.slice(0, 10 + (1 << 19)));
  assert.equal(receiver.readTarget(), null, "nothing parsed yet");
});

Deno.test("read target: invalid UTF-8 arriving in the target fails at once, and drops it", () => {
  const receiver = new Receiver({ role: "server", maxMessageSize: 1 << 21 });
  const text = new Uint8Array(300_000).fill(0x61); // "aaa..."
  text[250_000] = 0xff; // never valid in UTF-8
  const frame = rawFrame(Opcode.TEXT, text, true, new Uint8Array([1, 2, 3, 4]));
  receiver.feed(frame.slice(0, 200_000));
  assert.equal(receiver.next(), undefined);
  const target = receiver.readTarget()!;
  assert.ok(target !== null);
  assert.equal(receiver.bufferedBytes, 200_000 - 14);
  target.set(frame.subarray(200_000, 260_000));
  receiver.feed(target.subarray(0, 60_000));
  const event = receiver.next();
  assert.ok(event?.type === "error", "reported before the frame ends");
  assert.equal(event.code, 1007);
  assert.equal(receiver.bufferedBytes, 0, "the message's buffer is let go");
  receiver.feed(target.subarray(60_000));
  assert.equal(receiver.next(), undefined);
  assert.equal(receiver.readTarget(), null);
});

Deno.test("releasable: a chunk whose payload was copied out is given back, once", () => {
  const receiver = new Receiver({ role: "server", maxMessageSize: 1 << 20 });
  const key = new Uint8Array([9, 8, 7, 6]);
  const data = new Uint8Array(3000).map((_, i) => i * 7);
  // A first fragment whole in one read, the rest in a second read.
  const first = rawFrame(Opcode.BINARY, data.subarray(0, 1000), false, key);
  const rest = rawFrame(Opcode.CONTINUATION, data.subarray(1000), true, key);
  receiver.feed(first);
  assert.equal(receiver.next(), undefined);
  assert.equal(receiver.releasable(), first, "its payload was copied out");
  assert.equal(receiver.releasable(), null, "only once");
  first.fill(0);
  receiver.feed(rest.subarray(0, 100));
  assert.equal(receiver.next(), undefined);
  const second = rest.subarray(100);
  receiver.feed(second);
  const event = receiver.next();
  assert.ok(event?.type === "message");
  assertSameBytes(event.data, data, "the message");
  assert.equal(receiver.releasable(), second, "the message was a copy, not a view of it");
});

Deno.test("releasable: not while bytes are unparsed, a view went out, or it holds the message", () => {
  const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 21 });
  const whole = rawFrame(Opcode.BINARY, new Uint8Array([1, 2, 3]), true, null);
  receiver.feed(whole);
  assert.equal(receiver.releasable(), null, "not parsed yet");
  assert.ok(receiver.next()?.type === "message");
  assert.equal(receiver.releasable(), null, "the message is a view of it");
  const ping = rawFrame(Opcode.PING, new Uint8Array([5]), true, null);
  receiver.feed(ping);
  assert.ok(receiver.next()?.type === "ping");
  assert.equal(receiver.releasable(), null, "the ping's payload is a view of it");
  // A large message read in place: the chunks read into the target are the message.
  const data = new Uint8Array(400_000).fill(3);
  const frame = rawFrame(Opcode.BINARY, data, true, null);
  receiver.feed(frame.slice(0, 100_000));
  assert.equal(receiver.next(), undefined);
  const target = receiver.readTarget()!;
  assert.ok(receiver.releasable() !== null, "the head was copied into the target's buffer");
  target.set(frame.subarray(100_000, 200_000));
  receiver.feed(target.subarray(0, 100_000));
  assert.equal(receiver.next(), undefined);
  assert.equal(receiver.releasable(), null, "that chunk is the message's own buffer");
  // After a close, what follows it may be handed over: nothing is given back.
  const closing = new Receiver({ role: "client", maxMessageSize: 100 });
  const close = rawFrame(Opcode.CLOSE, new Uint8Array([3, 232]), true, null);
  closing.feed(close);
  assert.ok(closing.next()?.type === "close");
  assert.equal(closing.releasable(), null);
});

Deno.test("releasable: never for a chunk fed as not reusable; pieces in one memory, one after the other, stay one view", () => {
  const receiver = new Receiver({ role: "server", maxMessageSize: 1 << 20 });
  const key = new Uint8Array([1, 2, 3, 4]);
  const data = new Uint8Array(20_000).map((_, i) => i * 13);
  const frame = rawFrame(Opcode.BINARY, data, true, key);
  const arena = new Uint8Array(frame.length + 100);
  arena.set(frame);
  // Three reads, one after the other in the arena (as TLS records are read).
  for (const [from, to] of [[0, 7000], [7000, 15_000]]) {
    receiver.feed(arena.subarray(from, to), false);
    assert.equal(receiver.next(), undefined);
    assert.equal(receiver.releasable(), null, "the caller would not reuse it: not asked for");
  }
  receiver.feed(arena.subarray(15_000, frame.length), false);
  const event = receiver.next();
  assert.ok(event?.type === "message");
  assertSameBytes(event.data, data, "the message");
  assert.equal(event.data.buffer, arena.buffer, "one view of the arena, not a copy");
  // Pieces with a gap between them (another frame's header) are still copied together.
  const fragments = [
    rawFrame(Opcode.BINARY, data.subarray(0, 500), false, key),
    rawFrame(Opcode.CONTINUATION, data.subarray(500, 1000), true, key),
  ];
  const joined = new Uint8Array(fragments[0].length + fragments[1].length);
  joined.set(fragments[0]);
  joined.set(fragments[1], fragments[0].length);
  receiver.feed(joined.subarray(0, 300), false);
  receiver.feed(joined.subarray(300), false);
  const fragmented = receiver.next();
  assert.ok(fragmented?.type === "message");
  assertSameBytes(fragmented.data, data.subarray(0, 1000), "the fragmented message");
  assert.notEqual(fragmented.data.buffer, joined.buffer, "two fragments: one copy");
});

Deno.test("releasable: once parsed, the receiver keeps no reference to the last chunk", async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, "run with --v8-flags=--expose-gc");
  const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 20 });
  const ref = (() => {
    const chunk = new Uint8Array([0x82, 0x02, 1, 2]);
    receiver.feed(chunk);
    assert.ok(receiver.next()?.type === "message");
    assert.equal(receiver.releasable(), null, "the message was a view of it");
    return new WeakRef(chunk.buffer);
  })();
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
  assert.equal(ref.deref(), undefined, "an idle connection pins no read buffer");
});

Deno.test("assembly: a fragmented message as long as the one before is gathered at its size", () => {
  const size = 1_000_000; // not a power of two: doubling alone ends past it
  const data = new Uint8Array(size).map((_, i) => i * 31);
  const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 24 });
  const sizes: number[] = [];
  for (let round = 0; round < 2; round++) {
    for (let at = 0; at < size; at += 1024) {
      const piece = data.subarray(at, Math.min(size, at + 1024));
      const opcode = at === 0 ? Opcode.BINARY : Opcode.CONTINUATION;
      receiver.feed(rawFrame(opcode, piece, at + 1024 >= size, null));
      if (at % (64 * 1024) === 0) receiver.releasable(); // as after each read
    }
    const event = receiver.next();
    assert.ok(event?.type === "message");
    assertSameBytes(event.data, data, `round ${round}`);
    sizes.push(event.data.buffer.byteLength);
  }
  assert.ok(sizes[0] > size, `the first grew by doubling (${sizes[0]})`);
  assert.equal(sizes[1], size, "the second took the likely size at once");
});

// ---------------------------------------------------------------------------------------
// The read target in ReadAhead.

Deno.test("read ahead: reads go into the target, in place, until it is full", () => {
  const inbound = new ReadAhead();
  const target = new Uint8Array(10_000);
  inbound.setTarget(target.subarray(100));
  const buf = inbound.readBuffer();
  assert.equal(buf.buffer, target.buffer);
  assert.equal(buf.byteOffset, 100);
  assert.equal(buf.length, 9900);
  buf.fill(5, 0, 10); // a read of 10 bytes: small, but never copied out of the target
  const chunk = inbound.chunkOf(buf, 10);
  assert.equal(chunk.buffer, target.buffer);
  assert.equal(chunk.byteOffset, 100);
  const rest = inbound.readBuffer();
  assert.equal(rest.byteOffset, 110);
  assert.equal(inbound.chunkOf(rest, rest.length).length, 9890);
  const after = inbound.readBuffer();
  assert.notEqual(after.buffer, target.buffer, "full: back to the stream's own buffers");
});

Deno.test("read ahead: bytes read elsewhere are copied into the target first, in order", () => {
  const inbound = new ReadAhead();
  const own = inbound.readBuffer(); // a read already in progress
  const target = new Uint8Array(5);
  inbound.setTarget(target);
  own.set([1, 2, 3, 4, 5, 6, 7, 8]);
  let chunk = inbound.chunkOf(own, 8);
  const first = inbound.redirect(chunk);
  assert.equal(first.buffer, target.buffer);
  assert.deepEqual([...first], [1, 2, 3, 4, 5]);
  chunk = chunk.subarray(first.length);
  const second = inbound.redirect(chunk);
  assert.equal(second, chunk, "the target is full: the rest goes as it is");
  assert.deepEqual([...second], [6, 7, 8]);
  assert.deepEqual([...target], [1, 2, 3, 4, 5]);
});

Deno.test("read ahead: a target dropped during a read into it is never reused", () => {
  for (const replace of [false, true]) {
    const inbound = new ReadAhead();
    const target = new Uint8Array(64 * 1024);
    inbound.setTarget(target);
    const buf = inbound.readBuffer();
    if (replace) inbound.setTarget(new Uint8Array(100));
    else inbound.clearTarget();
    buf.fill(9, 0, 3); // a tiny read: an own buffer would be copied out and reused
    const chunk = inbound.chunkOf(buf, 3);
    assert.equal(chunk.buffer, target.buffer, "delivered as it is");
    if (replace) {
      const moved = inbound.redirect(chunk);
      assert.notEqual(moved.buffer, target.buffer, "copied into the new target");
      assert.deepEqual([...moved], [9, 9, 9]);
    }
    for (let i = 0; i < 4; i++) {
      const next = inbound.readBuffer();
      assert.notEqual(next.buffer, target.buffer, "the old target never serves a read");
      inbound.chunkOf(next, next.length);
    }
  }
});
