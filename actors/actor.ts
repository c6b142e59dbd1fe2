/**
 * The actor runtime. An actor owns its state and a FIFO mailbox and handles one
 * message at a time with a synchronous handler; asynchronous I/O it starts reports
 * back as a new message. Actors own the actors beneath them in a socket stack, so
 * closing the top one closes the whole stack.
 *
 * Delivery is cheap by design: a message to an idle actor is handled at once on the
 * sender's stack (no timer, no task); messages sent while the actor is busy queue
 * behind the current one.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { type PendingCall, Request } from "./request.ts";
import type { Deadline } from "./time.ts";

/** Any mailbox message: a plain object, optionally carrying the request it answers. */
export interface Message {
  /** What the message asks for. */
  readonly kind: string;
  /** The caller's pending request, when the message is a call. */
  readonly req?: PendingCall;
}

/**
 * Default bound on calls queued behind the message being handled. It bounds what callers
 * can queue; the reports an actor's own I/O and the layers around it post (data read,
 * writes done, a TLS engine's records) are never refused: each of them carries data or a
 * state change that must not be lost, and their number is bounded by the flow control
 * that produces them (read-ahead, write queues), not by this.
 */
export const DEFAULT_MAILBOX_LIMIT = 4096;

/** Posted to an actor when a request it parked reaches its deadline. */
class Expiry {
  constructor(readonly req: PendingCall) {}
}

/**
 * Base class of every actor. Subclasses implement {@link Actor.receive},
 * {@link Actor.expired} and {@link Actor.terminate}.
 *
 * @example
 * ```ts
 * import { Actor, call } from "./actor.ts";
 * import type { Request } from "./request.ts";
 *
 * type Add = { kind: "add"; n: number; req: Request<number> };
 * class Counter extends Actor<Add> {
 *   total = 0;
 *   protected receive(m: Add) { m.req.resolve(this.total += m.n); }
 *   protected expired() {}
 *   protected terminate() {}
 * }
 * const counter = new Counter("counter");
 * console.log(await call<number, Add>(counter, "add", -1, (req) => ({ kind: "add", n: 2, req })));
 * ```
 */
export abstract class Actor<M extends Message> {
  /** Messages queued while busy; the shared {@link NO_MAIL} until the first one (idle actors hold no array). */
  #mailbox: (M | Expiry | ChildExit)[] = NO_MAIL;
  /** Index of the next queued message while draining. */
  #next = 0;
  #busy = false;
  #closed: DillError | null = null;
  #owner: Actor<Message> | null = null;
  /** The actors this one owns; made on the first adoption (most actors own none or one). */
  #owned: Actor<Message> | Set<Actor<Message>> | null = null;

  /**
   * @param name shown in error messages
   * @param mailboxLimit messages that may queue while the actor is busy; a call (a message
   *   with a request) beyond fails with `EBUSY`, a report without one still queues
   */
  constructor(readonly name: string, readonly mailboxLimit = DEFAULT_MAILBOX_LIMIT) {}

  /** Handles one message. Never awaits: start I/O and let it report back by message. */
  protected abstract receive(msg: M): void;

  /** A request this actor parked reached its deadline: forget it and fail it. */
  protected abstract expired(req: PendingCall): void;

  /** The actor is closing: fail every parked request with `reason` and release I/O. */
  protected abstract terminate(reason: DillError): void;

  /** Why the actor closed, or `null` while it runs. */
  get closedReason(): DillError | null {
    return this.#closed;
  }

  /**
   * Delivers a message (fire-and-forget). Requests sent to a closed actor fail; a call
   * that finds {@link Actor.mailboxLimit} messages queued fails with `EBUSY`. A message
   * without a request (a report) is never dropped while the actor runs: it may carry data.
   */
  send(msg: M): void {
    if (this.#closed) {
      msg.req?.reject(this.#closed);
      return;
    }
    if (this.#busy) {
      if (msg.req !== undefined && this.#mailbox.length - this.#next >= this.mailboxLimit) {
        msg.req.reject(
          new DillError("EBUSY", `${this.name}: mailbox full (${this.mailboxLimit} messages)`),
        );
        return;
      }
      this.#enqueue(msg);
      return;
    }
    this.#busy = true;
    this.#dispatch(msg);
    if (this.#mailbox.length > 0) this.#drain();
    this.#busy = false;
  }

  #enqueue(msg: M | Expiry | ChildExit): void {
    if (this.#mailbox === NO_MAIL) this.#mailbox = [];
    this.#mailbox.push(msg);
  }

  /**
   * Parks `req` until the actor answers it or its deadline passes (then
   * {@link Actor.expired} runs, as a message). Returns `false`, having failed the
   * request with `ETIMEDOUT`, when the deadline allows no waiting.
   */
  protected park(req: PendingCall): boolean {
    if (req.park((r) => this.#post(new Expiry(r)))) return true;
    req.timeOut();
    return false;
  }

  /**
   * Makes an abort of `req`'s signal reach {@link Actor.expired} (as a message), for a
   * request whose deadline the actor watches on its own. Returns `false` when the
   * signal has already aborted.
   */
  protected watchAbort(req: PendingCall): boolean {
    return req.listenForAbort((r) => this.#post(new Expiry(r)));
  }

  /**
   * Removes and returns the messages queued behind the current one, for an actor that
   * hands its work to another (so that nothing in flight is lost).
   */
  protected takeQueued(): M[] {
    const rest = this.#mailbox.splice(this.#next);
    return rest.filter((m): m is M => !(m instanceof Expiry) && !(m instanceof ChildExit));
  }

  /** Makes `child` part of this actor's stack: it closes when this actor closes. */
  protected adopt(child: Actor<Message>): void {
    if (child.#owner) child.#owner.#disown(child);
    child.#owner = this as Actor<Message>;
    const owned = this.#owned;
    if (owned === null) this.#owned = child;
    else if (owned instanceof Set) owned.add(child);
    else if (owned !== child) this.#owned = new Set([owned, child]);
  }

  /** Gives `child` back (on detach): it no longer closes with this actor. */
  protected release(child: Actor<Message>): void {
    if (child.#owner !== (this as Actor<Message>)) return;
    child.#owner = null;
    this.#disown(child);
  }

  #disown(child: Actor<Message>): void {
    const owned = this.#owned;
    if (owned === child) this.#owned = null;
    else if (owned instanceof Set) owned.delete(child);
  }

  /**
   * A child closed on its own (not because this actor closed it). By default the
   * failure spreads upwards, like a link between Erlang processes.
   */
  protected childClosed(_child: Actor<Message>, reason: DillError): void {
    this.close(reason);
  }

  /**
   * Closes this actor and everything it owns, at once. Queued and parked requests
   * fail with `reason`; later messages are dropped (requests fail with `reason`).
   */
  close(reason: DillError): void {
    if (this.#closed) return;
    this.#closed = reason;
    // Messages are queued only while busy, and the drain loop fails them once it sees
    // #closed: when not busy, the mailbox is empty.
    try {
      this.terminate(reason);
    } finally {
      const owned = this.#owned;
      this.#owned = null;
      if (owned) {
        for (const child of owned instanceof Set ? owned : [owned]) {
          child.#owner = null;
          child.close(reason);
        }
      }
      const owner = this.#owner;
      if (owner) {
        this.#owner = null;
        owner.#disown(this as Actor<Message>);
        if (!owner.#closed) owner.#post(new ChildExit(this as Actor<Message>, reason));
      }
    }
  }

  #post(msg: Expiry | ChildExit): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#enqueue(msg);
      return;
    }
    this.#busy = true;
    this.#dispatch(msg);
    if (this.#mailbox.length > 0) this.#drain();
    this.#busy = false;
  }

  #drain(): void {
    const box = this.#mailbox;
    while (this.#next < box.length) {
      const msg = box[this.#next++];
      if (this.#closed) failQueued(msg, this.#closed);
      else this.#dispatch(msg);
    }
    box.length = 0;
    this.#next = 0;
  }

  #dispatch(msg: M | Expiry | ChildExit): void {
    try {
      if (msg instanceof Expiry) this.expired(msg.req);
      else if (msg instanceof ChildExit) this.childClosed(msg.child, msg.reason);
      else this.receive(msg);
    } catch (e) {
      // The message being handled fails too: its caller must not wait forever.
      const reason = crashReason(this.name, e);
      this.close(reason);
      failQueued(msg, reason);
    }
  }
}

/** The empty mailbox every actor starts with; never written to (see `#enqueue`). */
// deno-lint-ignore no-explicit-any
const NO_MAIL: any[] = [];

/** Posted to an owner when a child closed on its own. */
class ChildExit {
  constructor(readonly child: Actor<Message>, readonly reason: DillError) {}
}

function failQueued(msg: Message | Expiry | ChildExit, reason: DillError): void {
  if (!(msg instanceof Expiry) && !(msg instanceof ChildExit)) msg.req?.reject(reason);
}

function crashReason(name: string, e: unknown): DillError {
  if (e instanceof DillError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new DillError("ECONNRESET", `${name} failed unexpectedly: ${detail}`, { cause: e });
}

/**
 * Sends a call to `actor` and returns the promise of its answer. `build` makes the
 * message around the new request. The deadline applies only if the actor has to
 * park the request; a call answered at once creates no timer.
 *
 * @example
 * ```ts
 * import { Actor, call } from "./actor.ts";
 * import type { Request } from "./request.ts";
 *
 * type Ping = { kind: "ping"; req: Request<string> };
 * class Echo extends Actor<Ping> {
 *   protected receive(m: Ping) { m.req.resolve("pong"); }
 *   protected expired() {}
 *   protected terminate() {}
 * }
 * console.log(await call<string, Ping>(new Echo("echo"), "ping", -1, (req) => ({ kind: "ping", req })));
 * ```
 */
export function call<T, M extends Message>(
  actor: Actor<M>,
  op: string,
  deadline: Deadline,
  build: (req: Request<T>) => M,
): Promise<T> {
  const req = new Request<T>(op, deadline);
  actor.send(build(req));
  return req.promise;
}

/**
 * Sends a message and does not wait for any answer.
 *
 * @example
 * ```ts
 * import { Actor, cast } from "./actor.ts";
 *
 * type Log = { kind: "log"; line: string };
 * class Logger extends Actor<Log> {
 *   protected receive(m: Log) { console.log(m.line); }
 *   protected expired() {}
 *   protected terminate() {}
 * }
 * cast(new Logger("log"), { kind: "log", line: "hello" });
 * ```
 */
export function cast<M extends Message>(actor: Actor<M>, msg: M): void {
  actor.send(msg);
}
