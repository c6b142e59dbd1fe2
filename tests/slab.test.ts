/**
 * The shared slab small byte arrays are carved from (protocol/slab.ts), and its users:
 * small reads, encoded strings and a client's small masked frames.
 */

import assert from "node:assert/strict";
import { Slab } from "../protocol/slab.ts";
import { encodeFrame, FRAME_SLAB_MAX, Opcode } from "../protocol/frame.ts";
import { Receiver } from "../protocol/receiver.ts";

Deno.test("slab: slices are fresh, zeroed, 8-byte aligned and never overlap", () => {
  const slab = new Slab(64);
  const slices = [3, 8, 1, 20, 17, 64, 5].map((n) => slab.take(n));
  for (const s of slices) {
    assert.equal(s.byteOffset % 8, 0);
    assert.ok(s.every((b) => b === 0), "zeroed");
    s.fill(0xff);
  }
  for (let i = 0; i < slices.length; i++) {
    for (let j = i + 1; j < slices.length; j++) {
      const [a, b] = [slices[i], slices[j]];
      if (a.buffer !== b.buffer) continue;
      const apart = a.byteOffset + a.length <= b.byteOffset ||
        b.byteOffset + b.length <= a.byteOffset;
      assert.ok(apart, `slices ${i} and ${j} overlap`);
    }
  }
  assert.equal(slices[0].buffer, slices[1].buffer, "small slices share a buffer");
  assert.notEqual(slices[4].buffer, slices[5].buffer, "a full slab is followed by a new one");
  const big = slab.take(65);
  assert.equal(big.length, 65, "more than a slab: an array of its own");
  assert.equal(big.buffer.byteLength, 65);
});

Deno.test("slab: shrink gives back the unused end of the last slice only", () => {
  const slab = new Slab(64);
  const room = slab.take(24);
  const kept = slab.shrink(room, 5);
  assert.equal(kept.length, 5);
  assert.equal(slab.take(8).byteOffset, 8, "the next slice starts after the 5 bytes kept");
  const older = slab.take(8);
  slab.take(8);
  assert.equal(slab.shrink(older, 1).length, 1);
  assert.equal(slab.take(8).byteOffset, 32, "an older slice's end is not given back");
});

Deno.test("slab: small masked frames share a slab; a large one has its own buffer; both decode", () => {
  const small = new Uint8Array(64).map((_, i) => i);
  const large = new Uint8Array(FRAME_SLAB_MAX).fill(9);
  const [a] = encodeFrame(Opcode.BINARY, small, { masked: true });
  const [b] = encodeFrame(Opcode.BINARY, small, { masked: true });
  const [c] = encodeFrame(Opcode.BINARY, large, { masked: true });
  assert.equal(a.buffer, b.buffer);
  assert.ok(a.byteOffset + a.length <= b.byteOffset, "one after the other");
  assert.ok(c.byteOffset < 8, "a buffer of its own: the frame starts after its padding");
  assert.notEqual(c.buffer, a.buffer);
  const receiver = new Receiver({ role: "server", maxMessageSize: 1 << 20 });
  for (const [frame, payload] of [[a, small], [b, small], [c, large]]) {
    receiver.feed(frame.slice()); // the receiver unmasks in place: not in the slab
    const event = receiver.next();
    assert.ok(event?.type === "message");
    assert.deepEqual(event.data, payload);
  }
});

Deno.test("slab: a server's frame headers are slices of one slab, each left as written", () => {
  const sizes = [5, 300, 70_000, 0, 125, 126, 65_535, 65_536];
  const frames = sizes.map((n) => encodeFrame(Opcode.BINARY, new Uint8Array(n), { masked: false }));
  const headers = frames.map(([header]) => header);
  assert.deepEqual(headers.map((h) => h.length), [2, 4, 10, 2, 2, 4, 4, 10]);
  let slabs = 1;
  for (let i = 0; i < headers.length; i++) {
    assert.ok(headers[i].buffer.byteLength >= 1024, "a slice, not a buffer of its own");
    if (i === 0) continue;
    const [prev, next] = [headers[i - 1], headers[i]];
    if (next.buffer !== prev.buffer) slabs++; // the shared slab was full: the next one
    else assert.ok(prev.byteOffset + prev.length <= next.byteOffset, "one after the other");
  }
  assert.ok(slabs <= 2, `${slabs} slabs for 8 headers`);
  // Each header still says its own payload length once the later ones were written.
  const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 20 });
  frames.forEach(([header, payload], i) => {
    assert.equal(payload.length, sizes[i], "the payload is the caller's array");
    receiver.feed(header.slice());
    receiver.feed(payload);
    const event = receiver.next();
    assert.ok(event?.type === "message");
    assert.equal((event.data as Uint8Array).length, sizes[i]);
  });
});
