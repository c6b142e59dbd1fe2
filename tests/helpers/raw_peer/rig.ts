/**
 * Rigs: our side on one end, a raw peer on the other, over TCP or one of our pipes. A
 * rig is either our server against a raw client or our client against a raw server, with
 * a valid handshake done (unless `WS_NOHTTP`), ready for the hostile part of a test.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Handle,
  hclose,
  ipcPair,
  isDillError,
  now,
  type PairOptions,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  type WsClientOptions,
  type WsServerOptions,
} from "../../../mod.ts";
import { assertOk, type Outcome, settle } from "../outcome.ts";
import { concat } from "./bytes.ts";
import { ConnWire } from "./conn_wire.ts";
import { HandleWire } from "./handle_wire.ts";
import {
  acceptKey,
  checkClientRequest,
  SAMPLE_KEY,
  switchingProtocols,
  upgradeRequest,
} from "./handshake.ts";
import { RawPeer } from "./peer.ts";

/**
 * The transports a rig can run over: TCP (the raw peer on a `Deno.Conn`) or one of our
 * pipes (the raw peer on the other `ipcPair()` end).
 *
 * @example
 * ```ts
 * import { openServer, type Transport } from "./rig.ts";
 *
 * const rigOver = (transport: Transport) => openServer(transport);
 * ```
 */
export type Transport = "tcp" | "pipe";
/**
 * Every {@link Transport}.
 *
 * @example
 * ```ts
 * import { openServer, TRANSPORTS } from "./rig.ts";
 *
 * for (const transport of TRANSPORTS) {
 *   Deno.test(`a valid handshake over ${transport}`, async () => {
 *     await (await openServer(transport)).close();
 *   });
 * }
 * ```
 */
export const TRANSPORTS: readonly Transport[] = ["tcp", "pipe"];

/**
 * One of our bytestream handles connected to a raw peer playing `peerRole`, before any
 * handshake. `options` are our handle's (its `sendBuffer`, say; `pipeCapacity` only
 * for a pipe).
 *
 * @example
 * ```ts
 * import { hclose } from "../../../mod.ts";
 * import { connectRaw } from "./rig.ts";
 *
 * const { ours, peer } = await connectRaw("tcp", "client");
 * hclose(ours);
 * await peer.close();
 * ```
 */
export async function connectRaw(
  transport: Transport,
  peerRole: "client" | "server",
  options: PairOptions = {},
): Promise<{ ours: Handle; peer: RawPeer }> {
  if (transport === "pipe") {
    const [ours, theirs] = ipcPair(options);
    return { ours, peer: new RawPeer(new HandleWire(theirs), peerRole) };
  }
  if (peerRole === "client") {
    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { port } = tcpLocalAddr(ls);
      const [accepted, conn] = await Promise.all([
        tcpAccept(ls, now() + 2000, options),
        Deno.connect({ hostname: "127.0.0.1", port }),
      ]);
      return { ours: accepted.handle, peer: new RawPeer(new ConnWire(conn), peerRole) };
    } finally {
      hclose(ls);
    }
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = listener.addr as Deno.NetAddr;
    const [conn, ours] = await Promise.all([
      listener.accept(),
      tcpConnect({ hostname: "127.0.0.1", port }, now() + 2000, options),
    ]);
    return { ours, peer: new RawPeer(new ConnWire(conn), peerRole) };
  } finally {
    listener.close();
  }
}

/**
 * Our WebSocket handle and the raw peer at the other end.
 *
 * @example
 * ```ts
 * import { mrecv, now } from "../../../mod.ts";
 * import { OP } from "./frames.ts";
 * import { openServer } from "./rig.ts";
 *
 * const rig = await openServer("pipe");
 * try {
 *   await rig.peer.sendFrame({ opcode: OP.TEXT, payload: "hi" });
 *   console.log(await mrecv(rig.ws, now() + 1000));
 * } finally {
 *   await rig.close();
 * }
 * ```
 */
export class Rig {
  /**
   * @param ws our WebSocket handle
   * @param peer the raw peer
   * @param headers the handshake headers our side saw
   */
  constructor(readonly ws: Handle, readonly peer: RawPeer, readonly headers: Headers) {}

  /** Closes our handle (if still open) and the peer. */
  async close(): Promise<void> {
    try {
      hclose(this.ws);
    } catch (e) {
      if (!isDillError(e, "EBADF")) throw e;
    }
    await this.peer.close();
  }
}

/**
 * Options of {@link openServer}.
 *
 * @example
 * ```ts
 * import { upgradeRequest } from "./handshake.ts";
 * import type { ServerRigOptions } from "./rig.ts";
 *
 * const small: ServerRigOptions = {
 *   options: { maxMessageSize: 1000 },
 *   request: upgradeRequest({ target: "/small" }),
 * };
 * ```
 */
export interface ServerRigOptions {
  flags?: number;
  options?: WsServerOptions;
  /** The raw upgrade request to send. */
  request?: Uint8Array;
}

/**
 * Our server (wsAttachServer) against a raw client that completes a valid handshake.
 *
 * @example
 * ```ts
 * import { openServer } from "./rig.ts";
 *
 * const rig = await openServer("tcp", { options: { maxMessageSize: 1000 } });
 * await rig.close();
 * ```
 */
export async function openServer(transport: Transport, setup: ServerRigOptions = {}): Promise<Rig> {
  const { ours, peer } = await connectRaw(transport, "client");
  const flags = setup.flags ?? 0;
  const attaching = settle(wsAttachServer(ours, flags, now() + 2000, setup.options));
  return await rigOnceAttached(peer, attaching, "wsAttachServer", async () => {
    if (flags & WS_NOHTTP) return;
    await peer.send(setup.request ?? upgradeRequest());
    const res = await peer.readResponse();
    assert.equal(res.status, 101, `our server refused a valid upgrade:\n${res.raw}${res.body}`);
    assert.equal(res.headers.get("sec-websocket-accept"), acceptKey(SAMPLE_KEY));
  });
}

/**
 * Options of {@link openClient}.
 *
 * @example
 * ```ts
 * import { frame, OP } from "./frames.ts";
 * import type { ClientRigOptions } from "./rig.ts";
 *
 * // A server that speaks right behind its 101, in the same write.
 * const eager: ClientRigOptions = { after: frame({ opcode: OP.TEXT, payload: "early" }) };
 * ```
 */
export interface ClientRigOptions {
  flags?: number;
  options?: WsClientOptions;
  /** Extra raw header lines in the 101 answer. */
  extra?: string[];
  /** Bytes sent right after the 101 answer, in the same write. */
  after?: Uint8Array;
}

/**
 * Our client (wsAttachClient) against a raw server that answers a valid 101.
 *
 * @example
 * ```ts
 * import { openClient } from "./rig.ts";
 *
 * const rig = await openClient("pipe", { extra: ["X-Extra: 1"] });
 * await rig.close();
 * ```
 */
export async function openClient(transport: Transport, setup: ClientRigOptions = {}): Promise<Rig> {
  const { ours, peer } = await connectRaw(transport, "server");
  const flags = setup.flags ?? 0;
  const attaching = settle(
    wsAttachClient(ours, flags, "/chat", "example.com", now() + 2000, setup.options),
  );
  return await rigOnceAttached(peer, attaching, "wsAttachClient", async () => {
    if (flags & WS_NOHTTP) return;
    const req = await peer.readRequest();
    const key = checkClientRequest(req);
    await peer.send(
      concat(switchingProtocols(key, setup.extra), setup.after ?? new Uint8Array()),
    );
  });
}

/**
 * Plays the raw peer's side of the handshake while our attach call runs, then makes the
 * rig. On any failure our call is still awaited and the peer closed, so nothing is left
 * running.
 */
async function rigOnceAttached(
  peer: RawPeer,
  attaching: Promise<Outcome<{ handle: Handle; headers: Headers }>>,
  what: string,
  rawHandshake: () => Promise<void>,
): Promise<Rig> {
  try {
    await rawHandshake();
    const attached = assertOk(await attaching, what);
    return new Rig(attached.handle, peer, attached.headers);
  } catch (e) {
    await attaching;
    await peer.close();
    throw e;
  }
}
