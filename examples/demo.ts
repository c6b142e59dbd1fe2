/**
 * A tiny chat server that shows why `WS_NOHTTP` exists. It reads each HTTP request head
 * itself from the raw TCP bytestream, serves a page on `/`, and only for `/ws` answers the
 * WebSocket upgrade and stacks a WebSocket layer on the same stream with
 * `wsAttachServer(s, WS_NOHTTP | WS_TEXT, ...)`: the HTTP part is ours, the framing the
 * library's. Every text message is broadcast to everyone in the room.
 *
 * Run: `deno task demo` (port from `PORT`, default 8080), then open http://127.0.0.1:8080/.
 *
 * @module
 */

import {
  brecv,
  bsend,
  type Handle,
  hclose,
  isDillError,
  mrecvText,
  msend,
  now,
  tcpAccept,
  tcpClose,
  tcpListen,
  tcpLocalAddr,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachServer,
  wsDetach,
  wsDone,
  wsStatus,
} from "../mod.ts";
import {
  HttpError,
  HttpHeadReader,
  type HttpRequestHead,
  writeHttpErrorResponse,
  writeHttpResponse,
} from "../protocol/http11.ts";
import { acceptUpgrade, HandshakeError } from "../protocol/handshake.ts";
import { DEMO_PAGE } from "./demo_page.ts";

const HEAD_TIMEOUT_MS = 5_000; // a client has this long to send its request head
const SEND_TIMEOUT_MS = 2_000; // a slow client may hold up one send this long
const CLOSE_TIMEOUT_MS = 1_000; // closing handshakes (WebSocket, then TCP) get this long
const MAX_CHAT_MESSAGE = 4_096; // bytes; larger messages are refused with close 1009

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Port on 127.0.0.1; `0` picks a free one. Default 8080. */
  port?: number;
  /** Where the one-line connection events go. Default: `console.log` with a timestamp. */
  log?: (line: string) => void;
}

/** A running demo server. */
export interface Demo {
  /** The port it listens on. */
  readonly port: number;
  /** Stops accepting, closes every chat client with 1001 and waits until all is closed. */
  stop(): Promise<void>;
}

/**
 * Starts the chat demo on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startDemo } from "./demo.ts";
 *
 * const demo = await startDemo({ port: 0, log: () => {} });
 * console.log(`open http://127.0.0.1:${demo.port}/`);
 * await demo.stop();
 * ```
 */
export function startDemo(options: DemoOptions = {}): Promise<Demo> {
  try {
    const listener = tcpListen({ hostname: "127.0.0.1", port: options.port ?? 8080 });
    const server = new ChatServer(listener, options.log ?? logWithTime);
    return Promise.resolve({ port: tcpLocalAddr(listener).port, stop: () => server.stop() });
  } catch (e) {
    return Promise.reject(e);
  }
}

/** One accepted connection: its current top handle and, once in the room, its name. */
interface Conn {
  handle: Handle;
  readonly peer: string;
  name: string | null;
}

/** What the server sends to chat clients, as JSON text messages. */
type ChatEvent =
  | { kind: "welcome"; name: string; online: string[] }
  | { kind: "join" | "leave"; name: string }
  | { kind: "chat"; from: string; text: string };

class ChatServer {
  readonly #listener: Handle;
  readonly #log: (line: string) => void;
  readonly #conns = new Set<Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closing = false;
  #stopped: Promise<void> | null = null;
  #guests = 0;

  constructor(listener: Handle, log: (line: string) => void) {
    this.#listener = listener;
    this.#log = log;
    this.#accepting = this.#acceptLoop();
  }

  stop(): Promise<void> {
    return this.#stopped ??= this.#shutdown();
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closing) {
      try {
        const { handle, addr } = await tcpAccept(this.#listener, -1);
        this.#spawn({ handle, peer: `${addr.hostname}:${addr.port}`, name: null });
      } catch (e) {
        if (this.#closing) return;
        this.#log(`accept failed: ${describe(e)}`);
        if (!isDillError(e, "EMFILE")) return; // the listener is broken for good
        await new Promise((resolve) => setTimeout(resolve, 100)); // out of fds: let some close
      }
    }
  }

  /** Serves one connection in its own task; whatever happens there stays there. */
  #spawn(conn: Conn): void {
    this.#conns.add(conn);
    const task = this.#serve(conn)
      .catch((e) => this.#log(`${conn.peer} failed: ${describe(e)}`))
      .finally(() => {
        closeQuietly(conn.handle);
        this.#conns.delete(conn);
        this.#tasks.delete(task);
      });
    this.#tasks.add(task);
  }

  async #serve(conn: Conn): Promise<void> {
    let head: HttpRequestHead;
    try {
      head = await readRequestHead(conn.handle, now() + HEAD_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof HttpError) {
        return this.#reply(conn, "bad head", e.status, writeHttpErrorResponse(e.status, e.message));
      }
      return this.#log(`${conn.peer} sent no request (${describe(e)})`);
    }
    const what = `${head.method} ${head.target}`;
    const path = head.target.split("?")[0];
    if (path === "/ws") return this.#upgrade(conn, head);
    if (path !== "/") return this.#reply(conn, what, 404, writeHttpErrorResponse(404, "not found"));
    if (head.method !== "GET") {
      return this.#reply(
        conn,
        what,
        405,
        writeHttpErrorResponse(405, "use GET", [["Allow", "GET"]]),
      );
    }
    return this.#reply(conn, what, 200, pageResponse());
  }

  /** Sends a whole HTTP response, then closes the connection cleanly. */
  async #reply(conn: Conn, what: string, status: number, response: Uint8Array): Promise<void> {
    this.#log(`${conn.peer} ${what} -> ${status}`);
    await bsend(conn.handle, response, now() + SEND_TIMEOUT_MS);
    await tcpClose(conn.handle, now() + CLOSE_TIMEOUT_MS);
  }

  /** Validates the upgrade, answers 101 on the raw stream, then attaches WebSocket on it. */
  async #upgrade(conn: Conn, head: HttpRequestHead): Promise<void> {
    let response: Uint8Array;
    try {
      response = acceptUpgrade(head, { checkOrigin: sameOrigin }).response;
    } catch (e) {
      if (!(e instanceof HandshakeError)) throw e;
      return this.#reply(conn, `upgrade refused (${e.message})`, e.status, e.response);
    }
    await bsend(conn.handle, response, now() + SEND_TIMEOUT_MS);
    const deadline = now() + SEND_TIMEOUT_MS;
    const options = { maxMessageSize: MAX_CHAT_MESSAGE };
    conn.handle =
      (await wsAttachServer(conn.handle, WS_NOHTTP | WS_TEXT, deadline, options)).handle;
    await this.#chat(conn);
  }

  /** The life of one chat member: join, broadcast what it says, leave. */
  async #chat(conn: Conn): Promise<void> {
    const name = conn.name = `guest-${++this.#guests}`;
    const online = [...this.#conns].flatMap((c) => c.name ?? []);
    this.#log(`${conn.peer} joined as ${name}`);
    if (this.#closing) this.#goAway(conn); // stop() began while we were attaching
    await this.#send(conn, { kind: "welcome", name, online });
    await this.#broadcast({ kind: "join", name }, conn);
    let how = "left";
    try {
      for (;;) {
        await this.#broadcast({ kind: "chat", from: name, text: await mrecvText(conn.handle, -1) });
      }
    } catch (e) {
      // EPIPE: the client sent its close frame (or answered ours): the normal way out.
      const status = isDillError(e, "EPIPE") ? peerStatus(conn.handle) : null;
      how = status
        ? `left (${[status.status, status.reason].join(" ").trim()})`
        : `dropped (${describe(e)})`;
    }
    conn.name = null;
    this.#log(`${conn.peer} ${name} ${how}`);
    await this.#broadcast({ kind: "leave", name });
    await closeWebSocket(conn);
  }

  async #broadcast(event: ChatEvent, except?: Conn): Promise<void> {
    const members = [...this.#conns].filter((c) => c.name !== null && c !== except);
    await Promise.all(members.map((c) => this.#send(c, event)));
  }

  /** Sends one event; a client that cannot keep up is dropped, the others carry on. */
  async #send(conn: Conn, event: ChatEvent): Promise<void> {
    try {
      await msend(conn.handle, JSON.stringify(event), now() + SEND_TIMEOUT_MS);
    } catch (e) {
      if (isDillError(e, "EPIPE") || isDillError(e, "EBADF")) return; // it is closing anyway
      this.#log(`${conn.peer} ${conn.name} dropped: ${describe(e)}`);
      closeQuietly(conn.handle);
    }
  }

  #goAway(conn: Conn): void {
    wsDone(conn.handle, 1001, "server shutting down", now() + CLOSE_TIMEOUT_MS).catch(() => {});
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#log("shutting down");
    closeQuietly(this.#listener);
    await this.#accepting;
    // Chat members get a close frame and answer it; the rest are cut off.
    for (const conn of this.#conns) {
      conn.name !== null ? this.#goAway(conn) : closeQuietly(conn.handle);
    }
    const allDone = Promise.allSettled([...this.#tasks]);
    if (!await settlesWithin(allDone, 3 * CLOSE_TIMEOUT_MS)) {
      for (const conn of this.#conns) closeQuietly(conn.handle);
      await allDone;
    }
    this.#log("stopped");
  }
}

/**
 * Reads one request head, one byte at a time. `brecv` moves exactly the bytes asked for, so
 * it never takes a byte beyond the head: a client may send its first WebSocket frame right
 * behind the request, and that frame must stay in the stream for the WebSocket layer. The
 * reader's limits bound the size (8 KiB, 64 headers); the deadline bounds the time.
 */
async function readRequestHead(s: Handle, deadline: number): Promise<HttpRequestHead> {
  const reader = new HttpHeadReader("request");
  const byte = new Uint8Array(1);
  for (;;) {
    await brecv(s, byte, deadline);
    const done = reader.feed(byte);
    if (done) return done.head;
  }
}

/** Ends a chat connection cleanly: the WebSocket closing handshake, then the TCP close. */
async function closeWebSocket(conn: Conn): Promise<void> {
  try {
    conn.handle = await wsDetach(conn.handle, 1000, "", now() + CLOSE_TIMEOUT_MS);
    await tcpClose(conn.handle, now() + CLOSE_TIMEOUT_MS);
  } catch {
    // Both calls close the stack even when they fail; nothing is left to release.
  }
}

function pageResponse(): Uint8Array {
  return writeHttpResponse(200, "OK", [
    ["Content-Type", "text/html; charset=utf-8"],
    ["Cache-Control", "no-store"],
    [
      "Content-Security-Policy",
      "default-src 'none'; style-src 'unsafe-inline'; " +
      "script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
    ],
    ["Connection", "close"],
  ], DEMO_PAGE);
}

/** Browsers send `Origin`; only pages served by this host may join (no cross-site hijacking). */
function sameOrigin(origin: string | null, request: HttpRequestHead): boolean {
  if (origin === null) return true; // not a browser
  try {
    return new URL(origin).host === request.headers.get("host");
  } catch {
    return false;
  }
}

function closeQuietly(h: Handle): void {
  try {
    hclose(h);
  } catch {
    // Already closed, or handed to another layer that closes it.
  }
}

/** Whether `p` settles within `ms`; the timer never outlives the call. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function logWithTime(line: string): void {
  console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

/** Resolves on the first Ctrl-C (or SIGTERM), after removing the listeners. */
function nextStopSignal(): Promise<void> {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    const onSignal = () => {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, onSignal);
  });
}

async function main(): Promise<void> {
  const raw = Deno.env.get("PORT") ?? "8080";
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new Error(`PORT must be 0-65535, not "${raw}"`);
  const demo = await startDemo({ port });
  console.log(`chat demo on http://127.0.0.1:${demo.port}/ (Ctrl-C to stop)`);
  await nextStopSignal();
  await demo.stop();
  console.log("bye");
  Deno.exit(0);
}

if (import.meta.main) {
  main().catch((e) => {
    console.error(`demo: ${describe(e)}`);
    Deno.exit(1);
  });
}

/** How the peer closed, or `null` (wsStatus is synchronous and throws before the close). */
function peerStatus(h: Handle): { status: number; reason: string } | null {
  try {
    return wsStatus(h);
  } catch {
    return null;
  }
}
