/**
 * One pending call to an actor: the caller's promise, its deadline and the deadline's
 * timer. The timer exists only while an actor has parked the request, so a call that
 * is answered at once, or that waits forever, never creates one.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { type Deadline, now } from "./time.ts";

/** The type-independent side of a {@link Request}: what an actor needs to fail or park it. */
export interface PendingCall {
  /** The API operation, for error messages. */
  readonly op: string;
  /** Absolute deadline, `-1` or `0`. */
  readonly deadline: Deadline;
  /** Whether the call was already answered. */
  readonly settled: boolean;
  /** Fails the call. */
  reject(error: unknown): void;
  /** Fails the call with `ETIMEDOUT`. */
  timeOut(): void;
  /** Arms the deadline; see {@link Request.park}. */
  park(onExpire: (req: PendingCall) => void): boolean;
}

/**
 * A call in flight: settle it once with {@link Request.resolve} or
 * {@link Request.reject}; {@link Request.park} arms its deadline.
 *
 * @example
 * ```ts
 * import { Request } from "./request.ts";
 *
 * const req = new Request<number>("demo", -1);
 * req.resolve(42);
 * console.log(await req.promise); // 42
 * ```
 */
export class Request<T> implements PendingCall {
  /** The promise the caller awaits. */
  readonly promise: Promise<T>;
  #resolve: (value: T) => void;
  #reject: (error: unknown) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #settled = false;

  /**
   * @param op the API operation, for error messages (`"mrecv"`)
   * @param deadline absolute deadline, `-1` or `0`
   */
  constructor(readonly op: string, readonly deadline: Deadline) {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.promise = promise;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Whether the request was already answered. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Answers the call; later answers are ignored. */
  resolve(value: T): void {
    if (this.#settled) return;
    this.#settle();
    this.#resolve(value);
  }

  /** Fails the call; later answers are ignored. */
  reject(error: unknown): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(error);
  }

  /** Fails the call with `ETIMEDOUT`. */
  timeOut(): void {
    this.reject(new DillError("ETIMEDOUT", `${this.op}: the deadline passed before it completed`));
  }

  /**
   * Prepares the request to wait. Returns `false` when its deadline allows no waiting
   * (`0`, or already past): the actor must then fail it with {@link Request.timeOut}.
   * Otherwise arms a timer (none for `-1`) that calls `onExpire` when the deadline passes.
   */
  park(onExpire: (req: PendingCall) => void): boolean {
    if (this.deadline < 0) return true;
    const left = this.deadline - now();
    if (this.deadline === 0 || left <= 0) return false;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!this.#settled) onExpire(this);
      }, Math.ceil(left));
    }
    return true;
  }

  #settle(): void {
    this.#settled = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
