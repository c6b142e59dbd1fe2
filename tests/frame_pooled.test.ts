/**
 * A client's large frames masked straight into pooled write buffers
 * (protocol/frame.ts encodeMaskedFrameInto, actors/write_queue.ts takeWriteBuffer and
 * `pooled` appends): byte-exact at every alignment of the buffer, the buffer back in the
 * pool only once written, and end to end through our client and server.
 */

import assert from "node:assert/strict";
import { encodeFrame, encodeMaskedFrameInto, maskedFrameSpace, Opcode } from "../protocol/frame.ts";
import { Receiver } from "../protocol/receiver.ts";
import { isDillError } from "../protocol/errors.ts";
import { takeWriteBuffer, WriteQueue } from "../actors/write_queue.ts";
import {
  hclose,
  mrecv,
  msend,
  now,
  WS_BINARY,
  wsAttachClient,
  wsAttachServer,
  wsDone,
  wsRecv,
  wsSend,
} from "../mod.ts";
import { openPair } from "./helpers/transports.ts";

function randomPayload(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let off = 0; off < length; off += 65_536) {
    crypto.getRandomValues(out.subarray(off, Math.min(length, off + 65_536)));
  }
  return out;
}

function assertSameBytes(got: Uint8Array, want: Uint8Array, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${label}: byte ${i} is ${got[i]}, not ${want[i]}`);
  }
}

Deno.test("encodeMaskedFrameInto: every alignment and size decodes to the payload", () => {
  const receiver = new Receiver({ role: "server", maxMessageSize: 1 << 20 });
  for (const size of [0, 1, 7, 125, 126, 1023, 1024, 1031, 65535, 65536, 70_001]) {
    const payload = randomPayload(size);
    const copy = payload.slice();
    for (let offset = 0; offset < 8; offset++) {
      const backing = new Uint8Array(maskedFrameSpace(size) + 16).fill(0xa5);
      const target = backing.subarray(offset, offset + maskedFrameSpace(size));
      const frame = encodeMaskedFrameInto(target, Opcode.BINARY, payload);
      assert.equal(frame.buffer, backing.buffer, "built in place");
      assert.ok(
        frame.byteOffset >= offset && frame.byteOffset + frame.length <= offset + target.length,
      );
      const headerLength = frame.length - size;
      assert.equal((frame.byteOffset + headerLength) % 8, 0, "payload on an 8-byte boundary");
      assertSameBytes(payload, copy, "the payload is not touched");
      receiver.feed(frame.slice());
      const event = receiver.next();
      assert.ok(event?.type === "message", `${size} at ${offset}`);
      assertSameBytes(event.data, payload, `${size} at ${offset}`);
    }
  }
  // The same bytes as encodeFrame's, apart from the random key.
  const payload = randomPayload(3000);
  const [fresh] = encodeFrame(Opcode.TEXT, payload, { masked: true, fin: false, rsv1: true });
  const built = encodeMaskedFrameInto(
    new Uint8Array(maskedFrameSpace(3000)),
    Opcode.TEXT,
    payload,
    { fin: false, rsv1: true },
  );
  assert.deepEqual(built.subarray(0, 4), fresh.subarray(0, 4), "same header fields");
  assert.equal(built.length, fresh.length);
});

Deno.test("encodeMaskedFrameInto: a target too small, or bad fields, are EINVAL", () => {
  const payload = new Uint8Array(100);
  for (
    const bad of [
      () =>
        encodeMaskedFrameInto(new Uint8Array(maskedFrameSpace(100) - 1), Opcode.BINARY, payload),
      () => encodeMaskedFrameInto(new Uint8Array(400), Opcode.PING, new Uint8Array(126)),
      () => encodeMaskedFrameInto(new Uint8Array(400), Opcode.PING, payload, { rsv1: true }),
      () => encodeMaskedFrameInto(new Uint8Array(400), 3, payload),
    ]
  ) {
    assert.throws(bad, (e) => isDillError(e, "EINVAL"));
  }
});

Deno.test("takeWriteBuffer: only for writes the queue would not copy, back in the pool once written", () => {
  assert.ok(takeWriteBuffer(16 * 1024) === null, "copied into the coalescing buffer anyway");
  const buffer = takeWriteBuffer(20_000)!;
  assert.ok(buffer.length >= 20_000);
  const frame = buffer.subarray(3, 20_003);
  frame.fill(7);
  const q = new WriteQueue();
  q.append([new Uint8Array([1, 2])], null); // coalesced bytes before it stay before it
  q.append([frame], null, false, true);
  const head = q.next()!;
  assert.deepEqual([...head.bytes], [1, 2]);
  q.written();
  const segment = q.next()!;
  assert.ok(segment.bytes === frame, "queued as it is, not copied");
  assert.ok(segment.ownBuffer);
  assert.equal(q.bytes, 20_000);
  // Not written yet: the pool must not hand the buffer out again.
  const other = takeWriteBuffer(20_000)!;
  assert.ok(other.buffer !== buffer.buffer);
  q.written();
  assert.equal(q.bytes, 0);
  assert.ok(takeWriteBuffer(20_000)!.buffer === buffer.buffer, "written: back in the pool");
});

Deno.test("takeWriteBuffer: big buffers are pooled up to 4 MiB in all, near their size", () => {
  const size = (1 << 20) + 15; // a masked 1 MiB frame's space
  const taken = Array.from({ length: 5 }, () => takeWriteBuffer(size)!);
  for (const buffer of taken) assert.ok(buffer.length >= size && buffer.length % 65536 === 0);
  assert.ok(takeWriteBuffer(4 * 1024 * 1024 + 1) === null, "over 4 MiB: a fresh buffer");
  const q = new WriteQueue();
  for (const buffer of taken) q.append([buffer.subarray(0, size)], null, false, true);
  while (!q.empty) {
    q.next();
    q.written();
  }
  const small = takeWriteBuffer(100_000)!;
  assert.ok(!taken.some((b) => b.buffer === small.buffer), "no 1 MiB buffer for 100 KB");
  const again = Array.from({ length: 5 }, () => takeWriteBuffer(size)!);
  const reused = again.filter((b) => taken.some((t) => t.buffer === b.buffer)).length;
  assert.equal(reused, 3, "as many as fit in 4 MiB came back");
});

Deno.test("pooled client frames: 300 messages of 16 KiB to 3 MiB echo byte-exact, pipelined", async () => {
  const pair = await openPair("tcp");
  try {
    const [s, c] = await Promise.all([
      wsAttachServer(pair.b, WS_BINARY, now() + 5000),
      wsAttachClient(pair.a, WS_BINARY, "/", "localhost", now() + 5000),
    ]);
    const serving = (async () => {
      try {
        for (;;) {
          const m = await wsRecv(s.handle, now() + 10_000);
          await wsSend(s.handle, m.type, m.data, now() + 10_000);
        }
      } catch {
        // the client's close ends it
      } finally {
        hclose(s.handle);
      }
    })();
    const sent = Array.from(
      { length: 300 },
      (_, i) =>
        randomPayload(
          i % 10 === 9 ? 65_536 + ((i * 104_729) % 3_000_000) : 16 * 1024 + ((i * 7919) % 49_152),
        ),
    );
    const sending = (async () => {
      // Not awaiting each send: frames queue up while earlier ones are being written.
      const pending = sent.map((m) => msend(c.handle, m, now() + 10_000));
      await Promise.all(pending);
    })();
    for (let i = 0; i < sent.length; i++) {
      assertSameBytes(await mrecv(c.handle, now() + 10_000), sent[i], `message ${i}`);
    }
    await sending;
    await wsDone(c.handle, 1000, "", now() + 5000);
    hclose(c.handle);
    await serving;
  } finally {
    await pair.cleanup();
  }
});
