/**
 * Bounded buffering and large transfers: a reader that stops reading stops the
 * sender (memory does not grow), and 64 MiB go through byte-exact.
 */

import assert from "node:assert/strict";
import { brecv, bsend, type Handle, now } from "../mod.ts";
import {
  assertWords,
  fillWords,
  isSettled,
  KINDS,
  rejectsWith,
  withPair,
} from "./helpers/transports.ts";

const MIB = 1 << 20;
const TOTAL = 64 * MIB;
const T = 10_000;

/**
 * Sends 1 MiB chunks with a short deadline each while `b` reads nothing; returns how
 * many MiB were accepted before a send timed out (Infinity if all 64 went through).
 */
async function sendUntilBlocked(a: Handle): Promise<number> {
  const chunk = new Uint8Array(MIB);
  for (let i = 0; i < TOTAL / MIB; i++) {
    fillWords(chunk, i * (MIB / 4));
    try {
      await bsend(a, chunk, now() + 200);
    } catch (e) {
      await rejectsWith(Promise.reject(e), "ETIMEDOUT");
      return i;
    }
  }
  return Infinity;
}

for (const kind of KINDS) {
  Deno.test(`transfer/${kind}: a reader that reads nothing makes the 64 MiB sender wait`, async () => {
    await withPair(kind, async (a, b) => {
      const accepted = await sendUntilBlocked(a);
      assert.ok(accepted < 64, "64 MiB were absorbed although nobody read them");
      // Pipe and stream buffers hold well under 1 MiB; kernel buffers (TCP, Unix) a few MiB.
      const bound = kind === "pipe" ? 2 : 48;
      assert.ok(accepted <= bound, `${accepted} MiB were buffered for a reader that reads nothing`);
      // What was accepted is intact and in order when the reader catches up.
      const buf = new Uint8Array(MIB);
      for (let i = 0; i < accepted; i++) {
        await brecv(b, buf, now() + T);
        assertWords(buf, i * (MIB / 4));
      }
    });
  });
}

/**
 * Sends `TOTAL` bytes of counting words from `a` in 1 MiB sends and receives them on `b`
 * with receive sizes that do not line up with the sends; checks every word.
 */
async function transferExact(a: Handle, b: Handle): Promise<void> {
  const sender = (async () => {
    const chunk = new Uint8Array(MIB);
    for (let off = 0; off < TOTAL; off += MIB) {
      fillWords(chunk, off / 4);
      await bsend(a, chunk, now() + T);
    }
  })();
  const sizes = [3 * MIB + 4, 64 * 1024, 4, 700_000, 2 * MIB]; // all multiples of 4
  const bufs = sizes.map((n) => new Uint8Array(n));
  let got = 0;
  for (let i = 0; got < TOTAL; i++) {
    let buf = bufs[i % bufs.length];
    if (buf.length > TOTAL - got) buf = new Uint8Array(TOTAL - got);
    await brecv(b, buf, now() + T);
    assertWords(buf, got / 4);
    got += buf.length;
  }
  await sender;
  assert.equal(got, TOTAL);
  // Nothing extra was delivered.
  const extra = brecv(b, new Uint8Array(1), 0);
  assert.equal(await isSettled(extra), true);
  await rejectsWith(extra, "ETIMEDOUT");
}

for (const kind of KINDS) {
  Deno.test(`transfer/${kind}: 64 MiB arrive byte-exact`, async () => {
    const start = now();
    await withPair(kind, (a, b) => transferExact(a, b));
    const ms = now() - start;
    assert.ok(ms < 5000, `64 MiB took ${Math.round(ms)} ms`);
  });
}

Deno.test("transfer/tcp: 64 MiB both ways at once arrive byte-exact", async () => {
  await withPair("tcp", async (a, b) => {
    await Promise.all([transferExact(a, b), transferExact(b, a)]);
  });
});
