/**
 * The output half of a bytestream actor: the bytes senders queued ({@link WriteQueue},
 * which coalesces small writes into one transport write), the senders waiting for
 * room, when a write starts (at the end of the running code, or with a send buffer
 * once the application stopped sending), the transport writes and their completion or
 * failure, the half-close (`done`), and the calls with deadline 0 that must complete
 * within the current turn. A plain object owned by the bytestream actor (`ByteStream`): its
 * microtasks, timers and writes only post messages to the actor's mailbox, and the
 * actor calls back in, which calls the {@link StreamOutputHost} synchronously.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { brokenAfter, type PendingCall, type Request } from "./request.ts";
import {
  DEFAULT_CLOSE_LINGER_MS,
  DEFAULT_HIGH_WATER,
  type StreamOptions,
  tooManyWaiting,
} from "./stream_options.ts";
import { LateFlush } from "./late_flush.ts";
import { closeTransport, lingerThenClose, type Transport } from "./transport.ts";
import { recycleBuffers, WriteQueue } from "./write_queue.ts";
import { remaining } from "./time.ts";

/** The messages the output posts to its actor's mailbox (part of the actor's messages). */
export type StreamOutputMsg =
  | { readonly kind: "writeDone" }
  | { readonly kind: "flushNow" }
  | { readonly kind: "writeFailed"; readonly error: unknown }
  | { readonly kind: "closeWriteDone" }
  | { readonly kind: "turnEnded" };

// The output's messages that carry nothing, made once: one is posted for every write.
const FLUSH_NOW: StreamOutputMsg = { kind: "flushNow" };
const WRITE_DONE: StreamOutputMsg = { kind: "writeDone" };
const TURN_ENDED: StreamOutputMsg = { kind: "turnEnded" };

/**
 * What the output asks of the actor that owns it. The owner is passed to every call,
 * so one host object serves every connection (no closures per connection).
 */
export interface StreamOutputHost<O> {
  /** Posts one of the output's own messages to the actor's mailbox. */
  post(owner: O, msg: StreamOutputMsg): void;
  /** Parks `req` until its deadline (see `Actor.park`). */
  park(owner: O, req: PendingCall): boolean;
  /** Makes an abort of `req`'s signal expire it (see `Actor.watchAbort`). */
  watchAbort(owner: O, req: PendingCall): boolean;
  /** `req` could not complete within its turn: the actor expires it. */
  expire(owner: O, req: PendingCall): void;
  /** The actor is closed (nothing more is written). */
  closed(owner: O): boolean;
  /** The output ended (closed or failed): a shutdown may finish. */
  ended(owner: O): void;
}

/** Bytes to write, and how: a bytestream's `send` message. */
export interface OutputSend {
  readonly chunks: Uint8Array[];
  /** Settles once the last byte was written (at once within the send buffer). */
  readonly req?: Request<void>;
  /** Write at once instead of once the running code finished (a close frame: the last word). */
  readonly urgent?: boolean;
  /**
   * A frame the protocol above sent on its own with a request to learn when it was
   * written (its pongs): it never waits behind the application's sends, and like
   * frames sent without a request it is still written after an `hclose`.
   */
  readonly internal?: boolean;
  /**
   * The protocol's closing frame, sent with a request (a `wsDone`): it keeps its place
   * behind sends waiting for room, and when the stream closes it is still written (as
   * frames sent without a request are) even if application sends ahead of it are left
   * out because none of their bytes were written yet.
   */
  readonly closing?: boolean;
  /** The only chunk is a view of a buffer from `takeWriteBuffer`: the queue owns it. */
  readonly pooled?: boolean;
}

interface SendWaiter {
  readonly chunks: Uint8Array[];
  /** `null` for a frame the protocol above sent on its own (a close frame, a ping). */
  readonly req: Request<void> | null;
  /** The only chunk is a pooled buffer (see `WriteQueue.append`). */
  readonly pooled: boolean;
  /** Written at close even though the sends ahead of it fail (see {@link OutputSend.closing}). */
  readonly closing: boolean;
}

/**
 * The output of one bytestream: sends in order, each completing once its last byte
 * was written (or at once, within the send buffer).
 *
 * @example
 * ```ts
 * import { StreamOutput } from "./stream_output.ts";
 * import type { Transport } from "./transport.ts";
 *
 * const written: Uint8Array[] = [];
 * const transport = {
 *   write: (b: Uint8Array) => (written.push(b.slice()), Promise.resolve(b.length)),
 *   read: () => Promise.resolve(null),
 *   closeWrite: () => Promise.resolve(),
 *   close() {},
 * } as unknown as Transport;
 * const posted: string[] = [];
 * const output = new StreamOutput("demo", transport, {}, null, {
 *   post: (_, msg) => posted.push(msg.kind),
 *   park: () => true,
 *   watchAbort: () => true,
 *   expire() {},
 *   closed: () => false,
 *   ended() {},
 * });
 * output.send({ chunks: [new Uint8Array([1, 2, 3])], urgent: true }); // written at once
 * await Promise.resolve();
 * console.log(written.length, posted); // 1 [ "writeDone" ]
 * ```
 */
export class StreamOutput<O> {
  readonly #name: string;
  readonly #transport: Transport;
  readonly #writeHighWater: number;
  readonly #maxWaiting: number;
  /** Longest the transport stays open after the actor closed, for bytes still owed (ms). */
  readonly #closeLinger: number;
  readonly #owner: O;
  readonly #host: StreamOutputHost<O>;

  // Bytes queued in order, and the senders waiting for room.
  readonly #outbound: WriteQueue;
  #writing = false;
  /** The transport write in progress (it settles when the write ended either way). */
  #inflight: Promise<void> | null = null;
  /** What is left to write of the segment being written. */
  #segment: Uint8Array | null = null;
  /** Senders waiting for room; made when the first one has to wait (idle streams hold none). */
  #sendWaiters: SendWaiter[] | null = null;
  /** Set once a send failed: later sends fail the same way. */
  #sendFailure: DillError | null = null;
  #outputDone = false;
  /** `done` calls waiting for the half-close; made on the first one. */
  #doneReqs: Request<void>[] | null = null;
  #closeWriteStarted = false;
  /** A write is due once the running code finished (a microtask is queued). */
  #flushScheduled = false;
  /** With a send buffer: the write comes once the running code stops adding bytes. */
  #lateFlush: LateFlush | null = null;
  #outputClosed = false;
  /** Calls with deadline 0 (or past) that must complete within this turn; `null` when none. */
  #mustWriteNow: PendingCall[] | null = null;
  #turnCheckScheduled = false;

  /**
   * @param name label for messages, such as `"tcp"`
   * @param transport the connection written to (the owner's)
   * @param options `writeHighWater`, `maxWaitingCalls`, `sendBuffer` and `closeLinger`
   * @param owner the actor this runs for, passed back to every `host` call
   * @param host what to do for it
   */
  constructor(
    name: string,
    transport: Transport,
    options: StreamOptions,
    owner: O,
    host: StreamOutputHost<O>,
  ) {
    this.#name = name;
    this.#transport = transport;
    this.#writeHighWater = options.writeHighWater ?? DEFAULT_HIGH_WATER;
    this.#maxWaiting = options.maxWaitingCalls ?? 1024;
    this.#outbound = new WriteQueue(options.sendBuffer ?? 0);
    this.#closeLinger = options.closeLinger ?? DEFAULT_CLOSE_LINGER_MS;
    this.#owner = owner;
    this.#host = host;
  }

  /** Set once a send failed: later sends, and a shutdown, fail the same way. */
  get failure(): DillError | null {
    return this.#sendFailure;
  }

  /** The output was half-closed (everything queued was written, then the FIN). */
  get closed(): boolean {
    return this.#outputClosed;
  }

  /**
   * Queues a send: `req` settles once its last byte was written (at once within the
   * send buffer); with `urgent`, the write starts now; `internal` frames (the protocol's
   * own) never wait behind the application's sends, while frames sent without a request
   * keep their place behind sends waiting for room; a `pooled` chunk is given to the queue.
   */
  send(s: OutputSend): void {
    const { chunks, req } = s;
    const urgent = s.urgent === true, internal = s.internal === true, pooled = s.pooled === true;
    const failure = this.#sendFailure ??
      (this.#outputDone
        ? new DillError("EPIPE", `${this.#name}: the output was already closed (done)`)
        : null);
    if (failure) return req?.reject(failure);
    // Frames the protocol sends on its own (pongs, close echoes) never wait behind users.
    const waits = req !== undefined && !internal;
    const waiters = this.#sendWaiters;
    if (req === undefined && !internal && waiters !== null && waiters.length > 0) {
      // But they keep their place in the stream: a close frame must not overtake the
      // frames of sends already waiting for room (they would follow the close, be lost to
      // the peer, or land on a bytestream that wsDetach handed back).
      waiters.push({ chunks, req: null, pooled, closing: true });
      return;
    }
    if (
      waits &&
      ((waiters !== null && waiters.length > 0) || this.#outbound.bytes >= this.#writeHighWater)
    ) {
      if (waiters !== null && waiters.length >= this.#maxWaiting) {
        return req.reject(tooManyWaiting(this.#name, "send", this.#maxWaiting));
      }
      const queue = this.#sendWaiters ??= [];
      queue.push({ chunks, req, pooled, closing: s.closing === true });
      if (!this.#host.park(this.#owner, req)) {
        queue.pop();
        this.#sendFailure ??= brokenAfter("send", req);
      }
      return;
    }
    this.#enqueue(chunks, req, waits && s.closing !== true, pooled);
    if (urgent || this.#mustWriteNow !== null) this.#flush();
    else if (this.#outbound.sendBuffer > 0 && this.#outbound.waitingSends === 0) {
      this.#scheduleLateFlush();
    } else this.#scheduleFlush();
  }

  /** The scheduled write is due (`flushNow`). */
  flushNow(): void {
    this.#flushScheduled = false;
    this.#flush();
  }

  /**
   * The application waits for input (a `brecv` parks, or the protocol on top says so
   * with `consumerWaits`): bytes held back to batch sends go out now.
   */
  consumerWaits(): void {
    if (this.#lateFlush?.scheduled) this.#flush();
  }

  /** The transport wrote the segment in progress (`writeDone`). */
  writeDone(): void {
    this.#writing = false;
    this.#inflight = null;
    for (const req of this.#outbound.written().reqs) req.resolve();
    const waiters = this.#sendWaiters;
    // After a send failed, the waiters left are those ahead of it (and frames the protocol
    // sent on its own): they still go, in order (see #failWaitersFrom).
    while (waiters !== null && waiters.length > 0 && this.#outbound.bytes < this.#writeHighWater) {
      const w = waiters.shift()!;
      if (w.req === null) this.#enqueue(w.chunks, undefined, false, w.pooled);
      else if (!w.req.settled) this.#enqueue(w.chunks, w.req, !w.closing, w.pooled);
    }
    this.#flush();
  }

  /** A transport write or the half-close failed (`writeFailed`). */
  writeFailed(error: DillError): void {
    this.#writing = false;
    this.#inflight = null;
    this.#failOutput(error);
  }

  /** The half-close went (`closeWriteDone`). */
  closeWriteDone(): void {
    this.#outputClosed = true;
    for (const req of takeAll(this.#doneReqs)) req.resolve();
    this.#host.ended(this.#owner);
  }

  /** The turn in which calls with deadline 0 were made ended (`turnEnded`). */
  turnEnded(): void {
    this.#turnCheckScheduled = false;
    // What could be done without waiting was done: calls still pending would wait.
    const reqs = this.#mustWriteNow ?? [];
    this.#mustWriteNow = null;
    for (const req of reqs) {
      if (!req.settled) this.#host.expire(this.#owner, req);
    }
  }

  /**
   * Closes the output once everything queued is written (TCP FIN, TLS close_notify);
   * input goes on. With `once`, a second close of the output is `EPIPE`.
   */
  done(req: Request<void> | null, once: boolean): void {
    if (once && this.#outputDone) {
      return req?.reject(new DillError("EPIPE", `${this.#name}: the output was already closed`));
    }
    if (this.#sendFailure) return req?.reject(this.#sendFailure);
    this.#outputDone = true;
    if (req) {
      if (this.#outputClosed) return req.resolve();
      const doneReqs = this.#doneReqs ??= [];
      doneReqs.push(req);
      if (!this.parkOrTurn(req)) {
        doneReqs.pop();
        this.#sendFailure ??= brokenAfter("send", req);
        return;
      }
    }
    this.#flush();
  }

  /** Parks `req`; with deadline 0 or past, gives it until the end of this turn instead. */
  parkOrTurn(req: PendingCall): boolean {
    if (remaining(req.deadline) === 0) {
      this.#withinTurn(req);
      return true;
    }
    return this.#host.park(this.#owner, req);
  }

  /** `req` reached its deadline: if it is a send or a `done`, it fails (and so do later sends). */
  expired(req: PendingCall): void {
    const s = this.#sendWaiters?.findIndex((w) => w.req === req) ?? -1;
    if (s >= 0) this.#sendWaiters!.splice(s, 1);
    const queued = s < 0 && this.#outbound.holds(req);
    const d = this.#doneReqs?.indexOf(req as Request<void>) ?? -1;
    if (d >= 0) this.#doneReqs!.splice(d, 1);
    // A send fails the senders waiting behind it (a queued one: every waiter); a `done`
    // comes after every send, so it fails none.
    if (s >= 0 || queued || d >= 0) this.#sendTimedOut(req, s >= 0 ? s : queued ? 0 : Infinity);
  }

  /**
   * The actor closes: bytes of completed sends and the protocol's own frames still go out
   * (lingering up to `closeLinger`, see `lingerThenClose`) before the transport is
   * closed; every call waiting fails with `reason`.
   */
  terminate(reason: DillError): void {
    const unclaimed = this.#sendFailure ? [] : this.#outbound.unclaimed(this.#writing);
    if (!this.#sendFailure) {
      // Frames the protocol sent on its own that waited behind sends for room (a close
      // frame) still go: the sends ahead of them fail now, none of their bytes written, so
      // the frames follow whole ones.
      for (const w of this.#sendWaiters ?? []) if (w.closing) unclaimed.push(...w.chunks);
    }
    const buffers = this.#outbound.takeBuffers();
    if (this.#inflight || unclaimed.length > 0) {
      lingerThenClose(this.#transport, this.#inflight, unclaimed, this.#closeLinger).then(
        (done) => {
          if (done) recycleBuffers(buffers);
        },
      );
    } else {
      closeTransport(this.#transport);
      recycleBuffers(buffers);
    }
    for (const w of takeAll(this.#sendWaiters)) w.req?.reject(reason);
    for (const req of this.#outbound.clear()) req.reject(reason);
    for (const req of takeAll(this.#doneReqs)) req.reject(reason);
    this.#mustWriteNow = null;
  }

  /**
   * Starts writing once the code running now has finished (a microtask), rather than
   * at once: every send made meanwhile (an application answering a batch of messages,
   * a protocol adding a frame) goes out in the same write, and sends arriving while a
   * write is in progress go out together in the next one. Not later than that: every
   * send waits for its write, so an application that awaits each send (an echo loop)
   * makes one write per message whatever is done here, and an event-loop turn of delay
   * per write would only add to it (measured: about 2.5 times fewer echoes per second
   * than with a microtask).
   */
  #scheduleFlush(): void {
    if (this.#writing || this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#host.post(this.#owner, FLUSH_NOW));
  }

  /** Starts writing once the running code stopped adding bytes (see {@link LateFlush}). */
  #scheduleLateFlush(): void {
    if (this.#writing || this.#flushScheduled) return;
    (this.#lateFlush ??= new LateFlush({
      queuedBytes: () => this.#outbound.bytes,
      overtaken: () => this.#writing || this.#host.closed(this.#owner),
      due: () => this.#host.post(this.#owner, FLUSH_NOW),
    })).schedule();
  }

  /**
   * Queues chunks in order; the request settles once the transport took its last byte
   * (or at once, when it fits in the send buffer). Waiting for the write is what every
   * other send does: its deadline is watched like any parked call's, by the
   * process-wide deadline scheduler (one heap entry, no timer of its own).
   */
  #enqueue(
    chunks: Uint8Array[],
    req: Request<void> | undefined,
    claimed: boolean,
    pooled = false,
  ): void {
    if (!this.#outbound.append(chunks, req ?? null, claimed, pooled)) return req?.resolve();
    if (req) this.#watchSend(req);
  }

  #watchSend(req: Request<void>): void {
    if (!this.#host.watchAbort(this.#owner, req)) return this.#sendTimedOut(req);
    if (req.deadline < 0) return;
    if (remaining(req.deadline) === 0) return this.#withinTurn(req);
    if (!this.#host.park(this.#owner, req)) this.#sendFailure ??= brokenAfter("send", req);
  }

  /**
   * Deadline 0 (or past) means "only if it can be done without waiting". The local
   * I/O it takes (a write into a socket buffer with room, a FIN, a read of what the
   * peer already sent) completes within the current turn of the event loop, while
   * anything that needs the peer does not: a call still pending when the turn ends
   * would wait, and fails as its deadline requires.
   */
  #withinTurn(req: PendingCall): void {
    (this.#mustWriteNow ??= []).push(req);
    if (!this.#turnCheckScheduled) {
      this.#turnCheckScheduled = true;
      setImmediate(() => this.#host.post(this.#owner, TURN_ENDED));
    }
  }

  /** `req` timed out or was aborted: later sends fail, from the waiter at `laterFrom` on. */
  #sendTimedOut(req: PendingCall, laterFrom = 0): void {
    if (req.settled) return;
    req.timeOut();
    this.#sendFailure ??= brokenAfter("send", req);
    this.#failWaitersFrom(laterFrom);
  }

  /**
   * After a failed send, the senders waiting for room from index `from` on (those behind
   * it) fail with it, as later sends do (libdill's rule); nothing else would end their
   * wait. Frames the protocol sent on its own keep their place: they are not sends.
   */
  #failWaitersFrom(from: number): void {
    const waiters = this.#sendWaiters;
    if (waiters === null || from >= waiters.length) return;
    for (const w of waiters.splice(from)) {
      if (w.req === null) waiters.push(w);
      else w.req.reject(this.#sendFailure!);
    }
  }

  #flush(): void {
    if (this.#writing || this.#host.closed(this.#owner)) return;
    const segment = this.#outbound.next();
    if (segment === undefined) return this.#maybeCloseWrite();
    this.#writing = true;
    this.#segment = segment.bytes;
    this.#inflight = this.#transport.write(segment.bytes).then(this.#wrote, this.#wrote);
  }

  /**
   * A write's outcome: the count written, or the error it failed with. One function made
   * per stream, not per write (a write per message is the common case, and its garbage is
   * the garbage collector's work), and one for both outcomes (every idle connection keeps
   * it). `#inflight` settles once the whole segment is written, or failed: a partial
   * write chains the next.
   */
  readonly #wrote = (outcome: unknown): Promise<void> | void => {
    if (typeof outcome !== "number") {
      this.#segment = null;
      this.#host.post(this.#owner, { kind: "writeFailed", error: outcome });
      return;
    }
    const segment = this.#segment!;
    if (outcome < segment.length) {
      const rest = this.#segment = segment.subarray(outcome);
      return this.#transport.write(rest).then(this.#wrote, this.#wrote);
    }
    this.#segment = null;
    this.#host.post(this.#owner, WRITE_DONE);
  };

  #failOutput(error: DillError): void {
    this.#sendFailure ??= error;
    for (const req of this.#outbound.clear()) req.reject(error);
    for (const w of takeAll(this.#sendWaiters)) w.req?.reject(error);
    for (const req of takeAll(this.#doneReqs)) req.reject(error);
    this.#host.ended(this.#owner);
  }

  #maybeCloseWrite(): void {
    if (!this.#outputDone || this.#closeWriteStarted || (this.#sendWaiters?.length ?? 0) > 0) {
      return;
    }
    this.#closeWriteStarted = true;
    this.#transport.closeWrite().then(
      () => this.#host.post(this.#owner, { kind: "closeWriteDone" }),
      (error) => this.#host.post(this.#owner, { kind: "writeFailed", error }),
    );
  }
}

/** Empties a lazily made list (`null`: none yet) and returns what it held. */
function takeAll<T>(list: T[] | null): T[] {
  return list === null ? [] : list.splice(0);
}
