/**
 * The listener actor: owns a `Deno.Listener` and accepts ahead of `tcpAccept`/
 * `ipcAccept` calls, keeping at most `backlog` accepted connections nobody has
 * claimed yet, so that an accept with deadline 0 finds a connection that is there.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { SocketLayer } from "./handle.ts";
import type { PendingCall, Request } from "./request.ts";
import { transportError } from "./transport.ts";

/** Messages a listener actor understands. */
export type ListenerMsg =
  | { readonly kind: "accept"; readonly req: Request<Deno.Conn> }
  | { readonly kind: "accepted"; readonly conn: Deno.Conn }
  | { readonly kind: "acceptFailed"; readonly error: unknown };

/**
 * A listening socket layer.
 *
 * @example
 * ```ts
 * import { ListenerActor } from "./listener.ts";
 *
 * const listener = new ListenerActor("tcp listener", Deno.listen({ hostname: "127.0.0.1", port: 0 }), 16);
 * listener.close(new Error("done") as never);
 * ```
 */
export class ListenerActor extends SocketLayer<ListenerMsg> {
  readonly kind = "listener" as const;
  readonly #listener: Deno.Listener;
  readonly #backlog: number;
  #waiters: Request<Deno.Conn>[] = [];
  #unclaimed: Deno.Conn[] = [];
  #accepting = false;
  #failure: DillError | null = null;

  /**
   * @param name label for messages
   * @param listener the listener this actor now owns
   * @param backlog accepted connections kept while nobody waits to take them
   */
  constructor(name: string, listener: Deno.Listener, backlog: number) {
    super(name);
    this.#listener = listener;
    this.#backlog = Math.max(1, backlog);
    this.#pump();
  }

  /** The address the listener is bound to. */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  protected receive(msg: ListenerMsg): void {
    switch (msg.kind) {
      case "accept": {
        const conn = this.#unclaimed.shift();
        if (conn) return msg.req.resolve(conn);
        if (this.#failure) return msg.req.reject(this.#failure);
        this.#waiters.push(msg.req);
        if (!this.park(msg.req)) this.#waiters.pop();
        return this.#pump();
      }
      case "accepted": {
        this.#accepting = false;
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve(msg.conn);
        else this.#unclaimed.push(msg.conn);
        return this.#pump();
      }
      case "acceptFailed": {
        this.#accepting = false;
        const error = transportError(this.name, msg.error);
        // Running out of descriptors is passing: fail the caller, keep listening.
        if (error.code !== "EMFILE") this.#failure = error;
        this.#waiters.shift()?.reject(error);
        return this.#pump();
      }
    }
  }

  protected expired(req: PendingCall): void {
    const i = this.#waiters.indexOf(req as Request<Deno.Conn>);
    if (i >= 0) this.#waiters.splice(i, 1);
    req.timeOut();
  }

  protected terminate(reason: DillError): void {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const conn of this.#unclaimed.splice(0)) conn.close();
    for (const req of this.#waiters.splice(0)) req.reject(reason);
  }

  #pump(): void {
    if (this.#accepting || this.#failure || this.closedReason) return;
    if (this.#unclaimed.length >= this.#backlog) return;
    this.#accepting = true;
    this.#listener.accept().then(
      (conn) => this.closedReason ? conn.close() : this.send({ kind: "accepted", conn }),
      (error) => this.send({ kind: "acceptFailed", error }),
    );
  }
}
