/**
 * The bytestream's head receive (`brecvHead`, under `httpRecvRequest`): what has arrived,
 * never a byte past the first blank line, in order with other receives, bounded by `max`
 * and by its deadline.
 */

import assert from "node:assert/strict";
import { brecv, bsend, hclose, ipcPair, now } from "../mod.ts";
import { brecvHead } from "../actors/bytestream.ts";
import { blankLineStep } from "../protocol/http11.ts";
import { bytes } from "./helpers/raw_peer/bytes.ts";
import { rejectsWith } from "./helpers/transports.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const soon = () => now() + 2000;
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

Deno.test("brecvHead: takes what has arrived, up to a blank line split between writes, and no further", async () => {
  const [a, b] = ipcPair();
  try {
    await bsend(a, bytes("GET / HTTP/1.1\r\nA: 1\r\n\r"), soon());
    await tick();
    const first = await brecvHead(b, 100, 0, soon());
    assert.equal(text(first), "GET / HTTP/1.1\r\nA: 1\r\n\r", "all there is, no blank line yet");
    let matched = 0;
    for (const x of first) matched = blankLineStep(matched, x);
    assert.equal(matched, 3);
    await bsend(a, bytes("\nNEXT"), soon());
    assert.equal(text(await brecvHead(b, 100, matched, soon())), "\n", "the blank line ends here");
    assert.equal(text(await brecv(b, new Uint8Array(4), soon())), "NEXT");
  } finally {
    hclose(a);
    hclose(b);
  }
});

Deno.test("brecvHead: at most max bytes; after a pending brecv, in order; EOF and the deadline fail it", async () => {
  const [a, b] = ipcPair();
  try {
    const earlier = brecv(b, new Uint8Array(3), soon());
    const head = brecvHead(b, 5, 0, soon());
    await bsend(a, bytes("abcdefghij\r\n\r\n"), soon());
    assert.equal(text(await earlier), "abc");
    assert.equal(text(await head), "defgh", "max bytes when no blank line is within them");
    assert.equal(text(await brecvHead(b, 100, 0, soon())), "ij\r\n\r\n");
    await rejectsWith(brecvHead(b, 100, 0, now() + 50), "ETIMEDOUT");
  } finally {
    hclose(a);
    hclose(b);
  }
  const [c, d] = ipcPair();
  try {
    const pending = brecvHead(d, 100, 0, soon());
    hclose(c);
    await rejectsWith(pending, "EPIPE");
  } finally {
    hclose(d);
  }
});
