/**
 * The native TLS listener actor behind `tlsListen`/`tlsAccept` (tls_listen.ts): TLS directly over TCP, run
 * by Deno's own TLS (`Deno.listenTls`, rustls) instead of the TLS actor over a
 * bytestream. It accepts TCP connections through a plain {@link ListenerActor} (its
 * accept-error policy and its "accept only while a call waits" rule carry over), runs
 * every handshake concurrently, each bounded by a timeout, and hands out the
 * connections whose handshake completed, in that order. A client that stays silent,
 * sends garbage or hangs up costs one handshake slot until it fails or times out; it
 * never blocks the calls waiting for others, and never fails the listener.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { call } from "./actor.ts";
import { SocketLayer } from "./handle.ts";
import { ListenerActor, type ListenerMsg } from "./listener.ts";
import type { PendingCall, Request } from "./request.ts";
import { atDeadline, cancelDeadline, type DeadlineEntry } from "./deadline_scheduler.ts";
import { now, remaining } from "./time.ts";
import type { TlsSession } from "./tls_engine.ts";

/** A connection whose TLS handshake completed, with what it settled. */
export interface HandshakenConn {
  /** The connection, ready for data. */
  readonly conn: Deno.TlsConn;
  /** The protocol version (`null`: Deno does not tell) and the ALPN protocol. */
  readonly session: TlsSession;
}

/** Limits of a native TLS listener, checked by `tlsListen`. */
export interface TlsListenerLimits {
  /** Longest a handshake may take, in ms, counted from the TCP accept. */
  readonly handshakeTimeout: number;
  /** Handshakes running at once; further connections wait in the kernel's queue. */
  readonly maxHandshakes: number;
  /** Connections whose handshake completed kept for later `tlsAccept` calls. */
  readonly backlog: number;
  /** Accepted connections open at once (`Infinity`: no bound); see `ListenerActor`. */
  readonly maxConnections: number;
}

/** Messages a native TLS listener understands. */
export type TlsListenerMsg =
  | { readonly kind: "accept"; readonly req: Request<HandshakenConn> }
  | { readonly kind: "tcpAccepted"; readonly conn: Deno.TlsConn }
  | { readonly kind: "tcpAcceptFailed"; readonly error: unknown }
  | { readonly kind: "handshook"; readonly hs: Handshake; readonly alpn: string | null }
  | { readonly kind: "handshakeFailed"; readonly hs: Handshake }
  | { readonly kind: "handshakeExpired"; readonly hs: Handshake };

/** One handshake in progress. */
interface Handshake {
  readonly conn: Deno.TlsConn;
  timer: DeadlineEntry | null;
}

/**
 * A listening socket layer that hands out TLS connections whose handshake completed.
 * Its kind is `"listener"` like the TCP one's: `hclose`, `tcpClose` and `tcpLocalAddr`
 * work on it; `tcpAccept` refuses it (see `acceptConn`).
 *
 * @example
 * ```ts
 * import { TlsListenerActor } from "./tls_listener.ts";
 * import { DillError } from "../protocol/errors.ts";
 *
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const listener = Deno.listenTls({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   cert: Deno.readTextFileSync(new URL("cert.pem", dir)),
 *   key: Deno.readTextFileSync(new URL("key.pem", dir)),
 * });
 * const actor = new TlsListenerActor("tls listener", listener, {
 *   handshakeTimeout: 10_000,
 *   maxHandshakes: 64,
 *   backlog: 128,
 *   maxConnections: Infinity,
 * });
 * actor.close(new DillError("ECANCELED", "done"));
 * ```
 */
export class TlsListenerActor extends SocketLayer<TlsListenerMsg> {
  readonly kind = "listener" as const;
  readonly #tcp: ListenerActor;
  readonly #limits: TlsListenerLimits;
  #waiters: Request<HandshakenConn>[] = [];
  /** Handshakes completed, not yet taken by a call. */
  #ready: HandshakenConn[] = [];
  readonly #handshakes = new Set<Handshake>();
  /**
   * Handshakes past `handshakeTimeout`, no longer holding a slot, whose connection is
   * closed when the handshake ends. Deno 2.9.6 closes a TLS connection whose handshake
   * has not ended only once it does (its close waits for the handshake in the
   * background), so closing one from a client that stays silent would keep its socket
   * open, out of sight of `maxConnections`, for as long as that client stays.
   */
  readonly #abandoned = new Set<Handshake>();
  /** A TCP accept was asked of the listener beneath and has not answered yet. */
  #accepting = false;
  #failure: DillError | null = null;

  /**
   * @param name label for messages
   * @param listener the TLS listener this actor now owns
   * @param limits handshake timeout, concurrent handshakes, completed connections kept
   */
  constructor(name: string, listener: Deno.TlsListener, limits: TlsListenerLimits) {
    super(name);
    this.#limits = limits;
    // Deno's TLS accept returns right after the TCP accept; the handshake runs later.
    this.#tcp = new ListenerActor(name, listener, limits.backlog, limits.maxConnections);
    this.adopt(this.#tcp);
  }

  /** The address the listener is bound to. */
  get addr(): Deno.Addr {
    return this.#tcp.addr;
  }

  protected receive(msg: TlsListenerMsg): void {
    switch (msg.kind) {
      case "accept":
        return this.#accept(msg.req);
      case "tcpAccepted":
        this.#accepting = false;
        this.#startHandshake(msg.conn);
        return this.#pump();
      case "tcpAcceptFailed":
        // The listener beneath skips per-connection errors itself: this one is fatal.
        this.#accepting = false;
        this.#failure = msg.error instanceof DillError
          ? msg.error
          : new DillError("ECONNRESET", `${this.name}: accept failed (${msg.error})`);
        for (const req of this.#waiters.splice(0)) req.reject(this.#failure);
        return;
      case "handshook":
        if (this.#abandoned.delete(msg.hs)) return closeConn(msg.hs.conn); // too late
        if (!this.#finish(msg.hs)) return;
        this.#deliver({
          conn: msg.hs.conn,
          session: { version: null, alpnProtocol: msg.alpn },
        });
        return this.#pump();
      case "handshakeFailed":
        // Garbage, a reset, a rejected certificate: that client is dropped.
        if (this.#abandoned.delete(msg.hs) || this.#finish(msg.hs)) closeConn(msg.hs.conn);
        return this.#pump();
      case "handshakeExpired":
        // Silence: the slot goes to the next client; the socket closes once the handshake
        // ends (the client sends anything or leaves), see #abandoned.
        if (this.#finish(msg.hs)) this.#abandoned.add(msg.hs);
        return this.#pump();
    }
  }

  protected expired(req: PendingCall): void {
    const i = this.#waiters.indexOf(req as Request<HandshakenConn>);
    if (i >= 0) this.#waiters.splice(i, 1);
    req.timeOut();
  }

  protected terminate(reason: DillError): void {
    // The listener beneath goes first: closing the connections below frees its slots,
    // which must not start one more accept.
    this.#tcp.close(reason);
    for (const hs of this.#handshakes) {
      if (hs.timer) cancelDeadline(hs.timer);
      closeConn(hs.conn);
    }
    this.#handshakes.clear();
    // Deno keeps these sockets until their clients act; nothing here can end them sooner.
    for (const hs of this.#abandoned) closeConn(hs.conn);
    this.#abandoned.clear();
    for (const { conn } of this.#ready.splice(0)) closeConn(conn);
    for (const req of this.#waiters.splice(0)) req.reject(reason);
  }

  #accept(req: Request<HandshakenConn>): void {
    const ready = this.#ready.shift();
    if (ready) return req.resolve(ready);
    if (this.#failure) return req.reject(this.#failure);
    // Deadline 0: a handshake is a round trip with the client, never done without waiting.
    if (remaining(req.deadline) === 0) return req.timeOut();
    this.#waiters.push(req);
    if (!this.park(req)) {
      this.#waiters.pop();
      return;
    }
    this.#pump();
  }

  /** Accepts one more TCP connection while a call waits and a handshake slot is free. */
  #pump(): void {
    if (this.#accepting || this.#failure || this.closedReason) return;
    if (this.#waiters.length === 0) return;
    if (this.#handshakes.size >= this.#limits.maxHandshakes) return;
    this.#accepting = true;
    call<Deno.Conn, ListenerMsg>(this.#tcp, "tlsAccept", -1, (req) => ({ kind: "accept", req }))
      .then(
        (conn) =>
          this.closedReason
            ? closeConn(conn)
            : this.send({ kind: "tcpAccepted", conn: conn as Deno.TlsConn }),
        (error) => this.send({ kind: "tcpAcceptFailed", error }),
      );
  }

  #startHandshake(conn: Deno.TlsConn): void {
    const hs: Handshake = { conn, timer: null };
    this.#handshakes.add(hs);
    hs.timer = atDeadline(
      now() + this.#limits.handshakeTimeout,
      () => this.send({ kind: "handshakeExpired", hs }),
    );
    conn.handshake().then(
      (info) => this.send({ kind: "handshook", hs, alpn: info.alpnProtocol ?? null }),
      () => this.send({ kind: "handshakeFailed", hs }),
    );
  }

  /** Ends the bookkeeping of a handshake; `false` if it had already ended. */
  #finish(hs: Handshake): boolean {
    if (!this.#handshakes.delete(hs)) return false;
    if (hs.timer) cancelDeadline(hs.timer);
    hs.timer = null;
    return true;
  }

  #deliver(ready: HandshakenConn): void {
    const waiter = this.#waiters.shift();
    if (waiter) return waiter.resolve(ready);
    if (this.#ready.length < this.#limits.backlog) this.#ready.push(ready);
    else closeConn(ready.conn);
  }
}

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
