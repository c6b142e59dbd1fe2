/**
 * permessage-deflate through the WebSocket API: our server and our client together (every
 * send and receive form), and each of them against a raw peer that checks the wire (RSV1,
 * the compressed bytes, inflated here with node:zlib's one-shot functions, independent of
 * our codec) and plays hostile: RSV1 misuse, corrupt data, bombs, BFINAL blocks, mixed
 * compressed and uncompressed messages, answers that were not offered.
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  hclose,
  ipcPair,
  mrecv,
  mrecvl,
  msend,
  msendl,
  now,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  type WsClientOptions,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
  type WsServerOptions,
} from "../mod.ts";
import { DeflateBudget } from "../protocol/deflate_budget.ts";
import { acceptUpgrade } from "../protocol/handshake.ts";
import { wsDeflate } from "../actors/ws_deflate.ts";
import { assertFailed, settle } from "./helpers/outcome.ts";
import { bytes, concat } from "./helpers/raw_peer/bytes.ts";
import { OP } from "./helpers/raw_peer/frames.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";
import { openClient, openServer, type Rig } from "./helpers/raw_peer/rig.ts";

const T = () => now() + 3000;
const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
const TAIL = new Uint8Array([0, 0, 0xff, 0xff]);

/** A JSON-like text of about `size` bytes. */
function json(size: number, seed = 0): string {
  const items = [];
  let length = 2;
  for (let i = 0; length < size; i++) {
    const item = JSON.stringify({ id: seed + i, user: `user${(seed + i) % 97}`, ok: i % 2 === 0 });
    items.push(item);
    length += item.length + 1;
  }
  return `[${items.join(",")}]`;
}

/** Compresses one message as a peer without context takeover would: tail stripped. */
function deflated(data: Uint8Array | string, options: zlib.ZlibOptions = {}): Uint8Array {
  const out = zlib.deflateRawSync(bytes(data), { ...SYNC, ...options });
  return new Uint8Array(out.subarray(0, out.length - 4));
}

/** Inflates what our side compressed (context takeover: all messages so far, in order). */
class PeerInflater {
  #history: Uint8Array[] = [];
  /** Inflates the whole stream so far and returns the last message's part. */
  take(payload: Uint8Array): Uint8Array {
    const before = this.#inflate().length;
    this.#history.push(payload, TAIL);
    return this.#inflate().subarray(before);
  }
  #inflate(): Uint8Array {
    if (this.#history.length === 0) return new Uint8Array(0);
    return new Uint8Array(zlib.inflateRawSync(concat(...this.#history), SYNC));
  }
}

async function pair(s: WsServerOptions = {}, c: WsClientOptions = {}, flags = WS_TEXT) {
  const [a, b] = ipcPair();
  const [server, client] = await Promise.all([
    wsAttachServer(a, flags, T(), s),
    wsAttachClient(b, flags, "/", "localhost", T(), c),
  ]);
  return { server, client, s: server.handle, c: client.handle };
}

Deno.test("deflate/ours: negotiated by default; every send and receive form round-trips", async () => {
  const { server, client, s, c } = await pair();
  try {
    assert.equal(
      server.headers.get("sec-websocket-extensions"),
      "permessage-deflate; client_max_window_bits=12",
    );
    assert.equal(
      client.headers.get("sec-websocket-extensions"),
      "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
    );
    const big = json(16 * 1024);
    await msend(s, big, T());
    assert.equal(await wsRecv(c, T()).then((m) => m.data), big);
    await msend(c, big, T());
    assert.equal(new TextDecoder().decode(await mrecv(s, T())), big);
    // Gathered sends, both directions, and small (uncompressed) messages between them.
    const parts = [bytes(big.slice(0, 5000)), bytes(big.slice(5000))];
    await msendl(c, parts, T());
    await wsSend(c, WS_TEXT, "tiny", T());
    await wsSendl(s, WS_BINARY, parts, T());
    assert.equal(new TextDecoder().decode(await mrecv(s, T())), big);
    assert.deepEqual(await wsRecv(s, T()), { type: WS_TEXT, data: "tiny" });
    // Into the caller's buffers: a list, then one.
    const halves = [new Uint8Array(10_000), new Uint8Array(10_000)];
    const got = await wsRecvl(c, halves, T());
    assert.equal(got.type, WS_BINARY);
    assert.equal(new TextDecoder().decode(concat(...halves).subarray(0, got.size)), big);
    await msend(s, big, T());
    const buf = new Uint8Array(20_000);
    const n = await mrecv(c, buf, T());
    assert.equal(new TextDecoder().decode(buf.subarray(0, n)), big);
    await msend(s, big, T());
    const m = await mrecvl(c, [new Uint8Array(7000), new Uint8Array(20_000)], T());
    assert.equal(m, bytes(big).length);
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("deflate/ours: off on either side means no extension and plain frames", async () => {
  for (const [so, co] of [[{ perMessageDeflate: false }, {}], [{}, { perMessageDeflate: false }]]) {
    const { server, client, s, c } = await pair(so, co);
    try {
      assert.equal(client.headers.get("sec-websocket-extensions"), null);
      assert.equal(
        server.headers.get("sec-websocket-extensions") === null,
        co !== undefined &&
          (co as WsClientOptions).perMessageDeflate === false,
      );
      await msend(s, json(2000), T());
      assert.equal((await wsRecv(c, T())).data, json(2000));
    } finally {
      hclose(s);
      hclose(c);
    }
  }
});

Deno.test("deflate/ours: a spent budget still compresses, without context takeover", async () => {
  const budget = new DeflateBudget(0);
  const { client, s, c } = await pair({ perMessageDeflate: { budget } }, {
    perMessageDeflate: { budget },
  });
  try {
    assert.equal(
      client.headers.get("sec-websocket-extensions"),
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
        "server_max_window_bits=12; client_max_window_bits=12",
    );
    for (let i = 0; i < 3; i++) {
      await msend(c, json(3000, i), T());
      assert.equal(new TextDecoder().decode(await mrecv(s, T())), json(3000, i));
      await msend(s, json(3000, i), T());
      assert.equal(new TextDecoder().decode(await mrecv(c, T())), json(3000, i));
    }
    assert.equal(budget.reserved, 0);
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("deflate/ours: the budget is given back when connections close", async () => {
  const budget = new DeflateBudget(64 * 1024 * 1024);
  const { s, c } = await pair({ perMessageDeflate: { budget } }, { perMessageDeflate: { budget } });
  assert.ok(budget.reserved > 0);
  hclose(s);
  hclose(c);
  assert.equal(budget.reserved, 0);
});

// ---- our server against a raw client ----------------------------------------------------

const OFFER = "permessage-deflate; client_max_window_bits";

async function deflateServer(options: WsServerOptions = {}, offer = OFFER): Promise<Rig> {
  const rig = await openServer("pipe", {
    flags: WS_TEXT,
    options,
    request: upgradeRequest({ headers: { "Sec-WebSocket-Extensions": offer } }),
  });
  rig.peer.deflate = true;
  return rig;
}

Deno.test("deflate/server: compresses with RSV1 on the wire, keeping the context", async () => {
  const rig = await deflateServer();
  try {
    const peer = new PeerInflater();
    const text = json(1024);
    for (let i = 0; i < 2; i++) {
      await msend(rig.ws, text, T());
      const f = await rig.peer.readFrame();
      assert.equal(f.rsv, 4, "RSV1 set");
      assert.equal(f.opcode, OP.TEXT);
      assert.ok(f.payload.length < text.length / 2, `${f.payload.length}`);
      assert.equal(new TextDecoder().decode(peer.take(f.payload)), text);
    }
    // Below the threshold (128 bytes): plain.
    await msend(rig.ws, "small", T());
    const small = await rig.peer.readFrame();
    assert.deepEqual([small.rsv, new TextDecoder().decode(small.payload)], [0, "small"]);
  } finally {
    await rig.close();
  }
});

Deno.test("deflate/server: mixed, fragmented and BFINAL compressed messages from the peer", async () => {
  const rig = await deflateServer();
  try {
    const text = json(4000);
    const packed = deflated(text);
    await rig.peer.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: packed, mask: true });
    await rig.peer.sendFrame({ opcode: OP.TEXT, payload: "plain", mask: true });
    // Fragmented, RSV1 on the first frame only, a ping between the fragments.
    const cut = packed.length >> 1;
    await rig.peer.sendFrame({
      opcode: OP.TEXT,
      rsv: 4,
      fin: false,
      payload: packed.subarray(0, cut),
      mask: true,
    });
    await rig.peer.sendFrame({ opcode: OP.PING, payload: "p", mask: true });
    await rig.peer.sendFrame({ opcode: OP.CONT, payload: packed.subarray(cut), mask: true });
    // A final (BFINAL) block, as RFC 7692 7.2.3.4 allows, then one more message.
    const final = new Uint8Array(zlib.deflateRawSync(bytes("closing block")));
    await rig.peer.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: final, mask: true });
    await rig.peer.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflated("after"), mask: true });
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await wsRecv(rig.ws, T())).data);
    assert.deepEqual(got, [text, "plain", text, "closing block", "after"]);
    const pong = await rig.peer.readFrame();
    assert.equal(pong.opcode, OP.PONG);
  } finally {
    await rig.close();
  }
});

/** Sends `frames` from the raw client and expects our close with `code`. */
async function expectClose(rig: Rig, code: number, ...frames: Uint8Array[]): Promise<void> {
  await rig.peer.send(concat(...frames));
  const { close } = await rig.peer.readUntilClose();
  assert.equal(close.code, code, close.reason);
  const error = assertFailed(
    await settle(mrecv(rig.ws, T())),
    code === 1009 ? "EMSGSIZE" : "EPROTO",
    "mrecv",
  );
  assert.match(error.message, new RegExp(`closed with ${code}`));
}

Deno.test("deflate/server: RSV1 misuse is 1002", async () => {
  const cases = [
    // Negotiated, but on a continuation frame.
    {
      offer: OFFER,
      frames: [{ opcode: OP.TEXT, fin: false, payload: deflated("ab") }, {
        opcode: OP.CONT,
        rsv: 4,
        payload: new Uint8Array(0),
      }],
    },
    // Negotiated, but on a control frame.
    { offer: OFFER, frames: [{ opcode: OP.PING, rsv: 4 }] },
    // RSV2 and RSV3 are still unassigned.
    { offer: OFFER, frames: [{ opcode: OP.TEXT, rsv: 2, payload: "x" }] },
    // Not negotiated: the offer had an unknown parameter, so it was declined.
    {
      offer: "permessage-deflate; foo",
      frames: [{ opcode: OP.TEXT, rsv: 4, payload: deflated("x") }],
    },
  ];
  for (const { offer, frames } of cases) {
    const rig = await deflateServer({}, offer);
    try {
      await expectClose(rig, 1002, ...frames.map((f) => rig.peer.frame({ ...f, mask: true })));
    } finally {
      await rig.close();
    }
  }
});

Deno.test("deflate/server: corrupt deflate data and invalid inflated UTF-8 are 1007", async () => {
  for (
    const payload of [
      new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]),
      deflated(new Uint8Array([0x61, 0xc3, 0x28])),
      concat(new Uint8Array(zlib.deflateRawSync(bytes("a"))), deflated("b")), // data after BFINAL
    ]
  ) {
    const rig = await deflateServer();
    try {
      await expectClose(
        rig,
        1007,
        rig.peer.frame({ opcode: OP.TEXT, rsv: 4, payload, mask: true }),
      );
    } finally {
      await rig.close();
    }
  }
});

Deno.test("deflate/server: a decompression bomb is 1009 under maxMessageSize", async () => {
  // 200 KiB on the wire inflating to 200 MiB, against a 1 MiB limit.
  const bomb = new Uint8Array(zlib.deflateRawSync(new Uint8Array(200 * 1024 * 1024), SYNC));
  assert.ok(bomb.length < 256 * 1024);
  const rig = await deflateServer({ maxMessageSize: 1024 * 1024 });
  try {
    const before = Deno.memoryUsage().rss;
    await expectClose(
      rig,
      1009,
      rig.peer.frame({
        opcode: OP.BINARY,
        rsv: 4,
        payload: bomb.subarray(0, bomb.length - 4),
        mask: true,
      }),
    );
    // Nowhere near the 200 MiB the bomb holds.
    assert.ok(Deno.memoryUsage().rss - before < 64 * 1024 * 1024);
  } finally {
    await rig.close();
  }
});

Deno.test("deflate/server: a malformed offer is refused with 400", async () => {
  const rig = openServer("pipe", {
    request: upgradeRequest({ headers: { "Sec-WebSocket-Extensions": 'permessage-deflate; x="' } }),
  });
  await assert.rejects(rig, /400/);
});

// ---- our client against a raw server ------------------------------------------------------

Deno.test("deflate/client: compresses masked frames with RSV1; inflates the server's", async () => {
  const rig = await openClient("pipe", {
    flags: WS_TEXT,
    extra: ["Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"],
  });
  rig.peer.deflate = true;
  try {
    const text = json(2048);
    await msend(rig.ws, text, T());
    const f = await rig.peer.readFrame();
    assert.equal(f.rsv, 4);
    assert.ok(f.masked);
    assert.equal(new TextDecoder().decode(new PeerInflater().take(f.payload)), text);
    await rig.peer.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflated(text) });
    assert.equal((await wsRecv(rig.ws, T())).data, text);
  } finally {
    await rig.close();
  }
});

Deno.test("deflate/client: an answer it did not offer, or that breaks the offer, is EPROTO", async () => {
  // The offer's reservation must come back when the handshake fails.
  const budget = new DeflateBudget(64 * 1024 * 1024);
  for (
    const [options, answer] of [
      [{ perMessageDeflate: false }, "permessage-deflate"],
      [{ perMessageDeflate: { budget } }, "permessage-deflate; client_max_window_bits=15"],
      [{ perMessageDeflate: { budget } }, "permessage-deflate; foo"],
      [{ perMessageDeflate: { budget } }, "x-webkit-deflate-frame"],
      [{ perMessageDeflate: { serverNoContextTakeover: true, budget } }, "permessage-deflate"],
    ] as const
  ) {
    await assert.rejects(
      openClient("pipe", { options, extra: [`Sec-WebSocket-Extensions: ${answer}`] }),
      (e: unknown) => {
        assert.match(String(e), /EPROTO|Sec-WebSocket-Extensions|extension/);
        return true;
      },
      answer,
    );
    assert.equal(budget.reserved, 0, answer);
  }
});

Deno.test("deflate/client: a hostile server's bombs, corrupt data and RSV1 misuse", async () => {
  const bomb = new Uint8Array(zlib.deflateRawSync(new Uint8Array(64 * 1024 * 1024), SYNC));
  const cases: [number, Parameters<Rig["peer"]["frame"]>[0][]][] = [
    [1009, [{ opcode: OP.BINARY, rsv: 4, payload: bomb.subarray(0, bomb.length - 4) }]],
    [1007, [{ opcode: OP.TEXT, rsv: 4, payload: new Uint8Array([0xff, 0xff, 0xff, 0x01]) }]],
    [1002, [{ opcode: OP.PONG, rsv: 4 }]],
    [1002, [{ opcode: OP.TEXT, fin: false, payload: "a" }, {
      opcode: OP.CONT,
      rsv: 4,
      payload: "b",
    }]],
  ];
  for (const [code, frames] of cases) {
    const rig = await openClient("pipe", {
      options: { maxMessageSize: 1024 * 1024 },
      extra: ["Sec-WebSocket-Extensions: permessage-deflate"],
    });
    rig.peer.deflate = true;
    try {
      await expectClose(rig, code, ...frames.map((f) => rig.peer.frame(f)));
    } finally {
      await rig.close();
    }
  }
});

Deno.test("deflate/options: bad settings are EINVAL before the handle is taken", async () => {
  const [a, b] = ipcPair();
  try {
    const common = [
      null, // neither on nor off: it used to be read as on
      "yes",
      1,
      [], // not settings
      { budget: null }, // not a budget: it used to mean the shared one
      { memLevel: 10 },
      { threshold: -1 },
      { level: 1.5 },
      { serverNoContextTakeover: "yes" },
      { budget: {} },
    ];
    // Our own compressor's window cannot be 8 bits (zlib cannot compress with it).
    const cases: [string, unknown[]][] = [
      ["server", [...common, { serverMaxWindowBits: 8 }]],
      ["client", [...common, { clientMaxWindowBits: 8 }]],
    ];
    for (const [side, bads] of cases) {
      for (const bad of bads) {
        const options = { perMessageDeflate: bad } as unknown as WsServerOptions;
        await assert.rejects(
          side === "server"
            ? wsAttachServer(a, 0, T(), options)
            : wsAttachClient(b, 0, "/", "localhost", T(), options as WsClientOptions),
          /EINVAL|perMessageDeflate/,
          `${side} ${JSON.stringify(bad)}`,
        );
      }
    }
    // Both handles are still ours: the attach calls took nothing.
    const [server, client] = await Promise.all([
      wsAttachServer(a, 0, T()),
      wsAttachClient(b, 0, "/", "localhost", T()),
    ]);
    hclose(server.handle);
    hclose(client.handle);
  } catch (e) {
    for (const h of [a, b]) {
      try {
        hclose(h);
      } catch { /* taken by an attach that should not have taken it */ }
    }
    throw e;
  }
});

Deno.test("deflate/ours: every parameter combination round-trips random traffic", async () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  /** Mixed messages: compressible JSON, incompressible noise, tiny and empty ones. */
  const message = (): Uint8Array => {
    const kind = random();
    if (kind < 0.4) return bytes(json(Math.floor(random() * 20_000), Math.floor(random() * 1000)));
    if (kind < 0.7) {
      const noise = new Uint8Array(Math.floor(random() * 5000));
      for (let i = 0; i < noise.length; i++) noise[i] = random() * 256;
      return noise;
    }
    return new Uint8Array(Math.floor(random() * 200));
  };
  const flags = [false, true];
  for (const snct of flags) {
    for (const cnct of flags) {
      for (const [sbits, cbits] of [[9, 15], [15, 9], [12, 12]]) {
        const { s, c } = await pair(
          { perMessageDeflate: { serverNoContextTakeover: snct, serverMaxWindowBits: sbits } },
          {
            perMessageDeflate: {
              clientNoContextTakeover: cnct,
              clientMaxWindowBits: cbits,
              threshold: 0,
            },
          },
          WS_BINARY,
        );
        try {
          for (let i = 0; i < 12; i++) {
            const up = message(), down = message();
            await msend(c, up, T());
            await msend(s, down, T());
            assert.deepEqual(await mrecv(s, T()), up);
            assert.deepEqual(await mrecv(c, T()), down);
          }
        } finally {
          hclose(s);
          hclose(c);
        }
      }
    }
  }
});

Deno.test("deflate/nohttp: a caller's own handshake hands its negotiation to the socket", async () => {
  const budget = new DeflateBudget(1 << 30);
  const head = {
    method: "GET",
    target: "/",
    version: "HTTP/1.1",
    headers: new Headers({
      Host: "example.com",
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Extensions": OFFER,
    }),
  };
  const config = wsDeflate({ perMessageDeflate: { budget } }, "server")!;
  const up = acceptUpgrade(head, { perMessageDeflate: config });
  assert.match(
    new TextDecoder().decode(up.response),
    /Sec-WebSocket-Extensions: permessage-deflate/,
  );
  const negotiated = up.deflate!;
  assert.ok(budget.reserved > 0);
  const rig = await openServer("pipe", {
    flags: WS_NOHTTP | WS_TEXT,
    options: { negotiatedDeflate: negotiated },
  });
  rig.peer.deflate = true;
  try {
    const text = json(3000);
    await rig.peer.sendFrame({ opcode: OP.TEXT, rsv: 4, payload: deflated(text), mask: true });
    assert.equal((await wsRecv(rig.ws, T())).data, text);
    await msend(rig.ws, text, T());
    const f = await rig.peer.readFrame();
    assert.equal(f.rsv, 4);
    assert.equal(new TextDecoder().decode(new PeerInflater().take(f.payload)), text);
    // It was taken: a second socket cannot use it.
    const [a, b] = ipcPair();
    await assert.rejects(
      wsAttachServer(a, WS_NOHTTP, T(), { negotiatedDeflate: negotiated }),
      /EINVAL/,
    );
    hclose(a);
    hclose(b);
  } finally {
    await rig.close();
  }
  assert.equal(budget.reserved, 0);
  // A negotiation nobody attaches is released by hand.
  const unused = acceptUpgrade(head, { perMessageDeflate: config }).deflate!;
  assert.ok(budget.reserved > 0);
  unused.release();
  unused.release();
  assert.equal(budget.reserved, 0);
  assert.throws(() => unused.takeCodec(), /released/);
});
