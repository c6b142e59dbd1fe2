/**
 * Test helpers for `Deno.serve` + `wsUpgrade`: a server on a free loopback port, and a
 * real `WebSocket` client (Deno's) with a message queue and its close event.
 *
 * @module
 */

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
