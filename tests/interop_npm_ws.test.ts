/**
 * Interop with npm `ws` (run inside Deno through `npm:ws@8`), both directions: a `ws`
 * client against our server, and our client against a `ws` WebSocketServer. `ws` can
 * send fragments (`fin: false`), including text split inside a code point, and pings.
 */

import assert from "node:assert/strict";
import {
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
  wsRecv,
  wsStatus,
} from "../mod.ts";
import {
  acceptWs,
  assertBytes,
  assertMessage,
  build,
  closeQuietly,
  connectWs,
  describe,
  ECHO_SPECS,
  echoBack,
  FRAGMENT_SPECS,
  fragmentsOf,
  handmadeClientUpgrade,
  handmadeServerUpgrade,
  listenLocal,
  PING_PAYLOADS,
  rejectsWith,
  sendAndCheckEchoes,
  soon,
  type Spec,
  together,
  within,
} from "./peers/common.ts";
import { NodePeer, NodeServer } from "./peers/node_peer.ts";

/** `ws` sends raw bytes as text fragments, so it can also split inside a code point. */
const NODE_FRAGMENT_SPECS: Spec[] = [
  ...FRAGMENT_SPECS,
  { kind: "text", text: "🦕✓é", split: [1, 2, 3] },
  { kind: "text", text: "ü✓🦕", split: [1, 1, 1, 1, 1, 1, 1, 1] }, // one byte per fragment
];
const MID_PING = new TextEncoder().encode("between fragments");

/** The peer sends every spec fragmented, with a ping after the first fragment. */
async function sendAllFragmented(peer: NodePeer, specs: Spec[]): Promise<void> {
  for (const spec of specs) {
    await peer.sendFragments(build(spec).type, fragmentsOf(spec), MID_PING);
  }
}

/** The peer checks it got one pong per ping, each with the ping's payload. */
async function expectPongs(peer: NodePeer, payloads: Uint8Array[]): Promise<void> {
  for (const [i, want] of payloads.entries()) {
    assertBytes(await peer.pongs.next(`pong ${i}`), want, `pong ${i} payload`);
  }
}

// ---- ws client → our server -------------------------------------------------------

async function withNodeClient(
  path: string,
  protocols: string[] | undefined,
  body: (ctx: { listener: Handle; port: number; peer: NodePeer }) => Promise<void>,
): Promise<void> {
  const { listener, port } = listenLocal();
  const peer = NodePeer.connect(`ws://127.0.0.1:${port}${path}`, protocols);
  try {
    await body({ listener, port, peer });
  } finally {
    closeQuietly(listener);
    await peer.dispose();
  }
}

Deno.test("ws client → our server: text, binary, empty, 125..65536 and 4 MiB echo", async () => {
  await withNodeClient("/echo?x=1", undefined, async ({ listener, port, peer }) => {
    const { handle, resource, host } = await acceptWs(listener, WS_BINARY);
    try {
      assert.equal(resource, "/echo?x=1");
      assert.equal(host, `127.0.0.1:${port}`);
      await within(peer.opened, "client open");
      const peerSide = async () => {
        for (const spec of ECHO_SPECS) await peer.send(build(spec));
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

Deno.test("ws client → our server: fragmented messages with a ping between fragments", async () => {
  await withNodeClient("/", undefined, async ({ listener, peer }) => {
    const { handle } = await acceptWs(listener, WS_BINARY);
    try {
      await within(peer.opened, "client open");
      const peerSide = async () => {
        await sendAllFragmented(peer, NODE_FRAGMENT_SPECS);
        for (const spec of NODE_FRAGMENT_SPECS) {
          const got = await peer.inbox.next("echo at the client");
          assertMessage(got, build(spec), `client got the echo of a ${describe(spec)}`);
        }
        await expectPongs(peer, NODE_FRAGMENT_SPECS.map(() => MID_PING));
      };
      await together(
        [echoBack(handle, NODE_FRAGMENT_SPECS), peerSide()],
        () => closeQuietly(handle),
      );
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("ws client → our server: pings get pongs while we do not read", async () => {
  await withNodeClient("/", undefined, async ({ listener, peer }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await within(peer.opened, "client open");
      await peer.send({ type: WS_TEXT, data: "queued before the pings" });
      for (const p of PING_PAYLOADS) await peer.ping(p);
      await expectPongs(peer, PING_PAYLOADS); // we have not called mrecv yet
      assert.equal(await mrecvText(handle, soon()), "queued before the pings");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("ws client → our server: our close status and reason reach the client", async () => {
  await withNodeClient("/", undefined, async ({ listener, peer }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await within(peer.opened, "client open");
      await wsDone(handle, 4001, "bye ü", soon());
      assert.deepEqual(await within(peer.closed, "client close"), { code: 4001, reason: "bye ü" });
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      // ws echoes our status and reason.
      assert.deepEqual(await wsStatus(handle), { status: 4001, reason: "bye ü" });
      await rejectsWith(msend(handle, "late", soon()), "EPIPE");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("ws client → our server: the client's close status and reason reach us", async () => {
  await withNodeClient("/", undefined, async ({ listener, peer }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await within(peer.opened, "client open");
      await peer.send({ type: WS_TEXT, data: "last words ✓" });
      peer.ws.close(4002, "ciao é");
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      assert.deepEqual(await wsStatus(handle), { status: 4002, reason: "ciao é" });
      // We echo its status (without a reason).
      assert.deepEqual(await within(peer.closed, "client close"), { code: 4002, reason: "" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("ws client → our server: subprotocol offered [a, b], server speaks [b]", async () => {
  await withNodeClient("/", ["a", "b"], async ({ listener, peer }) => {
    const { handle, protocol, headers } = await acceptWs(listener, WS_TEXT, { protocols: ["b"] });
    try {
      assert.equal(protocol, "b");
      assert.equal(headers.get("sec-websocket-protocol"), "a,b");
      await within(peer.opened, "client open");
      assert.equal(peer.ws.protocol, "b");
      await msend(handle, "on b", soon());
      assert.deepEqual(await peer.inbox.next("message on b"), { type: WS_TEXT, data: "on b" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("ws client → our server: WS_NOHTTP after a hand-made 101", async () => {
  await withNodeClient("/raw", undefined, async ({ listener, peer }) => {
    const { handle: tcp } = await tcpAccept(listener, soon());
    let ws: Handle | undefined;
    try {
      const request = await handmadeServerUpgrade(tcp);
      assert.equal(request.startLine, "GET /raw HTTP/1.1");
      ws = (await wsAttachServer(tcp, WS_NOHTTP | WS_TEXT, soon())).handle;
      await within(peer.opened, "client open");
      await peer.send({ type: WS_TEXT, data: "über raw ✓" });
      assert.equal(await mrecvText(ws, soon()), "über raw ✓");
      await msend(ws, "zurück ✓", soon());
      assert.deepEqual(await peer.inbox.next("reply"), { type: WS_TEXT, data: "zurück ✓" });
    } finally {
      closeQuietly(ws);
      closeQuietly(tcp);
    }
  });
});

// ---- our client → ws server -------------------------------------------------------

async function withNodeServer(
  protocols: string[] | undefined,
  body: (server: NodeServer) => Promise<void>,
): Promise<void> {
  const server = await NodeServer.start(protocols);
  try {
    await body(server);
  } finally {
    await server.dispose();
  }
}

Deno.test("our client → ws server: text, binary, empty, 125..65536 and 4 MiB echo", async () => {
  await withNodeServer(undefined, async (server) => {
    const { handle } = await connectWs(server.port, WS_BINARY, "/echo?y=2");
    try {
      const { peer, url } = await server.sockets.next("server socket");
      assert.equal(url, "/echo?y=2");
      await together(
        [sendAndCheckEchoes(handle, ECHO_SPECS), peer.echo(ECHO_SPECS.length)],
        () => closeQuietly(handle),
      );
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → ws server: its fragmented messages, a ping between fragments", async () => {
  await withNodeServer(undefined, async (server) => {
    const { handle } = await connectWs(server.port, WS_BINARY, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      const ourSide = async () => {
        for (const spec of NODE_FRAGMENT_SPECS) {
          assertMessage(await wsRecv(handle, soon()), build(spec), `our ${describe(spec)}`);
        }
      };
      const peerSide = async () => {
        await sendAllFragmented(peer, NODE_FRAGMENT_SPECS);
        await expectPongs(peer, NODE_FRAGMENT_SPECS.map(() => MID_PING));
      };
      await together([ourSide(), peerSide()], () => closeQuietly(handle));
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → ws server: its pings get pongs while we do not read", async () => {
  await withNodeServer(undefined, async (server) => {
    const { handle } = await connectWs(server.port, WS_TEXT, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      await peer.send({ type: WS_TEXT, data: "queued before the pings" });
      for (const p of PING_PAYLOADS) await peer.ping(p);
      await expectPongs(peer, PING_PAYLOADS); // we have not called mrecv yet
      assert.equal(await mrecvText(handle, soon()), "queued before the pings");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → ws server: our close status and reason reach the server", async () => {
  await withNodeServer(undefined, async (server) => {
    const { handle } = await connectWs(server.port, WS_TEXT, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      await msend(handle, "before close", soon());
      await wsDone(handle, 4001, "bye ü", soon());
      assert.deepEqual(await peer.inbox.next("message before close"), {
        type: WS_TEXT,
        data: "before close",
      });
      assert.deepEqual(await within(peer.closed, "server close"), { code: 4001, reason: "bye ü" });
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      // ws echoes our status and reason.
      assert.deepEqual(await wsStatus(handle), { status: 4001, reason: "bye ü" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → ws server: the server's close status and reason reach us", async () => {
  await withNodeServer(undefined, async (server) => {
    const { handle } = await connectWs(server.port, WS_TEXT, "/");
    try {
      const { peer } = await server.sockets.next("server socket");
      await peer.send({ type: WS_TEXT, data: "last words ✓" });
      peer.ws.close(4002, "ciao é");
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await rejectsWith(mrecv(handle, soon()), "EPIPE");
      assert.deepEqual(await wsStatus(handle), { status: 4002, reason: "ciao é" });
      // We echo its status (without a reason).
      assert.deepEqual(await within(peer.closed, "server close"), { code: 4002, reason: "" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → ws server: subprotocol offered [a, b], server speaks [b]", async () => {
  await withNodeServer(["b"], async (server) => {
    const { handle, protocol, headers } = await connectWs(server.port, WS_TEXT, "/", {
      protocols: ["a", "b"],
    });
    try {
      assert.equal(protocol, "b");
      assert.equal(headers.get("sec-websocket-protocol"), "b");
      const { peer, offered } = await server.sockets.next("server socket");
      assert.equal(offered, "a, b");
      assert.equal(peer.ws.protocol, "b");
      await msend(handle, "on b", soon());
      assert.deepEqual(await peer.inbox.next("message on b"), { type: WS_TEXT, data: "on b" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → ws server: WS_NOHTTP after a hand-made upgrade request", async () => {
  await withNodeServer(undefined, async (server) => {
    const tcp = await tcpConnect({ hostname: "127.0.0.1", port: server.port }, soon());
    let ws: Handle | undefined;
    try {
      await handmadeClientUpgrade(tcp, server.port, "/raw");
      ws = (await wsAttachClient(tcp, WS_NOHTTP | WS_TEXT, "", "", soon())).handle;
      const { peer, url } = await server.sockets.next("server socket");
      assert.equal(url, "/raw");
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
