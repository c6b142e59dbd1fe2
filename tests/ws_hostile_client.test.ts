/**
 * A hostile server against OUR CLIENT (wsAttachClient): a raw peer writes bytes by hand
 * over TCP (a raw `Deno.Conn`) and over an in-memory pipe, breaking one rule of RFC 6455
 * per test: bad 101 answers, masked frames, every framing rule, bad close frames. Each
 * test checks the close code our client sends, the error our API reports, and that it
 * happens well before the deadline.
 */

import assert from "node:assert/strict";
import {
  mrecv,
  now,
  WS_BINARY,
  WS_TEXT,
  wsAttachClient,
  type WsClientOptions,
  wsRecv,
} from "../mod.ts";
import { assertFailed, assertOk, settle } from "./helpers/outcome.ts";
import { assertQuick } from "./helpers/assert_quick.ts";
import { concat } from "./helpers/raw_peer/bytes.ts";
import { closeBody, frame, OP } from "./helpers/raw_peer/frames.ts";
import { acceptKey, checkClientRequest, switchingProtocols } from "./helpers/raw_peer/handshake.ts";
import { type RawPeer } from "./helpers/raw_peer/peer.ts";
import { connectRaw, Rig, TRANSPORTS } from "./helpers/raw_peer/rig.ts";
import { OUR_CLIENT, rigTests } from "./helpers/raw_peer/our_side.ts";
import { type FrameRule, testFrameRules } from "./helpers/raw_peer/frame_rules.ts";
import * as shared from "./helpers/raw_peer/shared_behaviour.ts";
import { checkPingFlood } from "./helpers/raw_peer/ping_flood.ts";

const dec = new TextDecoder();

// ---- framing rules ---------------------------------------------------------------------

/** Masking is the framing rule that differs by side: a server must not mask (RFC 6455 5.1). */
const MASKED_BY_THE_SERVER: FrameRule[] = [
  {
    name: "masked server frame",
    send: (p) => [p.frame({ opcode: OP.TEXT, payload: "hi", mask: true })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "masked server close frame",
    send: (p) => [p.frame({ opcode: OP.CLOSE, payload: closeBody(1000), mask: true })],
    code: 1002,
    error: "EPROTO",
  },
];

testFrameRules(OUR_CLIENT, MASKED_BY_THE_SERVER);

// ---- behaviour that is not a violation -------------------------------------------------

for (const transport of TRANSPORTS) {
  const test = rigTests(OUR_CLIENT, transport);

  test(
    "pings are answered (masked) with the same payload while the app is not reading",
    (rig) =>
      shared.pongPerPing(rig.peer, [
        new Uint8Array(0),
        crypto.getRandomValues(new Uint8Array(125)),
      ]),
  );

  test(
    "10 pings back to back get 10 pongs, in order, same payloads",
    (rig) => shared.pongPerPing(rig.peer, shared.TEN_PINGS),
  );

  test("a ping between fragments is answered; the message is reassembled", async (rig) => {
    const p = rig.peer;
    await p.send(concat(
      p.frame({ opcode: OP.BINARY, fin: false, payload: new Uint8Array([1, 2]) }),
      p.frame({ opcode: OP.PING, payload: "between" }),
      p.frame({ opcode: OP.CONT, fin: false, payload: new Uint8Array([3]) }),
      p.frame({ opcode: OP.CONT, payload: new Uint8Array([4, 5]) }),
    ));
    await shared.expectPong(p, "between");
    assert.deepEqual(await mrecv(rig.ws, now() + 2000), new Uint8Array([1, 2, 3, 4, 5]));
  });

  test("an unsolicited pong is ignored", (rig) =>
    shared.unsolicitedPongIsIgnored(
      rig,
      { type: WS_BINARY, data: new Uint8Array([42]) },
      { type: WS_BINARY, data: new Uint8Array([43]) },
    ));

  test(
    "closing handshake: echo, messages delivered, EPIPE; the client waits for the server's EOF",
    (rig) =>
      shared.closingHandshake(
        rig,
        transport,
        [{ type: WS_BINARY, data: new Uint8Array([1]) }, { type: WS_TEXT, data: "two" }],
        { code: 1001, reason: "going" },
      ),
  );

  for (const code of [1000, 1001, 3000, 4999]) {
    test(
      `close code ${code} is accepted, echoed and reported by wsStatus`,
      (rig) => shared.closeIsEchoed(rig, transport, { code, reason: "why not" }),
    );
  }

  test(
    "our wsDone, then the server's close: status reported, no second close",
    (rig) => shared.ourCloseFirst(rig, transport, { code: 1000, reason: "" }, []),
  );

  test(
    "EOF without a close frame: pending mrecv ECONNRESET, wsStatus 1006",
    (rig) => shared.eofWithoutClose(rig, []),
  );

  test(
    "frames in the same packet as the 101 answer are received",
    {
      // Unmasked, as a server sends them.
      after: concat(
        frame({ opcode: OP.TEXT, payload: "early" }),
        frame({ opcode: OP.PING, payload: "hi" }),
        frame({ opcode: OP.BINARY, payload: new Uint8Array([5, 6]) }),
      ),
    },
    async (rig) => {
      assert.deepEqual(await wsRecv(rig.ws, now() + 2000), { type: WS_TEXT, data: "early" });
      assert.deepEqual(await wsRecv(rig.ws, now() + 2000), {
        type: WS_BINARY,
        data: new Uint8Array([5, 6]),
      });
      await shared.expectPong(rig.peer, "hi");
    },
  );
}

rigTests(OUR_CLIENT, "pipe")(
  "a ping flood from a peer that does not read costs bounded memory; every ping is answered in order",
  (rig) => checkPingFlood(rig.peer),
);

// ---- bad 101 answers -------------------------------------------------------------------

/** Runs our client against a raw server answering with `answer(key)`; returns the outcome. */
async function answeredWith(
  answer: (key: string) => Uint8Array | string | null,
  options: WsClientOptions = {},
  deadlineMs = 2000,
): Promise<{ code: string | undefined; elapsed: number; peer: RawPeer }> {
  const { ours, peer } = await connectRaw("tcp", "server");
  try {
    const t0 = now();
    const attaching = settle(
      wsAttachClient(ours, 0, "/chat", "example.com", now() + deadlineMs, options),
    );
    const key = checkClientRequest(await peer.readRequest());
    const bytesOut = answer(key);
    if (bytesOut !== null) await peer.send(bytesOut);
    const outcome = await attaching;
    const elapsed = now() - t0;
    if (outcome.ok) {
      await new Rig(outcome.value.handle, peer, outcome.value.headers).close();
      assert.fail("wsAttachClient accepted a bad answer");
    }
    await peer.expectEnd(); // our client closed the connection
    return { code: (outcome.error as { code?: string }).code, elapsed, peer };
  } finally {
    await peer.close();
  }
}

/** A 101 answer with its header lines edited: `drop` removes by name, `add` appends. */
function edited101(key: string, drop: string[] = [], add: string[] = []): string {
  const lines = dec.decode(switchingProtocols(key)).split("\r\n").filter((l) => l !== "");
  const kept = lines.filter((l) =>
    !drop.some((d) => l.toLowerCase().startsWith(d.toLowerCase() + ":"))
  );
  return [...kept, ...add].join("\r\n") + "\r\n\r\n";
}

const BAD_ANSWERS: {
  name: string;
  answer: (key: string) => string;
  options?: WsClientOptions;
}[] = [
  {
    name: "status 200",
    answer: () => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
  },
  {
    name: "status 400",
    answer: () => "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
  },
  {
    name: "status 101 over HTTP/1.0",
    answer: (key) => edited101(key).replace("HTTP/1.1", "HTTP/1.0"),
  },
  {
    name: "missing Upgrade",
    answer: (key) => edited101(key, ["Upgrade"]),
  },
  {
    name: "Upgrade: h2c",
    answer: (key) => edited101(key, ["Upgrade"], ["Upgrade: h2c"]),
  },
  {
    name: "missing Connection",
    answer: (key) => edited101(key, ["Connection"]),
  },
  {
    name: "missing Sec-WebSocket-Accept",
    answer: (key) => edited101(key, ["Sec-WebSocket-Accept"]),
  },
  {
    name: "wrong Sec-WebSocket-Accept (for another key)",
    answer: (key) =>
      edited101(key, ["Sec-WebSocket-Accept"], [
        `Sec-WebSocket-Accept: ${acceptKey("dGhlIHNhbXBsZSBub25jZQ==")}`,
      ]),
  },
  {
    name: "Sec-WebSocket-Accept of the key itself (no hashing)",
    answer: (key) => edited101(key, ["Sec-WebSocket-Accept"], [`Sec-WebSocket-Accept: ${key}`]),
  },
  {
    name: "a subprotocol although none was offered",
    answer: (key) => edited101(key, [], ["Sec-WebSocket-Protocol: chat"]),
  },
  {
    name: "a subprotocol that was not offered",
    answer: (key) => edited101(key, [], ["Sec-WebSocket-Protocol: superchat"]),
    options: { protocols: ["chat"] },
  },
  {
    name: "two subprotocols",
    answer: (key) => edited101(key, [], ["Sec-WebSocket-Protocol: chat, superchat"]),
    options: { protocols: ["chat", "superchat"] },
  },
  {
    name: "Sec-WebSocket-Extensions: permessage-deflate, not offered",
    answer: (key) => edited101(key, [], ["Sec-WebSocket-Extensions: permessage-deflate"]),
    options: { perMessageDeflate: false },
  },
  {
    name: "Sec-WebSocket-Extensions: x-unknown",
    answer: (key) => edited101(key, [], ["Sec-WebSocket-Extensions: x-unknown"]),
  },
  {
    name: "garbage",
    answer: () => "\x00\x01\x02 not http\r\n\r\n",
  },
];

for (const bad of BAD_ANSWERS) {
  Deno.test(`ws client handshake: ${bad.name} → EPROTO`, async () => {
    const { code, elapsed } = await answeredWith(bad.answer, bad.options);
    assert.equal(code, "EPROTO");
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  });
}

Deno.test("ws client handshake: a 101 with the offered subprotocol is accepted", async () => {
  const { ours, peer } = await connectRaw("tcp", "server");
  const attaching = settle(
    wsAttachClient(ours, 0, "/chat", "example.com", now() + 2000, {
      protocols: ["chat", "superchat"],
    }),
  );
  try {
    const req = await peer.readRequest();
    assert.equal(req.headers.get("sec-websocket-protocol"), "chat, superchat");
    const key = checkClientRequest(req);
    await peer.send(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n" +
        `sec-websocket-accept: ${acceptKey(key)}\r\nSec-WebSocket-Protocol: superchat\r\n` +
        "Set-Cookie: a=b\r\nServer: raw\r\n\r\n",
    );
    const attached = assertOk(await attaching, "wsAttachClient");
    assert.equal(attached.protocol, "superchat");
    assert.equal(attached.headers.get("server"), "raw");
    await new Rig(attached.handle, peer, attached.headers).close();
  } finally {
    await peer.close();
  }
});

Deno.test("ws client handshake: the server stalls → ETIMEDOUT at the deadline, socket closed", async () => {
  const { code, elapsed } = await answeredWith(() => null, {}, 300);
  assert.equal(code, "ETIMEDOUT");
  assert.ok(elapsed >= 250 && elapsed < 1000, `failed after ${elapsed.toFixed(0)} ms`);
});

Deno.test("ws client handshake: half an answer then a stall → ETIMEDOUT", async () => {
  const { code, elapsed } = await answeredWith(
    () => "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n",
    {},
    300,
  );
  assert.equal(code, "ETIMEDOUT");
  assert.ok(elapsed >= 250 && elapsed < 1000, `failed after ${elapsed.toFixed(0)} ms`);
});

Deno.test("ws client handshake: the server closes before answering → ECONNRESET", async () => {
  const { ours, peer } = await connectRaw("tcp", "server");
  try {
    const t0 = now();
    const attaching = settle(wsAttachClient(ours, 0, "/chat", "example.com", now() + 2000));
    await peer.readRequest();
    await peer.send("HTTP/1.1 101 Swi");
    await peer.wire.closeWrite();
    assertFailed(await attaching, "ECONNRESET", "wsAttachClient");
    assertQuick(t0, "the failure");
  } finally {
    await peer.close();
  }
});

Deno.test("ws client handshake: an answer head over httpLimits.maxHeadBytes → EMSGSIZE", async () => {
  const { code } = await answeredWith(
    (key) => edited101(key, [], [`X-Big: ${"b".repeat(2000)}`]),
    { httpLimits: { maxHeadBytes: 1024 } },
  );
  assert.equal(code, "EMSGSIZE");
});
