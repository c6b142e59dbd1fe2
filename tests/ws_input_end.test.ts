/**
 * The peer's input ends (FIN, or a reset) while frames it sent before are still held
 * back because the application is behind: those frames are not lost. Every message
 * is delivered in order, then the close the peer sent (or the 1006 of a connection
 * that ended without one).
 */

import assert from "node:assert/strict";
import {
  bsend,
  hclose,
  ipcDone,
  ipcPair,
  mrecv,
  now,
  WS_BINARY,
  WS_NOHTTP,
  wsAttachServer,
  wsStatus,
} from "../mod.ts";
import { closeBody, frame } from "./helpers/raw_peer/frames.ts";
import { delay, rejectsWith } from "./helpers/transports.ts";

const soon = (ms = 5000) => now() + ms;

/** 20 masked binary frames (message i holds i + 1 bytes of value i), as one burst. */
function burst(): Uint8Array[] {
  return Array.from(
    { length: 20 },
    (_, i) => frame({ opcode: 2, payload: new Uint8Array(i + 1).fill(i), mask: true }),
  );
}

async function readSlowly(ws: Parameters<typeof mrecv>[0]): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const m = await mrecv(ws, soon());
    assert.deepEqual(m, new Uint8Array(i + 1).fill(i), `message ${i}`);
    await delay(2);
  }
}

Deno.test("ws input end: a burst, a close frame and FIN while the application is behind: nothing lost", async () => {
  const [a, b] = ipcPair();
  const { handle: ws } = await wsAttachServer(a, WS_BINARY | WS_NOHTTP, soon(), {
    maxQueuedMessages: 2,
  });
  try {
    for (const f of burst()) await bsend(b, f, soon());
    await bsend(b, frame({ opcode: 8, payload: closeBody(1000, "bye"), mask: true }), soon());
    await ipcDone(b, soon());
    await delay(20); // the FIN arrives while 18 messages and the close wait behind 2
    await readSlowly(ws);
    await rejectsWith(mrecv(ws, soon()), "EPIPE");
    assert.deepEqual(await wsStatus(ws), { status: 1000, reason: "bye" });
  } finally {
    hclose(ws);
    hclose(b);
  }
});

Deno.test("ws input end: a burst then FIN without a close frame: every message, then 1006", async () => {
  const [a, b] = ipcPair();
  const { handle: ws } = await wsAttachServer(a, WS_BINARY | WS_NOHTTP, soon(), {
    maxQueuedMessages: 2,
  });
  try {
    for (const f of burst()) await bsend(b, f, soon());
    await ipcDone(b, soon());
    await delay(20);
    await readSlowly(ws);
    await rejectsWith(mrecv(ws, soon()), "ECONNRESET");
    assert.deepEqual(await wsStatus(ws), { status: 1006, reason: "" });
  } finally {
    hclose(ws);
    hclose(b);
  }
});
