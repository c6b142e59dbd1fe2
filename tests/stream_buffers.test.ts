/**
 * Buffer reuse in the bytestream layer (actors/write_queue.ts, actors/read_ahead.ts):
 * a closing stream's coalescing buffer goes back to the shared pool, a read buffer its
 * consumer is done with serves the next read, and so does the unused rest of a read
 * buffer, while views that do not span a whole buffer of the right size are never
 * reused, and no byte handed over is ever read into again.
 */

import assert from "node:assert/strict";
import { recycleBuffers, WriteQueue } from "../actors/write_queue.ts";
import { ReadAhead } from "../actors/read_ahead.ts";
import { Request } from "../actors/request.ts";
import { ByteStream } from "../actors/stream.ts";
import { pipePair } from "../actors/pipe.ts";
import { DillError } from "../protocol/errors.ts";

Deno.test("write queue: buffers taken from a closing queue go back to the pool", () => {
  const closing = new WriteQueue();
  closing.append([new Uint8Array([1, 2, 3])], null);
  const taken = closing.takeBuffers();
  assert.equal(taken.length, 1, "the tail's coalescing buffer is handed out");
  closing.clear();
  recycleBuffers(taken);
  const next = new WriteQueue();
  next.append([new Uint8Array([4, 5])], null);
  const segment = next.next()!;
  assert.equal(segment.bytes.buffer, taken[0], "the next queue coalesces into the same buffer");
  assert.deepEqual([...segment.bytes], [4, 5]);
  next.written();
});

Deno.test("write queue: a large send queued as it is is not a pooled buffer", () => {
  const q = new WriteQueue();
  const big = new Uint8Array(100_000);
  q.append([big], null);
  assert.deepEqual(q.takeBuffers(), [], "the caller's own buffer is never pooled");
  q.clear();
});

Deno.test("write queue: 50 connections each writing a small message reuse pooled buffers", () => {
  // Every connection with a write in progress holds a coalescing buffer: with 50 busy
  // connections the pool must cover 50 of them, or each small echo allocates anew.
  const round = () => {
    const queues = Array.from({ length: 50 }, () => new WriteQueue());
    const buffers = queues.map((q) => {
      q.append([new Uint8Array([0x82, 64]), new Uint8Array(64)], null);
      return q.next()!.bytes.buffer;
    });
    for (const q of queues) q.written();
    return buffers;
  };
  const first = new Set(round());
  const second = round();
  assert.ok(second.every((b) => first.has(b)), "the second round allocated no buffer");
  assert.ok(second.every((b) => b.byteLength <= 4096), "a small message takes a small buffer");
});

Deno.test("write queue: a batch that outgrows a small buffer stays one write, in order", () => {
  const q = new WriteQueue();
  const expected: number[] = [];
  for (let i = 0; i < 200; i++) {
    const chunk = new Uint8Array(66).fill(i);
    expected.push(...chunk);
    q.append([chunk], null);
  }
  const segment = q.next()!;
  assert.equal(segment.bytes.length, 200 * 66, "all 200 sends in one segment");
  assert.deepEqual([...segment.bytes], expected);
  q.written();
  assert.ok(q.empty);
});

/**
 * A ReadAhead whose next read buffer is `size` bytes (a power of two): full reads double
 * the read size. Past the smallest size, reads can be handed over without a copy.
 */
function readAheadOf(size: number): ReadAhead {
  const inbound = new ReadAhead();
  for (let grown = 256; grown < size; grown *= 2) {
    const buf = inbound.readBuffer();
    inbound.chunkOf(buf, buf.length);
  }
  return inbound;
}

Deno.test("read ahead: an idle connection waits on a small read buffer that nothing else pins", () => {
  const inbound = new ReadAhead();
  const buf = inbound.readBuffer();
  assert.ok(buf.length <= 256, `first read buffer is ${buf.length} bytes`);
  // An upgrade request fits; its bytes are copied out, so the chunk (which the handshake
  // may keep) does not hold the read buffer, and the buffer serves the next read.
  buf.fill(7, 0, 200);
  const chunk = inbound.chunkOf(buf, 200);
  assert.notEqual(chunk.buffer, buf.buffer);
  assert.deepEqual([...chunk], new Array(200).fill(7));
  assert.equal(inbound.readBuffer(), buf);
});

Deno.test("read ahead: a consumed read buffer serves the next read", () => {
  const inbound = readAheadOf(512);
  const buf = inbound.readBuffer();
  // Half-full reads: handed over without a copy, and the read size stays as it is.
  const chunk = inbound.chunkOf(buf, buf.length / 2);
  assert.equal(chunk.buffer, buf.buffer);
  const fresh = inbound.readBuffer(); // the chunk is still in use: a new buffer
  assert.notEqual(fresh.buffer, buf.buffer);
  inbound.recycle(chunk);
  inbound.chunkOf(fresh, fresh.length / 2);
  const reused = inbound.readBuffer();
  assert.equal(reused.buffer, buf.buffer, "the recycled buffer is read into again");
});

Deno.test("read ahead: lends() names exactly the chunks recycle may take back", () => {
  const inbound = readAheadOf(512);
  const buf = inbound.readBuffer();
  const lent = inbound.chunkOf(buf, buf.length / 2);
  assert.equal(inbound.lends(lent), true, "a read handed over in place");
  assert.equal(inbound.lends(lent.subarray(1)), false, "not from the buffer's start");
  assert.equal(inbound.lends(new Uint8Array(buf.length)), false, "someone else's bytes");
  const next = inbound.readBuffer();
  const full = inbound.chunkOf(next, next.length); // a full read: the read size doubles
  assert.equal(inbound.lends(full), false, "too small for the next reads: not taken back");
  const small = new ReadAhead();
  const tiny = small.chunkOf(small.readBuffer(), 3);
  assert.equal(small.lends(tiny), false, "a copy in the shared slab");
});

Deno.test("read ahead: partial views and buffers of another size are not reused", () => {
  const inbound = readAheadOf(512);
  const buf = inbound.readBuffer();
  inbound.chunkOf(buf, buf.length / 2);
  const other = new Uint8Array(buf.length);
  inbound.recycle(other.subarray(16)); // does not start the buffer: someone may hold the rest
  inbound.recycle(new Uint8Array(8)); // too small for the read size
  const next = inbound.readBuffer();
  assert.notEqual(next.buffer, other.buffer);
  assert.ok(next.length >= buf.length);
});

Deno.test("read ahead: a read that leaves much of its buffer unused leaves the rest to the next read", () => {
  const inbound = readAheadOf(256 * 1024);
  const buf = inbound.readBuffer();
  assert.equal(buf.length, 256 * 1024);
  buf.fill(1, 0, 100_000);
  const first = inbound.chunkOf(buf, 100_000);
  const tail = inbound.readBuffer();
  assert.equal(tail.buffer, buf.buffer, "no new zero-filled buffer");
  assert.equal(tail.byteOffset, 100_000, "right after the bytes handed over");
  assert.equal(tail.length, 256 * 1024 - 100_000);
  tail.fill(2, 0, 100_000);
  const second = inbound.chunkOf(tail, 100_000);
  assert.ok(first.every((b) => b === 1), "the first chunk keeps its bytes");
  assert.ok(second.every((b) => b === 2));
  assert.equal(second.byteOffset, 100_000);
  // 62,144 bytes are left: more than 32 KiB, but less than a quarter of the read size.
  const next = inbound.readBuffer();
  assert.notEqual(next.buffer, buf.buffer, "a rest under a quarter of the read size is left");
  assert.equal(next.length, 256 * 1024);
});

Deno.test("read ahead: once a read went into a buffer's tail, its head is never taken back", () => {
  const inbound = readAheadOf(256 * 1024);
  const buf = inbound.readBuffer();
  const head = inbound.chunkOf(buf, 64 * 1024);
  assert.equal(inbound.lends(head), true, "the head is lent, as any read handed over whole");
  const tail = inbound.readBuffer();
  assert.equal(tail.buffer, buf.buffer);
  // The consumer gives the head back while the read into the tail is in progress, and
  // again after it: taking the whole buffer would overwrite what that read delivers.
  inbound.recycle(head);
  tail.fill(6, 0, 150_000);
  const kept = inbound.chunkOf(tail, 150_000); // handed over in place; too little is left
  assert.equal(inbound.lends(kept), false, "a tail is never lent");
  inbound.recycle(head);
  const next = inbound.readBuffer();
  assert.notEqual(next.buffer, buf.buffer);
  next.fill(9);
  assert.ok(kept.every((b) => b === 6), "bytes handed over keep their value");
});

Deno.test("read ahead: a head given back before its tail is read into frees the whole buffer", () => {
  const inbound = readAheadOf(256 * 1024);
  const buf = inbound.readBuffer();
  const head = inbound.chunkOf(buf, 64 * 1024);
  inbound.recycle(head); // every byte of it was copied out: nothing of the buffer is in use
  const next = inbound.readBuffer();
  assert.equal(next.buffer, buf.buffer);
  assert.equal(next.byteOffset, 0);
  assert.equal(next.length, 256 * 1024, "the whole buffer, not only its tail");
});

Deno.test("read ahead: a small read buffer's rest is not read into", () => {
  const inbound = readAheadOf(32 * 1024);
  const buf = inbound.readBuffer();
  assert.equal(buf.length, 32 * 1024);
  inbound.chunkOf(buf, 8 * 1024); // 24 KiB left: under 32 KiB
  assert.notEqual(inbound.readBuffer().buffer, buf.buffer);
});

Deno.test("read ahead: random reads, give-backs and read targets never write over bytes handed out", () => {
  let intoRests = 0;
  for (let seed = 1; seed <= 10; seed++) {
    let state = seed;
    const random = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 8) % n;
    };
    const inbound = new ReadAhead();
    // What the consumer holds: each chunk with the bytes it had when handed over.
    const held: { chunk: Uint8Array; bytes: Uint8Array; reusable: boolean }[] = [];
    let target: Uint8Array | null = null;
    let reading: Uint8Array | null = null; // the buffer of the read in progress
    for (let step = 0; step < 4000; step++) {
      const op = random(10);
      if (op < 3 && reading === null) {
        reading = inbound.readBuffer();
        if (reading.byteOffset > 0 && reading.buffer !== target?.buffer) intoRests++;
      } else if (op < 6 && reading !== null) {
        // The read returns: full, tiny or any size in between. It writes its bytes only now,
        // so a give-back while it was in progress counts.
        const buf = reading;
        reading = null;
        const r = random(20);
        const n = r < 8 ? buf.length : r < 11 ? 1 + random(64) : 1 + random(buf.length);
        const start = buf.byteOffset, end = start + n;
        for (const h of held) {
          const c = h.chunk;
          if (c.buffer === buf.buffer && c.byteOffset < end && start < c.byteOffset + c.length) {
            assert.fail(`seed ${seed}, step ${step}: a read goes over a chunk handed over`);
          }
        }
        buf.fill(step & 255, 0, n);
        const chunk = inbound.chunkOf(buf, n);
        held.push({ chunk, bytes: chunk.slice(), reusable: inbound.lends(chunk) });
      } else if (op < 9 && held.length > 0) {
        // The consumer is done with a chunk: it gives back one it was told it may (at once,
        // or late, after more reads) and forgets it.
        const [h] = held.splice(random(held.length), 1);
        if (h.reusable) inbound.recycle(h.chunk);
      } else if (op === 9 && random(4) === 0) {
        if (target === null) {
          target = new Uint8Array(1 + random(200_000));
          inbound.setTarget(target);
        } else {
          inbound.clearTarget();
          target = null;
        }
      }
      while (held.length > 64) held.shift(); // old chunks dropped without a give-back
    }
    for (const h of held) assert.deepEqual(h.chunk, h.bytes, `seed ${seed}: a chunk changed`);
  }
  assert.ok(intoRests > 100, `only ${intoRests} reads went into the rest of a buffer`);
});

Deno.test("read ahead: small reads share a slab, which is never read into", () => {
  const inbound = new ReadAhead();
  const buf = inbound.readBuffer();
  buf.set([1, 2, 3]);
  const a = inbound.chunkOf(buf, 3); // small: copied out
  const buf2 = inbound.readBuffer();
  buf2.set([4, 5]);
  const b = inbound.chunkOf(buf2, 2);
  assert.deepEqual([...a, ...b], [1, 2, 3, 4, 5]);
  assert.equal(a.buffer, b.buffer, "both copies live in one slab");
  assert.notEqual(a.buffer, buf.buffer);
  inbound.recycle(a); // the slab also holds b: it must not become a read buffer
  const next = inbound.readBuffer();
  next.fill(9);
  assert.notEqual(next.buffer, a.buffer);
  assert.deepEqual([...a, ...b], [1, 2, 3, 4, 5], "chunks handed out keep their bytes");
});

Deno.test("write queue: with a send buffer, sends complete while they fit, in order", () => {
  const q = new WriteQueue(100);
  const req = (op: string) => new Request<void>(op, -1);
  assert.equal(q.append([new Uint8Array(60)], req("a")), false); // fits: completes now
  assert.equal(q.append([new Uint8Array(30)], req("b")), false); // 90 bytes held: fits
  const c = req("c");
  assert.equal(q.append([new Uint8Array(20)], c), true); // 110 > 100: waits for its write
  assert.equal(q.append([new Uint8Array(1)], req("d")), true); // behind a waiting send: waits
  assert.equal(q.waitingSends, 2);
  // Closing now: the completed sends' 90 bytes must still be written, and nothing of the
  // waiting ones (they fail): the first send that waits started a segment of its own.
  assert.deepEqual(q.unclaimed(false).map((b) => b.length), [90]);
  assert.equal(q.next()!.bytes.length, 90);
  assert.deepEqual(q.written().reqs.map((r) => r.op), []);
  assert.equal(q.next()!.bytes.length, 21);
  assert.deepEqual(q.written().reqs.map((r) => r.op), ["c", "d"]);
  assert.equal(q.waitingSends, 0);
  assert.equal(q.append([new Uint8Array(5)], req("e")), false); // empty again: fits
});

Deno.test("write queue: a frame that waits behind completed bytes is never handed over cut at close", () => {
  const q = new WriteQueue(64 * 1024);
  const req = () => new Request<void>("msend", -1);
  assert.equal(q.append([new Uint8Array(12)], req()), false); // a small frame: completed
  // A frame too big for the send buffer: its header is small (copied into the tail), its
  // payload large (queued as it is). It waits, so at close neither part may be handed
  // over: the header alone would tell the peer to expect 100,000 bytes that never come.
  assert.equal(q.append([new Uint8Array(10), new Uint8Array(100_000)], req()), true);
  assert.deepEqual(q.unclaimed(false).map((b) => b.length), [12]);
});

Deno.test("write queue: at close, sends not started are left out whole; a protocol frame after them still goes", () => {
  const q = new WriteQueue();
  const req = () => new Request<void>("msend", -1);
  q.append([new Uint8Array(3)], req()); // an application's small frame (waits for its write)
  q.append([new Uint8Array(10), new Uint8Array(100_000)], req()); // a large one: two segments
  // The protocol's close frame, sent with a request but not the application's: it does
  // not join the tail holding the application's bytes.
  q.append([new Uint8Array(6)], req(), false);
  assert.deepEqual(q.unclaimed(false).map((b) => b.length), [6]);
});

Deno.test("write queue: at close, a send whose first bytes are being written is handed over to its end", () => {
  const q = new WriteQueue();
  const req = () => new Request<void>("msend", -1);
  // A frame: a small header (into the coalescing buffer), a large payload (as it is).
  q.append([new Uint8Array(10), new Uint8Array(100_000)], req());
  assert.equal(q.next()!.bytes.length, 10); // the header's write is in progress
  q.append([new Uint8Array(20)], req()); // a later send, not started
  // The payload follows the header it belongs to; the later send is left out.
  assert.deepEqual(q.unclaimed(true).map((b) => b.length), [100_000]);
});

Deno.test("write queue: completed bytes behind a write in progress are still handed over at close", () => {
  const q = new WriteQueue(64 * 1024);
  const req = () => new Request<void>("bsend", -1);
  q.append([new Uint8Array(20_000)], req()); // large: its own segment, completed
  q.next(); // its write is in progress
  q.append([new Uint8Array(10)], req()); // completed, in the tail
  assert.deepEqual(q.unclaimed(true).map((b) => b.length), [10]);
  // Without a send buffer, bytes of a send still waiting are never handed over.
  const plain = new WriteQueue();
  plain.append([new Uint8Array(20_000)], req());
  plain.next();
  plain.append([new Uint8Array(10)], req());
  assert.deepEqual(plain.unclaimed(true), []);
});

Deno.test("bytestream: a consumer is told which chunks are read buffers it may give back", async () => {
  const [a, b] = pipePair();
  const stream = new ByteStream("pipe", a);
  const events: { chunk: Uint8Array; reusable: boolean }[] = [];
  let arrived = () => {};
  stream.send({
    kind: "attach",
    consumer: {
      send(event) {
        if (event.kind !== "data") return;
        events.push({ chunk: event.chunk, reusable: event.reusable === true });
        arrived();
      },
    },
  });
  try {
    // A small read (copied into the shared slab), a full one (it grows the read size),
    // then one that leaves room in the bigger buffer: that one is handed over in place.
    for (const size of [64, 256, 384]) {
      const got = new Promise<void>((resolve) => arrived = resolve);
      await b.write(new Uint8Array(size).fill(1));
      await got;
    }
    assert.deepEqual(events.map((e) => [e.chunk.length, e.reusable]), [
      [64, false], // a copy in the shared slab
      [256, false], // the first (smallest) read buffer is copied out too
      [384, true], // in place: the consumer may give it back
    ]);
    assert.equal(events[2].chunk.byteOffset, 0);
  } finally {
    stream.close(new DillError("ECANCELED", "test over"));
    b.close();
  }
});
