/**
 * A hostile client against OUR SERVER (wsAttachServer): a raw peer writes bytes by hand
 * over TCP (a raw `Deno.Conn`) and over an in-memory pipe, breaking one rule of RFC 6455
 * per test. Each test checks what our server sends back (close code, HTTP status), what
 * our API reports (error code), and that it all happens well before the deadline.
 */

import assert from "node:assert/strict";
import {
  mrecv,
  msend,
  now,
  WS_BINARY,
  WS_TEXT,
  wsAttachServer,
  wsSend,
  type WsServerOptions,
  wsStatus,
} from "../mod.ts";
import { assertFailed, assertOk, settle } from "./helpers/outcome.ts";
import { assertQuick } from "./helpers/assert_quick.ts";
import { bytes, concat } from "./helpers/raw_peer/bytes.ts";
import { closeBody, OP } from "./helpers/raw_peer/frames.ts";
import {
  acceptKey,
  type ParsedResponse,
  SAMPLE_KEY,
  upgradeRequest,
} from "./helpers/raw_peer/handshake.ts";
import { numbered, numberOf } from "./helpers/raw_peer/numbered_pongs.ts";
import { connectRaw, Rig, type Transport, TRANSPORTS } from "./helpers/raw_peer/rig.ts";
import { OUR_SERVER, rigTests } from "./helpers/raw_peer/our_side.ts";
import { type FrameRule, testFrameRules } from "./helpers/raw_peer/frame_rules.ts";
import * as shared from "./helpers/raw_peer/shared_behaviour.ts";
import { checkPingFlood } from "./helpers/raw_peer/ping_flood.ts";

const dec = new TextDecoder();

// ---- failing in order -----------------------------------------------------------------

for (const transport of TRANSPORTS) {
  const test = rigTests(OUR_SERVER, transport);

  test(
    "a message then a violation in one burst: the message is delivered, the reply goes out before the 1002",
    { flags: WS_TEXT },
    async (rig) => {
      await rig.peer.send(concat(
        rig.peer.frame({ opcode: OP.TEXT, payload: "question" }),
        rig.peer.frame({ opcode: OP.TEXT, payload: "bad", mask: false }), // a violation
      ));
      await new Promise((resolve) => setTimeout(resolve, 20)); // both were read by now
      const got = await mrecv(rig.ws, now() + 2000);
      assert.equal(dec.decode(got), "question");
      await msend(rig.ws, "answer", now() + 2000); // no EPIPE
      assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPROTO", "mrecv past it");
      const reply = await rig.peer.readFrame();
      assert.equal(reply.opcode, OP.TEXT);
      assert.equal(dec.decode(reply.payload), "answer");
      assert.equal((await rig.peer.readClose()).code, 1002);
    },
  );

  test(
    "a violation behind a message the app does not read fails the connection after failGrace",
    { options: { failGrace: 200 } },
    async (rig) => {
      const t0 = now();
      await rig.peer.send(concat(
        rig.peer.frame({ opcode: OP.BINARY, payload: "unread" }),
        rig.peer.frame({ opcode: OP.BINARY, payload: "bad", mask: false }),
      ));
      assert.equal((await rig.peer.readClose()).code, 1002);
      const waited = now() - t0;
      assert.ok(waited >= 150, `the close came after ${waited} ms, before failGrace`);
      assertQuick(t0, "the 1002 after failGrace", 1000);
      // What arrived before the violation is still there for the application.
      assert.equal(dec.decode(await mrecv(rig.ws, now() + 2000)), "unread");
      assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPROTO", "mrecv past it");
    },
  );
}

// ---- framing rules ---------------------------------------------------------------------

/** Masking is the framing rule that differs by side: a client must mask (RFC 6455 5.1). */
const UNMASKED_FROM_THE_CLIENT: FrameRule[] = [
  {
    name: "unmasked client frame",
    send: (p) => [p.frame({ opcode: OP.TEXT, payload: "hi", mask: false })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "unmasked ping",
    send: (p) => [p.frame({ opcode: OP.PING, payload: "p", mask: false })],
    code: 1002,
    error: "EPROTO",
    outcome: "1002 (no pong)", // checkFrameRule reads the close as the next frame
  },
];

testFrameRules(OUR_SERVER, UNMASKED_FROM_THE_CLIENT);

// ---- behaviour that is not a violation -------------------------------------------------

for (const transport of TRANSPORTS) {
  const test = rigTests(OUR_SERVER, transport);

  test(
    "a message of exactly maxMessageSize is accepted",
    { options: { maxMessageSize: 1000 } },
    async (rig) => {
      const payload = new Uint8Array(1000).map((_, i) => i * 7);
      await rig.peer.send(concat(
        rig.peer.frame({ opcode: OP.BINARY, fin: false, payload: payload.subarray(0, 400) }),
        rig.peer.frame({ opcode: OP.CONT, payload: payload.subarray(400) }),
      ));
      assert.deepEqual(await mrecv(rig.ws, now() + 2000), payload);
    },
  );

  test(
    "pings are answered with the same payload while the app is not reading",
    // All three in one write, and the app never calls mrecv.
    (rig) =>
      shared.pongPerPing(rig.peer, [
        new Uint8Array(0),
        crypto.getRandomValues(new Uint8Array(125)),
        bytes("héllo"),
      ]),
  );

  test(
    "10 pings back to back get 10 pongs, in order, same payloads",
    (rig) => shared.pongPerPing(rig.peer, shared.TEN_PINGS),
  );

  test(
    "pings between fragments are answered; the message is reassembled",
    { flags: WS_TEXT },
    async (rig) => {
      const p = rig.peer;
      const euro = bytes("€"); // three bytes: split around a ping
      await p.send(concat(
        p.frame({ opcode: OP.TEXT, fin: false, payload: "Hel" }),
        p.frame({ opcode: OP.PING, payload: "one" }),
        p.frame({
          opcode: OP.CONT,
          fin: false,
          payload: concat(bytes("lo "), euro.subarray(0, 1)),
        }),
      ));
      await shared.expectPong(p, "one");
      await p.send(concat(
        p.frame({ opcode: OP.PING, payload: "two" }),
        p.frame({ opcode: OP.CONT, fin: false, payload: euro.subarray(1, 2) }),
        p.frame({ opcode: OP.CONT, payload: concat(euro.subarray(2), bytes("!")) }),
      ));
      await shared.expectPong(p, "two");
      assert.equal(dec.decode(await mrecv(rig.ws, now() + 2000)), "Hello €!");
    },
  );

  test(
    "an unsolicited pong is ignored",
    { flags: WS_TEXT },
    (rig) =>
      shared.unsolicitedPongIsIgnored(rig, { type: WS_TEXT, data: "after" }, {
        type: WS_TEXT,
        data: "reply",
      }),
  );

  test(
    "closing handshake: echo, messages before close delivered, then EPIPE; server closes TCP first",
    { flags: WS_TEXT },
    (rig) =>
      shared.closingHandshake(
        rig,
        transport,
        [{ type: WS_TEXT, data: "one" }, { type: WS_BINARY, data: new Uint8Array([2]) }],
        { code: 1000, reason: "bye" },
      ),
  );

  for (const code of [1000, 1001, 3000, 4999]) {
    test(
      `close code ${code} is accepted, echoed and reported by wsStatus`,
      (rig) => shared.closeIsEchoed(rig, transport, { code, reason: "réason" }),
    );
  }

  test("a close frame without a body is echoed without a body (wsStatus 1005)", async (rig) => {
    await rig.peer.sendFrame({ opcode: OP.CLOSE });
    const echo = await rig.peer.readClose();
    assert.equal(echo.body.length, 0);
    assert.deepEqual(await wsStatus(rig.ws), { status: 1005, reason: "" });
    await rig.peer.expectEnd();
  });

  test("frames after the peer's close frame are ignored", async (rig) => {
    const p = rig.peer;
    await p.send(concat(
      p.frame({ opcode: OP.CLOSE, payload: closeBody(1000) }),
      p.frame({ opcode: OP.BINARY, payload: new Uint8Array([9]) }),
      p.frame({ opcode: OP.PING, payload: "late" }),
    ));
    assert.equal((await p.readClose()).code, 1000); // no pong before or after it
    await p.expectEnd();
    assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPIPE", "mrecv");
  });

  test(
    "after our close, messages still arrive until the peer's close",
    (rig) =>
      shared.ourCloseFirst(rig, transport, { code: 4000, reason: "done here" }, [
        { type: WS_BINARY, data: new Uint8Array([1, 2, 3]) },
      ]),
  );

  test(
    "EOF without a close frame: pending mrecv ECONNRESET, wsStatus 1006",
    // The message before the EOF is delivered first.
    (rig) => shared.eofWithoutClose(rig, [new Uint8Array([7])]),
  );

  test("EOF in the middle of a frame: pending mrecv ECONNRESET", async (rig) => {
    const receiving = settle(mrecv(rig.ws, now() + 2000));
    await rig.peer.send(rig.peer.frame({ opcode: OP.BINARY, announced: 10, payload: "abc" }));
    await rig.peer.wire.closeWrite();
    assertFailed(await receiving, "ECONNRESET", "mrecv");
    assert.deepEqual(await wsStatus(rig.ws), { status: 1006, reason: "" });
  });
}

const serverOverTcp = rigTests(OUR_SERVER, "tcp");
const serverOverPipe = rigTests(OUR_SERVER, "pipe");

serverOverTcp(
  "2^40-byte announcement is refused at once, not after allocating",
  async (rig) => {
    const t0 = now();
    const receiving = settle(mrecv(rig.ws, now() + 2000));
    await rig.peer.sendFrame({ opcode: OP.BINARY, announced: 1n << 40n });
    const close = await rig.peer.readClose();
    assert.equal(close.code, 1009);
    assertFailed(await receiving, "EMSGSIZE", "mrecv");
    assertQuick(t0, "the 1009", 200);
  },
);

serverOverTcp(
  "a 512 MiB announcement within the limit is not allocated up front",
  { options: { maxMessageSize: 1 << 30 } },
  async (rig) => {
    const before = Deno.memoryUsage().external;
    const receiving = settle(mrecv(rig.ws, now() + 2000));
    await rig.peer.sendFrame({
      opcode: OP.BINARY,
      announced: 512 * 1024 * 1024,
      payload: "0123456789",
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const grown = Deno.memoryUsage().external - before;
    assert.ok(grown < 64 * 1024 * 1024, `external memory grew by ${grown} bytes`);
    await rig.peer.wire.closeWrite();
    assertFailed(await receiving, "ECONNRESET", "mrecv at EOF mid-frame");
  },
);

serverOverPipe(
  "a ping flood from a peer that does not read costs bounded memory; every ping is answered in order",
  (rig) => checkPingFlood(rig.peer),
);

serverOverPipe(
  "maxPongBytes 0 still answers every ping, one pong at a time",
  { options: { maxPongBytes: 0 } },
  async (rig) => {
    const pings = Array.from({ length: 50 }, (_, i) => numbered(i, 20));
    await rig.peer.send(
      concat(...pings.map((payload) => rig.peer.frame({ opcode: OP.PING, payload }))),
    );
    for (let i = 0; i < pings.length; i++) {
      const f = await rig.peer.readFrame();
      assert.equal(f.opcode, OP.PONG);
      assert.equal(numberOf(f.payload), i);
    }
  },
);

serverOverTcp("a message in 10 000 one-byte fragments is reassembled", async (rig) => {
  const n = 10_000;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(rig.peer.frame({
      opcode: i === 0 ? OP.BINARY : OP.CONT,
      fin: i === n - 1,
      payload: new Uint8Array([i & 0xff]),
    }));
  }
  await rig.peer.send(concat(...parts));
  const m = await mrecv(rig.ws, now() + 2000);
  assert.equal(m.length, n);
  assert.ok(m.every((b, i) => b === (i & 0xff)));
});

serverOverTcp(
  "a 4-byte code point in four 1-byte fragments is valid text",
  { flags: WS_TEXT },
  async (rig) => {
    const emoji = bytes("😀");
    await rig.peer.send(concat(
      ...[...emoji].map((b, i) =>
        rig.peer.frame({
          opcode: i === 0 ? OP.TEXT : OP.CONT,
          fin: i === 3,
          payload: new Uint8Array([b]),
        })
      ),
    ));
    assert.equal(dec.decode(await mrecv(rig.ws, now() + 2000)), "😀");
  },
);

for (const code of [1003, 1007, 1008, 1011, 1012, 1013, 1014]) {
  serverOverTcp(`registered close code ${code} is accepted and echoed`, async (rig) => {
    await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(code) });
    assert.equal((await rig.peer.readClose()).code, code);
    assert.deepEqual(await wsStatus(rig.ws), { status: code, reason: "" });
  });
}

serverOverTcp("a close reason of exactly 123 bytes is accepted", async (rig) => {
  const reason = "é".repeat(61) + "x"; // 123 bytes
  await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(1000, reason) });
  assert.equal((await rig.peer.readClose()).code, 1000);
  assert.deepEqual(await wsStatus(rig.ws), { status: 1000, reason });
});

// ---- the opening handshake -------------------------------------------------------------

interface Refusal {
  response: ParsedResponse;
  code: string | undefined;
}

/** Sends a raw request to our server; expects a refusal and the end of the stream. */
async function refused(
  request: Uint8Array | string,
  options: WsServerOptions = {},
  transport: Transport = "tcp",
): Promise<Refusal> {
  const { ours, peer } = await connectRaw(transport, "client");
  try {
    const t0 = now();
    const attaching = settle(wsAttachServer(ours, 0, now() + 2000, options));
    await peer.send(request);
    const response = await peer.readResponse();
    assert.equal(response.headers.get("connection")?.toLowerCase().includes("close"), true);
    await peer.expectEnd();
    const outcome = await attaching;
    assert.ok(!outcome.ok, "wsAttachServer accepted a bad request");
    assertQuick(t0, "the refusal");
    return { response, code: (outcome.error as { code?: string }).code };
  } finally {
    await peer.close();
  }
}

const BAD_REQUESTS: {
  name: string;
  request: () => Uint8Array | string;
  status: number;
  code: string;
  options?: WsServerOptions;
}[] = [
  {
    name: "method POST",
    request: () => upgradeRequest({ method: "POST" }),
    status: 405,
    code: "EPROTO",
  },
  {
    name: "HTTP/1.0",
    request: () => upgradeRequest({ version: "HTTP/1.0" }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "missing Host",
    request: () => upgradeRequest({ headers: { Host: null } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "missing Upgrade",
    request: () => upgradeRequest({ headers: { Upgrade: null } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "Upgrade: h2c",
    request: () => upgradeRequest({ headers: { Upgrade: "h2c" } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "Connection without the upgrade token",
    request: () => upgradeRequest({ headers: { Connection: "keep-alive" } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "missing Sec-WebSocket-Key",
    request: () => upgradeRequest({ headers: { "Sec-WebSocket-Key": null } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "Sec-WebSocket-Key of 15 bytes",
    request: () => upgradeRequest({ headers: { "Sec-WebSocket-Key": btoa("x".repeat(15)) } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "Sec-WebSocket-Key of 20 bytes",
    request: () => upgradeRequest({ headers: { "Sec-WebSocket-Key": btoa("x".repeat(20)) } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "Sec-WebSocket-Key that is not base64",
    request: () => upgradeRequest({ headers: { "Sec-WebSocket-Key": "not base64 at all!!!!!==" } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "garbage bytes",
    request: () => new Uint8Array([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a]),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "a WebSocket frame instead of a request",
    request: () => new Uint8Array([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "65 header fields (limit 64)",
    request: () =>
      upgradeRequest({ extra: Array.from({ length: 60 }, (_, i) => `X-Filler-${i}: ${i}`) }),
    status: 431,
    code: "EMSGSIZE",
  },
  {
    name: "resource longer than maxResourceLength",
    request: () => upgradeRequest({ target: "/" + "r".repeat(200) }),
    status: 414,
    code: "EMSGSIZE",
    options: { maxResourceLength: 100 },
  },
  {
    name: "resource longer than the default maxResourceLength (1024)",
    request: () => upgradeRequest({ target: "/" + "r".repeat(1100) }),
    status: 414,
    code: "EMSGSIZE",
  },
  {
    name: "host longer than maxHostLength",
    request: () => upgradeRequest({ headers: { Host: "h".repeat(60) + ".example" } }),
    status: 400,
    code: "EMSGSIZE",
    options: { maxHostLength: 32 },
  },
  {
    name: "two Sec-WebSocket-Key headers",
    request: () => upgradeRequest({ extra: [`Sec-WebSocket-Key: ${btoa("y".repeat(16))}`] }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "two Host headers",
    request: () => upgradeRequest({ extra: ["Host: other.example"] }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "a request body (Content-Length: 5)",
    request: () => upgradeRequest({ headers: { "Content-Length": "5" } }),
    status: 400,
    code: "EPROTO",
  },
  {
    name: "bare LF line endings",
    request: () => dec.decode(upgradeRequest()).replaceAll("\r\n", "\n"),
    status: 400,
    code: "EPROTO",
  },
];

for (const bad of BAD_REQUESTS) {
  Deno.test(`ws server handshake: ${bad.name} → ${bad.status}, ${bad.code}`, async () => {
    const { response, code } = await refused(bad.request(), bad.options);
    assert.equal(response.status, bad.status, response.raw + response.body);
    assert.equal(code, bad.code);
    if (bad.status === 405) assert.equal(response.headers.get("allow"), "GET");
    assert.equal(response.headers.get("sec-websocket-accept"), null);
  });
}

Deno.test("ws server handshake: Sec-WebSocket-Version 12 → 426 naming version 13, EPROTO", async () => {
  const { response, code } = await refused(
    upgradeRequest({ headers: { "Sec-WebSocket-Version": "12" } }),
  );
  assert.equal(response.status, 426);
  assert.equal(response.headers.get("sec-websocket-version"), "13");
  assert.equal(code, "EPROTO");
});

Deno.test("ws server handshake: head over maxHeadBytes (8 KiB) → 431, EMSGSIZE", async () => {
  // Exactly 8192 bytes, never finished: the server must refuse at the limit without waiting.
  const start = "GET /chat HTTP/1.1\r\nHost: example.com\r\nX-Big: ";
  const request = start + "a".repeat(8192 - start.length);
  const { response, code } = await refused(request);
  assert.equal(response.status, 431, response.raw);
  assert.equal(code, "EMSGSIZE");
});

Deno.test("ws server handshake: request line over maxHeadBytes → 414 or 431, EMSGSIZE", async () => {
  const request = "GET /" + "a".repeat(1000);
  const { response, code } = await refused(request, { httpLimits: { maxHeadBytes: 1005 } });
  assert.ok([414, 431].includes(response.status), response.raw);
  assert.equal(code, "EMSGSIZE");
});

Deno.test("ws server handshake: header count over httpLimits.maxHeaders → 431, EMSGSIZE", async () => {
  const { response, code } = await refused(
    upgradeRequest({ extra: ["X-A: 1", "X-B: 2"] }),
    { httpLimits: { maxHeaders: 6 } },
  );
  assert.equal(response.status, 431);
  assert.equal(code, "EMSGSIZE");
});

Deno.test("ws server handshake over a pipe: a bad request gets its HTTP error too", async () => {
  const { response, code } = await refused(upgradeRequest({ method: "PUT" }), {}, "pipe");
  assert.equal(response.status, 405);
  assert.equal(code, "EPROTO");
});

Deno.test("ws server handshake: half a request then a stall → ETIMEDOUT at the deadline, socket closed", async () => {
  const { ours, peer } = await connectRaw("tcp", "client");
  try {
    const t0 = now();
    const attaching = settle(wsAttachServer(ours, 0, now() + 300));
    await peer.send("GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgr");
    assertFailed(await attaching, "ETIMEDOUT", "wsAttachServer");
    const elapsed = now() - t0;
    assert.ok(elapsed >= 250 && elapsed < 1000, `failed after ${elapsed.toFixed(0)} ms`);
    await peer.expectEnd(now() + 1000); // our side closed the socket
  } finally {
    await peer.close();
  }
});

for (const how of ["half-close", "full close"] as const) {
  Deno.test(`ws server handshake: the client disconnects mid-request (${how}) → ECONNRESET`, async () => {
    const { ours, peer } = await connectRaw("tcp", "client");
    try {
      const t0 = now();
      const attaching = settle(wsAttachServer(ours, 0, now() + 2000));
      await peer.send("GET /chat HTTP/1.1\r\nHost: exa");
      if (how === "half-close") await peer.wire.closeWrite();
      else await peer.close();
      assertFailed(await attaching, "ECONNRESET", "wsAttachServer");
      assertQuick(t0, "the failure");
      if (how === "half-close") await peer.expectEnd();
    } finally {
      await peer.close();
    }
  });
}

Deno.test("ws server handshake: the client disconnects before sending anything → ECONNRESET", async () => {
  const { ours, peer } = await connectRaw("pipe", "client");
  try {
    const attaching = settle(wsAttachServer(ours, 0, now() + 2000));
    await peer.close();
    assertFailed(await attaching, "ECONNRESET", "wsAttachServer");
  } finally {
    await peer.close();
  }
});

// ---- valid requests in the odd forms real clients send --------------------------------

const GOOD_REQUESTS: {
  name: string;
  request: () => Uint8Array;
  check?: (rig: Rig) => void;
  /** The Sec-WebSocket-Extensions answer expected (none by default). */
  extensions?: string;
}[] = [
  {
    name: "Connection: keep-alive, Upgrade",
    request: () => upgradeRequest({ headers: { Connection: "keep-alive, Upgrade" } }),
  },
  {
    name: "lowercase header names and values",
    request: () =>
      bytes(
        "GET /chat HTTP/1.1\r\nhost: example.com\r\nupgrade: websocket\r\nconnection: upgrade\r\n" +
          `sec-websocket-key: ${SAMPLE_KEY}\r\nsec-websocket-version: 13\r\n\r\n`,
      ),
  },
  {
    name: "uppercase header names, mixed-case values",
    request: () =>
      bytes(
        "GET /chat HTTP/1.1\r\nHOST: example.com\r\nUPGRADE: WebSocket\r\nCONNECTION: UPGRADE\r\n" +
          `SEC-WEBSOCKET-KEY: ${SAMPLE_KEY}\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n`,
      ),
  },
  {
    name: "extra headers a browser sends",
    request: () =>
      upgradeRequest({
        headers: {
          "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)",
          "Accept-Encoding": "gzip, deflate, br",
          "Accept-Language": "en-US,en;q=0.9",
          "Cache-Control": "no-cache",
          "Pragma": "no-cache",
          "Cookie": "a=b; c=d",
        },
      }),
    check: (rig) => assert.equal(rig.headers.get("cookie"), "a=b; c=d"),
  },
  {
    name: "Origin",
    request: () => upgradeRequest({ headers: { Origin: "https://example.com" } }),
    check: (rig) => assert.equal(rig.headers.get("origin"), "https://example.com"),
  },
  {
    name: "Sec-WebSocket-Extensions offers",
    request: () =>
      upgradeRequest({
        headers: {
          "Sec-WebSocket-Extensions":
            "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
        },
      }),
    // permessage-deflate is accepted (on by default); the unknown extension is ignored.
    extensions: "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
  },
  {
    name: "Sec-WebSocket-Protocol offered but not spoken",
    request: () => upgradeRequest({ headers: { "Sec-WebSocket-Protocol": "chat, superchat" } }),
  },
  {
    name: "optional whitespace around header values",
    request: () =>
      bytes(
        "GET /chat HTTP/1.1\r\nHost:example.com\r\nUpgrade:  websocket \r\n" +
          `Connection: Upgrade\t\r\nSec-WebSocket-Key:   ${SAMPLE_KEY}   \r\n` +
          "Sec-WebSocket-Version: 13\r\n\r\n",
      ),
  },
  {
    name: "absolute-form target ws://example.com/chat",
    request: () =>
      upgradeRequest({ target: "ws://example.com/chat", headers: { Host: "example.com" } }),
  },
];

for (const good of GOOD_REQUESTS) {
  Deno.test(`ws server handshake accepts: ${good.name}`, async () => {
    const { ours, peer } = await connectRaw("tcp", "client");
    const attaching = settle(wsAttachServer(ours, 0, now() + 2000));
    let rig: Rig | null = null;
    try {
      await peer.send(good.request());
      const res = await peer.readResponse();
      assert.equal(res.status, 101, res.raw + res.body);
      assert.equal(res.headers.get("sec-websocket-accept"), acceptKey(SAMPLE_KEY));
      assert.equal(res.headers.get("upgrade")?.toLowerCase(), "websocket");
      assert.equal(res.headers.get("connection")?.toLowerCase(), "upgrade");
      assert.equal(res.headers.get("sec-websocket-extensions"), good.extensions ?? null);
      assert.equal(res.headers.get("sec-websocket-protocol"), null);
      const attached = assertOk(await attaching, "wsAttachServer");
      rig = new Rig(attached.handle, peer, attached.headers);
      assert.equal(attached.resource, "/chat");
      assert.equal(attached.host, "example.com");
      assert.equal(attached.protocol, null);
      good.check?.(rig);
      // The connection works both ways.
      await peer.sendFrame({ opcode: OP.BINARY, payload: new Uint8Array([1, 2]) });
      assert.deepEqual(await mrecv(rig.ws, now() + 2000), new Uint8Array([1, 2]));
      await wsSend(rig.ws, WS_TEXT, "ok", now() + 2000);
      assert.equal(dec.decode((await peer.readFrame()).payload), "ok");
    } finally {
      if (rig) await rig.close();
      else {
        await attaching;
        await peer.close();
      }
    }
  });
}

Deno.test("ws server handshake: the subprotocol the client prefers among ours is chosen", async () => {
  const { ours, peer } = await connectRaw("tcp", "client");
  const attaching = settle(
    wsAttachServer(ours, 0, now() + 2000, { protocols: ["superchat", "chat"] }),
  );
  try {
    await peer.send(
      upgradeRequest({ headers: { "Sec-WebSocket-Protocol": "chat, superchat" } }),
    );
    const res = await peer.readResponse();
    assert.equal(res.status, 101);
    assert.equal(res.headers.get("sec-websocket-protocol"), "chat");
    const attached = assertOk(await attaching, "wsAttachServer");
    assert.equal(attached.protocol, "chat");
    await new Rig(attached.handle, peer, attached.headers).close();
  } finally {
    await peer.close();
  }
});

Deno.test("ws server handshake: frames sent right behind the request are received", async () => {
  const { ours, peer } = await connectRaw("tcp", "client");
  const attaching = settle(wsAttachServer(ours, WS_TEXT, now() + 2000));
  try {
    await peer.send(concat(
      upgradeRequest(),
      peer.frame({ opcode: OP.TEXT, payload: "early" }),
      peer.frame({ opcode: OP.TEXT, payload: "bird" }),
    ));
    assert.equal((await peer.readResponse()).status, 101);
    const attached = assertOk(await attaching, "wsAttachServer");
    const rig = new Rig(attached.handle, peer, attached.headers);
    assert.equal(dec.decode(await mrecv(rig.ws, now() + 2000)), "early");
    assert.equal(dec.decode(await mrecv(rig.ws, now() + 2000)), "bird");
    await rig.close();
  } finally {
    await peer.close();
  }
});
