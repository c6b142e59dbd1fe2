/**
 * When a bytestream with a send buffer writes: once the running code stopped adding
 * bytes, since no send waits for the write (they all fit in the send buffer). An echo
 * loop that awaits each send then answers every message of a read before the one write
 * that carries them all. "Stopped" is the application waiting to receive (the stream's
 * output then writes at once, see `StreamOutput.consumerWaits`), or else
 * {@link LATE_FLUSH_IDLE_HOPS} microtasks in a row without new bytes: an echo loop's
 * next send comes 2 or 3 promise hops after the last one completed. Microtasks, not an
 * event-loop turn: `setImmediate` was measured, one in-flight round trip 1.6 times
 * slower.
 *
 * @module
 */

/** Microtasks in a row without a new send after which a send-buffered stream writes. */
export const LATE_FLUSH_IDLE_HOPS = 16;

/** What the late flush watches and whom it tells. */
export interface LateFlushHost {
  /** Bytes queued for writing so far. */
  queuedBytes(): number;
  /** A write started or the stream closed: whatever was queued is taken care of. */
  overtaken(): boolean;
  /** The bytes stopped growing: write them now. */
  due(): void;
}

/**
 * The watch of one send-buffered stream's queue, made on its first send-buffered send
 * (streams without a send buffer never have one).
 *
 * @example
 * ```ts
 * import { LATE_FLUSH_IDLE_HOPS, LateFlush } from "./late_flush.ts";
 *
 * let queued = 3, hops = 0;
 * const done = Promise.withResolvers<void>();
 * const flush = new LateFlush({
 *   queuedBytes: () => queued,
 *   overtaken: () => false,
 *   due: () => done.resolve(),
 * });
 * flush.schedule();
 * queueMicrotask(() => (queued += 5, hops++)); // a send a hop later restarts the count
 * await done.promise;
 * console.log(flush.scheduled, hops, LATE_FLUSH_IDLE_HOPS); // false 1 16
 * ```
 */
export class LateFlush {
  readonly #host: LateFlushHost;
  #scheduled = false;
  #seenBytes = 0;
  #idleHops = 0;
  /** The microtask callback, one per stream (not one closure per microtask). */
  readonly #step = () => this.#check();

  /** @param host the stream's output */
  constructor(host: LateFlushHost) {
    this.#host = host;
  }

  /** A watch is running: the write will come. */
  get scheduled(): boolean {
    return this.#scheduled;
  }

  /** Starts watching the queue, unless a watch runs already. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#seenBytes = this.#host.queuedBytes();
    this.#idleHops = 0;
    queueMicrotask(this.#step);
  }

  #check(): void {
    if (this.#host.overtaken()) {
      this.#scheduled = false; // a write started: it takes what was queued
      return;
    }
    const bytes = this.#host.queuedBytes();
    if (bytes !== this.#seenBytes) {
      this.#seenBytes = bytes;
      this.#idleHops = 0;
    } else if (++this.#idleHops >= LATE_FLUSH_IDLE_HOPS) {
      this.#scheduled = false;
      return this.#host.due();
    }
    queueMicrotask(this.#step);
  }
}
