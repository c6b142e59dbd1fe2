/**
 * The demo's HTTP side under `Deno.serve`, the path that also runs on Deno Deploy: Deno
 * serves the HTTP, and `wsUpgrade` turns the `/ws` request into a message-socket handle on
 * which the very same {@link ChatRooms} code runs as on the raw TCP server (`demo_tcp.ts`).
 * Only the way a socket starts and ends differs.
 *
 * @module
 */

import { WS_TEXT, wsUpgrade, WsUpgradeError } from "../mod.ts";
import {
  BAD_ROOM,
  type ChatRooms,
  DEFAULT_ROOM,
  MAX_CHAT_MESSAGE,
  PING_INTERVAL_MS,
  ROOM_NAME,
} from "./chat_rooms.ts";
import { DEMO_PAGE, PAGE_HEADERS, sameOrigin } from "./demo_page.ts";
import { closeQuietly, settlesWithin } from "./settle.ts";

const STOP_TIMEOUT_MS = 3_000; // members asked to leave get this long before they are cut off

/** Where {@link ServeChatServer} listens. */
export interface ServeListen {
  hostname: string;
  port: number;
  /** Share the port with other processes (`SO_REUSEPORT`). */
  reusePort: boolean;
}

/**
 * Serves the page and the chat with `Deno.serve` until {@link ServeChatServer.stop}.
 *
 * @example
 * ```ts ignore
 * const server = new ServeChatServer(new ChatRooms(), console.log, {
 *   hostname: "127.0.0.1",
 *   port: 8080,
 *   reusePort: false,
 * });
 * await server.stop();
 * ```
 */
export class ServeChatServer {
  readonly #rooms: ChatRooms;
  readonly #log: (line: string) => void;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #sessions = new Map<Promise<void>, () => void>();
  #closing = false;
  #stopped: Promise<void> | null = null;

  constructor(rooms: ChatRooms, log: (line: string) => void, listen: ServeListen) {
    this.#rooms = rooms;
    this.#log = log;
    this.#server = Deno.serve({
      hostname: listen.hostname,
      port: listen.port,
      ...(listen.reusePort ? { reusePort: true } : {}),
      onListen: () => {},
    }, (request, info) => this.#handle(request, info));
  }

  /** The port it listens on. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** Asks every chat member to leave (1001), waits for them, then stops the HTTP server. */
  stop(): Promise<void> {
    return this.#stopped ??= this.#shutdown();
  }

  #handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    const url = new URL(request.url);
    const peer = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
    const what = `${request.method} ${url.pathname}${url.search}`;
    let response: Response;
    if (url.pathname === "/ws") {
      response = this.#upgrade(request, url, peer);
    } else if (url.pathname !== "/") {
      response = plain(404, "not found");
    } else if (request.method !== "GET" && request.method !== "HEAD") {
      response = plain(405, "use GET or HEAD", { Allow: "GET, HEAD" });
    } else {
      response = new Response(DEMO_PAGE, { headers: PAGE_HEADERS }); // Deno sends no body for HEAD
    }
    if (response.status !== 101) this.#log(`${peer} ${what} -> ${response.status}`);
    return response;
  }

  #upgrade(request: Request, url: URL, peer: string): Response {
    const room = url.searchParams.get("room") ?? DEFAULT_ROOM;
    if (!ROOM_NAME.test(room)) return plain(400, BAD_ROOM);
    if (this.#closing) return plain(503, "shutting down");
    let upgraded;
    try {
      upgraded = wsUpgrade(request, WS_TEXT, {
        maxMessageSize: MAX_CHAT_MESSAGE,
        pingInterval: PING_INTERVAL_MS,
        checkOrigin: sameOrigin,
      });
    } catch (e) {
      if (!(e instanceof WsUpgradeError)) throw e;
      this.#log(`${peer} upgrade refused (${e.message})`);
      return e.response;
    }
    const { handle } = upgraded;
    const cutOff = () => closeQuietly(handle);
    const session = this.#rooms.serve({
      handle,
      room,
      peer,
      // Deno's WebSocket has already answered the client's close frame (or had ours answered).
      close: () => Promise.resolve(cutOff()),
    }).catch((e) => this.#log(`${peer} failed: ${e instanceof Error ? e.message : e}`))
      .finally(() => this.#sessions.delete(session));
    this.#sessions.set(session, cutOff);
    return upgraded.response;
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#log("shutting down");
    this.#rooms.goAway();
    const allDone = Promise.allSettled([...this.#sessions.keys()]);
    if (!await settlesWithin(allDone, STOP_TIMEOUT_MS)) {
      for (const cutOff of this.#sessions.values()) cutOff();
      await allDone;
    }
    await this.#server.shutdown();
  }
}

function plain(status: number, text: string, headers: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
  });
}
