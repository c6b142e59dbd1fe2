/**
 * What an idle WebSocket connection keeps on the JavaScript heap, server side: after
 * the opening handshake (HTTP, over an in-memory pipe) and before any frame, waiting in
 * a receive as an echo loop does, measured over many connections with the garbage
 * collector run before and after. Guards the per-connection state that is made lazily
 * (the frame receiver, the pong budget, the keepalive, the request's `Headers`, mailbox
 * arrays, the waiting-call list, the write queue's and stream output's lists) and the
 * small first read buffer. Needs `--v8-flags=--expose-gc` (as `deno task test` runs it).
 */

import assert from "node:assert/strict";
import { hclose, now, wsAttachServer, wsRecv } from "../mod.ts";
import { type PipeEnd, pipePair } from "../actors/pipe.ts";
import { streamHandle } from "../actors/sockets.ts";
import type { Handle } from "../actors/handle.ts";
import { collectGarbage } from "./helpers/memory.ts";
import { wsLimits } from "../actors/ws_options.ts";

/**
 * Connections measured. Shared structures that grow while they are opened (arrays
 * doubling) add a fixed amount: spread over 1000 connections it once added about 0.6
 * KiB to each in a CI run (4382 bytes against a usual 3.6-3.8 KiB); over 2000, eight
 * runs measured 3477-3485 bytes.
 */
const CONNECTIONS = 2000;
/**
 * Bytes of heap per idle server connection allowed. Measured with Deno 2.9, each
 * connection waiting in a `wsRecv` and its attach result kept (the pipe's own objects
 * included): about 3.4 KiB over 2000 connections (3.8-3.9 KiB over 1000); 4.2 KiB before the
 * waiting call, the write queue and the stream output made their lists on first use;
 * without the waiting receive, about 2.7 KiB then. Earlier, before the lazy state, about
 * 5.1 KiB without a waiting receive.
 */
const BOUND = 4.25 * 1024;

const REQUEST = new TextEncoder().encode(
  "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);

interface Idle {
  ws: Handle;
  peer: PipeEnd;
  /** The attach result, kept as an application may keep it. */
  attached: unknown;
  /** The receive the connection waits in, as an echo loop's does. */
  receiving: Promise<unknown>;
}

async function openIdle(): Promise<Idle> {
  const [ours, peer] = pipePair();
  const attaching = wsAttachServer(streamHandle(ours, "pipe"), 0, now() + 5000);
  await peer.write(REQUEST);
  const answer = new Uint8Array(512);
  const n = await peer.read(answer);
  assert.ok(
    n !== null && new TextDecoder().decode(answer.subarray(0, n)).startsWith("HTTP/1.1 101"),
  );
  const attached = await attaching;
  // Failed by the close at the end (ECANCELED): that is expected.
  const receiving = wsRecv(attached.handle, -1).catch(() => null);
  return { ws: attached.handle, peer, attached, receiving };
}

Deno.test("idle memory: an idle server connection keeps a few KiB of heap", async () => {
  // Warm up first, so that code and shared pools are not counted.
  const warm = await Promise.all(Array.from({ length: 200 }, openIdle));
  for (const c of warm) {
    hclose(c.ws);
    c.peer.close();
  }
  await Promise.all(warm.map((c) => c.receiving));
  collectGarbage();
  const before = Deno.memoryUsage().heapUsed;
  const held = [];
  for (let i = 0; i < CONNECTIONS; i++) held.push(await openIdle());
  collectGarbage();
  const perConnection = (Deno.memoryUsage().heapUsed - before) / CONNECTIONS;
  for (const c of held) {
    hclose(c.ws);
    c.peer.close();
  }
  await Promise.all(held.map((c) => c.receiving));
  assert.ok(
    perConnection < BOUND,
    `an idle connection keeps ${Math.round(perConnection)} bytes of heap (bound ${BOUND})`,
  );
});

Deno.test("idle memory: connections made with equal options share one limits object", () => {
  // A server passes the same options for every connection it accepts: one frozen object
  // serves them all, whatever the options (wsUpgrade's own defaults among them).
  const options = { maxBufferedBytes: 16 * 1024 * 1024, pingInterval: 30_000 };
  const first = wsLimits({ ...options });
  assert.equal(wsLimits({ ...options }), first);
  assert.ok(Object.isFrozen(first));
  assert.equal(wsLimits({}), wsLimits({}));
  assert.notEqual(wsLimits({ maxBufferedBytes: 1 }), first);
});
