/**
 * Defects an attack on the detach paths found (each test fails on the code before):
 *
 * - `wsDetach` called a while after the peer's close frame: the bytes the peer sent after
 *   it (its next protocol on the same bytestream) arrive meanwhile and must all reach the
 *   bytestream handed back, however late the detach and however they were split into
 *   reads. They were dropped after the first read.
 * - `tlsDetach(h, 0)` with the peer's close_notify already arrived behind data still to
 *   read: deadline 0 means "without waiting", and reading what arrived is no waiting.
 * - A detach that times out closes the stack under the calls pending on the handle: they
 *   fail with `ECANCELED` (the handle was closed under them), not with the detach's
 *   `ETIMEDOUT` (a call without a deadline cannot time out).
 * - A `wsDetach` the peer answers with an invalid close frame cannot succeed: it fails with
 *   `EPROTO` once the peer hung up, or after `failGrace` (it waited for its deadline,
 *   forever with -1, then said `ETIMEDOUT`).
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  hclose,
  ipcPair,
  isDillError,
  mrecv,
  msend,
  now,
  tlsAttachClient,
  tlsAttachServer,
  tlsDetach,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  wsDetach,
} from "../mod.ts";
import type { Handle, WsClientOptions } from "../mod.ts";
import { delay, openPair, patternBytes } from "./helpers/transports.ts";
import { CLIENT, SERVER } from "./helpers/tls_fixtures.ts";

const text = new TextEncoder();
const deadline = () => now() + 5000;
/** A server's close frame with status 1000 (unmasked). */
const SERVER_CLOSE = new Uint8Array([0x88, 2, 0x03, 0xe8]);
/** A client's close frame with status 1000, masked with the key 0. */
const CLIENT_CLOSE = new Uint8Array([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

/** Our client (`WS_NOHTTP`) over an `ipcPair`, its server raw bytes on the other end. */
async function clientWithRawServer(
  options: WsClientOptions = {},
): Promise<{ raw: Handle; ws: Handle }> {
  const [raw, b] = ipcPair();
  const { handle: ws } = await wsAttachClient(b, WS_NOHTTP, "", "", deadline(), options);
  return { raw, ws };
}

/** The raw server sends its close frame; our client's close reply is read. */
async function serverCloses(raw: Handle): Promise<void> {
  await bsend(raw, SERVER_CLOSE, deadline());
  const reply = new Uint8Array(8); // masked, status 1000
  await brecv(raw, reply, deadline());
  assert.equal(reply[0], 0x88);
}

async function recvText(h: Handle, n: number): Promise<string> {
  const buf = new Uint8Array(n);
  await brecv(h, buf, deadline());
  return new TextDecoder().decode(buf);
}

Deno.test("wsDetach late, client: bytes after the close frame from later reads reach the bytestream", async () => {
  const { raw, ws } = await clientWithRawServer();
  try {
    await bsend(raw, new Uint8Array([...SERVER_CLOSE, ...text.encode("AB")]), deadline());
    const reply = new Uint8Array(8); // our client's masked close reply
    await brecv(raw, reply, deadline());
    assert.equal(reply[0], 0x88);
    await bsend(raw, text.encode("CD"), deadline());
    await delay(100); // the application is busy for a moment: "CD" was read meanwhile
    const plain = await wsDetach(ws, 1000, "", deadline());
    assert.equal(await recvText(plain, 4), "ABCD");
    hclose(plain);
  } finally {
    hclose(raw);
  }
});

Deno.test("wsDetach late, server over TLS: what the client sends after its close frame is all handed over", async () => {
  const [a, b] = ipcPair();
  const [tlsServer, tlsClient] = await Promise.all([
    tlsAttachServer(a, SERVER, deadline()),
    tlsAttachClient(b, CLIENT, deadline()),
  ]);
  // closeGrace: the server leaves TCP open for a while after the closing handshake.
  const { handle: ws } = await wsAttachServer(tlsServer, WS_NOHTTP, deadline(), {
    closeGrace: 2000,
  });
  try {
    await bsend(tlsClient, CLIENT_CLOSE, deadline());
    await assert.rejects(mrecv(ws, deadline()), (e) => isDillError(e, "EPIPE"));
    const reply = new Uint8Array(4);
    await brecv(tlsClient, reply, deadline());
    assert.equal(reply[0], 0x88);
    await delay(30);
    await bsend(tlsClient, text.encode("ABCD"), deadline());
    await delay(100);
    const plain = await wsDetach(ws, 1000, "", deadline());
    assert.equal(await recvText(plain, 4), "ABCD");
    hclose(plain);
  } finally {
    hclose(tlsClient);
  }
});

Deno.test("wsDetach late: past maxBufferedBytes after the close frame, the rest is dropped and the detach is ENOMEM", async () => {
  const { raw, ws } = await clientWithRawServer({
    maxBufferedBytes: 16 * 1024,
  });
  try {
    await serverCloses(raw);
    // More than the client keeps: it goes on reading (the peer's hang-up must be seen),
    // so this send completes, and the bytes past the bound are gone.
    await bsend(raw, patternBytes(0, 1024 * 1024), deadline());
    await assert.rejects(wsDetach(ws, 1000, "", deadline()), (e) => isDillError(e, "ENOMEM"));
  } finally {
    hclose(raw);
  }
});

Deno.test("after the peer's close frame, the client still sees the peer hang up behind a megabyte of junk", async () => {
  const { raw, ws } = await clientWithRawServer({
    maxBufferedBytes: 16 * 1024,
  });
  try {
    await serverCloses(raw);
    await bsend(raw, new Uint8Array(1024 * 1024), deadline());
    await assert.rejects(mrecv(ws, deadline()), (e) => isDillError(e, "EPIPE"));
    hclose(raw); // the hang-up: the client finishes its side
    hclose(ws);
  } finally {
    try {
      hclose(raw);
    } catch { /* closed above */ }
  }
});

Deno.test("wsDetach after a protocol violation keeps nothing: it fails with the violation within failGrace", async () => {
  const { raw, ws } = await clientWithRawServer({
    maxBufferedBytes: 16,
    failGrace: 200,
  });
  try {
    // A reserved opcode (0x3), then junk: the violation stops input.
    await bsend(raw, new Uint8Array([0x83, 0, ...new Uint8Array(4096)]), deadline());
    await assert.rejects(mrecv(ws, deadline()), (e) => isDillError(e, "EPROTO"));
    const started = now();
    await assert.rejects(wsDetach(ws, 1000, "", now() + 3000), (e) => isDillError(e, "EPROTO"));
    assert.ok(now() - started < 1500, "failed before its deadline");
  } finally {
    hclose(raw);
  }
});

Deno.test("wsDetach with keepalive on and a silent peer fails near pongTimeout, not at its deadline", async () => {
  const { raw, ws } = await clientWithRawServer({
    pingInterval: 100,
    pongTimeout: 200,
  });
  try {
    const started = now();
    const detach = wsDetach(ws, 1000, "", now() + 5000).then(() => "detached", (e) => e.code);
    assert.equal(await detach, "ECONNRESET");
    const took = now() - started;
    assert.ok(took >= 150 && took < 2000, `failed after ${took.toFixed(0)} ms`);
  } finally {
    hclose(raw);
  }
});

Deno.test("tlsDetach(h, 0): the peer's close_notify behind 1 MB not read yet is found without waiting", async () => {
  const pair = await openPair("tcp");
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(pair.a, SERVER, deadline()),
      tlsAttachClient(pair.b, CLIENT, deadline()),
    ]);
    await bsend(s, new Uint8Array(1_000_000), deadline());
    const serverSide = tlsDetach(s, deadline()); // its close_notify follows the data
    await delay(300); // all of it reached the client's socket and read-ahead by now
    const plain = await tlsDetach(c, 0);
    hclose(plain);
    hclose(await serverSide);
  } finally {
    await pair.cleanup();
  }
});

Deno.test("a tlsDetach that times out fails the calls pending on the handle with ECANCELED", async () => {
  const pair = await openPair("tcp");
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(pair.a, SERVER, deadline()),
      tlsAttachClient(pair.b, CLIENT, deadline()),
    ]);
    // The client reads nothing, so this send never completes, and no close_notify comes.
    const pendingSend = bsend(s, new Uint8Array(48 << 20), -1);
    const pendingRecv = brecv(s, new Uint8Array(1), -1);
    await delay(100);
    await assert.rejects(tlsDetach(s, now() + 300), (e) => isDillError(e, "ETIMEDOUT"));
    await assert.rejects(pendingSend, (e) => isDillError(e, "ECANCELED"));
    await assert.rejects(pendingRecv, (e) => isDillError(e, "ECANCELED"));
    hclose(c);
  } finally {
    await pair.cleanup();
  }
});

Deno.test("a wsDetach that times out fails the calls pending on the handle with ECANCELED", async () => {
  const { raw, ws } = await clientWithRawServer();
  try {
    // The raw peer reads nothing: this send never completes, and no close frame comes.
    const pendingSend = msend(ws, new Uint8Array(8 << 20), -1).then(() => "sent", (e) => e.code);
    await delay(50);
    await assert.rejects(wsDetach(ws, 1000, "", now() + 300), (e) => isDillError(e, "ETIMEDOUT"));
    assert.equal(await pendingSend, "ECANCELED");
  } finally {
    hclose(raw);
  }
});

Deno.test("wsDetach answered with an invalid close frame fails with EPROTO within failGrace, not at its deadline", async () => {
  const { raw, ws } = await clientWithRawServer({
    failGrace: 200, // how long the peer gets to hang up after our close for its violation
  });
  try {
    const started = now();
    const detached = wsDetach(ws, 1000, "", now() + 5000).then(() => "detached", (e) => e.code);
    await brecv(raw, new Uint8Array(8), deadline()); // our close frame
    await bsend(raw, new Uint8Array([0x88, 1, 0x03]), deadline()); // a 1-byte close body
    assert.equal(await detached, "EPROTO");
    assert.ok(now() - started < 2000, "failed before its deadline");
    // Then our side hangs up: the peer reads the end of the stream.
    await assert.rejects(brecv(raw, new Uint8Array(1), deadline()), (e) => isDillError(e, "EPIPE"));
  } finally {
    hclose(raw);
  }
});
