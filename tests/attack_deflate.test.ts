/**
 * Attacks on permessage-deflate (RFC 7692) from a raw client over real TCP: compressed
 * messages a conforming sender never produces (RFC 7692 7.2.1: every message's data
 * ends with an empty stored block, whose `00 00 ff ff` is then stripped), which today
 * spill into the next message.
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import { mrecv, now, WS_BINARY } from "../mod.ts";
import { bytes, concat } from "./helpers/raw_peer/bytes.ts";
import { OP } from "./helpers/raw_peer/frames.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";
import { collectGarbage } from "./helpers/memory.ts";
import { openServer, type Rig } from "./helpers/raw_peer/rig.ts";

const T = () => now() + 3000;

async function deflateServer(): Promise<Rig> {
  const rig = await openServer("tcp", {
    flags: WS_BINARY,
    request: upgradeRequest({
      headers: { "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" },
    }),
  });
  rig.peer.deflate = true;
  return rig;
}

/** Sends `payloads` as compressed binary messages; expects close 1007 after the first. */
async function expectBoundaryClose(payloads: Uint8Array[]): Promise<void> {
  const rig = await deflateServer();
  try {
    await rig.peer.send(
      concat(
        ...payloads.map((payload) =>
          rig.peer.frame({ opcode: OP.BINARY, rsv: 4, payload, mask: true })
        ),
      ),
    );
    const received: string[] = [];
    const failure = await (async () => {
      for (;;) received.push(new TextDecoder().decode(await mrecv(rig.ws, T())));
    })().catch((e) => e);
    const { close } = await rig.peer.readUntilClose();
    assert.deepEqual(received, [], "no message past the first may be delivered");
    assert.equal(close.code, 1007, close.reason);
    assert.equal(failure.code, "EPROTO");
    assert.match(close.reason, /block boundary/);
  } finally {
    await rig.close();
  }
}

Deno.test("attack/deflate: a stored block longer than its message spills into the next one → 1007", async () => {
  // Message 1 opens a stored block of 10 bytes and gives 3: the appended 00 00 ff ff
  // would become message data, and message 2 would start inside that block.
  const first = concat(new Uint8Array([0x00, 10, 0, 0xf5, 0xff]), bytes("abc"));
  const second = concat(bytes("xyz"), new Uint8Array([0x00]));
  await expectBoundaryClose([first, second]);
});

Deno.test("attack/deflate: a Huffman block cut before its end-of-block code → 1007", async () => {
  // A real compressed message, cut inside its last Huffman block (before the end-of-block
  // code and the empty stored block of the sync flush).
  const text = "a message ".repeat(40) + "with an end";
  const full = new Uint8Array(zlib.deflateRawSync(bytes(text), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  }));
  for (const cut of [6, 7, 9]) {
    await expectBoundaryClose([full.subarray(0, full.length - cut), bytes("next")]);
  }
});

Deno.test("attack/deflate: small bombs under maxMessageSize cannot pin tens of MiB per connection", async () => {
  // With the defaults (maxMessageSize 64 MiB, compression on), one 60 KiB compressed
  // message used to inflate to 60 MiB and stay queued for an application that does not
  // read: 4 such connections held ~300 MiB for 240 KiB sent. Compressed messages now
  // stop at perMessageDeflate.maxInflatedSize (default 4 MiB) with 1009.
  const huge = new Uint8Array(zlib.deflateRawSync(new Uint8Array(60 * 1024 * 1024), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  }));
  const bomb = huge.subarray(0, huge.length - 4);
  assert.ok(bomb.length < 64 * 1024);
  const rigs: Rig[] = [];
  try {
    for (let i = 0; i < 4; i++) rigs.push(await deflateServer());
    collectGarbage();
    const before = Deno.memoryUsage().rss;
    for (const rig of rigs) {
      await rig.peer.sendFrame({ opcode: OP.BINARY, rsv: 4, payload: bomb, mask: true });
    }
    for (const rig of rigs) {
      const { close } = await rig.peer.readUntilClose(now() + 5000);
      assert.equal(close.code, 1009, close.reason);
    }
    collectGarbage();
    const grown = Deno.memoryUsage().rss - before;
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown >> 20} MiB`);
  } finally {
    for (const rig of rigs) await rig.close();
  }
});

Deno.test("attack/deflate: a compressed message up to maxInflatedSize still arrives", async () => {
  const text = "x".repeat(3 * 1024 * 1024);
  const packed = new Uint8Array(zlib.deflateRawSync(bytes(text), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  }));
  const rig = await deflateServer();
  try {
    await rig.peer.sendFrame({
      opcode: OP.BINARY,
      rsv: 4,
      payload: packed.subarray(0, packed.length - 4),
      mask: true,
    });
    assert.equal((await mrecv(rig.ws, T())).length, text.length);
  } finally {
    await rig.close();
  }
});

Deno.test("attack/deflate: a compressed frame too long to inflate under maxInflatedSize is 1009 before it is gathered", async () => {
  const rig = await deflateServer();
  try {
    // Announces 8 MiB of compressed data (it would take 64 MiB under maxMessageSize
    // alone) and sends 16 bytes of it.
    await rig.peer.send(rig.peer.frame({
      opcode: OP.BINARY,
      rsv: 4,
      payload: new Uint8Array(16),
      announced: 8 * 1024 * 1024,
      mask: true,
    }));
    const { close } = await rig.peer.readUntilClose(now() + 2000);
    assert.equal(close.code, 1009, close.reason);
    assert.match(close.reason, /compressed .* limit of 4194304/);
  } finally {
    await rig.close();
  }
});

Deno.test("attack/deflate: an empty compressed payload is an empty message and leaves the window intact", async () => {
  // With context takeover: the tail alone used to leave the inflater inside a stored
  // block header, which then swallowed the start of the next message.
  const rig = await deflateServer();
  try {
    const text = "the next message, intact ".repeat(8);
    const packed = new Uint8Array(zlib.deflateRawSync(bytes(text), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    }));
    await rig.peer.send(concat(
      rig.peer.frame({ opcode: OP.BINARY, rsv: 4, payload: new Uint8Array(0), mask: true }),
      rig.peer.frame({
        opcode: OP.BINARY,
        rsv: 4,
        payload: packed.subarray(0, packed.length - 4),
        mask: true,
      }),
    ));
    assert.equal((await mrecv(rig.ws, T())).length, 0);
    assert.equal(new TextDecoder().decode(await mrecv(rig.ws, T())), text);
  } finally {
    await rig.close();
  }
});
