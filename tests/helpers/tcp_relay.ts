/**
 * A TCP relay on 127.0.0.1 in front of a server (the NATS broker in the hub tests): it can
 * turn connections away (accept, then close), so that one client reconnects later than
 * another, and it can hold what clients send for a while, so that one client's messages
 * reach the server later than another's.
 *
 * @module
 */

import { delay } from "./transports.ts";

/** Connections a relay accepts in all (a bound on any loop a test sets going). */
const MAX_CONNECTIONS = 100;

/** A relay to `127.0.0.1:upstream`; {@link TcpRelay.url} is where clients connect. */
export class TcpRelay {
  readonly #listener: Deno.Listener;
  readonly #relays = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  /** New connections are accepted and closed at once while this is set. */
  blocked = false;
  /** Each chunk a client sends is held this long before it goes on (in order). */
  clientDelayMs = 0;

  constructor(readonly upstream: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The relay's address as a NATS URL. */
  get url(): string {
    return `nats://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  async #accept(): Promise<void> {
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      const relay = this.#relay(conn);
      this.#relays.add(relay);
      relay.finally(() => this.#relays.delete(relay));
    }
  }

  async #relay(conn: Deno.Conn): Promise<void> {
    let up: Deno.Conn | null = null;
    try {
      if (this.blocked) return;
      up = await Deno.connect({ hostname: "127.0.0.1", port: this.upstream });
      const fromClient = conn.readable.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform: async (chunk, out) => {
            if (this.clientDelayMs > 0) await delay(this.clientDelayMs);
            out.enqueue(chunk);
          },
        }),
      );
      const pipes = [fromClient.pipeTo(up.writable), up.readable.pipeTo(conn.writable)];
      await Promise.race(pipes).catch(() => {});
      close(conn);
      close(up);
      await Promise.allSettled(pipes);
    } catch {
      // The server is down: the client sees the connection close.
    } finally {
      close(conn);
      if (up) close(up);
    }
  }

  /** Stops accepting and waits for every relayed connection to end. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    await Promise.allSettled([...this.#relays]);
  }
}

function close(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // Closed already.
  }
}
