/**
 * The demo's HTTP side on a raw TCP listener, and why `WS_NOHTTP` exists: it reads each
 * HTTP request head itself from the TCP bytestream, serves the page on `/`, and only for
 * `/ws` answers the WebSocket upgrade and stacks a WebSocket layer on the same stream with
 * `wsAttachServer(s, WS_NOHTTP | WS_TEXT, ...)`: the HTTP part is ours, the framing the
 * library's. The chat itself is {@link ChatRooms}'s.
 *
 * @module
 */

import {
  type AcceptedUpgrade,
  bsend,
  type Handle,
  HandshakeError,
  HttpError,
  httpRecvRequest,
  type HttpRequestHead,
  isDillError,
  now,
  tcpAccept,
  tcpClose,
  writeHttpErrorResponse,
  writeHttpResponse,
  WS_NOHTTP,
  WS_TEXT,
  wsAcceptUpgrade,
  wsAttachServer,
  wsDetach,
} from "../mod.ts";
import {
  BAD_ROOM,
  type ChatRooms,
  DEFAULT_ROOM,
  MAX_CHAT_MESSAGE,
  PING_INTERVAL_MS,
  ROOM_NAME,
} from "./chat_rooms.ts";
import { DEMO_PAGE, PAGE_HEADERS, sameOrigin } from "./demo_page.ts";
import { closeQuietly, describe, settlesWithin } from "./settle.ts";

const HEAD_TIMEOUT_MS = 5_000; // a client has this long to send its request head
const SEND_TIMEOUT_MS = 2_000; // a slow client may hold up one send this long
const CLOSE_TIMEOUT_MS = 1_000; // closing handshakes (WebSocket, then TCP) get this long

/** One accepted connection and its current top handle. */
interface Conn {
  handle: Handle;
  readonly peer: string;
  chatting: boolean;
}

/**
 * Serves the page and the chat on an open TCP listener until {@link TcpChatServer.stop}.
 *
 * @example
 * ```ts ignore
 * const server = new TcpChatServer(tcpListen({ port: 8080 }), new ChatRooms(), console.log);
 * await server.stop();
 * ```
 */
export class TcpChatServer {
  readonly #listener: Handle;
  readonly #rooms: ChatRooms;
  readonly #log: (line: string) => void;
  readonly #conns = new Set<Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closing = false;
  #stopped: Promise<void> | null = null;

  constructor(listener: Handle, rooms: ChatRooms, log: (line: string) => void) {
    this.#listener = listener;
    this.#rooms = rooms;
    this.#log = log;
    this.#accepting = this.#acceptLoop();
  }

  /** Stops accepting, asks every chat member to leave (1001), waits until all is closed. */
  stop(): Promise<void> {
    return this.#stopped ??= this.#shutdown();
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closing) {
      try {
        const { handle, addr } = await tcpAccept(this.#listener, -1);
        this.#spawn({ handle, peer: `${addr.hostname}:${addr.port}`, chatting: false });
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
      // The head's limits (8 KiB, 64 headers) bound its size, the deadline its time.
      head = await httpRecvRequest(conn.handle, now() + HEAD_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof HttpError) {
        return this.#reply(conn, "bad head", e.status, writeHttpErrorResponse(e.status, e.message));
      }
      return this.#log(`${conn.peer} sent no request (${describe(e)})`);
    }
    const what = `${head.method} ${head.target}`;
    if (head.version === "HTTP/1.1" && !head.headers.has("host")) {
      // RFC 9112, section 3.2: an HTTP/1.1 request without Host gets 400.
      return this.#reply(conn, what, 400, writeHttpErrorResponse(400, "Host is required"));
    }
    const q = head.target.indexOf("?");
    const path = q < 0 ? head.target : head.target.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : head.target.slice(q + 1));
    if (path === "/ws") return this.#upgrade(conn, head, query);
    if (path !== "/") {
      return this.#reply(conn, what, 404, writeHttpErrorResponse(404, "not found"));
    }
    if (head.method !== "GET" && head.method !== "HEAD") {
      return this.#reply(
        conn,
        what,
        405,
        writeHttpErrorResponse(405, "use GET or HEAD", [["Allow", "GET, HEAD"]]),
      );
    }
    return this.#reply(conn, what, 200, pageResponse(head.method === "HEAD"));
  }

  /** Sends a whole HTTP response, then closes the connection cleanly. */
  async #reply(conn: Conn, what: string, status: number, response: Uint8Array): Promise<void> {
    this.#log(`${conn.peer} ${what} -> ${status}`);
    await bsend(conn.handle, response, now() + SEND_TIMEOUT_MS);
    await tcpClose(conn.handle, now() + CLOSE_TIMEOUT_MS);
  }

  /** Validates the upgrade, answers 101 on the raw stream, then attaches WebSocket on it. */
  async #upgrade(conn: Conn, head: HttpRequestHead, query: URLSearchParams): Promise<void> {
    const room = query.get("room") ?? DEFAULT_ROOM;
    if (!ROOM_NAME.test(room)) {
      const refusal = writeHttpErrorResponse(400, BAD_ROOM);
      return this.#reply(conn, "upgrade refused (bad room)", 400, refusal);
    }
    let accepted: AcceptedUpgrade;
    try {
      // Browsers offer permessage-deflate; chat JSON shrinks well, so take it.
      accepted = wsAcceptUpgrade(head, { checkOrigin: sameOrigin, perMessageDeflate: true });
    } catch (e) {
      if (!(e instanceof HandshakeError)) throw e;
      return this.#reply(conn, `upgrade refused (${e.message})`, e.status, e.response);
    }
    try {
      await bsend(conn.handle, accepted.response, now() + SEND_TIMEOUT_MS);
    } catch (e) {
      accepted.deflate?.release(); // no socket will take the codec's memory reservation
      throw e;
    }
    const deadline = now() + SEND_TIMEOUT_MS;
    const negotiatedDeflate = accepted.deflate ?? undefined;
    const options = {
      maxMessageSize: MAX_CHAT_MESSAGE,
      negotiatedDeflate,
      pingInterval: PING_INTERVAL_MS,
    };
    conn.handle =
      (await wsAttachServer(conn.handle, WS_NOHTTP | WS_TEXT, deadline, options)).handle;
    conn.chatting = true;
    await this.#rooms.serve({
      handle: conn.handle,
      room,
      peer: conn.peer,
      close: () => closeWebSocket(conn),
    });
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#log("shutting down");
    closeQuietly(this.#listener);
    await this.#accepting;
    // Chat members get a close frame and answer it; the rest are cut off.
    this.#rooms.goAway();
    for (const conn of this.#conns) if (!conn.chatting) closeQuietly(conn.handle);
    const allDone = Promise.allSettled([...this.#tasks]);
    if (!await settlesWithin(allDone, 3 * CLOSE_TIMEOUT_MS)) {
      for (const conn of this.#conns) closeQuietly(conn.handle);
      await allDone;
    }
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

const PAGE_BYTES = new TextEncoder().encode(DEMO_PAGE).length;

/** The page; for HEAD, its head alone (with the length the body would have). */
function pageResponse(headOnly: boolean): Uint8Array {
  const headers: [string, string][] = [...PAGE_HEADERS, ["Connection", "close"]];
  if (!headOnly) return writeHttpResponse(200, "OK", headers, DEMO_PAGE);
  return writeHttpResponse(200, "OK", [...headers, ["Content-Length", String(PAGE_BYTES)]]);
}
