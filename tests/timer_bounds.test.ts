/**
 * Durations and deadlines beyond what a timer can wait (`MAX_TIMER_MS`, 2^31 - 1 ms,
 * about 24.8 days): `setTimeout` fires after 1 ms when asked for more. Duration options
 * beyond it are `EINVAL` (they would fire at once); a deadline beyond it is waited for
 * as a deadline, not failed after 1 ms. (The deadline scheduler's own case is in
 * deadline_scheduler.test.ts.)
 */

import assert from "node:assert/strict";
import { hclose, ipcPair, mrecv, msend, now, WS_NOHTTP, wsAttachServer, wsStream } from "../mod.ts";
import { connectWithin } from "../actors/sockets.ts";
import { MAX_TIMER_MS } from "../actors/time.ts";
import { nohttpWsPair, rejectsWith, throwsWith } from "./helpers/transports.ts";

const DAY_MS = 24 * 3600 * 1000;

Deno.test("timer bounds: a connect with a deadline 40 days away is not failed by an overflowing timer", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const accepted = listener.accept().then((conn) => conn.close(), () => {});
  // A connect that takes 30 ms, as one over a real network may.
  const slow = async (signal: AbortSignal) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return await Deno.connect({ hostname: "127.0.0.1", port, signal });
  };
  try {
    const conn = await connectWithin("tcpConnect", now() + 40 * DAY_MS, slow);
    conn.close();
    await accepted;
  } finally {
    listener.close(); // ends a pending accept if the connect failed
    await accepted;
  }
});

const DURATIONS = [
  "failGrace",
  "halfCloseTimeout",
  "pingInterval",
  "pongTimeout",
  "idleTimeout",
  "closeGrace",
] as const;

Deno.test("timer bounds: WebSocket duration options beyond MAX_TIMER_MS are EINVAL", async () => {
  for (const name of DURATIONS) {
    const [a, b] = ipcPair();
    try {
      const e = await rejectsWith(
        wsAttachServer(a, WS_NOHTTP, now() + 1000, { [name]: MAX_TIMER_MS + 1 }),
        "EINVAL",
      );
      assert.match(e.message, new RegExp(`${name} must be at most ${MAX_TIMER_MS}`));
    } finally {
      hclose(b);
    }
  }
});

Deno.test("timer bounds: every duration option at MAX_TIMER_MS is taken, and the connection works", async () => {
  const options = Object.fromEntries(DURATIONS.map((name) => [name, MAX_TIMER_MS]));
  const [s, c] = await nohttpWsPair(options);
  try {
    await msend(c, new Uint8Array([1, 2, 3]), now() + 1000);
    assert.deepEqual(await mrecv(s, now() + 1000), new Uint8Array([1, 2, 3]));
    // With the keepalive and idle timers armed for weeks, nothing fires meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await msend(s, new Uint8Array([4]), now() + 1000);
    assert.deepEqual(await mrecv(c, now() + 1000), new Uint8Array([4]));
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("timer bounds: wsStream's closeTimeout beyond MAX_TIMER_MS is EINVAL", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    const e = throwsWith(() => wsStream(s, { closeTimeout: MAX_TIMER_MS + 1 }), "EINVAL");
    assert.match(e.message, /closeTimeout must be at most/);
  } finally {
    hclose(s);
    hclose(c);
  }
});
