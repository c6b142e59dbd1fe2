/**
 * `sendBuffer` (a `StreamOptions` field): a send completes once queued while the queue
 * fits in the buffer, instead of once written. What must still hold: nothing a
 * completed send carried is lost by a close that follows (on every stack, TLS and
 * WebSocket on top included, with a real peer), the buffer bounds what is held,
 * sends complete in order, a write that fails later fails the next call, and bad
 * values are refused before anything is opened.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  ipcPair,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  tlsAttachClient,
  tlsAttachServer,
  WS_BINARY,
  wsAttachClient,
  wsAttachServer,
} from "../mod.ts";
import {
  closeQuietly,
  delay,
  type Kind,
  KINDS,
  openPair,
  type PairSetup,
  patternBytes,
  rejectsWith,
  rejectsWithOneOf,
  settlesWithin,
  within,
  withPair,
} from "./helpers/transports.ts";
import { CLIENT, SERVER } from "./helpers/tls_fixtures.ts";

const soon = (ms = 5000) => now() + ms;
const BUFFERED = { sendBuffer: 64 * 1024 };
/** A pipe of 1 KiB each way whose ends read ahead 1 KiB at most: 2 KiB fill it. */
const SMALL_PIPE: PairSetup = { pipeCapacity: 1024, a: { readHighWater: 1024 } };
const SMALL_PIPE_BUFFERED: PairSetup = {
  pipeCapacity: 1024,
  a: { readHighWater: 1024, sendBuffer: 4096 },
};

Deno.test("send-buffer/pipe: a send completes once queued while the peer reads nothing", () =>
  withPair("pipe", async (a, b) => {
    // 2 KiB fill the pipe (1 KiB) and what the peer's stream reads ahead (1 KiB).
    await bsend(a, patternBytes(0, 2048), soon());
    // The pipe is full and nobody reads: without a send buffer this would wait.
    await bsend(a, patternBytes(2048, 2048), soon(500));
    // 2 KiB are held; 4 KiB more do not fit in the buffer: this one waits for its write.
    await rejectsWith(bsend(a, patternBytes(4096, 4096), now() + 100), "ETIMEDOUT");
    const got = await brecv(b, new Uint8Array(4096), soon());
    assert.deepEqual(got, patternBytes(0, 4096));
  }, SMALL_PIPE_BUFFERED));

Deno.test("send-buffer/pipe: without the option, the same send waits for its write", () =>
  withPair("pipe", async (a) => {
    await bsend(a, patternBytes(0, 2048), soon());
    await rejectsWith(bsend(a, patternBytes(2048, 2048), now() + 100), "ETIMEDOUT");
  }, SMALL_PIPE));

Deno.test("send-buffer/pipe: a small send never completes before a larger one queued ahead of it", () =>
  withPair("pipe", async (a, b) => {
    await bsend(a, patternBytes(0, 2048), soon());
    const order: string[] = [];
    const big = bsend(a, patternBytes(2048, 8192), soon()).then(() => order.push("big"));
    const small = bsend(a, patternBytes(10_240, 10), soon()).then(() => order.push("small"));
    // The big one does not fit the buffer and waits; the small one waits behind it.
    assert.equal(await settlesWithin(small, 100), false);
    const got = await brecv(b, new Uint8Array(10_250), soon());
    await Promise.all([big, small]);
    assert.deepEqual(order, ["big", "small"]);
    assert.deepEqual(got, patternBytes(0, 10_250));
  }, SMALL_PIPE_BUFFERED));

Deno.test("send-buffer/pipe: a write that fails after its send completed fails the next call", () =>
  withPair("pipe", async (a, b) => {
    await bsend(a, patternBytes(0, 2048), soon());
    await bsend(a, patternBytes(2048, 100), soon()); // completed, waiting in the queue
    hclose(b); // the peer goes away: the queued bytes can never be written
    let failure: unknown = null;
    for (let i = 0; i < 20 && failure === null; i++) {
      await bsend(a, patternBytes(0, 10), soon()).catch((e) => failure = e);
      await delay(5); // the failed write is reported through the event loop
    }
    assert.ok(failure !== null, "no later send failed");
    await rejectsWithOneOf(bsend(a, patternBytes(0, 10), soon()), ["EPIPE", "ECONNRESET"]);
  }, SMALL_PIPE_BUFFERED));

Deno.test("send-buffer: bad values are refused with EINVAL before anything is opened", async () => {
  for (const sendBuffer of [-1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => ipcPair({ sendBuffer }), { code: "EINVAL" });
    await rejectsWith(tcpConnect({ port: 1 }, soon(), { sendBuffer }), "EINVAL");
  }
  assert.throws(() => ipcPair({ writeHighWater: 0 }), { code: "EINVAL" });
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    // Refused at once, without waiting for (or taking) a connection.
    await rejectsWith(tcpAccept(ls, -1, { sendBuffer: -5 }), "EINVAL");
  } finally {
    hclose(ls);
  }
  const [a, b] = ipcPair();
  try {
    await rejectsWith(tlsAttachServer(a, SERVER, soon(), { sendBuffer: -1 }), "EINVAL");
    // The socket was not taken: it still works.
    await bsend(a, new Uint8Array([7]), soon());
    assert.deepEqual(await brecv(b, new Uint8Array(1), soon()), new Uint8Array([7]));
  } finally {
    hclose(a);
    hclose(b);
  }
});

/**
 * Runs `body` on a pair over `kind` with BUFFERED on every layer, under TLS too when
 * `layers` is "tls"; `s` is the serving end. `body` may replace `s` and `c` with what it
 * stacks on them: the ends there at the end are closed, then the pair.
 */
async function withBufferedStack(
  kind: Kind,
  layers: "plain" | "tls",
  body: (ends: { s: Handle; c: Handle }) => Promise<void>,
): Promise<void> {
  const pair = await openPair(kind, { b: BUFFERED, a: BUFFERED, pipeCapacity: 8192 });
  const ends = { s: pair.b, c: pair.a };
  try {
    if (layers === "tls") {
      [ends.s, ends.c] = await Promise.all([
        tlsAttachServer(ends.s, SERVER, soon(), BUFFERED),
        tlsAttachClient(ends.c, CLIENT, soon(), BUFFERED),
      ]);
    }
    await body(ends);
  } finally {
    closeQuietly(ends.s);
    closeQuietly(ends.c);
    await pair.cleanup();
  }
}

for (const kind of KINDS) {
  for (const layers of ["plain", "tls"] as const) {
    const name = layers === "plain" ? kind : `tls over ${kind}`;

    Deno.test(`send-buffer/${name}: awaited sends then hclose deliver every byte in order`, () =>
      withBufferedStack(kind, layers, async ({ s, c }) => {
        const sizes = [1, 100, 5000, 20_000, 70_000, 3, 64];
        const total = 20 * sizes.reduce((x, y) => x + y);
        // The peer reads all along (a stack holds less than this in its buffers).
        const receiving = within(brecv(c, new Uint8Array(total), soon()), 10_000, "brecv");
        let offset = 0;
        for (let round = 0; round < 20; round++) {
          for (const size of sizes) {
            await bsend(s, patternBytes(offset, size), soon());
            offset += size;
          }
        }
        hclose(s);
        assert.deepEqual(await receiving, patternBytes(0, total));
      }));

    Deno.test(`send-buffer/ws over ${name}: awaited msends then hclose deliver every message`, () =>
      withBufferedStack(kind, layers, async (ends) => {
        const [server, client] = await Promise.all([
          wsAttachServer(ends.s, WS_BINARY, soon()),
          wsAttachClient(ends.c, WS_BINARY, "/", "localhost", soon()),
        ]);
        const s = ends.s = server.handle;
        const c = ends.c = client.handle;
        const sizes = [0, 64, 20_000, 1, 125, 126, 65_536];
        for (let i = 0; i < 100; i++) {
          await msend(s, patternBytes(i, sizes[i % sizes.length]), soon());
        }
        hclose(s);
        for (let i = 0; i < 100; i++) {
          const got = await within(mrecv(c, soon()), 10_000, `message ${i}`);
          assert.deepEqual(got, patternBytes(i, sizes[i % sizes.length]), `message ${i}`);
        }
      }));
  }
}

Deno.test("send-buffer/tcp: Deno's WebSocket client gets every message sent before hclose", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const received: string[] = [];
  const { promise: ended, resolve: end } = Promise.withResolvers<void>();
  const peer = new WebSocket(`ws://127.0.0.1:${tcpLocalAddr(ls).port}/`);
  peer.binaryType = "arraybuffer";
  peer.onmessage = (e) => received.push(new TextDecoder().decode(e.data));
  peer.onclose = () => end();
  peer.onerror = () => {};
  let tcp: Handle | null = null;
  try {
    tcp = (await tcpAccept(ls, soon(), BUFFERED)).handle;
    const { handle: ws } = await wsAttachServer(tcp, 0, soon());
    tcp = ws;
    for (let i = 0; i < 500; i++) await msend(ws, new TextEncoder().encode(`m${i}`), soon());
    hclose(ws);
    tcp = null;
    await within(ended, 10_000, "the peer's close event");
    assert.equal(received.length, 500);
    assert.deepEqual(received, Array.from({ length: 500 }, (_, i) => `m${i}`));
  } finally {
    if (tcp) hclose(tcp);
    hclose(ls);
    peer.close();
  }
});
