/**
 * HTTP and WebSocket on one raw port, built from the public API only: `httpRecvRequest`
 * reads the head (and not a byte past it), plain requests get plain answers, and
 * `wsAcceptUpgrade` checks an upgrade and builds its answer before `wsAttachServer` with
 * `WS_NOHTTP`. Real clients: Python `websockets` (which offers permessage-deflate),
 * Deno's `fetch` and Deno's `WebSocket`; raw bytes for what they cannot send.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  DeflateBudget,
  type Handle,
  HandshakeError,
  hclose,
  HttpError,
  type HttpLimits,
  httpRecvRequest,
  type HttpRequestHead,
  ipcPair,
  now,
  tcpAccept,
  tcpClose,
  writeHttpResponse,
  WS_NOHTTP,
  type WsAcceptOptions,
  wsAcceptUpgrade,
  wsAttachServer,
  wsRecv,
  wsSend,
  wsStatus,
} from "../mod.ts";
import { closeQuietly, echoBack, listenLocal, soon, type Spec } from "./peers/common.ts";
import { startPythonPeer } from "./peers/python_peer.ts";
import { WireTap } from "./peers/wire_tap.ts";
import { answered, assertCompressed } from "./helpers/deflate_wire.ts";
import { bytes, concat } from "./helpers/raw_peer/bytes.ts";
import { frame, OP } from "./helpers/raw_peer/frames.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";
import { rejectsWith, throwsWith } from "./helpers/transports.ts";
import { Rng } from "../fuzz/prng.ts";

const PAGE = "a plain page\n";
const ITEM = '{"id":7,"user":"ada","ok":true},';
const SPECS: Spec[] = [
  { kind: "text", text: ITEM, repeat: 40 },
  { kind: "binary", size: 20_000, seed: 5 },
  { kind: "text", text: ITEM, repeat: 10, split: [ITEM.length * 4] },
];

/**
 * Serves one connection of the listener as an application would: the page on `/`, a
 * WebSocket on `/ws` (handed to `onWs`, closed after it), refusals as their answers.
 * Resolves what it did.
 */
async function serveOne(
  listener: Handle,
  options: WsAcceptOptions,
  onWs: (ws: Handle) => Promise<void>,
): Promise<string> {
  const s = (await tcpAccept(listener, soon())).handle;
  try {
    const head = await httpRecvRequest(s, soon());
    if (head.target !== "/ws") {
      const headers: [string, string][] = [["Connection", "close"], ["Content-Type", "text/plain"]];
      await bsend(s, writeHttpResponse(200, "OK", headers, PAGE), soon());
      await tcpClose(s, soon());
      return `page ${head.target}`;
    }
    let up;
    try {
      up = wsAcceptUpgrade(head, options);
    } catch (e) {
      if (!(e instanceof HandshakeError)) throw e;
      await bsend(s, e.response, soon());
      await tcpClose(s, soon());
      return `refused ${e.status}`;
    }
    await bsend(s, up.response, soon());
    const negotiatedDeflate = up.deflate ?? undefined;
    const { handle: ws } = await wsAttachServer(s, WS_NOHTTP, soon(), { negotiatedDeflate });
    try {
      await onWs(ws);
    } finally {
      hclose(ws);
    }
    return "ws";
  } catch (e) {
    closeQuietly(s); // no-op once the WebSocket layer owns it
    throw e;
  }
}

Deno.test("raw port: a python client's permessage-deflate offer is negotiated and used both ways", async () => {
  const { listener, port } = listenLocal();
  const tap = WireTap.start(port);
  const py = startPythonPeer("py_client.py", [
    `ws://127.0.0.1:${tap.port}/ws`,
    "echo",
    "--specs",
    JSON.stringify(SPECS),
  ]);
  try {
    const served = serveOne(listener, { perMessageDeflate: true }, async (ws) => {
      await echoBack(ws, SPECS);
      // The peer checks every echo, then closes with 1000.
      await rejectsWith(wsRecv(ws, soon()), "EPIPE");
      assert.equal(wsStatus(ws).status, 1000);
    });
    served.catch(() => {}); // awaited below, after the peer's report
    await py.event("open");
    const report = await py.event("echoes");
    assert.deepEqual(report.mismatches, []);
    assert.equal(await served, "ws");
    await py.expectSuccess();
    assert.match(answered(tap) ?? "", /^permessage-deflate/);
    assertCompressed(tap);
  } finally {
    closeQuietly(listener);
    await py.dispose();
    await tap.close();
  }
});

Deno.test("raw port: fetch gets the plain page and Deno's WebSocket the socket, on the same port", async () => {
  const { listener, port } = listenLocal();
  try {
    const page = serveOne(listener, {}, () => Promise.resolve());
    const res = await fetch(`http://127.0.0.1:${port}/index.html?x=1`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), PAGE);
    assert.equal(await page, "page /index.html?x=1");

    const socket = serveOne(listener, { protocols: ["chat"] }, async (ws) => {
      const got = await wsRecv(ws, soon());
      await wsSend(ws, got.type, got.data, soon());
    });
    const client = new WebSocket(`ws://127.0.0.1:${port}/ws`, ["other", "chat"]);
    const echoed = new Promise<string>((resolve, reject) => {
      client.onopen = () => client.send("over the raw port");
      client.onmessage = (e) => resolve(String(e.data));
      client.onerror = () => reject(new Error("the WebSocket client failed"));
    });
    const closed = new Promise((resolve) => client.onclose = resolve);
    assert.equal(await echoed, "over the raw port");
    assert.equal(client.protocol, "chat");
    assert.equal(await socket, "ws");
    await closed;
  } finally {
    closeQuietly(listener);
  }
});

Deno.test("raw port: a frame sent in the same write as the request head reaches the WebSocket layer", async () => {
  const { listener, port } = listenLocal();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const early = frame({ opcode: OP.BINARY, payload: "sent with the head", mask: true });
    const served = serveOne(listener, {}, async (ws) => {
      const got = await wsRecv(ws, soon());
      assert.deepEqual(got.data, bytes("sent with the head"));
    });
    await conn.write(concat(upgradeRequest({ target: "/ws" }), early));
    assert.equal(await served, "ws");
    const answer = new TextDecoder().decode(await readAll(conn));
    assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  } finally {
    conn.close();
    closeQuietly(listener);
  }
});

Deno.test("raw port: a refused upgrade gets its answer, and a kept compression budget stays untouched", async () => {
  const { listener, port } = listenLocal();
  const budget = new DeflateBudget(1 << 20);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const served = serveOne(listener, {
      checkOrigin: (origin) => origin === "https://ok.example",
      perMessageDeflate: { budget },
    }, () => Promise.reject(new Error("must not attach")));
    await conn.write(upgradeRequest({
      target: "/ws",
      headers: {
        "Origin": "https://evil.example",
        "Sec-WebSocket-Extensions": "permessage-deflate",
      },
    }));
    // The answer, then the server's FIN; our close lets its tcpClose finish.
    assert.match(new TextDecoder().decode(await readAll(conn)), /^HTTP\/1\.1 403 Forbidden\r\n/);
    conn.close();
    assert.equal(await served, "refused 403");
    assert.equal(budget.reserved, 0);
  } finally {
    try {
      conn.close();
    } catch {
      // closed above
    }
    closeQuietly(listener);
  }
});

/** Everything the server sends until it closes. */
async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return concat(...parts);
    parts.push(buf.slice(0, n));
  }
}

// ---- httpRecvRequest -----------------------------------------------------------------------

/** Sends `text` into one end of a pipe and reads a head from the other. */
async function headFrom(text: string, limits?: HttpLimits): Promise<[HttpRequestHead, Handle]> {
  const [server, client] = ipcPair();
  await bsend(client, bytes(text), soon());
  hclose(client);
  try {
    return [await httpRecvRequest(server, soon(), limits), server];
  } catch (e) {
    hclose(server);
    throw e;
  }
}

Deno.test("httpRecvRequest: reads the head and leaves every byte after it in the stream", async () => {
  const [head, server] = await headFrom(
    "GET /chat?room=a HTTP/1.1\r\nHost: a.example\r\nX-Odd:  padded \r\n\r\n\r\n\r\nXYZ",
  );
  try {
    assert.equal(head.method, "GET");
    assert.equal(head.target, "/chat?room=a");
    assert.equal(head.version, "HTTP/1.1");
    assert.equal(head.headers.get("host"), "a.example");
    assert.equal(head.headers.get("x-odd"), "padded");
    // The two empty lines and XYZ came after the head: they are the next layer's.
    assert.deepEqual(await brecv(server, new Uint8Array(7), soon()), bytes("\r\n\r\nXYZ"));
  } finally {
    hclose(server);
  }
});

Deno.test("httpRecvRequest: a second head read on the same stream while one runs is EBUSY, and takes nothing", async () => {
  const [server, client] = ipcPair();
  try {
    const first = httpRecvRequest(server, soon());
    await rejectsWith(httpRecvRequest(server, soon()), "EBUSY");
    // The first head arrives in two pieces, a second request right behind it.
    await bsend(client, bytes("GET /one HTTP/1.1\r\nHo"), soon());
    await bsend(client, bytes("st: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n"), soon());
    assert.equal((await first).target, "/one");
    assert.equal((await httpRecvRequest(server, soon())).target, "/two");
  } finally {
    hclose(server);
    hclose(client);
  }
});
Deno.test("httpRecvRequest: what is not a handle is EBADF, not a TypeError", async () => {
  for (const bad of [42, null, "x", {}]) {
    await rejectsWith(httpRecvRequest(bad as never, soon()), "EBADF");
  }
});

Deno.test("httpRecvRequest: over random heads and what follows them, it takes exactly the head", async () => {
  // What follows a head is often "\r\n"-rich (another request, a frame): reading it would
  // be easy to get wrong right where a lookahead ends.
  const tails = ["", "\r", "\r\n", "\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", "\n\r\n\rX"];
  for (let i = 0; i < 150; i++) {
    const rng = new Rng(6455, i);
    const lines = [`GET /p${i}?q=${"x".repeat(rng.int(40))} HTTP/1.1`, "Host: h.example"];
    for (let h = rng.int(8); h > 0; h--) {
      // Values end in any byte, spaces included, so the head's end falls at every offset mod 4.
      lines.push(`X-${rng.int(1000)}: ${"v".repeat(rng.int(9))}${" ".repeat(rng.int(3))}`);
    }
    const head = lines.join("\r\n") + "\r\n\r\n";
    const tail = tails[rng.int(tails.length)] + "z".repeat(rng.int(5));
    const [server, client] = ipcPair();
    try {
      // In up to three writes, cut anywhere (inside the blank line too), each arriving
      // while the head is being read.
      const all = bytes(head + tail);
      const cuts = [rng.int(all.length + 1), rng.int(all.length + 1)].sort((a, b) => a - b);
      const reading = httpRecvRequest(server, soon());
      for (const [from, to] of [[0, cuts[0]], [cuts[0], cuts[1]], [cuts[1], all.length]]) {
        if (to > from) await bsend(client, all.subarray(from, to), soon());
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const got = await reading;
      assert.equal(got.target, lines[0].split(" ")[1]);
      if (tail.length > 0) {
        const rest = await brecv(server, new Uint8Array(tail.length), soon());
        assert.equal(new TextDecoder().decode(rest), tail, `case ${i}`);
      }
      hclose(client); // nothing beyond the tail: the stream ends there
      await rejectsWith(brecv(server, new Uint8Array(1), soon()), "EPIPE");
    } finally {
      closeQuietly(server);
      closeQuietly(client);
    }
  }
});

Deno.test("httpRecvRequest: a bad or oversized head is an HttpError with the status to answer", async () => {
  const cases: [string, HttpLimits | undefined, number, string][] = [
    ["GET / HTTP/2.0\r\nHost: a\r\n\r\n", undefined, 505, "EPROTO"],
    ["GET / HTTP/1.1\nHost: a\n\n", undefined, 400, "EPROTO"], // bare LF
    [
      `GET / HTTP/1.1\r\nHost: a\r\nX: ${"y".repeat(200)}\r\n\r\n`,
      { maxHeadBytes: 128 },
      431,
      "EMSGSIZE",
    ],
    ["GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", { maxHeaders: 2 }, 431, "EMSGSIZE"],
  ];
  for (const [text, limits, status, code] of cases) {
    const e = await headFrom(text, limits).then(
      () => assert.fail(`accepted ${JSON.stringify(text)}`),
      (e) => e,
    );
    assert.ok(e instanceof HttpError, `${JSON.stringify(text)}: ${e}`);
    assert.equal(e.status, status, JSON.stringify(text));
    assert.equal(e.code, code, JSON.stringify(text));
  }
});

Deno.test("httpRecvRequest: a client that does not speak HTTP fails at its first bytes, not at the deadline", async () => {
  const [server, client] = ipcPair();
  try {
    // The start of a TLS ClientHello: no line, no blank line, ever.
    await bsend(
      client,
      new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]),
      soon(),
    );
    const started = now();
    const e = await httpRecvRequest(server, now() + 5000).then(() => null, (e) => e);
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.status, 400);
    assert.ok(now() - started < 1000, `failed after ${now() - started} ms`);
  } finally {
    hclose(server);
    hclose(client);
  }
});

Deno.test("httpRecvRequest: the deadline bounds a trickled head, and a closed stream fails", async () => {
  const [server, client] = ipcPair();
  try {
    await bsend(client, bytes("GET / HTTP/1.1\r\nHost: a\r\n"), soon()); // no blank line yet
    const started = now();
    await rejectsWith(httpRecvRequest(server, now() + 150), "ETIMEDOUT");
    assert.ok(now() - started < 1000);
  } finally {
    hclose(server);
    hclose(client);
  }
  const [server2, client2] = ipcPair();
  try {
    await bsend(client2, bytes("GET / HTTP/1.1\r\n"), soon());
    hclose(client2);
    await rejectsWith(httpRecvRequest(server2, soon()), "EPIPE");
  } finally {
    hclose(server2);
  }
});

Deno.test("httpRecvRequest: invalid limits and deadlines are EINVAL", async () => {
  const [server, client] = ipcPair();
  try {
    await rejectsWith(httpRecvRequest(server, soon(), { maxHeadBytes: 0 }), "EINVAL");
    await rejectsWith(httpRecvRequest(server, -5), "EINVAL");
  } finally {
    hclose(server);
    hclose(client);
  }
});

// ---- wsAcceptUpgrade -----------------------------------------------------------------------

/** A valid upgrade request head offering permessage-deflate, with `extra` headers. */
function offer(extra: Record<string, string> = {}, method = "GET"): HttpRequestHead {
  const headers = new Headers({
    "Host": "example.com",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    ...extra,
  });
  return { method, target: "/ws", version: "HTTP/1.1", headers };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("wsAcceptUpgrade: compression only when asked, its reservation taken and given back", () => {
  const plain = wsAcceptUpgrade(offer());
  assert.equal(plain.deflate, null);
  assert.doesNotMatch(text(plain.response), /sec-websocket-extensions/i);
  assert.match(text(plain.response), /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);

  const budget = new DeflateBudget(1 << 20);
  const up = wsAcceptUpgrade(offer(), { perMessageDeflate: { budget, serverMaxWindowBits: 10 } });
  assert.ok(up.deflate !== null);
  assert.match(
    text(up.response),
    /\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=12\r\n/,
  );
  assert.ok(budget.reserved > 0);
  up.deflate.release();
  assert.equal(budget.reserved, 0);
});

Deno.test("wsAcceptUpgrade: a request that must be refused is a HandshakeError with its answer", () => {
  const cases: [HttpRequestHead, WsAcceptOptions, number][] = [
    [offer({}, "POST"), {}, 405],
    [offer({ "Sec-WebSocket-Version": "8" }), {}, 426],
    [offer({ "Sec-WebSocket-Key": "short" }), {}, 400],
    [offer({ "Origin": "https://evil.example" }), { checkOrigin: () => false }, 403],
    [
      offer({ "Sec-WebSocket-Extensions": "permessage-deflate; =" }),
      { perMessageDeflate: true },
      400,
    ],
  ];
  for (const [request, options, status] of cases) {
    const e = throwsWith(
      () => wsAcceptUpgrade(request, options),
      status === 426 ? "EPROTO" : "EPROTO",
    );
    assert.ok(e instanceof HandshakeError);
    assert.equal(e.status, status);
    assert.match(text(e.response), new RegExp(`^HTTP/1\\.1 ${status} `));
  }
});

Deno.test("wsAcceptUpgrade: invalid options and requests are EINVAL, named after the call or the option", () => {
  const bad: [unknown, RegExp][] = [
    [null, /^EINVAL: wsAcceptUpgrade: options/],
    [{ maxResourceLength: 0 }, /^EINVAL: wsAcceptUpgrade: maxResourceLength/],
    [{ responseHeaders: [["Upgrade", "h2c"]] }, /^EINVAL: wsAcceptUpgrade: responseHeaders/],
    [{ perMessageDeflate: null }, /^EINVAL: wsAcceptUpgrade: perMessageDeflate/],
    [{ perMessageDeflate: "yes" }, /^EINVAL: wsAcceptUpgrade: perMessageDeflate/],
    [{ perMessageDeflate: { level: 42 } }, /^EINVAL: perMessageDeflate\.level/],
  ];
  for (const [options, message] of bad) {
    const e = throwsWith(() => wsAcceptUpgrade(offer(), options as WsAcceptOptions), "EINVAL");
    assert.match(e.message, message, JSON.stringify(options));
  }
  const { method, target, version, headers } = offer();
  const heads: unknown[] = [
    null,
    "GET / HTTP/1.1",
    { method, target, version },
    { method, target, version, headers: Object.fromEntries(headers) },
    { method: 1, target, version, headers },
  ];
  for (const head of heads) {
    const e = throwsWith(() => wsAcceptUpgrade(head as HttpRequestHead), "EINVAL");
    assert.match(e.message, /^EINVAL: wsAcceptUpgrade: request must be a request head/);
  }
});
