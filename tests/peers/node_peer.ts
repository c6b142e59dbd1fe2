/**
 * npm `ws` (run inside Deno through `npm:ws@8`) as a test peer: client sockets,
 * a server, and one socket of either kind with its messages, pongs and close in
 * inboxes and promises. `ws` ships no types; the small interfaces below describe
 * the part of its API the tests use.
 *
 * @module
 */

import WebSocket, { WebSocketServer } from "npm:ws@8";
import { WS_BINARY, WS_TEXT, type WsMessage } from "../../mod.ts";
import { Inbox, within } from "./common.ts";

type Done = (err?: Error) => void;

/** The part of a `ws` WebSocket the tests use. */
interface NodeWs {
  readonly protocol: string;
  readonly readyState: number;
  send(data: Uint8Array | string, options: { binary?: boolean; fin?: boolean }, cb: Done): void;
  ping(data: Uint8Array, mask: boolean | undefined, cb: Done): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: "open", fn: () => void): void;
  on(event: "message", fn: (data: Uint8Array, isBinary: boolean) => void): void;
  on(event: "pong", fn: (data: Uint8Array) => void): void;
  on(event: "close", fn: (code: number, reason: Uint8Array) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
}

/** What the `ws` server passes with a connection. */
interface NodeRequest {
  readonly url: string;
  readonly headers: Record<string, string | undefined>;
}

/** The part of a `ws` WebSocketServer the tests use. */
interface NodeWsServer {
  address(): { port: number };
  on(event: "listening", fn: () => void): void;
  on(event: "connection", fn: (ws: NodeWs, req: NodeRequest) => void): void;
  on(event: "error", fn: (err: Error) => void): void;
  close(cb: Done): void;
}

const OPEN = 1;
const CLOSED = 3;
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }); // a BOM is text

/** What a `ws` peer saw when the connection closed. */
export interface NodeClose {
  code: number;
  reason: string;
}

/** One `ws` socket as a test peer. */
export class NodePeer {
  readonly inbox: Inbox<WsMessage> = new Inbox();
  readonly pongs: Inbox<Uint8Array> = new Inbox();
  readonly opened: Promise<void>;
  readonly closed: Promise<NodeClose>;

  constructor(readonly ws: NodeWs) {
    this.opened = ws.readyState === OPEN ? Promise.resolve() : new Promise((resolve, reject) => {
      ws.on("open", () => resolve());
      ws.on("error", (e) => reject(e));
    });
    this.opened.catch(() => {}); // also reported through `closed`
    ws.on("error", () => {}); // reported through `closed`
    ws.on("message", (data, isBinary) => {
      const bytes = new Uint8Array(data); // a copy: ws may reuse its buffers
      this.inbox.push(
        isBinary
          ? { type: WS_BINARY, data: bytes }
          : { type: WS_TEXT, data: fatalUtf8.decode(bytes) },
      );
    });
    ws.on("pong", (data) => this.pongs.push(new Uint8Array(data)));
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        const error = new Error(`the peer's socket closed (${code})`);
        this.inbox.end(error);
        this.pongs.end(error);
        resolve({ code, reason: fatalUtf8.decode(new Uint8Array(reason)) });
      });
    });
  }

  /**
   * A `ws` client connecting to `url`, offering `protocols`; `options` go to `ws` as they
   * are (such as `{ perMessageDeflate: { serverMaxWindowBits: 10 } }`).
   */
  static connect(url: string, protocols?: string[], options?: Record<string, unknown>): NodePeer {
    const ws: NodeWs = options
      ? new WebSocket(url, protocols ?? [], options)
      : protocols
      ? new WebSocket(url, protocols)
      : new WebSocket(url);
    return new NodePeer(ws);
  }

  /** Sends a whole message; resolves once `ws` wrote it. */
  send(m: WsMessage): Promise<void> {
    return this.#send(m.data, { binary: m.type === WS_BINARY, fin: true });
  }

  /**
   * Sends one message as the given fragments (`fin: false` on all but the last),
   * with a ping between the first two when `pingBetween` is set.
   */
  async sendFragments(type: number, parts: Uint8Array[], pingBetween?: Uint8Array): Promise<void> {
    const binary = type === WS_BINARY;
    for (let i = 0; i < parts.length; i++) {
      const fin = i === parts.length - 1;
      await this.#send(parts[i], { binary, fin });
      if (i === 0 && pingBetween) await this.ping(pingBetween);
    }
  }

  /** Sends a ping; resolves once it is written (its pong lands in `pongs`). */
  ping(payload: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.ping(payload, undefined, (err) => err ? reject(err) : resolve());
    });
  }

  /** Echoes the next `count` messages back with their type. */
  async echo(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.send(await this.inbox.next(`peer echo ${i}`));
  }

  /** Closes (if still open) and waits for the close event; terminates if that stalls. */
  async dispose(): Promise<void> {
    if (this.ws.readyState === CLOSED) {
      await this.closed;
      return;
    }
    try {
      this.ws.close();
    } catch {
      this.ws.terminate(); // still connecting
    }
    try {
      await within(this.closed, "the peer's close event", 3000);
    } catch {
      this.ws.terminate();
      await within(this.closed, "the peer's close event after terminate");
    }
  }

  #send(data: Uint8Array | string, options: { binary: boolean; fin: boolean }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => err ? reject(err) : resolve());
    });
  }
}

/** A `ws` WebSocketServer on 127.0.0.1; each connection lands in `sockets`. */
export class NodeServer {
  readonly sockets: Inbox<{ peer: NodePeer; url: string; offered: string | undefined }> =
    new Inbox();
  readonly #server: NodeWsServer;
  readonly #peers: NodePeer[] = [];
  readonly #listening: Promise<void>;

  /**
   * `protocols`: the subprotocols it speaks; it picks the first one the client offers.
   * `options` go to `WebSocketServer` as they are (such as `perMessageDeflate`).
   */
  constructor(protocols: string[] = [], options: Record<string, unknown> = {}) {
    this.#server = new WebSocketServer({
      ...options,
      host: "127.0.0.1",
      port: 0,
      handleProtocols: (offered: Set<string>) =>
        [...offered].find((p) => protocols.includes(p)) ?? false,
    });
    this.#listening = new Promise((resolve, reject) => {
      this.#server.on("listening", () => resolve());
      this.#server.on("error", (e) => reject(e));
    });
    this.#server.on("connection", (ws, req) => {
      const peer = new NodePeer(ws);
      this.#peers.push(peer);
      this.sockets.push({ peer, url: req.url, offered: req.headers["sec-websocket-protocol"] });
    });
  }

  /** Starts a server and waits until it listens. */
  static async start(
    protocols?: string[],
    options?: Record<string, unknown>,
  ): Promise<NodeServer> {
    const server = new NodeServer(protocols, options);
    await within(server.#listening, "ws server listening");
    return server;
  }

  get port(): number {
    return this.#server.address().port;
  }

  /** Closes every connection, then the server. */
  async dispose(): Promise<void> {
    for (const p of this.#peers) await p.dispose();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
