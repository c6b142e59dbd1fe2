/**
 * wsUpgrade against real clients other than the one Deno.serve tests use: npm `ws`
 * (fragments, pings between fragments, every length boundary, close codes both ways),
 * and a WebSocketStream-shaped echo over Deno.serve with Deno's client.
 */

import assert from "node:assert/strict";
import {
  hclose,
  mrecvText,
  msend,
  now,
  WS_BINARY,
  WS_TEXT,
  wsDone,
  wsSend,
  wsStatus,
  wsStream,
} from "../mod.ts";
import {
  build,
  describe,
  ECHO_SPECS,
  echoBack,
  FRAGMENT_SPECS,
  fragmentsOf,
  PING_PAYLOADS,
} from "./peers/common.ts";
import { NodePeer } from "./peers/node_peer.ts";
import { assertFailed, settle } from "./helpers/outcome.ts";
import { connectClient, upgradeServer } from "./helpers/serve.ts";

Deno.test("wsUpgrade/npm ws: echoes every size and type, fragmented messages arrive whole, pings are answered", async () => {
  const server = upgradeServer(WS_BINARY);
  const peer = NodePeer.connect(`ws://127.0.0.1:${server.port}/`);
  const h = await server.next();
  try {
    await peer.opened;
    const echoing = echoBack(h, [...ECHO_SPECS, ...FRAGMENT_SPECS]);
    for (const spec of ECHO_SPECS) await peer.send(build(spec));
    for (const spec of FRAGMENT_SPECS) {
      await peer.sendFragments(build(spec).type, fragmentsOf(spec), PING_PAYLOADS[1]);
    }
    await echoing;
    for (const spec of [...ECHO_SPECS, ...FRAGMENT_SPECS]) {
      const got = await peer.inbox.next(`echo of ${describe(spec)}`);
      const want = build(spec);
      assert.equal(got.type, want.type, describe(spec));
      assert.deepEqual(got.data, want.data, describe(spec));
    }
    for (const _ of FRAGMENT_SPECS) {
      assert.deepEqual(await peer.pongs.next("pong"), PING_PAYLOADS[1], "Deno answered the ping");
    }
    await wsDone(h, 4002, "enough", now() + 5000);
    assert.deepEqual(await peer.closed, { code: 4002, reason: "enough" });
  } finally {
    hclose(h);
    await peer.dispose();
    await server.shutdown();
  }
});

Deno.test("wsUpgrade/npm ws: the client's close status reaches wsStatus; text arrives as text", async () => {
  const server = upgradeServer(WS_TEXT);
  const peer = NodePeer.connect(`ws://127.0.0.1:${server.port}/`);
  const h = await server.next();
  try {
    await peer.opened;
    await peer.sendFragments(WS_TEXT, [new Uint8Array([0xc3]), new Uint8Array([0xa9])]);
    assert.equal(await mrecvText(h, now() + 5000), "é", "a code point split across fragments");
    peer.ws.close(4003, "client done");
    assertFailed(await settle(mrecvText(h, now() + 5000)), "EPIPE", "mrecv after the close");
    assert.deepEqual(await wsStatus(h), { status: 4003, reason: "client done" });
    await peer.closed;
  } finally {
    hclose(h);
    await peer.dispose();
    await server.shutdown();
  }
});

Deno.test("wsUpgrade/wsStream: a WebSocketStream-shaped echo (pipeTo) under Deno.serve", async () => {
  const server = upgradeServer(WS_BINARY);
  const c = connectClient(server.port);
  const h = await server.next();
  const wss = wsStream(h);
  const echo = wss.readable.pipeTo(wss.writable);
  try {
    await c.opened;
    c.ws.send("text");
    assert.equal(await c.next(), "text");
    c.ws.send(new Uint8Array([1, 2, 3]));
    assert.deepEqual(await c.next(), new Uint8Array([1, 2, 3]));
    c.ws.close(3000, "done");
    await echo;
    assert.deepEqual(await wss.closed, { closeCode: 3000, reason: "done" });
    assert.equal((await c.closed).code, 3000);
  } finally {
    await server.shutdown();
  }
});

Deno.test("wsUpgrade/npm ws: text keeps a leading BOM, in messages and in the close reason", async () => {
  const server = upgradeServer(WS_TEXT);
  const peer = NodePeer.connect(`ws://127.0.0.1:${server.port}/`);
  const h = await server.next();
  try {
    await peer.opened;
    await msend(h, "\uFEFFhi", now() + 5000);
    await wsSend(h, WS_TEXT, new Uint8Array([0xef, 0xbb, 0xbf, 0x79, 0x6f]), now() + 5000);
    assert.deepEqual(await peer.inbox.next("the string"), { type: WS_TEXT, data: "\uFEFFhi" });
    assert.deepEqual(await peer.inbox.next("the bytes"), { type: WS_TEXT, data: "\uFEFFyo" });
    await wsDone(h, 4000, "\uFEFFbye", now() + 5000);
    assert.deepEqual(await peer.closed, { code: 4000, reason: "\uFEFFbye" });
  } finally {
    hclose(h);
    await peer.dispose();
    await server.shutdown();
  }
});
