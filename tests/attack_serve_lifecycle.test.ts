/**
 * Lifecycle attacks on `wsUpgrade` under a real `Deno.serve` on 127.0.0.1, with real
 * clients (raw TCP sockets that do the handshake by hand and read only when told to,
 * Deno's `WebSocket`, our own `wsAttachClient`): clients that reset or never read, many
 * senders at once, `hclose`, the `shutdownSignal` and `server.shutdown()` while calls
 * wait. Every call must end with a documented error code, and nothing may leak.
 */

import assert from "node:assert/strict";
import {
  type Handle,
  hclose,
  mrecv,
  msend,
  now,
  tcpConnect,
  WS_BINARY,
  wsAttachClient,
  wsDone,
  wsUpgrade,
  WsUpgradeError,
} from "../mod.ts";
import { isDillError } from "../protocol/errors.ts";
import { OP } from "./helpers/raw_peer/frames.ts";
import { assertFailed, assertOk, type Outcome, settle } from "./helpers/outcome.ts";
import { rawClient, serve, upgradeServer } from "./helpers/serve.ts";
import { closeQuietly, delay, within } from "./helpers/transports.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";

const MIB = 1024 * 1024;
/** Longest any call here may stay pending once what ends it happened. */
const ENDS_WITHIN = 3000;

/** A 1 MiB message whose every byte is `i`: its place in the order shows on arrival. */
const numbered = (i: number) => new Uint8Array(MIB).fill(i);

const codeOf = (o: Outcome<unknown>) =>
  o.ok ? "ok" : isDillError(o.error) ? o.error.code : String(o.error);

/** A `wsUpgrade` server (binary) with these options, a raw client and the server's handle. */
async function rawUpgraded(options: Parameters<typeof upgradeServer>[1] = {}) {
  const server = upgradeServer(WS_BINARY, options);
  const client = await rawClient(server.port);
  return { server, client, h: await server.next() };
}

/**
 * With `sendHighWater` 0 and a client that does not read: a 16 MiB send Deno holds, a
 * send waiting its turn behind it and a waiting receive, 50 ms after they were made.
 */
async function stuckCalls(h: Handle) {
  const inDeno = settle(msend(h, new Uint8Array(16 * MIB), -1));
  const waiting = settle(msend(h, new Uint8Array(10), -1));
  const receiving = settle(mrecv(h, -1));
  await delay(50);
  return { inDeno, waiting, receiving };
}

Deno.test("serve lifecycle: many senders to a client that never reads: Deno holds at most the mark plus one message, sends that time out waiting never reach the wire", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 64 * 1024 });
  try {
    const count = 24;
    const sends = Array.from(
      { length: count },
      (_, i) => settle(msend(h, numbered(i), now() + 400)),
    );
    const outcomes = await within(Promise.all(sends), ENDS_WITHIN, "the sends");
    const resolved = outcomes.filter((o) => o.ok).length;
    assert.ok(resolved < count, "the client reads nothing: some sends must time out");
    // Every failure is the timeout itself or libdill's "can no longer send" after it.
    for (const o of outcomes) assert.ok(["ok", "ETIMEDOUT", "ECONNRESET"].includes(codeOf(o)));
    // Now read what reached the wire: whole messages, in order, and only those Deno had:
    // the ones that resolved and at most the one that timed out in Deno's buffer.
    const peer = client.reader();
    let arrived = 0;
    for (;;) {
      const f = await peer.readFrame(now() + 500).catch(() => null);
      if (f === null) break;
      assert.equal(f.opcode, OP.BINARY);
      assert.ok(f.fin, "a whole message per frame");
      assert.equal(f.payload.length, MIB, "a whole message");
      assert.ok(f.payload.every((b) => b === arrived), `message ${arrived} arrives in its place`);
      arrived++;
    }
    assert.ok(arrived >= resolved, "every send that resolved was delivered");
    assert.ok(
      arrived <= resolved + 1,
      `${arrived} messages reached the wire for ${resolved} sends that resolved: Deno held sends that failed`,
    );
  } finally {
    hclose(h);
    await client.close();
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: a send that times out waiting its turn fails those behind it; the one ahead still goes", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 0 });
  try {
    // The first send fills every buffer on the way (the client reads nothing yet); the
    // next three wait their turn, the middle one with a short deadline.
    const sends = [
      settle(msend(h, new Uint8Array(16 * MIB), now() + 5000)), // more than the kernel takes
      settle(msend(h, numbered(1), now() + 5000)),
      settle(msend(h, new Uint8Array(10).fill(2), now() + 200)),
      settle(msend(h, numbered(3), now() + 5000)),
    ];
    assert.equal(codeOf(await within(sends[2], ENDS_WITHIN, "the short send")), "ETIMEDOUT");
    assert.equal(codeOf(await within(sends[3], ENDS_WITHIN, "the send behind")), "ECONNRESET");
    // The client reads: the first message, then the one that was ahead of the timeout.
    const peer = client.reader();
    assert.equal((await peer.readFrame(now() + 3000)).payload.length, 16 * MIB);
    const ahead = await peer.readFrame(now() + 3000);
    assert.equal(ahead.payload.length, MIB);
    assert.ok(ahead.payload.every((b) => b === 1), "the send ahead arrives whole, next");
    for (const i of [0, 1]) {
      assert.equal(codeOf(await within(sends[i], ENDS_WITHIN, `send ${i}`)), "ok");
    }
  } finally {
    hclose(h);
    await client.close();
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: sends waiting their turn are bounded by maxWaitingCalls (EBUSY past it)", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 0, maxWaitingCalls: 4 });
  try {
    // The first goes to Deno and waits for it to be written; 4 wait their turn; 5 more fail.
    const sends = Array.from({ length: 10 }, (_, i) => settle(msend(h, numbered(i), now() + 300)));
    const codes = (await within(Promise.all(sends), ENDS_WITHIN, "the sends")).map(codeOf);
    assert.deepEqual(codes.slice(5), Array(5).fill("EBUSY"), codes.join());
  } finally {
    hclose(h);
    await client.close();
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: hclose while a send waits in Deno, a send waits its turn and a receive waits: all fail ECANCELED", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 0 });
  try {
    const { inDeno, waiting, receiving } = await stuckCalls(h);
    hclose(h);
    assertFailed(await within(inDeno, ENDS_WITHIN, "send in Deno"), "ECANCELED", "send in Deno");
    assertFailed(await within(waiting, ENDS_WITHIN, "waiting send"), "ECANCELED", "waiting send");
    assertFailed(await within(receiving, ENDS_WITHIN, "receive"), "ECANCELED", "receive");
    assertFailed(await settle(msend(h, new Uint8Array(1), -1)), "EBADF", "a send after hclose");
  } finally {
    await client.close();
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: shutdownSignal while sends wait: those waiting their turn fail with EPIPE at once, the close frame follows the messages Deno had", async () => {
  const shutdown = new AbortController();
  const { server, client, h } = await rawUpgraded({
    sendHighWater: 0,
    shutdownSignal: shutdown.signal,
  });
  try {
    // 16 MiB: more than the socket buffers take, so Deno keeps holding some of it.
    const inDeno = settle(msend(h, new Uint8Array(16 * MIB).fill(5), -1));
    const turns = [1, 2, 3].map((i) => settle(msend(h, numbered(i), -1)));
    await delay(50);
    shutdown.abort();
    for (const t of turns) {
      assertFailed(await within(t, ENDS_WITHIN, "a waiting send"), "EPIPE", "a waiting send");
    }
    assertFailed(await settle(msend(h, numbered(9), -1)), "EPIPE", "a send after the shutdown");
    // The client reads now: the message Deno had, whole, then the close frame.
    const peer = client.reader();
    const { close, before } = await peer.readUntilClose(now() + ENDS_WITHIN);
    assert.deepEqual(before.map((f) => [f.payload.length, f.payload[0]]), [[16 * MIB, 5]]);
    assert.equal(close.code, 1001);
    assertOk(await within(inDeno, ENDS_WITHIN, "the send Deno had"), "the send Deno had");
  } finally {
    hclose(h);
    await client.close();
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: wsDone while sends wait their turn: the close frame comes after them, every send resolves", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 0 });
  try {
    const inDeno = settle(msend(h, new Uint8Array(16 * MIB).fill(5), -1));
    const turns = [1, 2].map((i) => settle(msend(h, new Uint8Array(10).fill(i), -1)));
    await delay(50);
    await wsDone(h, 4000, "done", now() + ENDS_WITHIN);
    const peer = client.reader();
    const { close, before } = await peer.readUntilClose(now() + ENDS_WITHIN);
    assert.deepEqual(before.map((f) => [f.payload.length, f.payload[0]]), [
      [16 * MIB, 5],
      [10, 1],
      [10, 2],
    ]);
    assert.equal(close.code, 4000);
    for (const p of [inDeno, ...turns]) assertOk(await within(p, ENDS_WITHIN, "send"), "send");
  } finally {
    hclose(h);
    await client.close();
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: server.shutdown() while Deno holds unwritten bytes: the waiting send fails (it was not written), the receive ends", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 0 });
  let stopping: Promise<void> | null = null;
  try {
    const sending = settle(msend(h, new Uint8Array(16 * MIB), -1));
    const receiving = settle(mrecv(h, -1));
    await delay(50);
    // Deno drops what it holds and says nothing (no close event); the client, which reads
    // nothing, keeps the connection, so shutdown() itself waits for it.
    stopping = server.shutdown();
    assertFailed(await within(sending, ENDS_WITHIN, "send"), "ECONNRESET", "the dropped send");
    assertFailed(await within(receiving, ENDS_WITHIN, "receive"), "ECONNRESET", "the receive");
  } finally {
    hclose(h);
    await client.close();
    await (stopping ?? server.shutdown());
  }
});

Deno.test("serve lifecycle: server.shutdown() with an idle WebSocket open: a waiting receive ends with EPIPE", async () => {
  const { server, client, h } = await rawUpgraded();
  try {
    const receiving = settle(mrecv(h, -1));
    await delay(20);
    const stopping = server.shutdown();
    assertFailed(await within(receiving, ENDS_WITHIN, "receive"), "EPIPE", "the receive");
    await client.close();
    await stopping;
  } finally {
    hclose(h);
    await client.close();
  }
});

Deno.test("serve lifecycle: the client resets while sends wait and a receive waits: all fail with ECONNRESET", async () => {
  const { server, client, h } = await rawUpgraded({ sendHighWater: 0 });
  try {
    const { inDeno, waiting, receiving } = await stuckCalls(h);
    await client.close(); // unread bytes in its buffer: the kernel answers with a reset
    for (const [what, p] of [["send in Deno", inDeno], ["waiting send", waiting]] as const) {
      assertFailed(await within(p, ENDS_WITHIN, what), "ECONNRESET", what);
    }
    assertFailed(await within(receiving, ENDS_WITHIN, "receive"), "ECONNRESET", "receive");
  } finally {
    hclose(h);
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: the client resets mid-message: the receive fails with ECONNRESET", async () => {
  const { server, client, h } = await rawUpgraded();
  try {
    const receiving = settle(mrecv(h, -1));
    // A masked binary frame announcing 1000 bytes, of which 10 come.
    await client.conn.write(new Uint8Array([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, ...Array(10)]));
    await delay(20);
    // Unread bytes on the client's side make its close a reset.
    await msend(h, new Uint8Array(10), now() + ENDS_WITHIN);
    await delay(20);
    await client.close();
    assertFailed(await within(receiving, ENDS_WITHIN, "receive"), "ECONNRESET", "receive");
  } finally {
    hclose(h);
    await server.shutdown();
  }
});

Deno.test("serve lifecycle: the client goes away before Deno opened the socket: calls made in the handler end", async () => {
  const calls = Promise.withResolvers<Promise<string>[]>();
  const server = serve((request) => {
    const { response, handle } = wsUpgrade(request, WS_BINARY);
    // Made before Deno opened the socket; the client is gone by then.
    const made = [settle(msend(handle, new Uint8Array(5), -1)), settle(mrecv(handle, -1))];
    Promise.all(made).finally(() => hclose(handle));
    calls.resolve(made.map((p) => p.then(codeOf)));
    return response;
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(upgradeRequest());
    conn.close(); // before reading the 101
    const [sent, received] = await within(
      Promise.all(await calls.promise),
      ENDS_WITHIN,
      "the calls",
    );
    assert.ok(["ok", "ECONNRESET", "EPIPE"].includes(sent), `send: ${sent}`);
    assert.ok(["ECONNRESET", "EPIPE"].includes(received), `receive: ${received}`);
  } finally {
    await server.close();
  }
});

Deno.test("serve lifecycle: a request cut mid-handshake never reaches the handler, and leaves nothing behind", async () => {
  let upgraded = 0;
  const server = serve((request) => {
    upgraded++;
    return wsUpgrade(request, WS_BINARY).response;
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(upgradeRequest().subarray(0, 40));
    conn.close();
    await delay(50);
    assert.equal(upgraded, 0);
  } finally {
    await server.close();
  }
});

Deno.test("serve lifecycle: wsUpgrade twice on one request: the second is refused (EPROTO, 400) and the first handle works", async () => {
  const second = Promise.withResolvers<unknown>();
  const server = serve((request) => {
    const first = wsUpgrade(request, WS_BINARY);
    try {
      wsUpgrade(request, WS_BINARY);
      second.resolve("upgraded twice");
    } catch (e) {
      second.resolve(e);
    }
    (async () => {
      await msend(first.handle, await mrecv(first.handle, now() + ENDS_WITHIN), -1);
    })().catch(() => {}).finally(() => hclose(first.handle));
    return first.response;
  });
  try {
    const tcp = await tcpConnect({ hostname: "127.0.0.1", port: server.port }, now() + 2000);
    const { handle: c } = await wsAttachClient(tcp, WS_BINARY, "/", "x", now() + 2000);
    try {
      const e = await second.promise;
      assert.ok(e instanceof WsUpgradeError, `expected a WsUpgradeError, got ${String(e)}`);
      assert.equal(e.code, "EPROTO");
      assert.equal(e.response.status, 400);
      await e.response.body?.cancel();
      await msend(c, new Uint8Array([7]), now() + 2000);
      assert.deepEqual([...await mrecv(c, now() + 2000)], [7], "the first upgrade echoes");
    } finally {
      closeQuietly(c);
    }
  } finally {
    await server.close();
  }
});

Deno.test("serve lifecycle: a plain request to a wsUpgrade handler gets the refusal's 400 over real HTTP", async () => {
  const server = serve((request) => {
    try {
      return wsUpgrade(request, WS_BINARY).response;
    } catch (e) {
      if (e instanceof WsUpgradeError) return e.response;
      throw e;
    }
  });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /upgrade|websocket/i);
  } finally {
    await server.close();
  }
});

Deno.test("serve lifecycle: our wsAttachClient closes while the server's sends wait: every call ends, the receive with ECONNRESET or EPIPE", async () => {
  const server = upgradeServer(WS_BINARY, { sendHighWater: 0 });
  const tcp = await tcpConnect({ hostname: "127.0.0.1", port: server.port }, now() + 2000);
  const { handle: c } = await wsAttachClient(tcp, WS_BINARY, "/", "x", now() + 2000);
  const h = await server.next();
  try {
    const { inDeno, waiting, receiving } = await stuckCalls(h);
    hclose(c); // our client does not read: it holds unread bytes, so this is a reset
    // Every call ends. The sends may have resolved: our client reads a message in
    // progress whole whether its application reads or not, and on a busy machine it can
    // take all 16 MiB before the reset. The receive can only fail.
    for (const [what, p] of [["send in Deno", inDeno], ["waiting", waiting], ["recv", receiving]]) {
      const code = codeOf(
        await within(p as Promise<Outcome<unknown>>, ENDS_WITHIN, what as string),
      );
      const allowed = what === "recv" ? ["ECONNRESET", "EPIPE"] : ["ok", "ECONNRESET", "EPIPE"];
      assert.ok(allowed.includes(code), `${what}: ${code}`);
    }
  } finally {
    hclose(h);
    await server.shutdown();
  }
});
