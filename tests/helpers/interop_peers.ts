/**
 * The peer adapters of the interop suite: what the shared scenarios in
 * `interop_scenarios.ts` need from a real WebSocket peer, as a client against our server
 * or as a server for our client. Each `tests/interop_*.test.ts` file implements them for
 * its peer (Deno's WebSocket, npm `ws`, Python `websockets`); where the peers differ, the
 * difference is a field of the adapter, so it stays written down next to the peer.
 *
 * @module
 */

import type { Handle, WsMessage } from "../../mod.ts";
import type { Spec } from "../peers/common.ts";

/** What a peer reports when its connection closed: the status and reason it received. */
export interface CloseReport {
  code: number;
  reason: string;
}

/** The text a client peer sends before it closes with {@link PEER_CLOSE} (as py_client.py). */
export const LAST_WORDS = "last words ✓";

/** The status and reason a peer closes with in the "the peer's close" scenarios. */
export const PEER_CLOSE: CloseReport = { code: 4002, reason: "ciao é" };

/** The status and reason we close with in the "our close" scenarios. */
export const OUR_CLOSE: CloseReport = { code: 4001, reason: "bye ü" };

/** The text a client peer sends before its pings (as py_client.py). */
export const PING_TEXT = "queued before the pings";

/**
 * What a client peer does by itself once it is open: py_client.py's scenarios, which the
 * peers driven from TypeScript run too (see `interop_driven.ts`).
 *
 * - `echo`: send every spec (fragmented when it has a split), check every echo, close with 1000.
 * - `ping`: send {@link PING_TEXT}, ping with PING_PAYLOADS, check each pong, close with 1000.
 * - `close-peer`: send {@link LAST_WORDS}, close with {@link PEER_CLOSE}.
 * - `close-ours`: wait for our close.
 */
export type ClientScript =
  | { kind: "echo"; specs: Spec[] }
  | { kind: "ping" }
  | { kind: "close-peer" }
  | { kind: "close-ours" };

/** One client peer connected (or connecting) to our listener, running its script. */
export interface ClientPeer {
  /** Waits until the peer is open; the subprotocol it then reports. */
  opened(): Promise<string | null>;
  /** Waits until an `echo` or `ping` script passed the peer's own checks (echoes, pongs). */
  finished(): Promise<void>;
  /** What the peer reports for the close (`close-peer` and `close-ours` scripts). */
  closed(): Promise<CloseReport>;
  /** After a scenario passed: fails if the peer failed on its side (its script, its exit). */
  settle(): Promise<void>;
  /** Closes the peer if needed and waits for everything it owns. */
  dispose(): Promise<void>;
}

/** A client implementation: how to start it and what it reports where peers differ. */
export interface ClientPeerKind {
  /** Names the peer in test names, such as "deno client". */
  name: string;
  /** The subprotocol the peer reports when none was agreed. */
  noSubprotocol: string | null;
  /** Its `Sec-WebSocket-Protocol` request header when it offers `["a", "b"]`. */
  offeredHeader: string;
  /** What it sends fragmented (its `echo` script fragments specs that have a split). */
  fragments?: { specs: Spec[]; title: string };
  /** Whether it can run the `ping` script. */
  pings: boolean;
  /** Starts the peer against `url`, offering `protocols`, to run `script`. */
  start(url: string, protocols: string[] | undefined, script: ClientScript): ClientPeer;
}

/** One connection a server peer accepted from our client. */
export interface ServerConnection {
  /** The request target as the server reports it. */
  readonly url: string;
  /** The `Sec-WebSocket-Protocol` header the server received (null: none). */
  readonly offered: string | null;
  /** The subprotocol the server answered; undefined where the server does not tell. */
  readonly protocol: string | null | undefined;
  /** Makes the server echo the next `count` messages. */
  echo(count: number): Promise<void>;
  /** The next message the server received. */
  received(): Promise<WsMessage>;
  /** Makes the server send `m`. */
  send(m: WsMessage): Promise<void>;
  /** Makes the server close with `code` and `reason`. */
  close(code: number, reason: string): Promise<void>;
  /** What the server reports for the close. */
  closed(): Promise<CloseReport>;
  /** Makes the server send every spec fragmented; resolves once its own checks passed. */
  sendFragmented?(specs: Spec[]): Promise<void>;
  /**
   * Makes the server ping with PING_PAYLOADS and check each pong while we do not read;
   * resolves with the text message it sent along, which we read afterwards.
   */
  pingUnread?(): Promise<string>;
}

/** A server peer listening on 127.0.0.1. */
export interface ServerPeer {
  readonly port: number;
  /** The next connection, once open; `ours` is our end of it (some servers take commands on it). */
  accepted(ours: Handle): Promise<ServerConnection>;
  /** After a scenario passed: fails if the server failed on its side. */
  settle(): Promise<void>;
  /** Stops the server and waits for everything it owns. */
  dispose(): Promise<void>;
}

/** A server implementation: how to start it and what it reports where peers differ. */
export interface ServerPeerKind {
  /** Names the peer in test names, such as "deno server". */
  name: string;
  /** The request target the server reports for `resource` requested on `port`. */
  url(port: number, resource: string): string;
  /** The subprotocol it reports when none was agreed. */
  noSubprotocol: string | null;
  /** What it sends fragmented, when it can. */
  fragments?: { specs: Spec[]; title: string };
  /** Whether it has {@link ServerConnection.pingUnread}. */
  pings: boolean;
  /** Starts a server that speaks `protocols` (it picks the first one the client offers). */
  start(protocols?: string[]): Promise<ServerPeer>;
}
