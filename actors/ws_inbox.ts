/**
 * Received messages of one WebSocket connection on their way to the application:
 * the queue of complete messages nobody asked for yet, the receive calls waiting for
 * one, and the delivery of a message into a call (its type checked, copied into the
 * caller's buffers when it gave some). A plain object owned by the WS actor.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import type { ReceiverEvent } from "../protocol/receiver.ts";
import { Fifo } from "./fifo.ts";
import { brokenAfter, type PendingCall, type Request } from "./request.ts";
import { WS_BINARY, WS_TEXT, type WsType } from "./ws_options.ts";
import { tooManyWaiting } from "./stream_options.ts";

/** One received message as handed to the API layer. */
export interface WsReceived {
  /** {@link WS_TEXT} or {@link WS_BINARY}. */
  readonly type: WsType;
  /** Payload size in bytes. */
  readonly size: number;
  /** The payload, unless it was copied into the caller's buffers. */
  readonly data: Uint8Array | null;
  /** A text message, decoded (the receiver decodes every text message it validates). */
  readonly text?: string;
}

/** A receive call, as the WS actor's mailbox carries it. */
export interface WsRecvCall {
  readonly kind: "recv";
  /** `mrecv` family: the message must have the socket's type. */
  readonly typed: boolean;
  /** Caller buffers to copy into, or `null` to hand over the payload. */
  readonly into: Uint8Array[] | null;
  /**
   * With `into: null` (`wsRecv`): resolve with `{ type, data }`, text as a string (the
   * request then carries that shape, not a {@link WsReceived}).
   */
  readonly asMessage?: boolean;
  readonly req: Request<WsReceived>;
}

/** A complete message from the receiver. */
export type ReceivedMessage = ReceiverEvent & { type: "message" };

/**
 * The received-message queue and the waiting receive calls of one connection.
 *
 * @example
 * ```ts
 * import { Inbox } from "./ws_inbox.ts";
 * import { WS_BINARY } from "./ws_options.ts";
 *
 * const inbox = new Inbox(WS_BINARY, 1024);
 * inbox.push({ type: "message", binary: true, data: new Uint8Array(3) });
 * console.log(inbox.length, inbox.bytes); // 1 3
 * ```
 */
export class Inbox {
  readonly #socketType: WsType;
  readonly #maxWaiting: number;
  /** Messages nobody asked for yet; made when the first one has to wait. */
  #queue: Fifo<ReceivedMessage> | null = null;
  #bytes = 0;
  /**
   * The oldest waiting receive call, in a field of its own: an idle connection's one
   * waiting call then costs no array (an array holding one call took about 180 bytes).
   */
  #firstWaiter: WsRecvCall | null = null;
  /** The calls waiting behind {@link Inbox.#firstWaiter}; made when a second one waits. */
  #moreWaiters: WsRecvCall[] | null = null;
  /** Set once a receive failed: later receives fail the same way. */
  #failure: DillError | null = null;
  /** Why input ended (EPIPE after the peer's close frame, else the failure); reported once the queue is drained. */
  #end: DillError | null = null;

  /**
   * @param socketType the type `mrecv` accepts
   * @param maxWaiting receive calls that may wait at once (option `maxWaitingCalls`)
   */
  constructor(socketType: WsType, maxWaiting: number) {
    this.#socketType = socketType;
    this.#maxWaiting = maxWaiting;
  }

  /** Messages queued. */
  get length(): number {
    return this.#queue?.length ?? 0;
  }

  /** Payload bytes queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Why input ended, once it did. */
  get ended(): DillError | null {
    return this.#end;
  }

  /**
   * Whether receiving failed (a receive timed out, or could not wait): no call can take a
   * message any more, so what arrives is dropped rather than held.
   */
  get refusing(): boolean {
    return this.#failure !== null;
  }

  /** A message arrived: the oldest waiting call gets it, else it is queued. */
  push(ev: ReceivedMessage): void {
    if (this.#failure) return;
    while (this.#firstWaiter !== null && this.length === 0) {
      const w = this.#takeWaiter();
      if (!w.req.settled) return this.#deliver(w, ev);
    }
    (this.#queue ??= new Fifo()).push(ev);
    this.#bytes += ev.data.length;
  }

  /**
   * A receive call: answered from the queue, or with the end of input, or parked with
   * `park` (the actor's). Returns whether a queued message was taken.
   */
  recv(call: WsRecvCall, park: (req: PendingCall) => boolean): boolean {
    if (this.#failure) {
      call.req.reject(this.#failure);
      return false;
    }
    const ev = this.#queue?.shift();
    if (ev) {
      this.#bytes -= ev.data.length;
      this.#deliver(call, ev);
      return true;
    }
    if (this.#end) {
      this.#fail(call, this.#end);
      return false;
    }
    if (this.#waiterCount() >= this.#maxWaiting) {
      call.req.reject(tooManyWaiting(call.req.op, "receive", this.#maxWaiting));
      return false;
    }
    if (this.#firstWaiter === null) this.#firstWaiter = call;
    else (this.#moreWaiters ??= []).push(call);
    if (!park(call.req)) {
      // Take back the call just added: the last one waiting.
      if (this.#firstWaiter === call) this.#firstWaiter = null;
      else this.#moreWaiters!.pop();
      this.#refuseFromNow(brokenAfter("receive", call.req));
    }
    return false;
  }

  /** A parked receive reached its deadline; returns whether it was one of ours. */
  expire(req: PendingCall): boolean {
    if (this.#firstWaiter?.req === req) {
      this.#takeWaiter();
    } else {
      const i = this.#moreWaiters?.findIndex((w) => w.req === req) ?? -1;
      if (i < 0) return false;
      this.#moreWaiters!.splice(i, 1);
    }
    req.timeOut();
    this.#refuseFromNow(brokenAfter("receive", req));
    return true;
  }

  /**
   * A receive failed, which ends receiving (libdill's rule): the calls still waiting fail
   * the same way, and the messages queued for them are dropped (nobody can take them).
   */
  #refuseFromNow(failure: DillError): void {
    this.#failure ??= failure;
    for (const w of this.#takeAllWaiters()) w.req.reject(this.#failure);
    this.#queue?.clear();
    this.#bytes = 0;
  }

  /** Input ended: queued messages are still delivered, then every receive fails with `error`. */
  end(error: DillError): void {
    this.#end ??= error;
    if (this.length === 0) {
      for (const w of this.#takeAllWaiters()) w.req.reject(this.#end);
    }
  }

  /** Fails every waiting call with `reason` and drops the queue. */
  cancel(reason: DillError): void {
    for (const w of this.#takeAllWaiters()) w.req.reject(reason);
    this.#queue?.clear();
    this.#bytes = 0;
  }

  #waiterCount(): number {
    return this.#firstWaiter === null ? 0 : 1 + (this.#moreWaiters?.length ?? 0);
  }

  /** Removes and returns the oldest waiting call (there must be one). */
  #takeWaiter(): WsRecvCall {
    const w = this.#firstWaiter!;
    const more = this.#moreWaiters;
    this.#firstWaiter = more !== null && more.length > 0 ? more.shift()! : null;
    return w;
  }

  /** Removes every waiting call and returns them, oldest first. */
  #takeAllWaiters(): WsRecvCall[] {
    if (this.#firstWaiter === null) return [];
    const all = [this.#firstWaiter, ...(this.#moreWaiters ?? [])];
    this.#firstWaiter = null;
    this.#moreWaiters = null;
    return all;
  }

  #deliver(w: WsRecvCall, ev: ReceivedMessage): void {
    const type: WsType = ev.binary ? WS_BINARY : WS_TEXT;
    const error = deliver(w, type, ev.data, ev.text, this.#socketType);
    if (error) this.#fail(w, error);
  }

  /**
   * Fails one receive that took a whole message (a type mismatch, buffers too small) or
   * met the end of input. The message is consumed and the stream is still whole, so
   * later receives work (libdill's ws.c does the same for a type mismatch); only a
   * receive that gave up mid-wait (its deadline) ends receiving, see {@link expire}.
   */
  #fail(w: WsRecvCall, error: DillError): void {
    w.req.reject(error);
  }
}

/**
 * Hands one whole message to a receive call: checks its type (`mrecv` family), then
 * resolves with the payload, or copies it into the caller's buffers. Returns the error
 * the call must fail with instead (a type mismatch, buffers too small); the caller
 * decides what that failure means for later receives.
 *
 * @example
 * ```ts
 * import { deliver } from "./ws_inbox.ts";
 * import { Request } from "./request.ts";
 * import { WS_BINARY } from "./ws_options.ts";
 *
 * const req = new Request<import("./ws_inbox.ts").WsReceived>("mrecv", -1);
 * const buf = new Uint8Array(4);
 * const call = { kind: "recv" as const, typed: true, into: [buf], req };
 * console.log(deliver(call, WS_BINARY, new Uint8Array([1, 2]), undefined, WS_BINARY)); // null
 * console.log((await req.promise).size); // 2
 * ```
 */
export function deliver(
  w: WsRecvCall,
  type: WsType,
  data: Uint8Array,
  text: string | undefined,
  socketType: WsType,
): DillError | null {
  if (w.typed && type !== socketType) {
    return new DillError(
      "EPROTO",
      `${w.req.op}: got a ${typeName(type)} message on a ${
        typeName(socketType)
      } socket (use wsRecv to take both types)`,
    );
  }
  if (!w.into) {
    if (w.asMessage) {
      const message = type === WS_TEXT ? { type, data: text } : { type, data };
      w.req.resolve(message as unknown as WsReceived);
    } else {
      w.req.resolve({ type, size: data.length, data, text });
    }
    return null;
  }
  // No buffers at all (libdill: first = last = NULL): the message is dropped, its size told.
  if (w.into.length === 0) {
    w.req.resolve({ type, size: data.length, data: null });
    return null;
  }
  let room = 0;
  for (const b of w.into) room += b.length;
  if (data.length > room) {
    return new DillError(
      "EMSGSIZE",
      `${w.req.op}: a ${data.length}-byte message does not fit in ${room} bytes of buffer`,
    );
  }
  let off = 0;
  for (const b of w.into) {
    if (off >= data.length) break;
    const n = Math.min(b.length, data.length - off);
    b.set(data.subarray(off, off + n));
    off += n;
  }
  w.req.resolve({ type, size: data.length, data: null });
  return null;
}

function typeName(type: WsType): string {
  return type === WS_TEXT ? "text" : "binary";
}
