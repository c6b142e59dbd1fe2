/**
 * wsUpgrade: the message-socket API over Deno.serve + Deno.upgradeWebSocket, against
 * Deno's real WebSocket client. One application function runs unchanged under
 * tcpListen + wsAttachServer and under Deno.serve + wsUpgrade.
 */

import assert from "node:assert/strict";
import {
  type Handle,
  hclose,
  mrecv,
  mrecvl,
  mrecvText,
  msend,
  msendl,
  now,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  WS_BINARY,
  WS_TEXT,
  wsAttachServer,
  wsDetach,
  wsDone,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
  wsStatus,
  wsUpgrade,
  WsUpgradeError,
  type WsUpgradeOptions,
} from "../mod.ts";
import { echoApp } from "../examples/echo_app.ts";
import { assertFailed, settle } from "./helpers/outcome.ts";
import { connectClient, rawClient, serve, upgradeServer } from "./helpers/serve.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";

const T = 5000;
const enc = new TextEncoder();

/** Runs `app` on the first WebSocket that connects to a Deno.serve server. */
async function withUpgrade(
  flags: number,
  options: WsUpgradeOptions,
  client: (port: number, handle: Promise<Handle>) => Promise<void>,
): Promise<void> {
  const got = Promise.withResolvers<Handle>();
  const server = serve((request) => {
    const { response, handle } = wsUpgrade(request, flags, options);
    got.resolve(handle);
    return response;
  });
  let handle: Handle | undefined;
  try {
    got.promise.then((h) => handle = h);
    await client(server.port, got.promise);
  } finally {
    try {
      if (handle) hclose(handle);
    } catch { /* the test closed it */ }
    await server.close();
  }
}

/** The client side of the echo conversation both servers must pass. */
async function echoConversation(port: number): Promise<void> {
  const c = connectClient(port, "/echo");
  await c.opened;
  c.ws.send("héllo");
  assert.equal(await c.next(), "héllo", "text comes back as text");
  c.ws.send(new Uint8Array([1, 2, 3]));
  assert.deepEqual(await c.next(), new Uint8Array([1, 2, 3]), "binary comes back as binary");
  c.ws.close(1000, "bye");
  assert.equal((await c.closed).code, 1000);
}

Deno.test("wsUpgrade/same app: one handler runs unchanged on tcpListen and on Deno.serve", async () => {
  // Deno.serve + wsUpgrade
  const served = Promise.withResolvers<{ status: number; reason: string }>();
  const server = serve((request) => {
    const { response, handle } = wsUpgrade(request, WS_BINARY);
    echoApp(handle).then(served.resolve, served.reject).finally(() => hclose(handle));
    return response;
  });
  try {
    await echoConversation(server.port);
    assert.deepEqual(await served.promise, { status: 1000, reason: "bye" });
  } finally {
    await server.close();
  }

  // tcpListen + wsAttachServer, same app, same client
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = (async () => {
      const { handle: tcp } = await tcpAccept(ls, now() + T);
      const { handle } = await wsAttachServer(tcp, WS_BINARY, now() + T);
      try {
        return await echoApp(handle);
      } finally {
        hclose(handle);
      }
    })();
    await echoConversation(tcpLocalAddr(ls).port);
    assert.deepEqual(await accepted, { status: 1000, reason: "bye" });
  } finally {
    hclose(ls);
  }
});

Deno.test("wsUpgrade/api: every message call works on the upgraded handle", async () => {
  await withUpgrade(WS_TEXT, {}, async (port, handle) => {
    const c = connectClient(port, "/room?x=1");
    const h = await handle;
    await c.opened;
    c.ws.send("one");
    assert.equal(await mrecvText(h, now() + T), "one");
    c.ws.send("two");
    assert.deepEqual(await mrecv(h, now() + T), enc.encode("two"));
    c.ws.send("three");
    const bufs = [new Uint8Array(2), new Uint8Array(8)];
    assert.equal(await mrecvl(h, bufs, now() + T), 5);
    c.ws.send(new Uint8Array([9]));
    assert.deepEqual(await wsRecv(h, now() + T), { type: WS_BINARY, data: new Uint8Array([9]) });
    c.ws.send("xy");
    assert.deepEqual(await wsRecvl(h, [new Uint8Array(4)], now() + T), { size: 2, type: WS_TEXT });
    await msend(h, "text back", now() + T);
    assert.equal(await c.next(), "text back", "msend on a WS_TEXT socket sends text");
    await msendl(h, [enc.encode("a"), enc.encode("b")], now() + T);
    assert.equal(await c.next(), "ab");
    await wsSend(h, WS_BINARY, new Uint8Array([4, 5]), now() + T);
    assert.deepEqual(await c.next(), new Uint8Array([4, 5]));
    await wsSendl(h, WS_TEXT, [enc.encode("c")], now() + T);
    assert.equal(await c.next(), "c");
    assert.throws(() => wsStatus(h), { code: "EAGAIN" }, "wsStatus before the close");
    assertFailed(await settle(msend(h, new Uint8Array([0xff]), now() + T)), "EINVAL", "bad UTF-8");
    c.ws.close(4001, "done");
    assertFailed(await settle(mrecv(h, now() + T)), "EPIPE", "mrecv after the close");
    assert.deepEqual(await wsStatus(h), { status: 4001, reason: "done" });
    assertFailed(await settle(msend(h, "late", now() + T)), "EPIPE", "msend after the close");
    await c.closed;
  });
});

Deno.test("wsUpgrade/text: strings go to Deno as strings, and arrive as a wsAttachServer socket sends them", async () => {
  // Handed to Deno's WebSocket as the string itself (not encoded, then decoded back): a
  // lone surrogate becomes U+FFFD on the wire, as our own encoder makes it.
  const texts = ["héllo wörld ✓ 𝄞", "lone \ud800 surrogate", "", "x".repeat(70_000)];
  await withUpgrade(WS_TEXT, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    for (const text of texts) {
      await msend(h, text, now() + T);
      await wsSend(h, WS_TEXT, text, now() + T);
    }
    for (const text of texts) {
      const expected = new TextDecoder().decode(new TextEncoder().encode(text));
      assert.equal(await c.next(), expected, "msend");
      assert.equal(await c.next(), expected, "wsSend");
    }
    // Binary given as a string is still its UTF-8 bytes.
    await wsSend(h, WS_BINARY, "é", now() + T);
    assert.deepEqual(await c.next(), new Uint8Array([0xc3, 0xa9]));
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/typing: a message of the other type fails mrecv with EPROTO and is dropped; the next receive works", async () => {
  await withUpgrade(WS_TEXT, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    c.ws.send(new Uint8Array([1]));
    assertFailed(await settle(mrecv(h, now() + T)), "EPROTO", "binary on a text socket");
    c.ws.send("ok");
    assert.equal(new TextDecoder().decode(await mrecv(h, now() + T)), "ok");
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/receive: mrecvl/wsRecvl with no buffers drop the message and return its size, as over a bytestream", async () => {
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    c.ws.send(new Uint8Array(5));
    assert.equal(await mrecvl(h, [], now() + T), 5);
    c.ws.send("abc");
    assert.deepEqual(await wsRecvl(h, [], now() + T), { type: WS_TEXT, size: 3 });
    c.ws.send(new Uint8Array([7]));
    assert.deepEqual([...await mrecv(h, now() + T)], [7]);
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/deadlines and signals: a receive times out or is cancelled", async () => {
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    const started = now();
    assertFailed(await settle(mrecv(h, now() + 50)), "ETIMEDOUT", "mrecv");
    assert.ok(now() - started >= 45);
    assertFailed(await settle(mrecv(h, 0)), "ECONNRESET", "receiving is over after a timeout");
    c.ws.close();
    await c.closed;
  });
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 20);
    assertFailed(await settle(mrecv(h, { signal: ctl.signal })), "ECANCELED", "aborted mrecv");
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/close: wsDone sends our status; later sends fail with EPIPE", async () => {
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    await msend(h, new Uint8Array([1]), now() + T);
    await wsDone(h, 4000, "server done", now() + T);
    assertFailed(await settle(msend(h, new Uint8Array([2]), now() + T)), "EPIPE", "msend");
    assertFailed(await settle(wsDone(h, 1000, "", now() + T)), "EPIPE", "second wsDone");
    assert.deepEqual(await c.next(), new Uint8Array([1]), "the message sent before arrives");
    assert.deepEqual(await c.closed, { code: 4000, reason: "server done" });
    assertFailed(await settle(mrecv(h, now() + T)), "EPIPE", "mrecv after the handshake");
  });
});

Deno.test("wsUpgrade/detach: wsDetach fails with ENOTSUP and leaves the handle usable", async () => {
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    assertFailed(await settle(wsDetach(h, 1000, "", now() + T)), "ENOTSUP", "wsDetach");
    await msend(h, new Uint8Array([5]), now() + T);
    assert.deepEqual(await c.next(), new Uint8Array([5]));
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/hclose: pending calls fail with ECANCELED, the client sees the close", async () => {
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    const pending = settle(mrecv(h, -1));
    hclose(h);
    assertFailed(await pending, "ECANCELED", "pending mrecv");
    assertFailed(await settle(mrecv(h, -1)), "EBADF", "mrecv after hclose");
    assert.equal((await c.closed).code, 1005, "a close frame without a status");
  });
});

Deno.test("wsUpgrade/before open: a message sent before Deno opened the socket is delivered", async () => {
  const server = serve((request) => {
    const { response, handle } = wsUpgrade(request, WS_TEXT);
    msend(handle, "early", now() + T).finally(() => wsDone(handle, 1000, "", -1));
    return response;
  });
  try {
    const c = connectClient(server.port);
    assert.equal(await c.next(), "early");
    assert.equal((await c.closed).code, 1000);
  } finally {
    await server.close();
  }
});

Deno.test("wsUpgrade/subprotocol: the first protocol of the client's offer that the server speaks", async () => {
  const chosen = Promise.withResolvers<string | null>();
  const server = serve((request) => {
    const up = wsUpgrade(request, WS_TEXT, { protocols: ["chat.v2", "chat.v1"] });
    chosen.resolve(up.protocol);
    // Closed before Deno even opened it: the close still goes out once it opens.
    wsDone(up.handle, 1000, "", -1).finally(() => hclose(up.handle));
    return up.response;
  });
  try {
    const c = connectClient(server.port, "/", ["chat.v1", "chat.v2"]);
    await c.opened;
    assert.equal(c.ws.protocol, "chat.v1", "the client got the protocol in its header");
    assert.equal(await chosen.promise, "chat.v1");
    assert.equal((await c.closed).code, 1000);
  } finally {
    await server.close();
  }
});

Deno.test("wsUpgrade/refusals: bad requests get the HTTP answer wsAttachServer would give", async () => {
  const upgradeHeaders = {
    host: "example.com",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  };
  const refused = (request: Request, options: WsUpgradeOptions = {}) => {
    try {
      wsUpgrade(request, WS_TEXT, options);
    } catch (e) {
      assert.ok(e instanceof WsUpgradeError, `expected a WsUpgradeError, got ${e}`);
      return e;
    }
    assert.fail("the upgrade was not refused");
  };
  const plain = refused(new Request("http://example.com/", { headers: { host: "example.com" } }));
  assert.equal(plain.code, "EPROTO");
  assert.equal(plain.response.status, 400);
  const post = refused(
    new Request("http://example.com/", { method: "POST", headers: upgradeHeaders }),
  );
  assert.equal(post.response.status, 405);
  assert.equal(post.response.headers.get("allow"), "GET");
  const v8 = refused(
    new Request("http://example.com/", {
      headers: { ...upgradeHeaders, "sec-websocket-version": "8" },
    }),
  );
  assert.equal(v8.response.status, 426);
  assert.equal(v8.response.headers.get("sec-websocket-version"), "13");
  const origin = refused(
    new Request("http://example.com/", { headers: { ...upgradeHeaders, origin: "http://evil" } }),
    { checkOrigin: (o) => o === "http://example.com" },
  );
  assert.equal(origin.response.status, 403);
  const long = refused(
    new Request("http://example.com/" + "a".repeat(100), { headers: upgradeHeaders }),
    {
      maxResourceLength: 50,
    },
  );
  assert.equal(long.code, "EMSGSIZE");
  assert.equal(long.response.status, 414);
  for (const r of [plain, post, v8, origin, long]) await r.response.body?.cancel();
  assert.throws(
    () => wsUpgrade(new Request("http://example.com/", { headers: upgradeHeaders }), 2),
    (e) => e instanceof Error && (e as { code?: string }).code === "EINVAL",
  );
});

Deno.test("wsUpgrade/target: the target is checked and reported as the client sent it, as wsAttachServer does", async () => {
  const seen: string[] = [];
  const server = serve((request) => {
    try {
      const { handle, resource, host, response } = wsUpgrade(request, WS_TEXT);
      seen.push(`101 ${resource} ${host}`);
      hclose(handle);
      return response;
    } catch (e) {
      seen.push(`${(e as WsUpgradeError).response.status} ${(e as Error).message}`);
      return (e as WsUpgradeError).response;
    }
  });
  try {
    const targets = [
      "/a#frag",
      "/a/../b?x=1",
      "http://example.com?q=1",
      "http://example.com#f",
      "http://u:p@example.com/x", // credentials: refused, not dropped
      "http://other.example/y", // its own host, as wsAttachServer takes it
    ];
    for (const target of targets) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      try {
        await conn.write(upgradeRequest({ target }));
        const answer = new Uint8Array(512);
        assert.ok(await conn.read(answer) !== null);
      } finally {
        conn.close();
      }
    }
    assert.equal(seen.length, targets.length);
    assert.match(seen[0], /^400 .*fragment/);
    assert.equal(seen[1], "101 /a/../b?x=1 example.com");
    assert.equal(seen[2], "101 /?q=1 example.com"); // absolute-form without a path: the root's
    assert.match(seen[3], /^400 .*fragment/);
    assert.match(seen[4], /^400 .*authority/);
    assert.equal(seen[5], "101 /y other.example");
  } finally {
    await server.close();
  }
});

Deno.test("wsUpgrade/limits: a message over maxMessageSize closes with 1009 and fails with EMSGSIZE", async () => {
  await withUpgrade(WS_BINARY, { maxMessageSize: 100 }, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    c.ws.send(new Uint8Array(50));
    c.ws.send(new Uint8Array(101));
    assert.equal((await mrecv(h, now() + T)).length, 50, "the message before it is delivered");
    assertFailed(await settle(mrecv(h, now() + T)), "EMSGSIZE", "the large message");
    assert.equal((await c.closed).code, 1009);
  });
});

Deno.test("wsUpgrade/limits: a reader too far behind fails the connection with 1008 and ENOMEM", async () => {
  await withUpgrade(WS_BINARY, { maxQueuedMessages: 3 }, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    // The fourth message finds 3 queued: one too many (the client stops there: Deno's
    // client reports code 0 instead of the close frame when it keeps sending after the
    // server closed).
    for (let i = 0; i < 4; i++) c.ws.send(new Uint8Array([i]));
    assert.equal((await c.closed).code, 1008, "the client learns why");
    const got: number[] = [];
    for (;;) {
      const r = await settle(mrecv(h, now() + T));
      if (!r.ok) {
        assertFailed(r, "ENOMEM", "after the queued messages");
        break;
      }
      got.push(r.value[0]);
    }
    assert.deepEqual(got, [0, 1, 2], "the queued messages are still delivered, in order");
  });
  await withUpgrade(WS_BINARY, { maxBufferedBytes: 1000 }, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    // 400, 800, 1200 bytes queued: the fourth message finds the 1000-byte limit reached.
    for (let i = 0; i < 4; i++) c.ws.send(new Uint8Array(400));
    assert.equal((await c.closed).code, 1008);
    let delivered = 0;
    while ((await settle(mrecv(h, now() + T))).ok) delivered++;
    assert.equal(delivered, 3, "up to the byte limit, plus the message that crossed it");
  });
  await withUpgrade(WS_BINARY, { maxBufferedBytes: 1000 }, async (port, handle) => {
    // One message larger than the limit is still queued for a reader that is not waiting.
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    c.ws.send(new Uint8Array(5000));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await mrecv(h, now() + T)).length, 5000);
    c.ws.send("after");
    assert.deepEqual(await wsRecv(h, now() + T), { type: WS_TEXT, data: "after" });
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/limits: with the defaults, a client with 4 MiB of messages in flight gets every echo", async () => {
  // The echo's send of each 1 MiB message waits for Deno to write it, and meanwhile the
  // client's next three arrive and queue: more than a bytestream socket's 1 MiB, which
  // here, where reading cannot pause, failed the connection with 1008.
  await withUpgrade(WS_BINARY, {}, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    const echo = (async () => {
      for (let i = 0; i < 12; i++) await msend(h, await mrecv(h, now() + T), now() + T);
    })();
    const message = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 12; i++) {
      message[0] = i;
      c.ws.send(message);
      if (i >= 3) assert.equal((await c.next())[0], i - 3, "in order");
    }
    for (let i = 9; i < 12; i++) assert.equal((await c.next())[0], i);
    await echo;
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/backpressure: a send waits for Deno's buffered bytes to go below sendHighWater", async () => {
  await withUpgrade(WS_BINARY, { sendHighWater: 0 }, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    // Deadline 0: it cannot complete without waiting for 4 MiB to be written.
    assertFailed(
      await settle(msend(h, new Uint8Array(4 * 1024 * 1024), 0)),
      "ETIMEDOUT",
      "msend with deadline 0",
    );
    assertFailed(await settle(msend(h, new Uint8Array(1), now() + T)), "ECONNRESET", "send after");
    assert.equal((await c.next()).length, 4 * 1024 * 1024, "the message Deno had still arrives");
    c.ws.close();
    await c.closed;
  });
  await withUpgrade(WS_BINARY, { sendHighWater: 0 }, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    // With a deadline the sends wait their turn and all resolve.
    for (let i = 0; i < 4; i++) await msend(h, new Uint8Array(1024 * 1024), now() + T);
    for (let i = 0; i < 4; i++) assert.equal((await c.next()).length, 1024 * 1024);
    c.ws.close();
    await c.closed;
  });
});

Deno.test("wsUpgrade/close: a peer that closes while we send is a clean close (1000), not 1006", async () => {
  // Deno marks the socket CLOSED while it writes its answer to the peer's close frame,
  // and fires the close event after that: a look at the socket in between (the send
  // side's poll of bufferedAmount) must not take it for a socket Deno dropped.
  const server = upgradeServer(WS_BINARY);
  try {
    const endings: Record<string, number> = {};
    for (let round = 0; round < 20; round++) {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
      ws.binaryType = "arraybuffer";
      const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
      let got = 0;
      ws.onmessage = () => {
        if (++got === 20) ws.close(1000, "bye");
      };
      const h = await server.next();
      const message = new Uint8Array(1024);
      let code = "none";
      for (let i = 0; i < 100_000 && code === "none"; i++) {
        const r = await settle(msend(h, message, now() + T));
        if (!r.ok) code = (r.error as { code: string }).code;
      }
      await closed;
      const status = await settle(mrecv(h, now() + T)).then(() => wsStatus(h).status);
      const key = `${code}/${status}`;
      endings[key] = (endings[key] ?? 0) + 1;
      hclose(h);
    }
    assert.deepEqual(endings, { "EPIPE/1000": 20 });
  } finally {
    await server.shutdown();
  }
});

Deno.test("wsUpgrade/idleTimeout: no message either way closes with 1001", async () => {
  await withUpgrade(WS_BINARY, { idleTimeout: 80 }, async (port, handle) => {
    const c = connectClient(port);
    const h = await handle;
    await c.opened;
    const started = now();
    assert.deepEqual(await c.closed, { code: 1001, reason: "idle timeout" });
    assert.ok(now() - started >= 70);
    assertFailed(await settle(msend(h, "x", now() + T)), "EPIPE", "send after the idle close");
  });
});

Deno.test("wsUpgrade/pingInterval: Deno pings after pingInterval of silence, and closes as long after", async () => {
  // Deno's own idleTimeout pings after half of it: wsUpgrade sets twice pingInterval.
  const server = upgradeServer(WS_BINARY, { pingInterval: 1000 });
  const client = await rawClient(server.port);
  const handle = await server.next();
  try {
    const started = now();
    const peer = client.reader();
    const ping = await peer.readFrame(now() + 5000); // never answered
    const pingAt = now() - started;
    assert.equal(ping.opcode, 0x9);
    assert.ok(pingAt >= 900 && pingAt < 1900, `ping after ${pingAt} ms`);
    const close = await peer.readClose(now() + 5000);
    const closeAt = now() - started;
    assert.equal(close.code, 1001);
    assert.ok(closeAt >= 1800, `closed after ${closeAt} ms`);
    assertFailed(await settle(mrecv(handle, now() + T)), "ECONNRESET", "the handle");
  } finally {
    hclose(handle);
    await client.close();
    await server.shutdown();
  }
});

Deno.test("wsUpgrade/shutdownSignal: aborting it closes every socket with 1001", async () => {
  const shutdown = new AbortController();
  const handles: Handle[] = [];
  const server = serve((request) => {
    const { response, handle } = wsUpgrade(request, WS_TEXT, { shutdownSignal: shutdown.signal });
    handles.push(handle);
    return response;
  });
  try {
    const clients = [connectClient(server.port), connectClient(server.port)];
    await Promise.all(clients.map((c) => c.opened));
    shutdown.abort();
    for (const c of clients) assert.equal((await c.closed).code, 1001);
    for (const h of handles) {
      assertFailed(await settle(mrecv(h, now() + T)), "EPIPE", "mrecv after the shutdown");
      hclose(h);
    }
  } finally {
    await server.close();
  }
});
