/**
 * Handles (actors/handle.ts): hclose, EBADF for closed and foreign values, ECANCELED
 * for pending calls, `using` / `await using`, and ENOTSUP across socket kinds.
 */

import assert from "node:assert/strict";
import {
  brecv,
  brecvl,
  bsend,
  bsendl,
  type Handle,
  hclose,
  ipcPair,
  now,
  tcpAccept,
  tcpClose,
  tcpListen,
} from "../mod.ts";
import { isSettled, rejectsWith, throwsWith } from "./helpers/transports.ts";

const one = () => new Uint8Array(1);

/** Every bytestream call on `h`, each started afresh. */
function bytestreamCalls(h: Handle): Record<string, () => Promise<unknown>> {
  return {
    bsend: () => bsend(h, one(), -1),
    brecv: () => brecv(h, one(), -1),
    bsendl: () => bsendl(h, [one()], -1),
    brecvl: () => brecvl(h, [one()], -1),
  };
}

Deno.test("handle: after hclose every call fails EBADF, and hclose again throws EBADF", async () => {
  const [a, b] = ipcPair();
  hclose(a);
  for (const [op, run] of Object.entries(bytestreamCalls(a))) {
    const err = await rejectsWith(run(), "EBADF");
    assert.match(err.message, new RegExp(op));
  }
  await rejectsWith(tcpClose(a, -1), "EBADF");
  throwsWith(() => hclose(a), "EBADF");
  hclose(b);
});

Deno.test("handle: hclose fails the calls pending on it with ECANCELED", async () => {
  const [a, b] = ipcPair({ writeHighWater: 1024, pipeCapacity: 1024, readHighWater: 1024 });
  const pendingRecv = brecv(a, new Uint8Array(10), -1);
  const pendingRecvl = brecvl(a, [new Uint8Array(3)], now() + 60_000);
  // Enough that the send must wait: the peer reads nothing past its small limits.
  const pendingSend = bsend(a, new Uint8Array(1 << 20), -1);
  assert.equal(await isSettled(pendingRecv), false);
  assert.equal(await isSettled(pendingSend), false);
  hclose(a);
  await rejectsWith(pendingRecv, "ECANCELED");
  await rejectsWith(pendingRecvl, "ECANCELED");
  await rejectsWith(pendingSend, "ECANCELED");
  hclose(b);
});

Deno.test("handle: hclose of one end does not invalidate the other end's handle", async () => {
  const [a, b] = ipcPair();
  hclose(a);
  // b is still a valid handle: its receive reports the peer's close, not EBADF.
  await rejectsWith(brecv(b, one(), now() + 1000), "EPIPE");
  hclose(b);
});

Deno.test("handle: values that are not handles fail EBADF, never TypeError", async () => {
  const notHandles: unknown[] = [undefined, null, 0, 42, "Handle#1", {}, [], Symbol("h"), () => 1];
  for (const value of notHandles) {
    const h = value as Handle;
    for (const run of Object.values(bytestreamCalls(h))) await rejectsWith(run(), "EBADF");
    throwsWith(() => hclose(h), "EBADF");
    await rejectsWith(tcpAccept(h, -1), "EBADF");
    await rejectsWith(tcpClose(h, -1), "EBADF");
  }
});

Deno.test({
  name: "handle: an object without a prototype is EBADF too, not a TypeError",
  fn: async () => {
    const h = Object.create(null) as Handle;
    await rejectsWith(bsend(h, one(), -1), "EBADF");
    throwsWith(() => hclose(h), "EBADF");
  },
});

Deno.test("handle: `using` closes the handle at the end of the block", async () => {
  const [a, b] = ipcPair();
  let inner: Handle;
  {
    using h = a;
    inner = h;
    await bsend(h, one(), -1);
  }
  await rejectsWith(bsend(inner, one(), -1), "EBADF");
  // The peer saw the close: the byte sent first, then a clean end.
  await brecv(b, one(), now() + 1000);
  await rejectsWith(brecv(b, one(), now() + 1000), "EPIPE");
  hclose(b);
});

Deno.test("handle: `await using` closes the handle, and is harmless on a closed one", async () => {
  const [a, b] = ipcPair();
  {
    await using h = a;
    await bsend(h, one(), -1);
  }
  await rejectsWith(brecv(a, one(), -1), "EBADF");
  {
    await using h = b;
    hclose(h); // closed by hand: leaving the block must not throw
  }
  await rejectsWith(brecv(b, one(), -1), "EBADF");
});

Deno.test("handle: bytestream calls on a listener fail ENOTSUP, and the listener survives", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    for (const [op, run] of Object.entries(bytestreamCalls(ls))) {
      const err = await rejectsWith(run(), "ENOTSUP");
      assert.match(err.message, new RegExp(op));
    }
    // Still a working listener: an accept that cannot succeed at once times out.
    await rejectsWith(tcpAccept(ls, 0), "ETIMEDOUT");
  } finally {
    hclose(ls);
  }
});

Deno.test("handle: tcpAccept on a bytestream fails ENOTSUP", async () => {
  const [a, b] = ipcPair();
  await rejectsWith(tcpAccept(a, -1), "ENOTSUP");
  hclose(a);
  hclose(b);
});

Deno.test("handle: hclose of a listener fails its pending tcpAccept with ECANCELED", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const pending = tcpAccept(ls, -1);
  assert.equal(await isSettled(pending), false);
  hclose(ls);
  await rejectsWith(pending, "ECANCELED");
  await rejectsWith(tcpAccept(ls, -1), "EBADF");
});
