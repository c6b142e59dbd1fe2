/**
 * Lifecycle and state edges: calls made in the "wrong" state or racing each other
 * (closing, detaching, the peer's close) must keep what the docs promise: a send that
 * resolved was delivered, a close frame is the last frame, a detached bytestream holds
 * no bytes of the layer that was removed, and nothing hangs or leaks.
 */

import assert from "node:assert/strict";
import {
  brecv,
  type Handle,
  hclose,
  ipcPair,
  mrecv,
  msend,
  now,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  wsDetach,
  wsDone,
  wsStatus,
} from "../mod.ts";
import { isDillError } from "../protocol/errors.ts";
import { closeQuietly, nohttpWsPair } from "./helpers/transports.ts";

/** How a call ended: `"ok"` or its error code. */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(() => "ok", (e) => isDillError(e) ? e.code : `not a DillError: ${String(e)}`);
}

/** The length of the next message, or the receive's error code. */
function nextMessage(h: Handle): Promise<number | string> {
  return mrecv(h, now() + 3000).then((m) => m.length, (e) => isDillError(e) ? e.code : String(e));
}

/** Either the send went out before the close frame, or it failed and was not written. */
function assertDeliveredIfResolved(sent: string, atPeer: number | string): void {
  if (sent === "ok") {
    assert.equal(atPeer, SECOND.length, "a send that resolved was not delivered");
  } else {
    assert.equal(atPeer, "EPIPE");
  }
}

// A pipe of 64 KiB with a write queue of 64 KiB: a 200 KB send fills it, so a second
// send waits for room (a sender waiting in the bytestream beneath the WebSocket).
const PIPE = 64 * 1024;
const FIRST = new Uint8Array(200_000).fill(7);
const SECOND = new Uint8Array(100_000).fill(9);

Deno.test("lifecycle: wsDetach with a send waiting for room: the close frame does not overtake it, and no frame lands on the detached bytestream", async () => {
  const [s, c] = await nohttpWsPair({}, PIPE);
  let rawS: Handle | null = null, rawC: Handle | null = null;
  try {
    const first = outcome(msend(c, FIRST, now() + 3000));
    const second = outcome(msend(c, SECOND, now() + 3000));
    // Detach while the second send still waits: its frame is queued before the close.
    const detachedC = wsDetach(c, 1000, "", now() + 3000);
    assert.equal(await nextMessage(s), FIRST.length);
    const secondAtPeer = await nextMessage(s);
    rawS = await wsDetach(s, 1000, "", now() + 3000);
    rawC = await detachedC;
    assert.equal(await first, "ok");
    assertDeliveredIfResolved(await second, secondAtPeer);
    // The peer's bytestream, handed back after the closing handshake, must be clean.
    const stray = await outcome(brecv(rawS, new Uint8Array(1), now() + 200));
    assert.equal(stray, "ETIMEDOUT", "bytes of a WebSocket frame arrived after the close frame");
  } finally {
    for (const h of [s, c, rawS, rawC]) if (h) closeQuietly(h);
  }
});

Deno.test("lifecycle: the reply to the peer's close does not overtake a send waiting for room: a send that resolved was delivered", async () => {
  const [s, c] = await nohttpWsPair({}, PIPE);
  try {
    const first = outcome(msend(s, FIRST, now() + 3000));
    const second = outcome(msend(s, SECOND, now() + 3000));
    // The client closes while the server's second send waits: the server's reply close
    // goes out on its own, and must come after the frame already handed to it.
    await wsDone(c, 1000, "", now() + 3000);
    assert.equal(await nextMessage(c), FIRST.length);
    const secondAtPeer = await nextMessage(c);
    assert.equal(await first, "ok");
    assertDeliveredIfResolved(await second, secondAtPeer);
  } finally {
    hclose(s);
    hclose(c);
  }
});

// The close frame of a wsDone made while one send is being written and (a) another waits
// for room in the bytestream, or (b) the bytestream's queue has room, so it is queued there.
for (
  const [room, writeHighWater] of [["waiting for room", PIPE], ["queued", 1024 * 1024]] as const
) {
  Deno.test(`lifecycle: hclose with a send being written: a close frame ${room} behind it is still written`, async () => {
    // The server takes one message and then stops reading, so the client's sends back up.
    const [a, b] = ipcPair({ pipeCapacity: PIPE, writeHighWater });
    const [{ handle: s }, { handle: c }] = await Promise.all([
      wsAttachServer(a, WS_NOHTTP, now() + 5000, { maxQueuedMessages: 1 }),
      wsAttachClient(b, WS_NOHTTP, "", "", now() + 5000),
    ]);
    try {
      const first = outcome(msend(c, FIRST, -1)); // taken by the server (its one message)
      const second = outcome(msend(c, SECOND, -1)); // partly written: the pipe is full
      const third = outcome(msend(c, new Uint8Array(10).fill(3), -1)); // waits or is queued
      // Once the first is written, the second's write has started (in the same step).
      assert.equal(await first, "ok");
      // The close frame goes behind the third send; then the application gives up.
      const done = outcome(wsDone(c, 4000, "bye", -1));
      hclose(c);
      assert.equal(await third, "ECANCELED", "the third send fails, unwritten");
      assert.equal(await done, "ECANCELED");
      assert.equal(await nextMessage(s), FIRST.length);
      assert.equal(await nextMessage(s), SECOND.length, "a send whose bytes were going out ends");
      assert.equal(await nextMessage(s), "EPIPE", "then the close frame, not the third message");
      assert.deepEqual(wsStatus(s), { status: 4000, reason: "bye" }, "a close frame, not a cut");
      assert.equal(await second, "ECANCELED", "pending at hclose, as every call is");
    } finally {
      hclose(s);
    }
  });
}
