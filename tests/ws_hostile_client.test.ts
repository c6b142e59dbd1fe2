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
  msend,
  now,
  WS_BINARY,
  WS_TEXT,
  wsAttachClient,
  type WsClientOptions,
  wsDone,
  wsRecv,
  wsStatus,
} from "../mod.ts";
import { assertFailed, assertOk, settle } from "./helpers/outcome.ts";
import { assertQuick } from "./helpers/assert_quick.ts";
import { bytes, concat } from "./helpers/raw_peer/bytes.ts";
import { closeBody, OP } from "./helpers/raw_peer/frames.ts";
import { acceptKey, checkClientRequest, switchingProtocols } from "./helpers/raw_peer/handshake.ts";
import { WireError } from "./helpers/raw_peer/wire.ts";
import { type RawPeer } from "./helpers/raw_peer/peer.ts";
import { expectNumberedPongs, numbered } from "./helpers/raw_peer/numbered_pongs.ts";
import { connectRaw, openClient, Rig, TRANSPORTS } from "./helpers/raw_peer/rig.ts";
import { checkFrameRule, FRAME_RULES } from "./helpers/raw_peer/frame_rules.ts";

const dec = new TextDecoder();

// ---- framing rules ---------------------------------------------------------------------

for (const transport of TRANSPORTS) {
  Deno.test(`ws client/${transport}: masked server frame → 1002, EPROTO`, async () => {
    const rig = await openClient(transport);
    try {
      await checkFrameRule(rig, {
        send: (p) => [p.frame({ opcode: OP.TEXT, payload: "hi", mask: true })],
        code: 1002,
        error: "EPROTO",
      });
    } finally {
      await rig.close();
    }
  });

  Deno.test(`ws client/${transport}: masked server close frame → 1002, EPROTO`, async () => {
    const rig = await openClient(transport);
    try {
      await checkFrameRule(rig, {
        send: (p) => [p.frame({ opcode: OP.CLOSE, payload: closeBody(1000), mask: true })],
        code: 1002,
        error: "EPROTO",
      });
    } finally {
      await rig.close();
    }
  });

  for (const rule of FRAME_RULES) {
    Deno.test(`ws client/${transport}: ${rule.name} → ${rule.code}, ${rule.error}`, async () => {
      const rig = await openClient(transport, { options: rule.options });
      try {
        await checkFrameRule(rig, rule);
      } finally {
        await rig.close();
      }
    });
  }
}

// ---- behaviour that is not a violation -------------------------------------------------

for (const transport of TRANSPORTS) {
  const name = (s: string) => `ws client/${transport}: ${s}`;

  Deno.test(
    name("pings are answered (masked) with the same payload while the app is not reading"),
    async () => {
      const rig = await openClient(transport);
      try {
        const t0 = now();
        const payloads = [new Uint8Array(0), crypto.getRandomValues(new Uint8Array(125))];
        await rig.peer.send(
          concat(...payloads.map((payload) => rig.peer.frame({ opcode: OP.PING, payload }))),
        );
        for (const payload of payloads) {
          const f = await rig.peer.readFrame(); // readFrame checks that it is masked
          assert.equal(f.opcode, OP.PONG);
          assert.deepEqual(f.payload, payload);
        }
        assertQuick(t0, "the pongs");
      } finally {
        await rig.close();
      }
    },
  );

  Deno.test(name("10 pings back to back get 10 pongs, in order, same payloads"), async () => {
    const rig = await openClient(transport);
    try {
      const pings = Array.from({ length: 10 }, (_, i) => bytes(`ping ${i} ${"x".repeat(i * 10)}`));
      await rig.peer.send(
        concat(...pings.map((payload) => rig.peer.frame({ opcode: OP.PING, payload }))),
      );
      for (const payload of pings) {
        const f = await rig.peer.readFrame(); // readFrame checks that it is masked
        assert.equal(f.opcode, OP.PONG);
        assert.deepEqual(f.payload, payload);
      }
    } finally {
      await rig.close();
    }
  });

  Deno.test(name("a ping between fragments is answered; the message is reassembled"), async () => {
    const rig = await openClient(transport);
    try {
      const p = rig.peer;
      await p.send(concat(
        p.frame({ opcode: OP.BINARY, fin: false, payload: new Uint8Array([1, 2]) }),
        p.frame({ opcode: OP.PING, payload: "between" }),
        p.frame({ opcode: OP.CONT, fin: false, payload: new Uint8Array([3]) }),
        p.frame({ opcode: OP.CONT, payload: new Uint8Array([4, 5]) }),
      ));
      const pong = await p.readFrame();
      assert.equal(pong.opcode, OP.PONG);
      assert.equal(dec.decode(pong.payload), "between");
      assert.deepEqual(await mrecv(rig.ws, now() + 2000), new Uint8Array([1, 2, 3, 4, 5]));
    } finally {
      await rig.close();
    }
  });

  Deno.test(name("an unsolicited pong is ignored"), async () => {
    const rig = await openClient(transport);
    try {
      const p = rig.peer;
      await p.send(concat(
        p.frame({ opcode: OP.PONG, payload: "unasked" }),
        p.frame({ opcode: OP.BINARY, payload: new Uint8Array([42]) }),
      ));
      assert.deepEqual(await mrecv(rig.ws, now() + 2000), new Uint8Array([42]));
      await msend(rig.ws, new Uint8Array([43]), now() + 2000);
      const f = await p.readFrame();
      assert.equal(f.opcode, OP.BINARY);
      assert.deepEqual(f.payload, new Uint8Array([43]));
    } finally {
      await rig.close();
    }
  });

  Deno.test(
    name(
      "closing handshake: echo, messages delivered, EPIPE; the client waits for the server's EOF",
    ),
    async () => {
      const rig = await openClient(transport);
      try {
        const p = rig.peer;
        await p.send(concat(
          p.frame({ opcode: OP.BINARY, payload: new Uint8Array([1]) }),
          p.frame({ opcode: OP.TEXT, payload: "two" }),
          p.frame({ opcode: OP.CLOSE, payload: closeBody(1001, "going") }),
        ));
        const echo = await p.readClose();
        assert.equal(echo.code, 1001);
        if (transport === "tcp") {
          // The client leaves closing TCP to the server (RFC 6455 7.1.1).
          await assert.rejects(
            p.read(1, now() + 100),
            (e) => e instanceof WireError && e.kind === "timeout",
          );
        }
        await p.wire.closeWrite();
        await p.expectEnd(); // then it ends its side too
        assert.deepEqual(await wsRecv(rig.ws, now() + 2000), {
          type: WS_BINARY,
          data: new Uint8Array([1]),
        });
        assert.deepEqual(await wsRecv(rig.ws, now() + 2000), { type: WS_TEXT, data: "two" });
        assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPIPE", "mrecv after close");
        assert.deepEqual(await wsStatus(rig.ws), { status: 1001, reason: "going" });
      } finally {
        await rig.close();
      }
    },
  );

  for (const code of [1000, 1001, 3000, 4999]) {
    Deno.test(name(`close code ${code} is accepted, echoed and reported by wsStatus`), async () => {
      const rig = await openClient(transport);
      try {
        const receiving = settle(mrecv(rig.ws, now() + 2000));
        await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(code, "why not") });
        assert.equal((await rig.peer.readClose()).code, code);
        assertFailed(await receiving, "EPIPE", "the pending mrecv");
        assert.deepEqual(await wsStatus(rig.ws), { status: code, reason: "why not" });
      } finally {
        await rig.close();
      }
    });
  }

  Deno.test(
    name("our wsDone, then the server's close: status reported, no second close"),
    async () => {
      const rig = await openClient(transport);
      try {
        await wsDone(rig.ws, 1000, "", now() + 2000);
        assert.equal((await rig.peer.readClose()).code, 1000);
        await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(1000) });
        await rig.peer.wire.closeWrite();
        await rig.peer.expectEnd();
        assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPIPE", "mrecv");
        assert.deepEqual(await wsStatus(rig.ws), { status: 1000, reason: "" });
      } finally {
        await rig.close();
      }
    },
  );

  Deno.test(
    name("EOF without a close frame: pending mrecv ECONNRESET, wsStatus 1006"),
    async () => {
      const rig = await openClient(transport);
      try {
        const t0 = now();
        const receiving = settle(mrecv(rig.ws, now() + 2000));
        await rig.peer.wire.closeWrite();
        assertFailed(await receiving, "ECONNRESET", "mrecv");
        assertQuick(t0, "ECONNRESET");
        assert.deepEqual(await wsStatus(rig.ws), { status: 1006, reason: "" });
        assertFailed(await settle(msend(rig.ws, "x", now() + 2000)), "ECONNRESET", "msend");
      } finally {
        await rig.close();
      }
    },
  );

  Deno.test(name("frames in the same packet as the 101 answer are received"), async () => {
    const rig = await openClient(transport, {
      after: concat(
        frameOf({ opcode: OP.TEXT, payload: "early" }),
        frameOf({ opcode: OP.PING, payload: "hi" }),
        frameOf({ opcode: OP.BINARY, payload: new Uint8Array([5, 6]) }),
      ),
    });
    try {
      assert.deepEqual(await wsRecv(rig.ws, now() + 2000), { type: WS_TEXT, data: "early" });
      assert.deepEqual(await wsRecv(rig.ws, now() + 2000), {
        type: WS_BINARY,
        data: new Uint8Array([5, 6]),
      });
      const pong = await rig.peer.readFrame();
      assert.equal(pong.opcode, OP.PONG);
      assert.equal(dec.decode(pong.payload), "hi");
    } finally {
      await rig.close();
    }
  });
}

/** An unmasked frame, as a server sends it. */
function frameOf(spec: { opcode: number; payload?: Uint8Array | string }): Uint8Array {
  const payload = bytes(spec.payload ?? "");
  assert.ok(payload.length < 126);
  return concat(new Uint8Array([0x80 | spec.opcode, payload.length]), payload);
}

Deno.test(
  "ws client/pipe: a ping flood from a peer that does not read costs bounded memory; every ping is answered in order",
  async () => {
    const rig = await openClient("pipe");
    try {
      const count = Math.floor(16 * 1024 * 1024 / 127); // 16 MiB of 125-byte pings
      const flood = new Uint8Array(127 * count);
      for (let i = 0; i < count; i++) {
        flood.set(frameOf({ opcode: OP.PING, payload: numbered(i, 125) }), i * 127);
      }
      const before = retainedExternalMemory();
      // See the server-side twin: the pongs we owe are bounded by maxPongBytes (each one
      // masked, a copy), and reading pauses while they cannot drain.
      let written = false;
      // Settled in any case (the wire fails when the test ends early): never left dangling.
      const writing = settle(rig.peer.wire.write(flood, -1).then(() => written = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const grown = retainedExternalMemory() - before;
      // Buffers of a few hundred KiB each (reads, writes, the pong budget) on both ends
      // of the pipe: far from the 16 MiB of pongs an unbounded queue would hold.
      assert.ok(grown < 6 * 1024 * 1024, `memory grew by ${grown} bytes`);
      assert.equal(written, false, "the whole flood was read while no pong could drain");
      await expectNumberedPongs(rig.peer, count, 125);
      assertOk(await writing, "the flood's write");
    } finally {
      await rig.close();
    }
  },
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

/** External memory still referenced: garbage is collected first, so only what is held counts. */
function retainedExternalMemory(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, "run with --v8-flags=--expose-gc (deno task test does) to measure memory");
  gc();
  return Deno.memoryUsage().external;
}
