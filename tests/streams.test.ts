/**
 * Async iteration (`messages`) and the Web Streams adapters: `wsStream` (shaped like
 * WebSocketStream) over message handles and `byteStreams` over bytestream handles,
 * with backpressure through the streams.
 */

import { nohttpWsPair, within } from "./helpers/transports.ts";
import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  byteStreams,
  hclose,
  ipcPair,
  messages,
  msend,
  now,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachServer,
  wsDone,
  wsSend,
  wsStatus,
  wsStream,
} from "../mod.ts";
import { assertFailed, settle } from "./helpers/outcome.ts";

const T = 5000;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("messages: for await yields every message and ends on the peer's close", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    await wsSend(c, WS_TEXT, "one", now() + T);
    await msend(c, new Uint8Array([2]), now() + T);
    await wsDone(c, 1000, "that's all", now() + T);
    const got: unknown[] = [];
    for await (const m of messages(s)) got.push(m.data);
    assert.deepEqual(got, ["one", new Uint8Array([2])]);
    assert.deepEqual(await wsStatus(s), { status: 1000, reason: "that's all" });
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("messages: bad options and a handle that is not an open WebSocket throw at the call", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    assert.throws(() => messages(s, { deadline: NaN }), /EINVAL/);
    assert.throws(() => messages(42 as never), /EBADF/);
    const [a, b] = ipcPair();
    assert.throws(() => messages(a), /ENOTSUP/); // a bytestream
    hclose(a);
    hclose(b);
  } finally {
    hclose(s);
    hclose(c);
  }
  assert.throws(() => messages(s), /EBADF/); // closed
});

Deno.test("messages: a broken connection or a cancelled signal is thrown, not a clean end", async () => {
  const [s, c] = await nohttpWsPair();
  hclose(c); // no close frame: 1006
  try {
    const got = await settle((async () => {
      for await (const _ of messages(s)) { /* nothing arrives */ }
    })());
    assertFailed(got, "ECONNRESET", "iteration over a broken connection");
  } finally {
    hclose(s);
  }
  const [s2, c2] = await nohttpWsPair();
  try {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 20);
    const got = await settle((async () => {
      for await (const _ of messages(s2, { signal: ctl.signal })) { /* nothing arrives */ }
    })());
    assertFailed(got, "ECANCELED", "iteration with an aborted signal");
  } finally {
    hclose(s2);
    hclose(c2);
  }
});

Deno.test("wsStream: messages both ways, then close({ closeCode, reason }) settles both sides", async () => {
  const [s, c] = await nohttpWsPair();
  const server = wsStream(s), client = wsStream(c, { protocol: "chat" });
  assert.equal((await client.opened).protocol, "chat");
  const cw = client.writable.getWriter();
  await cw.write("hi");
  await cw.write(new Uint8Array([1, 2]));
  cw.releaseLock();
  const sr = server.readable.getReader();
  assert.equal((await sr.read()).value, "hi");
  assert.deepEqual((await sr.read()).value, new Uint8Array([1, 2]));
  const sw = server.writable.getWriter();
  await sw.write("back");
  const cr = client.readable.getReader();
  assert.equal((await cr.read()).value, "back");
  client.close({ closeCode: 4000, reason: "bye" });
  assert.equal((await sr.read()).done, true, "the server's readable ends at the close");
  assert.deepEqual(await server.closed, { closeCode: 4000, reason: "bye" });
  assert.equal((await cr.read()).done, true);
  assert.deepEqual(await client.closed, { closeCode: 4000, reason: "" }, "the echoed status");
  assertFailed(await settle(msend(s, "x", -1)), "EBADF", "the adapter closed the handle");
  assert.throws(() => client.close({ closeCode: 1005 }), /EINVAL/);
});

Deno.test("wsStream: the handle it took over is no longer valid, so nothing else takes its messages", async () => {
  // Found by an attack: a second wsStream on the same handle was accepted, the two
  // readables shared the messages, and one's end closed the socket under the other.
  const [s, c] = await nohttpWsPair();
  const server = wsStream(s, { closeTimeout: 1000 });
  try {
    assert.throws(() => wsStream(s), /EBADF/);
    assertFailed(await settle(msend(s, "x", -1)), "EBADF", "msend on the handle taken over");
    await msend(c, "1", now() + T);
    await msend(c, "2", now() + T);
    const reader = server.readable.getReader();
    // Both, in order, to the one reader (msend sends binary).
    assert.deepEqual((await reader.read()).value, new Uint8Array([0x31]));
    assert.deepEqual((await reader.read()).value, new Uint8Array([0x32]));
    reader.releaseLock();
  } finally {
    server.close();
    await settle(server.closed);
    hclose(c);
  }
});

Deno.test("wsStream: a write after the connection ended fails with how it ended, not EBADF", async () => {
  const [s, c] = await nohttpWsPair();
  const server = wsStream(s);
  await wsDone(c, 1000, "bye", now() + T);
  assert.deepEqual(await server.closed, { closeCode: 1000, reason: "bye" });
  const writer = server.writable.getWriter();
  assertFailed(await settle(writer.write("late")), "EPIPE", "a write after the peer's close");
  hclose(c);
});

Deno.test("wsStream: a slow reader stops reading from the socket; the sender waits, nothing is lost", async () => {
  // The server reads at most 4 messages / 1 KiB ahead, over a 4 KiB pipe.
  const [s, c] = await nohttpWsPair({ maxQueuedMessages: 4, maxBufferedBytes: 1024 }, 4096);
  const server = wsStream(s, { readableHighWaterMark: 1 });
  const total = 200;
  let sent = 0;
  const sending = (async () => {
    for (let i = 0; i < total; i++) {
      const m = new Uint8Array(1024).fill(i & 0xff);
      await msend(c, m, now() + T);
      sent++;
    }
  })();
  await delay(100);
  const stalled = sent;
  await delay(100);
  assert.ok(stalled < total / 2, `the sender is held back (sent ${stalled} of ${total})`);
  assert.equal(sent, stalled, "and stays held back while nobody reads");
  const reader = server.readable.getReader();
  for (let i = 0; i < total; i++) {
    const { value } = await reader.read();
    assert.equal((value as Uint8Array)[0], i & 0xff, `message ${i} in order`);
  }
  await sending;
  reader.releaseLock();
  await wsDone(c, 1000, "", now() + T);
  assert.equal((await server.closed).closeCode, 1000);
  hclose(c);
});

for (const closeTimeout of [50, 0]) {
  Deno.test(`wsStream: a peer that never answers the close ends in ETIMEDOUT after closeTimeout (${closeTimeout} ms)`, async () => {
    const [a, raw] = ipcPair();
    const { handle } = await wsAttachServer(a, WS_NOHTTP, now() + T);
    const ws = wsStream(handle, { closeTimeout });
    ws.close();
    const e = assertFailed(await settle(ws.closed), "ETIMEDOUT", "closed");
    assert.match(e.message, /no close from the peer within/);
    assertFailed(await settle(msend(handle, "x", -1)), "EBADF", "the handle is closed");
    hclose(raw);
  });
}

Deno.test("wsStream: close() while the reader holds the readable and reads slowly: the peer's answer settles closed, no message is lost", async () => {
  const [s, c] = await nohttpWsPair();
  const ws = wsStream(s, { closeTimeout: 300 });
  const reader = ws.readable.getReader();
  for (const n of [1, 2, 3]) await msend(c, new Uint8Array([n]), now() + T);
  assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
  ws.close({ closeCode: 1000 });
  // The peer answers at once, after messages 2 and 3; our reader is busy elsewhere.
  await wsDone(c, 4001, "bye", now() + T);
  const closed = await within(ws.closed, 2000, "closed");
  assert.deepEqual(closed, { closeCode: 4001, reason: "bye" });
  assert.deepEqual((await reader.read()).value, new Uint8Array([2]));
  assert.deepEqual((await reader.read()).value, new Uint8Array([3]));
  assert.equal((await reader.read()).done, true);
  hclose(c);
});

Deno.test("wsStream: a send that fails because the peer closed keeps its last messages for a reader that comes later", async () => {
  const [s, c] = await nohttpWsPair();
  const ws = wsStream(s);
  await msend(c, "first", now() + T);
  await msend(c, "final words", now() + T);
  await wsDone(c, 1000, "done", now() + T);
  await delay(50); // the peer's close has arrived: our sends fail now
  const writer = ws.writable.getWriter();
  assertFailed(await settle(writer.write("too late")), "EPIPE", "a send after the peer's close");
  assert.deepEqual(await within(ws.closed, 2000, "closed"), { closeCode: 1000, reason: "done" });
  const reader = ws.readable.getReader();
  const bytes = (text: string) => new TextEncoder().encode(text);
  assert.deepEqual((await reader.read()).value, bytes("first"));
  assert.deepEqual((await reader.read()).value, bytes("final words"));
  assert.equal((await reader.read()).done, true);
  hclose(c);
});

Deno.test("byteStreams: bytes both ways; closing the writable half-closes, the other side reads the end", async () => {
  const [a, b] = ipcPair();
  const left = byteStreams(a), right = byteStreams(b);
  assertFailed(await settle(bsend(a, new Uint8Array(1), -1)), "EBADF", "the handle was taken over");
  const lw = left.writable.getWriter();
  await lw.write(new TextEncoder().encode("hello "));
  await lw.write(new TextEncoder().encode("world"));
  await lw.close();
  assert.equal(await new Response(right.readable).text(), "hello world");
  const rw = right.writable.getWriter();
  await rw.write(new Uint8Array([1, 2, 3]));
  await rw.close();
  assert.deepEqual(
    new Uint8Array(await new Response(left.readable).arrayBuffer()),
    new Uint8Array([1, 2, 3]),
  );
});

Deno.test("byteStreams: a slow reader holds the writer back (pause through the stream), nothing is lost", async () => {
  const [a, b] = ipcPair({ pipeCapacity: 4096, writeHighWater: 4096 });
  const left = byteStreams(a, { writableHighWaterMark: 4096 });
  const right = byteStreams(b, { readableHighWaterMark: 4096 });
  const size = 1024 * 1024;
  const data = new Uint8Array(size).map((_, i) => i & 0xff);
  const writer = left.writable.getWriter();
  let written = 0;
  const writing = (async () => {
    for (let off = 0; off < size; off += 1024) {
      await writer.write(data.subarray(off, off + 1024));
      written += 1024;
    }
    await writer.close();
  })();
  await delay(100);
  assert.ok(written < size / 4, `the writer is held back (${written} of ${size} bytes)`);
  const got = new Uint8Array(await new Response(right.readable).arrayBuffer());
  await writing;
  assert.equal(got.length, size);
  assert.deepEqual(got, data);
  await right.writable.close();
  await left.readable.cancel();
});

Deno.test("byteStreams: the readable ends after the peer's last bytes; aborting the writable fails both", async () => {
  const [a, b] = ipcPair();
  const right = byteStreams(b);
  await bsend(a, new Uint8Array([1]), now() + T);
  hclose(a);
  assert.deepEqual(
    new Uint8Array(await new Response(right.readable).arrayBuffer()),
    new Uint8Array([1]),
  );
  await right.writable.close();

  const [c, d] = ipcPair();
  const left = byteStreams(c);
  const reader = left.readable.getReader();
  const reading = settle(reader.read());
  await left.writable.abort();
  assertFailed(await reading, "ECANCELED", "a read pending when the writable was aborted");
  // The connection is closed: the peer reads the end.
  assertFailed(await settle(brecv(d, new Uint8Array(1), now() + T)), "EPIPE", "the peer's read");
  hclose(d);
});
