/**
 * Interop with Deno's own WebSocket implementation, both directions: Deno's built-in
 * `WebSocket` client against our server, and our client against a `Deno.serve` +
 * `Deno.upgradeWebSocket` server.
 *
 * Deno's WebSocket API cannot send fragmented messages nor pings from JavaScript, so
 * fragments are covered with npm ws and Python. The server side can ping (its
 * `idleTimeout` keepalive): that is how pongs are checked here.
 */

import assert from "node:assert/strict";
import {
  brecv,
  type Handle,
  mrecv,
  mrecvText,
  msend,
  tcpAccept,
  tcpConnect,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsDone,
  wsStatus,
} from "../mod.ts";
import {
  acceptWs,
  assertMessage,
  build,
  closeQuietly,
  connectWs,
  delay,
  describe,
  ECHO_SPECS,
  echoBack,
  handmadeClientUpgrade,
  handmadeServerUpgrade,
  Inbox,
  listenLocal,
  rejectsWith,
  sendAndCheckEchoes,
  soon,
  together,
  within,
} from "./peers/common.ts";
import { DomPeer } from "./peers/dom_peer.ts";

// ---- Deno's WebSocket client → our server -----------------------------------------
// Not covered in this direction: fragments and pings (Deno's client API can send neither).

/** Our listener plus a Deno WebSocket client connecting to it; everything closed at the end. */
async function withDenoClient(
  path: string,
  protocols: string[] | undefined,
  body: (ctx: { listener: Handle; port: number; peer: DomPeer }) => Promise<void>,
): Promise<void> {
  const { listener, port } = listenLocal();
  const peer = new DomPeer(new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols));
  try {
    await body({ listener, port, peer });
  } finally {
    closeQuietly(listener);
    await peer.dispose();
  }
}

Deno.test("deno client → our server: text, binary, empty, 125..65536 and 4 MiB echo", async () => {
  await withDenoClient("/echo?x=1", undefined, async ({ listener, port, peer }) => {
    const { handle, resource, host, headers } = await acceptWs(listener, WS_BINARY);
    try {
      assert.equal(resource, "/echo?x=1");
      assert.equal(host, `127.0.0.1:${port}`);
      assert.equal(headers.get("sec-websocket-version"), "13");
      await within(peer.opened, "client open");
      const peerSide = async () => {
        for (const spec of ECHO_SPECS) peer.send(build(spec));
        for (const spec of ECHO_SPECS) {
          const got = await peer.inbox.next("echo at the client");
          assertMessage(got, build(spec), `client got the echo of a ${describe(spec)}`);
        }
      };
      await together([echoBack(handle, ECHO_SPECS), peerSide()], () => closeQuietly(handle));
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("deno client → our server: our close status and reason reach the client", async () => {
  await withDenoClient("/", undefined, async ({ listener, peer }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await within(peer.opened, "client open");
      await wsDone(handle, 4001, "bye ü", soon());
      const seen = await within(peer.closed, "client close event");
      assert.deepEqual(seen, { code: 4001, reason: "bye ü", wasClean: true });
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      // The client echoes our status and reason.
      assert.deepEqual(await wsStatus(handle), { status: 4001, reason: "bye ü" });
      await rejectsWith(msend(handle, "late", soon()), "EPIPE");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("deno client → our server: the client's close status and reason reach us", async () => {
  await withDenoClient("/", undefined, async ({ listener, peer }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await within(peer.opened, "client open");
      peer.ws.send("last words ✓");
      peer.ws.close(4002, "ciao é");
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      assert.deepEqual(await wsStatus(handle), { status: 4002, reason: "ciao é" });
      const seen = await within(peer.closed, "client close event");
      assert.equal(seen.code, 4002); // our echo of its status
      assert.equal(seen.wasClean, true);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("deno client → our server: subprotocol offered [a, b], server speaks [b]", async () => {
  await withDenoClient("/", ["a", "b"], async ({ listener, peer }) => {
    const { handle, protocol, headers } = await acceptWs(listener, WS_TEXT, { protocols: ["b"] });
    try {
      assert.equal(protocol, "b");
      assert.equal(headers.get("sec-websocket-protocol"), "a, b");
      await within(peer.opened, "client open");
      assert.equal(peer.ws.protocol, "b");
      await msend(handle, "on b", soon());
      assert.deepEqual(await peer.inbox.next("message on b"), { type: WS_TEXT, data: "on b" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("deno client → our server: WS_NOHTTP after a hand-made 101", async () => {
  await withDenoClient("/raw", undefined, async ({ listener, peer }) => {
    const { handle: tcp } = await tcpAccept(listener, soon());
    let ws: Handle | undefined;
    try {
      const request = await handmadeServerUpgrade(tcp);
      assert.equal(request.startLine, "GET /raw HTTP/1.1");
      ws = (await wsAttachServer(tcp, WS_NOHTTP | WS_TEXT, soon())).handle;
      await within(peer.opened, "client open");
      peer.ws.send("über raw ✓");
      assert.equal(await mrecvText(ws, soon()), "über raw ✓");
      await msend(ws, "zurück ✓", soon());
      assert.deepEqual(await peer.inbox.next("reply"), { type: WS_TEXT, data: "zurück ✓" });
    } finally {
      closeQuietly(ws);
      closeQuietly(tcp);
    }
  });
});

// ---- our client → Deno.serve + Deno.upgradeWebSocket --------------------------------

interface DenoServerOptions {
  /** Subprotocols the server speaks; it picks the first one the client offers. */
  protocols?: string[];
  /** Deno's keepalive: ping after idleTimeout/2 s of silence, drop after another idleTimeout/2 s. */
  idleTimeout?: number;
}

/** A `Deno.serve` WebSocket server; each upgraded socket lands in `sockets`. */
class DenoServer {
  readonly sockets: Inbox<{ peer: DomPeer; offered: string | null; url: string }> = new Inbox();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #peers: DomPeer[] = [];

  constructor(options: DenoServerOptions = {}) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => {
        if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          return new Response("websocket only", { status: 400 });
        }
        const offered = req.headers.get("sec-websocket-protocol");
        const list = offered?.split(",").map((p) => p.trim()) ?? [];
        const protocol = list.find((p) => options.protocols?.includes(p));
        const { socket, response } = Deno.upgradeWebSocket(req, {
          protocol,
          idleTimeout: options.idleTimeout ?? 0,
        });
        const peer = new DomPeer(socket);
        this.#peers.push(peer);
        this.sockets.push({ peer, offered, url: req.url });
        return response;
      },
    );
  }

  get port(): number {
    return this.#server.addr.port;
  }

  async dispose(): Promise<void> {
    for (const p of this.#peers) await p.dispose();
    await this.#server.shutdown();
  }
}

async function withDenoServer(
  options: DenoServerOptions,
  body: (server: DenoServer) => Promise<void>,
): Promise<void> {
  const server = new DenoServer(options);
  try {
    await body(server);
  } finally {
    await server.dispose();
  }
}

Deno.test("our client → deno server: text, binary, empty, 125..65536 and 4 MiB echo", async () => {
  await withDenoServer({}, async (server) => {
    const { handle } = await connectWs(server.port, WS_BINARY, "/echo?y=2");
    try {
      const { peer, url } = await server.sockets.next("server socket");
      assert.equal(url, `http://127.0.0.1:${server.port}/echo?y=2`);
      await together(
        [sendAndCheckEchoes(handle, ECHO_SPECS), peer.echo(ECHO_SPECS.length)],
        () => closeQuietly(handle),
      );
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → deno server: its keepalive pings get pongs while we do not read", async () => {
  // idleTimeout 1: Deno pings after 0.5 s of silence and drops us with 1001 if no pong
  // arrives within another 0.5 s. We stay silent and do not call mrecv for 2.5 s.
  await withDenoServer({ idleTimeout: 1 }, async (server) => {
    const { handle } = await connectWs(server.port, WS_TEXT, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      await within(peer.opened, "server socket open");
      await delay(2500);
      assert.equal(peer.isClosed, false, "Deno dropped us: our pongs did not arrive");
      assert.throws(() => wsStatus(handle), { code: "EAGAIN" }); // wsStatus is synchronous
      await msend(handle, "still here ✓", soon());
      const got = await peer.inbox.next("message after the pings");
      assert.deepEqual(got, { type: WS_TEXT, data: "still here ✓" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("control: the same deno server drops a client that does not answer pings", async () => {
  // Proves the keepalive test above can fail: raw TCP, hand-made upgrade, no WS layer.
  await withDenoServer({ idleTimeout: 1 }, async (server) => {
    const tcp = await tcpConnect({ hostname: "127.0.0.1", port: server.port }, soon());
    try {
      await handmadeClientUpgrade(tcp, server.port, "/");
      const { peer } = await server.sockets.next("server socket");
      const ping = await brecv(tcp, new Uint8Array(2), soon());
      assert.equal(ping[0], 0x89, "first frame from the server is a ping with FIN");
      if (ping[1] > 0) await brecv(tcp, new Uint8Array(ping[1]), soon());
      const close = await brecv(tcp, new Uint8Array(4), soon());
      assert.equal(close[0], 0x88, "then a close frame");
      assert.equal((close[2] << 8) | close[3], 1001);
      const seen = await within(peer.closed, "server close event");
      assert.equal(seen.code, 1001);
    } finally {
      closeQuietly(tcp);
    }
  });
});

Deno.test("our client → deno server: our close status and reason reach the server", async () => {
  await withDenoServer({}, async (server) => {
    const { handle } = await connectWs(server.port, WS_TEXT, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      await within(peer.opened, "server socket open");
      await msend(handle, "before close", soon());
      await wsDone(handle, 4001, "bye ü", soon());
      assert.deepEqual(await peer.inbox.next("message before close"), {
        type: WS_TEXT,
        data: "before close",
      });
      const seen = await within(peer.closed, "server close event");
      assert.deepEqual(seen, { code: 4001, reason: "bye ü", wasClean: true });
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      // The server echoes our status and reason.
      assert.deepEqual(await wsStatus(handle), { status: 4001, reason: "bye ü" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → deno server: the server's close status and reason reach us", async () => {
  await withDenoServer({}, async (server) => {
    const { handle } = await connectWs(server.port, WS_TEXT, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      await within(peer.opened, "server socket open");
      peer.ws.send("last words ✓");
      peer.ws.close(4002, "ciao é");
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      assert.deepEqual(await wsStatus(handle), { status: 4002, reason: "ciao é" });
      const seen = await within(peer.closed, "server close event");
      assert.equal(seen.code, 4002); // our echo of its status
      assert.equal(seen.wasClean, true);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → deno server: subprotocol offered [a, b], server speaks [b]", async () => {
  await withDenoServer({ protocols: ["b"] }, async (server) => {
    const { handle, protocol, headers } = await connectWs(server.port, WS_TEXT, "/", {
      protocols: ["a", "b"],
    });
    try {
      assert.equal(protocol, "b");
      assert.equal(headers.get("sec-websocket-protocol"), "b");
      const { peer, offered } = await server.sockets.next("server socket");
      assert.equal(offered, "a, b");
      await within(peer.opened, "server socket open");
      // Deno leaves `protocol` empty on the server's socket even when it answered one.
      await msend(handle, "on b", soon());
      assert.deepEqual(await peer.inbox.next("message on b"), { type: WS_TEXT, data: "on b" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → deno server: WS_NOHTTP after a hand-made upgrade request", async () => {
  await withDenoServer({}, async (server) => {
    const tcp = await tcpConnect({ hostname: "127.0.0.1", port: server.port }, soon());
    let ws: Handle | undefined;
    try {
      await handmadeClientUpgrade(tcp, server.port, "/raw");
      ws = (await wsAttachClient(tcp, WS_NOHTTP | WS_TEXT, "", "", soon())).handle;
      const { peer, url } = await server.sockets.next("server socket");
      assert.equal(url, `http://127.0.0.1:${server.port}/raw`);
      const echoing = peer.echo(1);
      await msend(ws, "über raw ✓", soon());
      assert.equal(await mrecvText(ws, soon()), "über raw ✓");
      await echoing;
    } finally {
      closeQuietly(ws);
      closeQuietly(tcp);
    }
  });
});
