/**
 * Buffered input in the bytestream actor is consumed in linear time (issue 8 item 2).
 * A peer whose bytes arrive one per read (tiny TCP segments) makes the actor queue one
 * chunk per byte, up to its read high-water mark; taking them off the front with
 * `Array.prototype.shift` costs a move of the whole queue per chunk once it is longer
 * than V8's in-place trimming allows, so draining n chunks took time growing with n².
 * Measured by growth: one receive of 8n queued chunks against eight of n.
 */
import assert from "node:assert/strict";
import { brecv, hclose } from "../mod.ts";
import { streamHandle } from "../actors/sockets.ts";
import type { Transport } from "../actors/transport.ts";

/**
 * A transport whose peer sends `total` bytes one read at a time (then goes quiet):
 * `arrived` resolves once every byte has been read.
 */
function oneBytePerRead(total: number): { transport: Transport; arrived: Promise<void> } {
  let sent = 0;
  let closed = false;
  const { promise: arrived, resolve } = Promise.withResolvers<void>();
  let quiet: ((n: number | null) => void) | null = null;
  const transport: Transport = {
    read(buf: Uint8Array): Promise<number | null> {
      if (closed) return Promise.reject(new Error("closed"));
      if (sent === total) {
        resolve();
        return new Promise((r) => quiet = r);
      }
      buf[0] = sent++ & 0xff;
      return Promise.resolve(1);
    },
    write: (buf: Uint8Array) => Promise.resolve(buf.length),
    closeWrite: () => Promise.resolve(),
    close() {
      closed = true;
      quiet?.(null);
    },
  };
  return { transport, arrived };
}

/** Milliseconds one `brecv` takes to take `n` one-byte chunks queued in the actor. */
async function drainTime(n: number): Promise<number> {
  const { transport, arrived } = oneBytePerRead(n);
  const h = streamHandle(transport, "test", { readHighWater: 1 << 20 });
  try {
    await arrived;
    await new Promise((r) => setTimeout(r, 0)); // let the last read be queued
    const buf = new Uint8Array(n);
    const start = performance.now();
    await brecv(h, buf, -1);
    const ms = performance.now() - start;
    assert.equal(buf[n - 1], (n - 1) & 0xff);
    return ms;
  } finally {
    hclose(h);
  }
}

Deno.test("actors linear: a receive drains many one-byte chunks in linear time", async () => {
  const n = 4096;
  let best = Infinity;
  for (let attempt = 0; attempt < 3 && best >= 3; attempt++) {
    let big = Infinity;
    let small = Infinity;
    for (let sample = 0; sample < 3; sample++) {
      big = Math.min(big, await drainTime(8 * n));
      let eight = 0;
      for (let i = 0; i < 8; i++) eight += await drainTime(n);
      small = Math.min(small, eight);
    }
    best = Math.min(best, big / small);
  }
  assert.ok(
    best < 3,
    `draining 8x the chunks took ${best.toFixed(1)}x the time of 8 drains (linear ~1x)`,
  );
});
