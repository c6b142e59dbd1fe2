/**
 * The listener actor: owns a `Deno.Listener` and accepts on behalf of `tcpAccept`/
 * `ipcAccept` calls.
 *
 * It accepts only while a call waits. A pending `Deno.Listener.accept()` keeps the
 * OS socket open until the event loop's next turn even after `close()` (the op
 * holds the resource, and Deno cannot cancel it sooner), so a listener that accepted
 * ahead would still take connections, to reset them, after `hclose`. With no accept
 * in flight, `hclose` closes the socket at once and the port refuses connections; an
 * accept in flight (a call is waiting, or one gave up while its accept ran) still
 * holds the socket until the next turn.
 *
 * Accept errors follow the policy in `accept_errors.ts`: an error that concerns one
 * connection (reset or aborted before it was accepted) is skipped without failing
 * anyone; running out of descriptors or memory backs off and retries; only a
 * broken listening socket fails the calls.
 *
 * @module
 */

import type { DillError } from "../protocol/errors.ts";
import { classifyAcceptError } from "./accept_errors.ts";
import { SocketLayer } from "./handle.ts";
import type { PendingCall, Request } from "./request.ts";
import { remaining } from "./time.ts";
import { transportError } from "./transport.ts";

/** First wait before accepting again after running out of descriptors or memory (ms). */
export const ACCEPT_BACKOFF_MIN_MS = 5;
/** Longest wait between accept attempts while descriptors or memory stay exhausted (ms). */
export const ACCEPT_BACKOFF_MAX_MS = 1000;

/**
 * Microtask turns a call with deadline `0` waits for an accept to finish. Deno runs
 * an accept at once and, when a connection is already queued, delivers it a few
 * microtasks later; the call never waits for a turn of the event loop.
 */
const PROBE_MICROTASKS = 8;

/** Messages a listener actor understands. */
export type ListenerMsg =
  | { readonly kind: "accept"; readonly req: Request<Deno.Conn> }
  | { readonly kind: "accepted"; readonly conn: Deno.Conn }
  | { readonly kind: "acceptFailed"; readonly error: unknown }
  | { readonly kind: "retry" }
  | { readonly kind: "probesDue" }
  | { readonly kind: "released" };

/**
 * A listening socket layer.
 *
 * Accept-error policy (a difference from libdill, whose `tcp_accept` returns every
 * error to its caller): errors that concern one connection (`ECONNABORTED`,
 * `ECONNRESET`, `ENOTCONN`, `EPROTO`, ...) are skipped and the waiting call keeps
 * waiting for the next connection, because one client that resets must not stop a
 * server. `EMFILE`, `ENFILE`, `ENOMEM` and `ENOBUFS` leave the connection in the
 * kernel's queue: the listener waits {@link ACCEPT_BACKOFF_MIN_MS}, doubling up to
 * {@link ACCEPT_BACKOFF_MAX_MS}, and tries again (the call keeps waiting until its
 * deadline). Any other error means the listening socket is broken: every waiting and
 * later call fails with it.
 *
 * With `maxConnections`, the listener stops accepting while that many of the
 * connections it accepted are still open (not yet `close()`d): further connections wait
 * in the kernel's queue and calls keep waiting, so that clients alone cannot take every
 * descriptor of the process.
 *
 * A call with deadline `0` (or a past deadline) takes a connection the kernel has
 * already established (Deno's accept completes at once then), and otherwise fails
 * with `ETIMEDOUT` without waiting for a turn of the event loop.
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
  /** Connections accepted after the call that asked for them gave up. */
  #unclaimed: Deno.Conn[] = [];
  #accepting = false;
  #failure: DillError | null = null;
  #backoffMs = 0;
  #backoffTimer: ReturnType<typeof setTimeout> | undefined;
  #probing = false;
  readonly #maxConnections: number;
  /** Connections accepted and not yet closed (those kept unclaimed included). */
  #openConnections = 0;

  /**
   * @param name label for messages
   * @param listener the listener this actor now owns
   * @param backlog connections kept that were accepted for a call whose deadline passed
   * @param maxConnections accepted connections open at once; at that many, accepting
   * pauses (`Infinity`: no bound)
   */
  constructor(
    name: string,
    listener: Deno.Listener,
    backlog: number,
    maxConnections: number = Infinity,
  ) {
    super(name);
    this.#listener = listener;
    this.#backlog = backlog; // checked (a whole number >= 1) by every caller
    this.#maxConnections = maxConnections; // checked likewise, or Infinity
  }

  /** The address the listener is bound to. */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  protected receive(msg: ListenerMsg): void {
    switch (msg.kind) {
      case "accept":
        return this.#accept(msg.req);
      case "accepted": {
        this.#accepting = false;
        this.#backoffMs = 0;
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve(msg.conn);
        else if (this.#unclaimed.length < this.#backlog) this.#unclaimed.push(msg.conn);
        else msg.conn.close();
        return this.#pump();
      }
      case "released":
        this.#openConnections--;
        return this.#pump();
      case "acceptFailed":
        this.#accepting = false;
        return this.#failed(msg.error);
      case "retry":
        this.#backoffTimer = undefined;
        return this.#pump();
      case "probesDue": {
        this.#probing = false;
        const probes = this.#waiters.filter((req) => remaining(req.deadline) === 0);
        this.#waiters = this.#waiters.filter((req) => !probes.includes(req));
        for (const req of probes) req.timeOut();
        return;
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
    clearTimeout(this.#backoffTimer);
    for (const conn of this.#unclaimed.splice(0)) conn.close();
    for (const req of this.#waiters.splice(0)) req.reject(reason);
  }

  #accept(req: Request<Deno.Conn>): void {
    const conn = this.#unclaimed.shift();
    if (conn) return req.resolve(conn);
    if (this.#failure) return req.reject(this.#failure);
    this.#waiters.push(req);
    if (remaining(req.deadline) === 0) {
      if (!this.#probing) this.#probeSoon();
    } else if (!this.park(req)) {
      this.#waiters.pop();
      return;
    }
    this.#pump();
  }

  #failed(error: unknown): void {
    switch (classifyAcceptError(error)) {
      case "connection":
        // That client is gone; the listener is fine. Accept the next one.
        return this.#pump();
      case "exhausted":
        this.#backoffMs = Math.min(
          Math.max(this.#backoffMs * 2, ACCEPT_BACKOFF_MIN_MS),
          ACCEPT_BACKOFF_MAX_MS,
        );
        this.#backoffTimer = setTimeout(() => this.send({ kind: "retry" }), this.#backoffMs);
        return;
      case "closed":
      case "fatal":
        this.#failure = transportError(this.name, error);
        for (const req of this.#waiters.splice(0)) req.reject(this.#failure);
        return;
    }
  }

  /** Gives calls with deadline `0` a few microtasks for a queued connection to arrive. */
  #probeSoon(): void {
    this.#probing = true;
    let turns = PROBE_MICROTASKS;
    const tick = () => --turns > 0 ? queueMicrotask(tick) : this.send({ kind: "probesDue" });
    queueMicrotask(tick);
  }

  /**
   * Starts one accept if a call waits for it, none is in flight and fewer than
   * `maxConnections` accepted connections are open.
   */
  #pump(): void {
    if (this.#accepting || this.#failure || this.closedReason) return;
    if (this.#backoffTimer !== undefined || this.#waiters.length === 0) return;
    if (this.#openConnections >= this.#maxConnections) return; // a "released" pumps again
    this.#accepting = true;
    this.#listener.accept().then(
      (conn) => {
        if (this.closedReason) return conn.close();
        if (this.#maxConnections !== Infinity) this.#countUntilClosed(conn);
        this.send({ kind: "accepted", conn });
      },
      (error) => this.send({ kind: "acceptFailed", error }),
    );
  }

  /**
   * Counts `conn` as open until its first `close()`, whoever makes it (the stream that
   * owns it, a TLS listener dropping a failed handshake, this listener). The rule that
   * keeps the count true: whatever holds an accepted connection releases it with
   * `close()`, never with `Symbol.dispose` or by closing its `readable`/`writable`, which
   * would leave it counted for good.
   */
  #countUntilClosed(conn: Deno.Conn): void {
    this.#openConnections++;
    const close = conn.close.bind(conn);
    let released = false;
    conn.close = () => {
      try {
        close();
      } finally {
        if (!released) {
          released = true;
          this.send({ kind: "released" });
        }
      }
    };
  }
}
