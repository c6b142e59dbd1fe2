/**
 * `byteStreams` (and `wsStream`, its message-socket sibling) with the connection ending
 * under them while a read or a write of the web stream is pending, and the reverse: the
 * stream aborted or cancelled while the call beneath waits (a peer that does not read).
 * Over TCP, over TLS on TCP, and over WebSocket. Every pending operation must end.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  byteStreams,
  type Handle,
  hclose,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  tlsAttachClient,
  tlsAttachServer,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  wsStream,
} from "../mod.ts";
import { isDillError } from "../protocol/errors.ts";
import { assertFailed, type Outcome, settle } from "./helpers/outcome.ts";
import { CLIENT, SERVER } from "./helpers/tls_fixtures.ts";
import { closeQuietly, openPair, type Pair, within } from "./helpers/transports.ts";

const ENDS_WITHIN = 3000;
const CHUNK = new Uint8Array(256 * 1024);

/** A bytestream pair: plain TCP, or TLS over TCP. */
async function streamPair(tls: boolean): Promise<Pair> {
  const tcp = await openPair("tcp");
  if (!tls) return tcp;
  const [b, a] = await Promise.all([
    tlsAttachServer(tcp.b, SERVER, now() + 5000),
    tlsAttachClient(tcp.a, CLIENT, now() + 5000),
  ]);
  return { a, b, cleanup: () => Promise.resolve([a, b].forEach(closeQuietly)) };
}

/**
 * Writes until a write stays pending (the peer reads nothing); returns how that write
 * ends (wrapped: an async function returning the promise itself would wait for it).
 */
async function stuckWrite(
  writer: WritableStreamDefaultWriter<Uint8Array>,
): Promise<{ ended: Promise<Outcome<void>> }> {
  for (let i = 0; i < 200; i++) {
    const ended = settle(writer.write(CHUNK));
    if (!await within(ended.then(() => true), 200, "write").catch(() => false)) return { ended };
  }
  assert.fail("every write completed: the peer's buffers never filled");
}

for (const tls of [false, true]) {
  const over = tls ? "TLS over TCP" : "TCP";

  Deno.test(`byteStreams (${over}): aborting the writable while a write waits for a peer that does not read ends both`, async () => {
    const pair = await streamPair(tls);
    try {
      const { writable, readable } = byteStreams(pair.a);
      const writer = writable.getWriter();
      const stuck = await stuckWrite(writer);
      const aborting = writer.abort(new Error("enough"));
      await within(aborting, ENDS_WITHIN, "writer.abort()");
      const write = await within(stuck.ended, ENDS_WITHIN, "the write");
      assert.ok(!write.ok, "the stuck write fails");
      // Both streams are over: the connection was closed under the readable too.
      const read = await within(settle(readable.getReader().read()), ENDS_WITHIN, "a read");
      assertFailed(read, "ECANCELED", "a read after the writable was aborted");
    } finally {
      await pair.cleanup();
    }
  });

  Deno.test(`byteStreams (${over}): the peer resets while a read and a write are pending: both fail`, async () => {
    const pair = await streamPair(tls);
    try {
      const { writable, readable } = byteStreams(pair.a);
      const reader = readable.getReader();
      const writer = writable.getWriter();
      const reading = settle(reader.read());
      const stuck = await stuckWrite(writer);
      hclose(pair.b); // unread bytes in its buffers: a reset
      const write = await within(stuck.ended, ENDS_WITHIN, "the write");
      const read = await within(reading, ENDS_WITHIN, "the read");
      assert.ok(!write.ok, "the pending write fails");
      assert.ok(!read.ok || read.value.done, "the pending read fails or ends");
      if (!write.ok) {
        assert.ok(isDillError(write.error), `a DillError: ${String(write.error)}`);
        assert.ok(["ECONNRESET", "EPIPE"].includes(write.error.code), write.error.message);
      }
    } finally {
      await pair.cleanup();
    }
  });

  Deno.test(`byteStreams (${over}): cancelling the readable while a read is pending ends the read; the writable still sends`, async () => {
    const pair = await streamPair(tls);
    try {
      const { writable, readable } = byteStreams(pair.a);
      const reader = readable.getReader();
      const reading = settle(reader.read());
      await reader.cancel();
      const read = await within(reading, ENDS_WITHIN, "the read");
      assert.ok(read.ok && read.value.done, "a pending read ends as done on cancel");
      const writer = writable.getWriter();
      await writer.write(new Uint8Array([1, 2, 3]));
      const got = new Uint8Array(3);
      await brecv(pair.b, got, now() + ENDS_WITHIN);
      assert.deepEqual([...got], [1, 2, 3]);
      await writer.close(); // both done: the connection closes
      assertFailed(await settle(brecv(pair.b, got, now() + ENDS_WITHIN)), "EPIPE", "peer");
    } finally {
      await pair.cleanup();
    }
  });
}

Deno.test("byteStreams: a brecv pending when byteStreams takes the handle fails with ECANCELED; hclose of the taken handle is EBADF", async () => {
  const pair = await openPair("tcp");
  try {
    const receiving = settle(brecv(pair.a, new Uint8Array(1), -1));
    const { readable, writable } = byteStreams(pair.a);
    assertFailed(await within(receiving, ENDS_WITHIN, "brecv"), "ECANCELED", "the brecv");
    assert.throws(() => hclose(pair.a), (e) => isDillError(e, "EBADF"));
    await readable.cancel();
    await writable.close();
  } finally {
    await pair.cleanup();
  }
});

Deno.test("wsStream (WebSocket over TCP): aborting the writable while a send waits for a peer that does not read ends it", async () => {
  const pair = await openPair("tcp");
  let server: Handle | null = null;
  try {
    const [s, c] = await Promise.all([
      wsAttachServer(pair.b, WS_NOHTTP, now() + 5000),
      wsAttachClient(pair.a, WS_NOHTTP, "", "", now() + 5000),
    ]);
    server = s.handle;
    const ws = wsStream(c.handle, { closeTimeout: 500 });
    const writer = ws.writable.getWriter();
    const stuck = await stuckWrite(writer as WritableStreamDefaultWriter<Uint8Array>);
    const aborting = writer.abort(new Error("enough"));
    await within(aborting, ENDS_WITHIN, "writer.abort()");
    assert.ok(!(await within(stuck.ended, ENDS_WITHIN, "the send")).ok);
    // The socket can send no more (no close frame): closed fails after closeTimeout.
    const closed = await within(settle(ws.closed), ENDS_WITHIN, "closed");
    assertFailed(closed, "ETIMEDOUT", "closed");
    ws.readable.cancel().catch(() => {});
  } finally {
    if (server) closeQuietly(server);
    await pair.cleanup();
  }
});

/** A listener that holds one connection at a time: a connection never released shuts out the next. */
function cappedServer(): { ls: Handle; accept: () => Promise<Handle>; port: number } {
  const ls = tcpListen({ port: 0 }, 8, { maxConnections: 1 });
  const port = tcpLocalAddr(ls).port;
  return {
    ls,
    port,
    accept: async () => (await tcpAccept(ls, now() + ENDS_WITHIN)).handle,
  };
}

Deno.test("byteStreams (TCP): a write that fails under a reset releases the connection, with nobody reading", async () => {
  const { ls, port, accept } = cappedServer();
  const peers: Deno.Conn[] = [];
  try {
    peers.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    const { writable, readable } = byteStreams(await accept());
    const writer = writable.getWriter();
    const stuck = await stuckWrite(writer);
    peers.shift()!.close(); // unread bytes in its buffers: a reset
    assert.ok(!(await within(stuck.ended, ENDS_WITHIN, "the write")).ok);
    // The connection was released: the listener (maxConnections 1) takes the next one.
    peers.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    hclose(await accept());
    const read = await within(settle(readable.getReader().read()), ENDS_WITHIN, "a read");
    assert.ok(!read.ok || read.value.done, "the readable ended with the connection");
  } finally {
    for (const p of peers) p.close();
    hclose(ls);
  }
});

Deno.test("byteStreams: a chunk that is not bytes fails its write with EINVAL and releases the connection", async () => {
  const { ls, port, accept } = cappedServer();
  const peers: Deno.Conn[] = [];
  try {
    peers.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    const { writable } = byteStreams(await accept());
    const writer = (writable as WritableStream<unknown>).getWriter();
    assertFailed(await settle(writer.write("text")), "EINVAL", "a string written");
    peers.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    hclose(await accept());
  } finally {
    for (const p of peers) p.close();
    hclose(ls);
  }
});

Deno.test("wsStream (WebSocket over TCP): used only to write, a send failing under a reset settles closed and releases the connection", async () => {
  const { ls, port, accept } = cappedServer();
  let client: Handle | null = null;
  try {
    const [s, c] = await Promise.all([
      accept().then((tcp) => wsAttachServer(tcp, WS_NOHTTP, now() + 5000)),
      tcpConnect({ port }, now() + 5000).then((tcp) =>
        wsAttachClient(tcp, WS_NOHTTP, "", "", now() + 5000)
      ),
    ]);
    client = c.handle;
    const ws = wsStream(s.handle);
    // Two messages from the peer: the readable reads one ahead, then nobody reads on.
    await msend(client, new Uint8Array([1]), now() + 5000);
    await msend(client, new Uint8Array([2]), now() + 5000);
    const writer = ws.writable.getWriter();
    const stuck = await stuckWrite(writer as WritableStreamDefaultWriter<Uint8Array>);
    hclose(client); // unread bytes: a reset
    client = null;
    assert.ok(!(await within(stuck.ended, ENDS_WITHIN, "the send")).ok);
    assert.ok(!(await within(settle(ws.closed), ENDS_WITHIN, "closed")).ok, "closed rejects");
    const next = tcpConnect({ port }, now() + 5000);
    hclose(await accept());
    hclose(await next);
  } finally {
    if (client) closeQuietly(client);
    hclose(ls);
  }
});

Deno.test("wsStream: a handle that is not a WebSocket is refused at once (ENOTSUP) and left usable", async () => {
  const pair = await openPair("tcp");
  try {
    assert.throws(() => wsStream(pair.a), (e) => isDillError(e, "ENOTSUP"));
    await bsend(pair.a, new Uint8Array([7]), now() + 5000);
    assert.deepEqual(await brecv(pair.b, new Uint8Array(1), now() + 5000), new Uint8Array([7]));
  } finally {
    await pair.cleanup();
  }
});

Deno.test("wsStream: any BufferSource is sent as its bytes; anything else fails with EINVAL", async () => {
  const pair = await openPair("tcp");
  try {
    const [s, c] = await Promise.all([
      wsAttachServer(pair.b, WS_NOHTTP, now() + 5000),
      wsAttachClient(pair.a, WS_NOHTTP, "", "", now() + 5000),
    ]);
    const ws = wsStream(c.handle);
    const writer = (ws.writable as WritableStream<unknown>).getWriter();
    const words = new Uint16Array([0x0102, 0x0304]);
    await writer.write(words);
    await writer.write(new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 2));
    await writer.write(new Uint8Array([5, 6]).buffer);
    assert.deepEqual(await mrecv(s.handle, now() + 5000), new Uint8Array(words.buffer));
    assert.deepEqual(await mrecv(s.handle, now() + 5000), new Uint8Array([8, 7]));
    assert.deepEqual(await mrecv(s.handle, now() + 5000), new Uint8Array([5, 6]));
    assertFailed(await settle(writer.write(5)), "EINVAL", "a number written");
    hclose(s.handle);
    ws.close();
    await settle(ws.closed);
  } finally {
    await pair.cleanup();
  }
});
