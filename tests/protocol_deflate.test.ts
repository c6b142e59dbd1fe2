// permessage-deflate in protocol/: header parsing, negotiation on both sides, the codec
// (checked against node:zlib's one-shot functions and RFC 7692's own examples), and the
// receiver's RSV1 rules, bombs and corrupt data.
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { formatExtension, parseExtensions } from "../protocol/extensions.ts";
import {
  checkDeflateAnswer,
  deflateOffer,
  type DeflateParams,
  negotiateDeflate,
  resolveDeflateOptions,
} from "../protocol/permessage_deflate.ts";
import { DeflateBudget } from "../protocol/deflate_budget.ts";
import { PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { SyncZlib } from "../protocol/zlib_sync.ts";
import { acceptUpgrade, HandshakeError } from "../protocol/handshake.ts";
import { checkUpgradeResponse } from "../protocol/handshake_client.ts";
import { Receiver, type ReceiverEvent } from "../protocol/receiver.ts";
import { encodeFrame, Opcode } from "../protocol/frame.ts";
import { isDillError } from "../protocol/errors.ts";

// The codecs here are used on their own, not through an attach that loads zlib.
await PerMessageDeflate.ready();

const enc = new TextEncoder();
const b = (...v: number[]) => new Uint8Array(v);
const serverDefaults = resolveDeflateOptions({});
const clientDefaults = resolveDeflateOptions({}, "client");

function throwsCode(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isDillError(e), String(e));
    assert.equal(e.code, code);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

// ---- Sec-WebSocket-Extensions parsing -------------------------------------------------

Deno.test("extensions: several offers, quoted values, spaces and unknown extensions", () => {
  const list = parseExtensions(
    'x-webkit-deflate-frame, Permessage-Deflate ; Client_Max_Window_Bits = "10" ;' +
      " server_no_context_takeover,, permessage-deflate",
  );
  assert.deepEqual(list, [
    { name: "x-webkit-deflate-frame", params: [] },
    {
      name: "permessage-deflate",
      params: [
        { name: "client_max_window_bits", value: "10" },
        { name: "server_no_context_takeover", value: null },
      ],
    },
    { name: "permessage-deflate", params: [] },
  ]);
  assert.deepEqual(parseExtensions(""), []);
  assert.deepEqual(parseExtensions('a; b="x\\yz"')[0].params[0], { name: "b", value: "xyz" });
});

Deno.test("extensions: syntax errors are EPROTO", () => {
  for (
    const bad of [
      "permessage-deflate;",
      "permessage-deflate; =1",
      'permessage-deflate; a="1 2"', // unquoted it is not a token
      'permessage-deflate; a="1',
      "permessage-deflate; a=",
      "permessage deflate",
      "@",
      "a; b=1 c",
    ]
  ) {
    throwsCode(() => parseExtensions(bad), "EPROTO", /Sec-WebSocket-Extensions/);
  }
  throwsCode(() => formatExtension({ name: "a b", params: [] }), "EINVAL");
});

// ---- server negotiation ---------------------------------------------------------------

function negotiate(header: string, options = serverDefaults, stateless = false) {
  return negotiateDeflate(parseExtensions(header), options, stateless);
}

Deno.test("server: parameters with and without values, as RFC 7692 7.1 says", () => {
  // Nothing asked: our own window cap is announced, the client's cannot be limited.
  assert.deepEqual(negotiate("permessage-deflate"), {
    params: {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 12,
      clientMaxWindowBits: 15,
    },
    answer: "permessage-deflate; server_max_window_bits=12",
  });
  // client_max_window_bits without a value: we may pick; with one, at most that.
  assert.equal(
    negotiate("permessage-deflate; client_max_window_bits")!.answer,
    "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
  );
  assert.equal(
    negotiate("permessage-deflate; client_max_window_bits=10")!.params.clientMaxWindowBits,
    10,
  );
  // The client's window request binds us; the no-context-takeover asks are honoured.
  const all = negotiate(
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
      "server_max_window_bits=10; client_max_window_bits=9",
  )!;
  assert.deepEqual(all.params, {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 10,
    clientMaxWindowBits: 9,
  });
  assert.equal(
    all.answer,
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
      "server_max_window_bits=10; client_max_window_bits=9",
  );
  // A window of 8 is accepted as asked (we then send uncompressed, see the codec test).
  assert.equal(
    negotiate("permessage-deflate; server_max_window_bits=8")!.params.serverMaxWindowBits,
    8,
  );
});

Deno.test("server: offers with unknown, repeated or invalid parameters are declined", () => {
  for (
    const bad of [
      "permessage-deflate; foo",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
      "permessage-deflate; server_no_context_takeover=1",
      "permessage-deflate; server_max_window_bits",
      "permessage-deflate; server_max_window_bits=7",
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits=010",
      'permessage-deflate; client_max_window_bits="x"',
      "x-other; server_max_window_bits=10",
    ]
  ) {
    assert.equal(negotiate(bad), null, bad);
  }
  // The first acceptable offer wins: a bad first one falls back to the next.
  const picked = negotiate(
    "permessage-deflate; bogus, permessage-deflate; client_no_context_takeover",
  )!;
  assert.equal(picked.params.clientNoContextTakeover, true);
});

Deno.test("server: options require parameters; stateless forces no context takeover", () => {
  const strict = resolveDeflateOptions({
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 9,
    requireClientMaxWindowBits: true,
  });
  assert.equal(negotiate("permessage-deflate", strict), null);
  assert.equal(
    negotiate("permessage-deflate; client_max_window_bits", strict)!.answer,
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
      "client_max_window_bits=9",
  );
  const stateless = negotiate("permessage-deflate", serverDefaults, true)!;
  assert.equal(stateless.params.serverNoContextTakeover, true);
  assert.equal(stateless.params.clientNoContextTakeover, true);
  throwsCode(() => resolveDeflateOptions({ serverMaxWindowBits: 8 }), "EINVAL");
  throwsCode(() => resolveDeflateOptions({ memLevel: 10 }), "EINVAL");
  throwsCode(() => resolveDeflateOptions({ threshold: -1 }), "EINVAL");
});

// ---- client offer and answer check ----------------------------------------------------

Deno.test("client: the offer carries the options' parameters", () => {
  assert.equal(
    deflateOffer(clientDefaults, false),
    "permessage-deflate; client_max_window_bits=12",
  );
  const options = resolveDeflateOptions({
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 10,
    clientMaxWindowBits: 15,
  }, "client");
  assert.equal(
    deflateOffer(options, false),
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
      "server_max_window_bits=10; client_max_window_bits=15",
  );
  // Our offer is what our own server accepts.
  assert.notEqual(negotiate(deflateOffer(options, false)), null);
});

Deno.test("client: answers it did not offer, or that break the offer, are EPROTO", () => {
  const check = (answer: string, options = clientDefaults, stateless = false) =>
    checkDeflateAnswer(parseExtensions(answer), options, stateless);
  assert.equal(check(""), null);
  assert.deepEqual(check("permessage-deflate; client_max_window_bits=9"), {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 9,
  });
  const asked = resolveDeflateOptions(
    { serverNoContextTakeover: true, serverMaxWindowBits: 10 },
    "client",
  );
  for (
    const [answer, options, why] of [
      ["permessage-deflate", null, /none was offered/],
      ["x-webkit-deflate-frame", clientDefaults, /not offered/],
      ["permessage-deflate, permessage-deflate", clientDefaults, /more than one/],
      ["permessage-deflate; foo", clientDefaults, /unknown parameter/],
      ["permessage-deflate; client_max_window_bits", clientDefaults, /not 8 to 15/],
      ["permessage-deflate; client_max_window_bits=13", clientDefaults, /over the offered/],
      [
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        clientDefaults,
        /repeated/,
      ],
      ["permessage-deflate; server_max_window_bits=10", asked, /server_no_context_takeover/],
      ["permessage-deflate; server_no_context_takeover", asked, /server_max_window_bits/],
      [
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
        asked,
        /over the offered/,
      ],
    ] as const
  ) {
    throwsCode(() => check(answer, options as typeof clientDefaults), "EPROTO", why);
  }
  // A stateless offer needs server_no_context_takeover back.
  throwsCode(() => check("permessage-deflate", clientDefaults, true), "EPROTO");
});

// ---- the handshake hooks --------------------------------------------------------------

function upgradeRequest(extensions?: string) {
  const headers = new Headers({
    Host: "example.com",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
  });
  if (extensions !== undefined) headers.set("Sec-WebSocket-Extensions", extensions);
  return { method: "GET", target: "/", version: "HTTP/1.1", headers };
}

Deno.test("handshake: the server answers an offer and reserves the windows' memory", () => {
  const budget = new DeflateBudget(1 << 30);
  const config = { options: serverDefaults, budget };
  const up = acceptUpgrade(upgradeRequest("permessage-deflate; client_max_window_bits"), {
    perMessageDeflate: config,
  });
  assert.match(
    new TextDecoder().decode(up.response),
    /\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\r\n/,
  );
  assert.equal(budget.reserved, PerMessageDeflate.reservation(up.deflate!.params, "server", 5));
  assert.ok(budget.reserved > 0);
  // Without the option, or without an offer, nothing is negotiated.
  assert.equal(acceptUpgrade(upgradeRequest("permessage-deflate")).deflate, null);
  assert.equal(acceptUpgrade(upgradeRequest(), { perMessageDeflate: config }).deflate, null);
  // A malformed header is a 400 that says where, with its code once (the peer sees no code).
  assert.throws(
    () => acceptUpgrade(upgradeRequest('permessage-deflate; a="'), { perMessageDeflate: config }),
    (e: unknown) =>
      e instanceof HandshakeError && e.status === 400 &&
      /^EPROTO: malformed Sec-WebSocket-Extensions at character \d+/.test(e.message) &&
      /\r\n\r\nmalformed Sec-WebSocket-Extensions/.test(new TextDecoder().decode(e.response)),
  );
});

Deno.test("handshake: a spent budget negotiates no context takeover both ways", () => {
  const budget = new DeflateBudget(1000);
  const up = acceptUpgrade(upgradeRequest("permessage-deflate"), {
    perMessageDeflate: { options: serverDefaults, budget },
  });
  assert.deepEqual(
    [up.deflate!.params.serverNoContextTakeover, up.deflate!.params.clientNoContextTakeover],
    [true, true],
  );
  assert.equal(budget.reserved, 0);
  assert.match(new TextDecoder().decode(up.response), /client_no_context_takeover/);
});

Deno.test("handshake: the client checks the answer against its offer", () => {
  const headers = new Headers({
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    "Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=10",
  });
  const head = { version: "HTTP/1.1", status: 101, reason: "Switching Protocols", headers };
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const offer = { options: clientDefaults, stateless: false };
  assert.equal(checkUpgradeResponse(head, key, [], offer).deflate!.serverMaxWindowBits, 10);
  throwsCode(() => checkUpgradeResponse(head, key, []), "EPROTO", /none was offered/);
  headers.set("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=20");
  throwsCode(() => checkUpgradeResponse(head, key, [], offer), "EPROTO", /not 8 to 15/);
});

// ---- the codec ------------------------------------------------------------------------

const takeover: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};
const settings = { level: 6, memLevel: 8, threshold: 0 };

function inflated(codec: PerMessageDeflate, data: Uint8Array, max = 1 << 20): Uint8Array {
  const out = codec.inflate(data, max);
  assert.ok(out instanceof Uint8Array, JSON.stringify(out));
  return out;
}

Deno.test("codec: RFC 7692 examples (7.2.3.1, 7.2.3.2, 7.2.3.4) inflate", () => {
  const codec = new PerMessageDeflate(takeover, "client", settings);
  const hello = b(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00);
  assert.equal(new TextDecoder().decode(inflated(codec, hello)), "Hello");
  // The same message again, with context takeover: a back-reference into the window.
  assert.equal(new TextDecoder().decode(inflated(codec, b(0xf2, 0x00, 0x11, 0x00, 0x00))), "Hello");
  // A BFINAL block: accepted; the next message starts with an empty window.
  const final = b(0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00);
  assert.equal(new TextDecoder().decode(inflated(codec, final)), "Hello");
  assert.equal(new TextDecoder().decode(inflated(codec, hello)), "Hello");
  // Data after a final block is not a valid message.
  const after = codec.inflate(new Uint8Array([...final, 0xf2, 0x48]), 1 << 20);
  assert.equal((after as { code: number }).code, 1007);
  codec.close();
});

Deno.test("codec: our compression strips the tail and inflates with node:zlib's one-shot", () => {
  const server = new PerMessageDeflate(takeover, "server", settings);
  const message = enc.encode(JSON.stringify({ hello: "world", list: [1, 2, 3] }).repeat(30));
  const first = server.compress(message)!;
  const second = server.compress(message)!;
  assert.ok(first.length < message.length / 5);
  // Context takeover: the repeat is a back-reference, far smaller than the first.
  assert.ok(second.length < first.length / 2, `${second.length} vs ${first.length}`);
  // An independent decoder: node:zlib's one-shot inflate of both, tails restored.
  const tail = b(0, 0, 0xff, 0xff);
  const stream = new Uint8Array([...first, ...tail, ...second, ...tail]);
  const back = zlib.inflateRawSync(stream, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.equal(back.length, 2 * message.length);
  server.close();
  assert.throws(() => server.compress(message), /closed/);
});

Deno.test("codec: without context takeover each message stands alone", () => {
  const params = { ...takeover, serverNoContextTakeover: true };
  const server = new PerMessageDeflate(params, "server", settings);
  const message = enc.encode("abcdefgh".repeat(100));
  const first = server.compress(message)!;
  const second = server.compress(message)!;
  assert.deepEqual(second, first);
  // Each inflates alone, with a fresh one-shot decoder.
  const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  assert.deepEqual(new Uint8Array(zlib.inflateRawSync(second, opts)), message);
  // The client side inflating them, stateless too, in any order with other traffic.
  const client = new PerMessageDeflate(params, "client", settings);
  assert.deepEqual(inflated(client, second), message);
  assert.deepEqual(inflated(client, first), message);
  server.close();
  client.close();
});

Deno.test("codec: the threshold and a window of 8 bits send uncompressed", () => {
  const codec = new PerMessageDeflate(takeover, "server", { ...settings, threshold: 100 });
  assert.equal(codec.compress(new Uint8Array(99)), null);
  assert.notEqual(codec.compress(new Uint8Array(100)), null);
  const tiny = new PerMessageDeflate({ ...takeover, serverMaxWindowBits: 8 }, "server", settings);
  assert.equal(tiny.compress(new Uint8Array(10_000)), null);
  // Its peer still inflates what a client sends.
  codec.close();
  tiny.close();
});

Deno.test("codec: a bomb stops at the limit, having inflated at most 16 KiB more", () => {
  // 64 MiB of zeros compresses to about 64 KiB.
  const bomb = zlib.deflateRawSync(new Uint8Array(64 * 1024 * 1024), { level: 9 });
  assert.ok(bomb.length < 128 * 1024);
  const codec = new PerMessageDeflate(takeover, "server", settings);
  let produced = 0;
  // Count what the engine hands out: the codec must stop right past the limit.
  const probe = new SyncZlib("inflate", { windowBits: 15 });
  probe.write(bomb, false, (chunk) => {
    produced += chunk.length;
    return produced <= 1024 * 1024;
  });
  probe.close();
  assert.ok(produced <= 1024 * 1024 + 16 * 1024, `${produced}`);
  const result = codec.inflate(bomb, 1024 * 1024);
  assert.equal((result as { code: number }).code, 1009);
  // The stream was reset: a good message still inflates after it.
  const good = zlib.deflateRawSync(enc.encode("ok"), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.equal(new TextDecoder().decode(inflated(codec, good.subarray(0, good.length - 4))), "ok");
  codec.close();
});

Deno.test("codec: corrupt data is 1007", () => {
  const codec = new PerMessageDeflate(takeover, "server", settings);
  const result = codec.inflate(b(0xff, 0xff, 0xff, 0x01, 0x02), 1 << 20);
  assert.equal((result as { code: number }).code, 1007);
  assert.match((result as { message: string }).message, /invalid deflate data/);
  codec.close();
});

Deno.test("budget: reservations are capped and released on close", () => {
  const budget = new DeflateBudget(PerMessageDeflate.reservation(takeover, "server", 8));
  assert.ok(budget.tryReserve(PerMessageDeflate.reservation(takeover, "server", 8)));
  assert.equal(budget.tryReserve(1), false);
  const codec = new PerMessageDeflate(takeover, "server", settings, budget);
  codec.close();
  codec.close();
  assert.equal(budget.reserved, 0);
  throwsCode(() => new DeflateBudget(-1), "EINVAL");
});

// ---- the receiver ---------------------------------------------------------------------

/** An unmasked frame from a server, bytewise, with any first byte. */
function frame(byte0: number, payload: Uint8Array): Uint8Array {
  assert.ok(payload.length < 126);
  return new Uint8Array([byte0, payload.length, ...payload]);
}

function events(receiver: Receiver, ...chunks: Uint8Array[]): ReceiverEvent[] {
  const out: ReceiverEvent[] = [];
  for (const chunk of chunks) {
    receiver.feed(chunk);
    for (let ev = receiver.next(); ev; ev = receiver.next()) out.push(ev);
  }
  return out;
}

function deflateClient(maxMessageSize = 1 << 20) {
  const codec = new PerMessageDeflate(takeover, "client", settings);
  return { codec, receiver: new Receiver({ role: "client", maxMessageSize, inflater: codec }) };
}

const HELLO = b(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00);

Deno.test("receiver: RSV1 without a negotiated extension is 1002", () => {
  const receiver = new Receiver({ role: "client", maxMessageSize: 1000 });
  const [ev] = events(receiver, frame(0xc1, HELLO));
  assert.deepEqual([ev.type, (ev as { code: number }).code], ["error", 1002]);
});

Deno.test("receiver: RSV1 on continuation or control frames, RSV2/RSV3 always, are 1002", () => {
  for (
    const frames of [
      [frame(0x41, HELLO.subarray(0, 3)), frame(0xc0, HELLO.subarray(3))], // RSV1 continuation
      [frame(0xc9, b())], // ping
      [frame(0xca, b())], // pong
      [frame(0xc8, b(0x03, 0xe8))], // close
      [frame(0xa1, b(0x41))], // RSV2
      [frame(0x91, b(0x41))], // RSV3
    ]
  ) {
    const { codec, receiver } = deflateClient();
    const all = events(receiver, ...frames);
    const last = all[all.length - 1];
    assert.deepEqual([last.type, (last as { code: number }).code], ["error", 1002]);
    codec.close();
  }
});

Deno.test("receiver: compressed, fragmented and uncompressed messages mix", () => {
  const { codec, receiver } = deflateClient();
  const all = events(
    receiver,
    frame(0xc1, HELLO), // compressed text
    frame(0x81, enc.encode("plain")), // uncompressed text
    frame(0x41, HELLO.subarray(0, 2)), // compressed, fragmented, with a ping inside
    frame(0x89, b()),
    frame(0x00, HELLO.subarray(2, 5)),
    frame(0x80, HELLO.subarray(5)),
    frame(0xc1, b(0xf2, 0x00, 0x11, 0x00, 0x00)), // "Hello" again, from the kept window
  );
  assert.deepEqual(
    all.map((ev) => ev.type === "message" ? ev.text : ev.type),
    ["Hello", "plain", "ping", "Hello", "Hello"],
  );
  codec.close();
});

Deno.test("receiver: fragmented compressed messages split anywhere inflate whole", () => {
  const server = new PerMessageDeflate(takeover, "server", settings);
  const text = JSON.stringify({ list: Array.from({ length: 40 }, (_, i) => `item ${i}`) });
  const packed = server.compress(enc.encode(text))!;
  const { codec, receiver } = deflateClient();
  // Three fragments, the wire split into 7-byte chunks.
  const a = packed.subarray(0, 20), m = packed.subarray(20, 50), z = packed.subarray(50);
  const wire = new Uint8Array([
    ...encodeFrame(Opcode.TEXT, a, { masked: false, fin: false, rsv1: true }).flatMap((
      c,
    ) => [...c]),
    ...encodeFrame(Opcode.CONTINUATION, m, { masked: false, fin: false }).flatMap((c) => [...c]),
    ...encodeFrame(Opcode.CONTINUATION, z, { masked: false }).flatMap((c) => [...c]),
  ]);
  const chunks = [];
  for (let i = 0; i < wire.length; i += 7) chunks.push(wire.slice(i, i + 7));
  const all = events(receiver, ...chunks);
  assert.equal(all.length, 1);
  assert.equal((all[0] as { text: string }).text, text);
  server.close();
  codec.close();
});

Deno.test("receiver: a compressed bomb is 1009, corrupt data and bad UTF-8 are 1007", () => {
  const bomb = zlib.deflateRawSync(new Uint8Array(16 * 1024 * 1024));
  const big = deflateClient(1 << 20);
  const [ev] = events(
    big.receiver,
    ...encodeFrame(Opcode.BINARY, bomb, { masked: false, rsv1: true }),
  );
  assert.deepEqual([ev.type, (ev as { code: number }).code], ["error", 1009]);
  big.codec.close();

  const bad = deflateClient();
  const [ev2] = events(bad.receiver, frame(0xc2, b(0xff, 0xff, 0xff, 0x01)));
  assert.deepEqual([ev2.type, (ev2 as { code: number }).code], ["error", 1007]);
  bad.codec.close();

  const utf = deflateClient();
  const invalid = zlib.deflateRawSync(b(0x61, 0xff, 0x62), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const [ev3] = events(utf.receiver, frame(0xc1, invalid.subarray(0, invalid.length - 4)));
  assert.deepEqual([ev3.type, (ev3 as { code: number }).code], ["error", 1007]);
  utf.codec.close();
});

Deno.test("receiver: the limit is on the inflated size, not the wire size", () => {
  const { codec, receiver } = deflateClient(1000);
  const ok = zlib.deflateRawSync(new Uint8Array(1000), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const over = zlib.deflateRawSync(new Uint8Array(1001), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const [first] = events(receiver, frame(0xc2, ok.subarray(0, ok.length - 4)));
  assert.equal((first as { data: Uint8Array }).data.length, 1000);
  const [second] = events(receiver, frame(0xc2, over.subarray(0, over.length - 4)));
  assert.deepEqual([second.type, (second as { code: number }).code], ["error", 1009]);
  codec.close();
});

Deno.test("frame: RSV1 is set only where allowed", () => {
  const [header] = encodeFrame(Opcode.TEXT, b(1), { masked: false, rsv1: true });
  assert.equal(header[0], 0xc1);
  const [masked] = encodeFrame(Opcode.BINARY, b(1), { masked: true, rsv1: true });
  assert.equal(masked[0], 0xc2);
  throwsCode(() => encodeFrame(Opcode.PING, b(), { masked: false, rsv1: true }), "EINVAL");
  throwsCode(
    () => encodeFrame(Opcode.CONTINUATION, b(), { masked: false, rsv1: true }),
    "EINVAL",
  );
});

Deno.test("handshake: a refusal after negotiating gives the reservation back", () => {
  const budget = new DeflateBudget(1 << 30);
  assert.throws(
    () =>
      acceptUpgrade(upgradeRequest("permessage-deflate"), {
        perMessageDeflate: { options: serverDefaults, budget },
        responseHeaders: [["X-Note", "bad\r\nvalue"]],
      }),
    (e: unknown) => isDillError(e, "EINVAL"),
  );
  assert.equal(budget.reserved, 0);
});

Deno.test("zlib_sync: Deno's node:zlib still has the synchronous native write we drive", () => {
  // protocol/zlib_sync.ts relies on an internal of node:zlib; this pins it.
  const stream = zlib.createDeflateRaw() as unknown as {
    _handle?: { writeSync?: unknown; reset?: unknown; close(): void };
    _writeState?: unknown;
  };
  assert.equal(typeof stream._handle?.writeSync, "function");
  assert.equal(typeof stream._handle?.reset, "function");
  assert.ok(stream._writeState instanceof Uint32Array);
  stream._handle!.close();
  // And it keeps its history across writes: the second sync flush of the same text is a
  // short back-reference, which a one-shot (closing) call could never produce.
  const z = new SyncZlib("deflate", { windowBits: 15, memLevel: 8, level: 6 });
  const sizes: number[] = [];
  for (let i = 0; i < 2; i++) {
    let n = 0;
    z.write(enc.encode("permessage-deflate keeps a window ".repeat(4)), true, (c) => {
      n += c.length;
      return true;
    });
    sizes.push(n);
  }
  z.close();
  assert.ok(sizes[1] < sizes[0] / 2, JSON.stringify(sizes));
  assert.throws(() => z.write(b(1), true, () => true), /closed/);
});
