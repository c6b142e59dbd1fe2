/**
 * The `now()` clock (actors/time.ts): a clock like libdill's, not a stopwatch from
 * process start, so arithmetic on it always gives a valid past or future deadline.
 */

import assert from "node:assert/strict";
import {
  brecv,
  type Handle,
  hclose,
  ipcPair,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  wsAttachClient,
  wsAttachServer,
} from "../mod.ts";
import { rejectsWith } from "./helpers/transports.ts";

Deno.test("time: now() is large and never goes back", () => {
  // Anchored at the time origin (epoch ms), not at 0 when the process started.
  assert.ok(now() > 1e12, `now() = ${now()}`);
  assert.ok(Math.abs(now() - Date.now()) < 60_000, "now() is near the wall clock at start");
  let last = now();
  for (let i = 0; i < 10_000; i++) {
    const t = now();
    assert.ok(t >= last, `now() went back from ${last} to ${t}`);
    last = t;
  }
});

Deno.test("time: now() - 100000 is a past deadline: blocking calls fail ETIMEDOUT, not EINVAL", async () => {
  // This process started well under 100 s ago: on a clock from process start these
  // deadlines were negative numbers.
  for (const past of [now() - 100_000, now() - 1e9]) {
    const [a, b] = ipcPair();
    await rejectsWith(brecv(a, new Uint8Array(1), past), "ETIMEDOUT");
    hclose(a);
    hclose(b);

    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    await rejectsWith(tcpAccept(ls, past), "ETIMEDOUT");
    await rejectsWith(tcpConnect(tcpLocalAddr(ls), past), "ETIMEDOUT");
    hclose(ls);

    // Each attach on a pair of its own: a failed attach closes its stack, and the other
    // side would then see the peer gone (ECONNRESET) rather than its own deadline.
    for (
      const attach of [
        (h: Handle) => wsAttachServer(h, 0, past),
        (h: Handle) => wsAttachClient(h, 0, "/", "localhost", past),
      ]
    ) {
      const [mine, theirs] = ipcPair();
      await rejectsWith(attach(mine), "ETIMEDOUT");
      hclose(theirs);
    }
  }
});

Deno.test("time: a deadline built from now() waits until then", async () => {
  const [a, b] = ipcPair();
  const from = now();
  await rejectsWith(brecv(a, new Uint8Array(1), from + 50), "ETIMEDOUT");
  const waited = now() - from;
  assert.ok(waited >= 49, `timed out after ${waited} ms`);
  hclose(a);
  hclose(b);
});
