/**
 * What an idle WebSocket connection keeps on the JavaScript heap, server side: after
 * the opening handshake (HTTP, over an in-memory pipe) and before any frame, measured
 * over many connections with the garbage collector run before and after. Guards the
 * per-connection state that is made lazily (the frame receiver, the pong budget, the
 * keepalive, the request's `Headers`, mailbox arrays) and the small first read buffer.
 * Needs `--v8-flags=--expose-gc` (as `deno task test` runs it).
 */

import assert from "node:assert/strict";
import { hclose, now, wsAttachServer } from "../mod.ts";
import { type PipeEnd, pipePair } from "../actors/pipe.ts";
import { streamHandle } from "../actors/sockets.ts";
import type { Handle } from "../actors/handle.ts";

const CONNECTIONS = 400;
/**
 * Bytes of heap per idle server connection allowed. Measured with Deno 2.9: about 2.7
 * KiB (the pipe's own objects included); before the lazy state, about 5.1 KiB.
 */
const BOUND = 4 * 1024;

const REQUEST = new TextEncoder().encode(
  "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  assert.ok(collect, "run with --v8-flags=--expose-gc (deno task test does) to measure memory");
  collect();
  collect();
}

async function openIdle(): Promise<{ ws: Handle; peer: PipeEnd; attached: unknown }> {
  const [ours, peer] = pipePair();
  const attaching = wsAttachServer(streamHandle(ours, "pipe"), 0, now() + 5000);
  await peer.write(REQUEST);
  const answer = new Uint8Array(512);
  const n = await peer.read(answer);
  assert.ok(
    n !== null && new TextDecoder().decode(answer.subarray(0, n)).startsWith("HTTP/1.1 101"),
  );
  const attached = await attaching;
  return { ws: attached.handle, peer, attached };
}

Deno.test("idle memory: an idle server connection keeps a few KiB of heap", async () => {
  // Warm up first, so that code and shared pools are not counted.
  for (const c of await Promise.all(Array.from({ length: 50 }, openIdle))) {
    hclose(c.ws);
    c.peer.close();
  }
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const held = [];
  for (let i = 0; i < CONNECTIONS; i++) held.push(await openIdle());
  gc();
  const perConnection = (Deno.memoryUsage().heapUsed - before) / CONNECTIONS;
  for (const c of held) {
    hclose(c.ws);
    c.peer.close();
  }
  assert.ok(
    perConnection < BOUND,
    `an idle connection keeps ${Math.round(perConnection)} bytes of heap (bound ${BOUND})`,
  );
});
