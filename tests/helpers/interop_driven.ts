/**
 * Peers driven from TypeScript (Deno's WebSocket, npm `ws`): a small socket interface
 * each test file implements for its peer, and on top of it the client scripts and the
 * server commands of `interop_peers.ts`, so those peers behave as the Python peers do by
 * themselves.
 *
 * @module
 */

import { WS_TEXT, type WsMessage } from "../../mod.ts";
import {
  assertBytes,
  assertMessage,
  build,
  describe,
  fragmentsOf,
  type Inbox,
  PING_PAYLOADS,
  type Spec,
  within,
} from "../peers/common.ts";
import {
  type ClientPeer,
  type ClientScript,
  type CloseReport,
  LAST_WORDS,
  PEER_CLOSE,
  PING_TEXT,
  type ServerConnection,
} from "./interop_peers.ts";

/** One peer WebSocket as the scripts drive it. */
export interface DrivenSocket {
  /** Resolves once the socket is open. */
  readonly opened: Promise<void>;
  /** The subprotocol the socket reports (once open). */
  protocol(): string;
  /** Sends a whole message; resolves once the peer's API took it. */
  send(m: WsMessage): Promise<void>;
  /** The messages the socket received. */
  readonly inbox: Inbox<WsMessage>;
  /** Starts the closing handshake. */
  close(code: number, reason: string): void;
  /** What the socket reports once closed. */
  closed(): Promise<CloseReport>;
  /** Sends one message as `parts`, pinging between the first two; absent if the API cannot. */
  sendFragments?(type: number, parts: Uint8Array[], pingBetween?: Uint8Array): Promise<void>;
  /** Pings, with the pongs in `pongs`; absent if the API cannot. */
  ping?(payload: Uint8Array): Promise<void>;
  /** The payloads of the pongs received (with `ping`). */
  readonly pongs?: Inbox<Uint8Array>;
  /** Closes if needed and waits for the close. */
  dispose(): Promise<void>;
}

/** The ping a socket that can ping sends between the first two fragments of a message. */
const MID_PING = new TextEncoder().encode("between fragments");

/** Checks one pong per ping, each with the ping's payload. */
async function expectPongs(socket: DrivenSocket, payloads: Uint8Array[]): Promise<void> {
  for (const [i, want] of payloads.entries()) {
    assertBytes(await socket.pongs!.next(`pong ${i}`), want, `pong ${i} payload`);
  }
}

/**
 * Sends every spec, fragmented as its split says; a socket that can ping pings between
 * the first two fragments. Returns the payloads of those pings.
 */
async function sendSpecs(socket: DrivenSocket, specs: Spec[]): Promise<Uint8Array[]> {
  const pinged: Uint8Array[] = [];
  for (const spec of specs) {
    const m = build(spec);
    if (!spec.split) {
      await socket.send(m);
      continue;
    }
    if (!socket.sendFragments) throw new Error(`this peer cannot send a ${describe(spec)}`);
    const ping = socket.ping ? MID_PING : undefined;
    await socket.sendFragments(m.type, fragmentsOf(spec), ping);
    if (ping) pinged.push(ping);
  }
  return pinged;
}

/** Sends {@link PING_TEXT}, then pings with PING_PAYLOADS and checks every pong. */
async function pingAfterText(socket: DrivenSocket): Promise<void> {
  if (!socket.ping) throw new Error("this peer cannot ping");
  await socket.send({ type: WS_TEXT, data: PING_TEXT });
  for (const p of PING_PAYLOADS) await socket.ping(p);
  await expectPongs(socket, PING_PAYLOADS);
}

/** Runs `script` on an open socket. */
async function runScript(socket: DrivenSocket, script: ClientScript): Promise<void> {
  switch (script.kind) {
    case "echo": {
      const pinged = await sendSpecs(socket, script.specs);
      for (const spec of script.specs) {
        const got = await socket.inbox.next("echo at the client");
        assertMessage(got, build(spec), `client got the echo of a ${describe(spec)}`);
      }
      await expectPongs(socket, pinged);
      socket.close(1000, "");
      return;
    }
    case "ping":
      await pingAfterText(socket);
      socket.close(1000, "");
      return;
    case "close-peer":
      await socket.send({ type: WS_TEXT, data: LAST_WORDS });
      socket.close(PEER_CLOSE.code, PEER_CLOSE.reason);
      return;
    case "close-ours":
      return; // the close comes from us
  }
}

/** A client socket that runs `script` as soon as it is open. */
export function drivenClient(socket: DrivenSocket, script: ClientScript): ClientPeer {
  const run = within(socket.opened, "client open").then(() => runScript(socket, script));
  run.catch(() => {}); // reported by finished() and settle()
  return {
    async opened() {
      await within(socket.opened, "client open");
      return socket.protocol();
    },
    finished: () => run,
    closed: () => within(socket.closed(), "client close"),
    settle: () => run,
    dispose: () => socket.dispose(),
  };
}

/** A server's open socket and what its server saw of the request. */
export function drivenConnection(
  socket: DrivenSocket,
  request: Pick<ServerConnection, "url" | "offered" | "protocol">,
): ServerConnection {
  return {
    ...request,
    async echo(count) {
      for (let i = 0; i < count; i++) await socket.send(await socket.inbox.next(`peer echo ${i}`));
    },
    received: () => socket.inbox.next("message at the server"),
    send: (m) => socket.send(m),
    close(code, reason) {
      socket.close(code, reason);
      return Promise.resolve();
    },
    closed: () => within(socket.closed(), "server close"),
    sendFragmented: socket.sendFragments
      ? async (specs) => await expectPongs(socket, await sendSpecs(socket, specs))
      : undefined,
    pingUnread: socket.ping
      ? async () => {
        await pingAfterText(socket);
        return PING_TEXT;
      }
      : undefined,
  };
}
