/**
 * Deadlines after the event loop was held (a long computation, a GC pause): a timer that
 * fires late runs before the runtime reads what arrived meanwhile, so a call whose bytes
 * came in before its deadline failed with `ETIMEDOUT` (and, by libdill's rule, the
 * socket's receiving ended with it). The deadline scheduler now waits a moment for those
 * reads after a late timer. The peer runs in a Worker, on an event loop of its own, so
 * that it sends while the test's loop is blocked.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  hclose,
  mrecv,
  msend,
  now,
  tcpConnect,
  WS_BINARY,
  wsAttachClient,
} from "../mod.ts";
import { rejectsWith } from "./helpers/transports.ts";

const T = 5000;
/** The peer answers this long (in 10 ms units) after each request... */
const ANSWER_AFTER = 1;
/** ...well inside the deadline... */
const DEADLINE_MS = 50;
/** ...while the test holds its event loop this long. */
const STALL_MS = 200;

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the application holds the event loop
  }
}

/** Runs `body` against a delayed-echo peer in a Worker (see the helper). */
async function withPeer(
  mode: "tcp" | "ws",
  body: (port: number) => Promise<void>,
): Promise<void> {
  const worker = new Worker(new URL("./helpers/delayed_echo_worker.ts", import.meta.url), {
    type: "module",
  });
  const messages: unknown[] = [];
  let wake = () => {};
  worker.onmessage = (e) => {
    messages.push(e.data);
    wake();
  };
  const next = async (): Promise<unknown> => {
    while (messages.length === 0) await new Promise<void>((r) => (wake = r));
    return messages.shift();
  };
  try {
    worker.postMessage(mode);
    const { port } = await next() as { port: number };
    await body(port);
    assert.equal(await next(), "done");
  } finally {
    worker.terminate();
  }
}

Deno.test("stall: a brecv whose bytes arrived before its deadline succeeds though the loop was held past it", async () => {
  await withPeer("tcp", async (port) => {
    const s = await tcpConnect({ port }, now() + T);
    try {
      for (let i = 0; i < 5; i++) {
        await bsend(s, new Uint8Array([ANSWER_AFTER]), now() + T);
        const received = brecv(s, new Uint8Array(4), now() + DEADLINE_MS);
        block(STALL_MS);
        assert.deepEqual([...await received], [0x61, 0x62, 0x63, 0x64], `round ${i}`);
      }
      // The deadline still holds: an answer that comes after the stall and after the
      // deadline is a timeout, as ever.
      await bsend(s, new Uint8Array([30]), now() + T);
      const late = brecv(s, new Uint8Array(4), now() + DEADLINE_MS);
      block(STALL_MS / 2);
      await rejectsWith(late, "ETIMEDOUT");
    } finally {
      hclose(s);
    }
  });
});

Deno.test("stall: an mrecv whose message arrived before its deadline succeeds though the loop was held past it", async () => {
  await withPeer("ws", async (port) => {
    const tcp = await tcpConnect({ port }, now() + T);
    const { handle: ws } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", now() + T);
    try {
      for (let i = 0; i < 5; i++) {
        await msend(ws, new Uint8Array([ANSWER_AFTER, i]), now() + T);
        const received = mrecv(ws, now() + DEADLINE_MS);
        block(STALL_MS);
        assert.deepEqual([...await received], [ANSWER_AFTER, i], `round ${i}`);
      }
    } finally {
      hclose(ws);
    }
  });
});

Deno.test("stall: keepalive pongs that arrive while the loop is held keep the peer", async () => {
  // The timer that judges the pong fires late, after the stall; the pong is in the socket
  // by then, unread. (Without the wait before the verdict, every round failed the peer.)
  await withPeer("ws", async (port) => {
    const tcp = await tcpConnect({ port }, now() + T);
    const { handle: ws } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", now() + T, {
      pingInterval: 20,
      pongTimeout: 100,
    });
    try {
      for (let i = 0; i < 8; i++) {
        // Wake around when the ping goes, then hold the loop past pongTimeout.
        await new Promise((r) => setTimeout(r, 21 + (i % 4)));
        block(STALL_MS);
        await msend(ws, new Uint8Array([0, i]), now() + T);
        assert.deepEqual([...await mrecv(ws, now() + T)], [0, i], `round ${i}`);
      }
    } finally {
      hclose(ws);
    }
  });
});

Deno.test("stall: a message that arrived while the loop was held past idleTimeout keeps the connection", async () => {
  await withPeer("ws", async (port) => {
    const tcp = await tcpConnect({ port }, now() + T);
    const { handle: ws } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", now() + T, {
      idleTimeout: 50,
    });
    try {
      for (let i = 0; i < 5; i++) {
        // The echo comes 10 ms in; the idle timeout passes during the stall.
        await msend(ws, new Uint8Array([ANSWER_AFTER, i]), now() + T);
        block(STALL_MS);
        assert.deepEqual([...await mrecv(ws, now() + T)], [ANSWER_AFTER, i], `round ${i}`);
      }
    } finally {
      hclose(ws);
    }
  });
});
