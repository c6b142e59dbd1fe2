/**
 * A client that speaks HTTP on its stream before the WebSocket handshake, from the
 * package's exports only: a tunnel through an HTTP proxy (`CONNECT`, answered by a small
 * proxy written here) to Deno's own WebSocket server (`Deno.serve` with
 * `Deno.upgradeWebSocket`), then `wsAttachClient` on the same stream; and
 * `httpRecvResponse` on its own (the bytes after the head, refusals, bad heads).
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  hclose,
  HttpError,
  httpRecvResponse,
  ipcPair,
  mrecvText,
  msend,
  tcpConnect,
  writeHttpRequest,
  WS_TEXT,
  wsAttachClient,
  wsDone,
} from "../mod.ts";
import { closeQuietly, rejectsWith, soon } from "./peers/common.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const ascii = (s: string) => new TextEncoder().encode(s);

/**
 * A minimal HTTP proxy: answers `CONNECT host:port` with 200 and then copies bytes both
 * ways, or answers `refuse` (with its status line) when given. Tracks its connections so
 * that the test closes everything.
 */
function startProxy(refuse?: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tunnels: Promise<void>[] = [];
  const serve = async (client: Deno.Conn) => {
    conns.add(client);
    const buf = new Uint8Array(4096);
    let have = 0;
    while (!text(buf.subarray(0, have)).includes("\r\n\r\n")) {
      const n = await client.read(buf.subarray(have));
      if (n === null) return;
      have += n;
    }
    const [, authority] = /^CONNECT (\S+) HTTP\/1\.1\r\n/.exec(text(buf.subarray(0, have)))!;
    if (refuse) {
      await client.write(ascii(`HTTP/1.1 ${refuse}\r\nContent-Length: 0\r\n\r\n`));
      return;
    }
    const [hostname, port] = authority.split(":");
    const upstream = await Deno.connect({ hostname, port: Number(port) });
    conns.add(upstream);
    await client.write(ascii("HTTP/1.1 200 Connection established\r\n\r\n"));
    const copy = async (from: Deno.Conn, to: Deno.Conn) => {
      try {
        for await (const chunk of from.readable) await to.write(chunk);
      } catch {
        // the other side went away
      }
      await to.closeWrite().catch(() => {}); // already closed
    };
    await Promise.all([copy(client, upstream), copy(upstream, client)]);
  };
  const accepting = (async () => {
    for await (const conn of listener) tunnels.push(serve(conn).catch(() => {}));
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed already
        }
      }
      await Promise.all(tunnels);
    },
  };
}

/** Deno's own WebSocket server, echoing text. */
function startDenoEcho() {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo: ${e.data}`);
    return response;
  });
  return { port: server.addr.port, close: () => server.shutdown() };
}

/** Opens a tunnel through the proxy to `target` and returns the stream and the proxy's answer. */
async function tunnel(proxyPort: number, target: string) {
  const s = await tcpConnect({ hostname: "127.0.0.1", port: proxyPort }, soon());
  await bsend(s, writeHttpRequest("CONNECT", target, [["Host", target]]), soon());
  return { s, answer: await httpRecvResponse(s, soon()) };
}

Deno.test("http client: a WebSocket through an HTTP CONNECT proxy to Deno's own server", async () => {
  const echo = startDenoEcho();
  const proxy = startProxy();
  try {
    const target = `127.0.0.1:${echo.port}`;
    const { s, answer } = await tunnel(proxy.port, target);
    assert.equal(answer.status, 200);
    assert.equal(answer.reason, "Connection established");
    // The handshake runs on the same stream, through the tunnel.
    const { handle: ws } = await wsAttachClient(s, WS_TEXT, "/", target, soon());
    try {
      await msend(ws, "through the proxy", soon());
      assert.equal(await mrecvText(ws, soon()), "echo: through the proxy");
      await wsDone(ws, 1000, "", soon());
    } finally {
      hclose(ws);
    }
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("http client: a proxy's refusal is its status; the stream stays the caller's", async () => {
  const proxy = startProxy("407 Proxy Authentication Required");
  try {
    const { s, answer } = await tunnel(proxy.port, "127.0.0.1:9");
    try {
      assert.equal(answer.status, 407);
      assert.equal(answer.headers.get("content-length"), "0");
    } finally {
      hclose(s);
    }
  } finally {
    await proxy.close();
  }
});

Deno.test("httpRecvResponse: takes the head and no byte after it; a bad head is an HttpError", async () => {
  const [a, b] = ipcPair();
  try {
    await bsend(a, ascii("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n\r\nafter"), soon());
    const head = await httpRecvResponse(b, soon());
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("x-a"), "1");
    assert.equal(text(await brecv(b, new Uint8Array(7), soon())), "\r\nafter");
    await bsend(a, ascii("HTTP/2.0 200 OK\r\n\r\n"), soon());
    const e = await httpRecvResponse(b, soon()).then(() => null, (e) => e);
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.code, "EPROTO");
  } finally {
    closeQuietly(a);
    closeQuietly(b);
  }
  const [c, d] = ipcPair();
  try {
    await bsend(c, ascii("HTTP/1.1 200 OK\r\n"), soon());
    hclose(c);
    await rejectsWith(httpRecvResponse(d, soon()), "EPIPE");
  } finally {
    closeQuietly(d);
  }
});
