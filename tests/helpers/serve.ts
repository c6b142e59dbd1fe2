/**
 * Test helpers for `Deno.serve` + `wsUpgrade`: a server on a free loopback port (with the
 * upgraded handles in order of arrival), a real `WebSocket` client (Deno's) with a message
 * queue and its close event, and a raw TCP client that does the handshake by hand and
 * then reads only when told to.
 *
 * @module
 */

import { type Handle, wsUpgrade, type WsUpgradeOptions } from "../../mod.ts";
import { ConnWire } from "./raw_peer/conn_wire.ts";
import { upgradeRequest } from "./raw_peer/handshake.ts";
import { RawPeer } from "./raw_peer/peer.ts";

/** A `Deno.serve` server on 127.0.0.1 and a port of its own. */
export interface TestServer {
  /** The port it listens on. */
  readonly port: number;
  /** Stops it and waits until it has finished. */
  close(): Promise<void>;
}

/** Starts `Deno.serve` with `handler` on a free loopback port. */
export function serve(handler: (request: Request) => Response | Promise<Response>): TestServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    port: server.addr.port,
    close: () => server.shutdown(),
  };
}

/** A `Deno.serve` server that upgrades every request, and the handles in order. */
export interface UpgradeServer {
  /** The port it listens on. */
  readonly port: number;
  /** The next upgraded handle. */
  next(): Promise<Handle>;
  /** `server.shutdown()`: stops listening, and waits for the connections to end. */
  shutdown(): Promise<void>;
}

/** Starts `Deno.serve` on a free loopback port; every request is upgraded with `wsUpgrade`. */
export function upgradeServer(flags: number, options: WsUpgradeOptions = {}): UpgradeServer {
  const handles: Handle[] = [];
  const waiters: ((h: Handle) => void)[] = [];
  const server = serve((request) => {
    const { response, handle } = wsUpgrade(request, flags, options);
    const w = waiters.shift();
    if (w) w(handle);
    else handles.push(handle);
    return response;
  });
  return {
    port: server.port,
    next: () => {
      const h = handles.shift();
      return h ? Promise.resolve(h) : new Promise((resolve) => waiters.push(resolve));
    },
    shutdown: () => server.close(),
  };
}

/**
 * A raw TCP client after its handshake, which has read nothing past the 101 head: what
 * the server sends stays in the socket buffers until {@link RawClient.reader} starts
 * reading (a client that does not read).
 */
export interface RawClient {
  /** The connection (write to it freely; close it with unread bytes to reset it). */
  readonly conn: Deno.Conn;
  /** Starts reading: a raw peer that parses the server's frames (made once). */
  reader(): RawPeer;
  /** Closes the connection (a reset if bytes are unread) and waits for its reads. */
  close(): Promise<void>;
}

/** Connects to `port`, sends a valid upgrade request and reads the 101 head byte by byte. */
export async function rawClient(port: number): Promise<RawClient> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let peer: RawPeer | null = null;
  try {
    await conn.write(upgradeRequest());
    let head = "";
    const byte = new Uint8Array(1);
    while (!head.endsWith("\r\n\r\n") && head.length < 4096) {
      if (await conn.read(byte) === null) throw new Error(`no 101 answer: ${head}`);
      head += String.fromCharCode(byte[0]);
    }
    if (!head.startsWith("HTTP/1.1 101")) throw new Error(`not upgraded: ${head}`);
  } catch (e) {
    conn.close();
    throw e;
  }
  return {
    conn,
    reader: () => peer ??= new RawPeer(new ConnWire(conn), "client"),
    close: async () => {
      if (peer) return await peer.close();
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}

/** A real WebSocket client with its received messages queued. */
export interface TestClient {
  /** The client socket. */
  readonly ws: WebSocket;
  /** Resolves when the socket is open (rejects if it closes first). */
  readonly opened: Promise<void>;
  /** The next message: text as a string, binary as bytes. */
  next(): Promise<string | Uint8Array>;
  /** The close event's code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

/** Connects Deno's WebSocket client to `ws://127.0.0.1:port/path`. */
export function connectClient(port: number, path = "/", protocols?: string[]): TestClient {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols);
  ws.binaryType = "arraybuffer";
  const queue: (string | Uint8Array)[] = [];
  const waiters: ((m: string | Uint8Array) => void)[] = [];
  ws.onmessage = (e) => {
    const m = typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer);
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  };
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<{ code: number; reason: string }>();
  ws.onopen = () => opened.resolve();
  ws.onerror = () => {};
  ws.onclose = (e) => {
    opened.reject(new Error(`closed before opening (${e.code})`));
    closed.resolve({ code: e.code, reason: e.reason });
  };
  opened.promise.catch(() => {});
  return {
    ws,
    opened: opened.promise,
    closed: closed.promise,
    next: () => {
      const m = queue.shift();
      if (m !== undefined) return Promise.resolve(m);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
