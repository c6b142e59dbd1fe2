/**
 * A WHATWG `WebSocket` (Deno's built-in client, or the server socket of
 * `Deno.upgradeWebSocket`) seen as a test peer: received messages in an inbox, the
 * open and close events as promises.
 *
 * @module
 */

import { WS_BINARY, WS_TEXT, type WsMessage } from "../../mod.ts";
import { Inbox, within } from "./common.ts";

/** What a peer saw when the connection closed. */
export interface PeerClose {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** A WHATWG WebSocket as a test peer. */
export class DomPeer {
  readonly inbox: Inbox<WsMessage> = new Inbox();
  readonly opened: Promise<void>;
  readonly closed: Promise<PeerClose>;
  #isClosed = false;

  constructor(readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      ws.addEventListener("open", () => resolve());
      ws.addEventListener("error", () => reject(new Error("the peer's WebSocket failed to open")));
    });
    this.opened.catch(() => {}); // also reported through `closed`
    ws.addEventListener("message", (e: MessageEvent) => {
      this.inbox.push(
        typeof e.data === "string"
          ? { type: WS_TEXT, data: e.data }
          : { type: WS_BINARY, data: new Uint8Array(e.data as ArrayBuffer) },
      );
    });
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e: CloseEvent) => {
        this.#isClosed = true;
        this.inbox.end(new Error(`the peer's socket closed (${e.code})`));
        resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
      });
    });
  }

  /** Whether the close event has fired. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Sends a message: text for a string, binary for bytes. */
  send(m: WsMessage): void {
    this.ws.send(m.data);
  }

  /** Closes (if still open) and waits for the close event, boundedly. */
  async dispose(): Promise<void> {
    if (!this.#isClosed && this.ws.readyState !== WebSocket.CLOSING) {
      try {
        this.ws.close();
      } catch {
        // already closing
      }
    }
    await within(this.closed, "the peer's close event");
  }
}
