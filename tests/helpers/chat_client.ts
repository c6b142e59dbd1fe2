/**
 * A chat client for the demo's tests: Deno's own WebSocket in a room, keeping every event
 * it received in order, with bounded waits.
 *
 * @module
 */

import { within } from "./transports.ts";

/** A chat event as the demo sends it. */
// deno-lint-ignore no-explicit-any
export type ChatEvent = Record<string, any>;

/** Deno's WebSocket client in a chat room. */
export class ChatClient {
  readonly events: ChatEvent[] = [];
  readonly closed: Promise<CloseEvent>;
  readonly #ws: WebSocket;
  readonly #waiters = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      this.events.push(JSON.parse(e.data));
      this.#wake();
    };
    this.closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        resolve(e);
        this.#wake();
      };
    });
  }

  /** Joins the room and resolves once the welcome arrived (a failed join closes the socket). */
  static async join(port: number, room?: string, ms = 3000): Promise<ChatClient> {
    const query = room === undefined ? "" : `?room=${room}`;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`);
    ws.onerror = () => {}; // the close event that follows says it all
    const client = new ChatClient(ws);
    try {
      await client.next((e) => e.kind === "welcome", ms);
    } catch (e) {
      ws.close();
      await client.closed;
      throw e;
    }
    return client;
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** The name the server gave. */
  get name(): string {
    return this.events[0].name;
  }

  /** Whether the socket is closed. */
  get isClosed(): boolean {
    return this.#ws.readyState === WebSocket.CLOSED;
  }

  /** The first event so far (or to come) that matches. */
  async next(match: (e: ChatEvent) => boolean, ms = 3000): Promise<ChatEvent> {
    const find = async () => {
      for (;;) {
        const found = this.events.find(match);
        if (found) return found;
        if (this.isClosed) throw new Error("closed");
        await new Promise<void>((resolve) => {
          const wake = () => {
            this.#waiters.delete(wake);
            resolve();
          };
          this.#waiters.add(wake);
        });
      }
    };
    return await within(find(), ms, `no matching event; got ${JSON.stringify(this.events)}`);
  }

  /** How many events so far match. */
  count(match: (e: ChatEvent) => boolean): number {
    return this.events.filter(match).length;
  }

  send(text: string): void {
    this.#ws.send(text);
  }

  close(code?: number): void {
    this.#ws.close(code);
  }

  /** Closes (1000) and waits for the close to finish. */
  async leave(): Promise<void> {
    if (!this.isClosed) this.#ws.close(1000);
    await within(this.closed, 3000, "close");
  }
}
