/**
 * Interop with Deno's own WebSocket implementation, both directions: Deno's built-in
 * `WebSocket` client against our server, and our client against a `Deno.serve` +
 * `Deno.upgradeWebSocket` server. The shared scenarios (tests/helpers/interop_scenarios.ts)
 * run through the adapters below; the keepalive tests are Deno's own.
 *
 * Deno's WebSocket API cannot send fragmented messages nor pings from JavaScript, so
 * fragments are covered with npm ws and Python. The server side can ping (its
 * `idleTimeout` keepalive): that is how pongs are checked here.
 */

import assert from "node:assert/strict";
import { brecv, msend, tcpConnect, WS_TEXT, wsStatus } from "../mod.ts";
import {
  closeQuietly,
  connectWs,
  delay,
  handmadeClientUpgrade,
  Inbox,
  soon,
  within,
} from "./peers/common.ts";
import { DomPeer } from "./peers/dom_peer.ts";
import type { DrivenSocket } from "./helpers/interop_driven.ts";
import { drivenClient, drivenConnection } from "./helpers/interop_driven.ts";
import type { ClientPeerKind, ServerPeerKind } from "./helpers/interop_peers.ts";
import { registerClientScenarios, registerServerScenarios } from "./helpers/interop_scenarios.ts";

/** A WHATWG WebSocket of Deno's (client or server side) as the scripts drive it. */
function denoSocket(peer: DomPeer): DrivenSocket {
  return {
    opened: peer.opened,
    protocol: () => peer.ws.protocol,
    send(m) {
      peer.send(m); // Deno's send only queues: nothing to wait for
      return Promise.resolve();
    },
    inbox: peer.inbox,
    close: (code, reason) => peer.ws.close(code, reason),
    async closed() {
      const { code, reason, wasClean } = await peer.closed;
      assert.equal(wasClean, true, `Deno saw an unclean close (${code})`);
      return { code, reason };
    },
    dispose: () => peer.dispose(),
  };
}

// ---- Deno's WebSocket client → our server -----------------------------------------
// Not covered in this direction: fragments and pings (Deno's client API can send neither).

const denoClient: ClientPeerKind = {
  name: "deno client",
  noSubprotocol: "",
  offeredHeader: "a, b",
  pings: false,
  start: (url, protocols, script) =>
    drivenClient(denoSocket(new DomPeer(new WebSocket(url, protocols))), script),
};

registerClientScenarios(denoClient);

// ---- our client → Deno.serve + Deno.upgradeWebSocket --------------------------------

interface DenoServerOptions {
  /** Subprotocols the server speaks; it picks the first one the client offers. */
  protocols?: string[];
  /** Deno's keepalive: ping after idleTimeout/2 s of silence, drop after another idleTimeout/2 s. */
  idleTimeout?: number;
}

/** One socket `Deno.upgradeWebSocket` made, and what its request said. */
interface DenoServerSocket {
  peer: DomPeer;
  url: string;
  offered: string | null;
}

/** A `Deno.serve` WebSocket server; each upgraded socket lands in `sockets`. */
class DenoServer {
  readonly sockets: Inbox<DenoServerSocket> = new Inbox();
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

const denoServer: ServerPeerKind = {
  name: "deno server",
  url: (port, resource) => `http://127.0.0.1:${port}${resource}`,
  noSubprotocol: "",
  pings: false, // its pings are the keepalive, tested below
  start(protocols) {
    const server = new DenoServer({ protocols });
    return Promise.resolve({
      port: server.port,
      async accepted() {
        const { peer, url, offered } = await server.sockets.next("server socket");
        await within(peer.opened, "server socket open");
        // Deno leaves `protocol` empty on the server's socket even when it answered one.
        return drivenConnection(denoSocket(peer), { url, offered, protocol: undefined });
      },
      settle: () => Promise.resolve(),
      dispose: () => server.dispose(),
    });
  },
};

registerServerScenarios(denoServer);

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
