/**
 * Interop with npm `ws` (run inside Deno through `npm:ws@8`), both directions: a `ws`
 * client against our server, and our client against a `ws` WebSocketServer. The shared
 * scenarios (tests/helpers/interop_scenarios.ts) run through the adapters below. `ws` can
 * send fragments (`fin: false`), including text split inside a code point, and pings:
 * it pings between the first two fragments of every fragmented message it sends.
 */

import { FRAGMENT_SPECS, type Spec } from "./peers/common.ts";
import { NodePeer, NodeServer } from "./peers/node_peer.ts";
import type { DrivenSocket } from "./helpers/interop_driven.ts";
import { drivenClient, drivenConnection } from "./helpers/interop_driven.ts";
import type { ClientPeerKind, ServerPeerKind } from "./helpers/interop_peers.ts";
import { registerClientScenarios, registerServerScenarios } from "./helpers/interop_scenarios.ts";

/** `ws` sends raw bytes as text fragments, so it can also split inside a code point. */
const NODE_FRAGMENT_SPECS: Spec[] = [
  ...FRAGMENT_SPECS,
  { kind: "text", text: "🦕✓é", split: [1, 2, 3] },
  { kind: "text", text: "ü✓🦕", split: [1, 1, 1, 1, 1, 1, 1, 1] }, // one byte per fragment
];

/** A `ws` socket (client or server side) as the scripts drive it. */
function nodeSocket(peer: NodePeer): DrivenSocket {
  return {
    opened: peer.opened,
    protocol: () => peer.ws.protocol,
    send: (m) => peer.send(m),
    inbox: peer.inbox,
    close: (code, reason) => peer.ws.close(code, reason),
    closed: () => peer.closed,
    sendFragments: (type, parts, pingBetween) => peer.sendFragments(type, parts, pingBetween),
    ping: (payload) => peer.ping(payload),
    pongs: peer.pongs,
    dispose: () => peer.dispose(),
  };
}

// ---- ws client → our server -------------------------------------------------------

const nodeClient: ClientPeerKind = {
  name: "ws client",
  noSubprotocol: "",
  offeredHeader: "a,b",
  fragments: {
    specs: NODE_FRAGMENT_SPECS,
    title: "fragmented messages with a ping between fragments",
  },
  pings: true,
  start: (url, protocols, script) =>
    drivenClient(nodeSocket(NodePeer.connect(url, protocols)), script),
};

registerClientScenarios(nodeClient);

// ---- our client → ws server -------------------------------------------------------

const nodeServer: ServerPeerKind = {
  name: "ws server",
  url: (_port, resource) => resource,
  noSubprotocol: "",
  fragments: {
    specs: NODE_FRAGMENT_SPECS,
    title: "its fragmented messages, a ping between fragments",
  },
  pings: true,
  async start(protocols) {
    const server = await NodeServer.start(protocols);
    return {
      port: server.port,
      async accepted() {
        const { peer, url, offered } = await server.sockets.next("server socket");
        const request = { url, offered: offered ?? null, protocol: peer.ws.protocol };
        return drivenConnection(nodeSocket(peer), request);
      },
      settle: () => Promise.resolve(),
      dispose: () => server.dispose(),
    };
  },
};

registerServerScenarios(nodeServer);
