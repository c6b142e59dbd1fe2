/**
 * One pending call to an actor: the caller's promise, its deadline and the deadline's
 * timer, and its `AbortSignal`. The timer and the abort listener exist only while an
 * actor has parked the request, so a call that is answered at once never creates one;
 * both go away when the request settles.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { abortError } from "./args.ts";
import { atDeadline, cancelDeadline, type DeadlineEntry } from "./deadline_scheduler.ts";
import { type Deadline, deadlineOf, now, signalOf } from "./time.ts";

/** The type-independent side of a {@link Request}: what an actor needs to fail or park it. */
export interface PendingCall {
  /** The API operation, for error messages. */
  readonly op: string;
  /** Absolute deadline, `-1` or `0`. */
  readonly deadline: number;
  /** Whether the call was already answered. */
  readonly settled: boolean;
  /** Fails the call. */
  reject(error: unknown): void;
  /** Fails the call with `ETIMEDOUT` (`ECANCELED` when its signal aborted). */
  timeOut(): void;
  /** Arms the deadline; see {@link Request.park}. */
  park(onExpire: (req: PendingCall) => void): boolean;
  /** Whether the call was failed because its signal aborted (not its deadline). */
  readonly aborted: boolean;
  /** Listens for the signal only; see {@link Request.listenForAbort}. */
  listenForAbort(onExpire: (req: PendingCall) => void): boolean;
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
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  #timer: DeadlineEntry | undefined;
  #settled = false;
  /** Absolute deadline, `-1` or `0`. */
  readonly deadline: number;
  readonly #signal: AbortSignal | null;
  #onAbort: (() => void) | null = null;
  #aborted = false;
  #failure: unknown = undefined;

  /**
   * @param op the API operation, for error messages (`"mrecv"`)
   * @param deadline absolute deadline, `-1`, `0`, or `{ deadline?, signal? }`
   */
  constructor(readonly op: string, deadline: Deadline) {
    this.deadline = deadlineOf(deadline);
    this.#signal = signalOf(deadline);
    // An executor rather than Promise.withResolvers: about a quarter of its cost in V8, and
    // every call makes one.
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Whether the request was already answered. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Whether the call was failed because its signal aborted (not its deadline). */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** The error the call was failed with, or `undefined` (pending or answered). */
  get failure(): unknown {
    return this.#failure;
  }

  /** Answers the call; later answers are ignored. */
  resolve(value: T): void {
    if (this.#settled) return;
    this.#settle();
    this.#resolve(value);
  }

  /**
   * Fails the call; later answers are ignored. Once its signal aborted, a timeout that
   * an actor reports for it (its expiry path) is reported as `ECANCELED` instead.
   */
  reject(error: unknown): void {
    if (this.#settled) return;
    if (this.#aborted && error instanceof DillError && error.code === "ETIMEDOUT") {
      error = abortError(this.op, this.#signal!);
    }
    this.#settle();
    this.#failure = error;
    this.#reject(error);
  }

  /** Fails the call with `ETIMEDOUT`, or `ECANCELED` when its signal aborted. */
  timeOut(): void {
    this.reject(new DillError("ETIMEDOUT", `${this.op}: the deadline passed before it completed`));
  }

  /**
   * Prepares the request to wait. Returns `false` when its deadline allows no waiting
   * (`0`, or already past) or its signal has aborted: the actor must then fail it with
   * {@link Request.timeOut}. Otherwise arms a timer (none for `-1`) that calls
   * `onExpire` when the deadline passes, and listens for the signal to do the same, so
   * an aborted call goes through the actor's expiry path (and libdill's rules on
   * failed sends and receives) exactly like a timed-out one.
   */
  park(onExpire: (req: PendingCall) => void): boolean {
    if (!this.listenForAbort(onExpire)) return false;
    if (this.deadline < 0) return true;
    const left = this.deadline - now();
    if (this.deadline === 0 || left <= 0) return false;
    if (this.#timer === undefined) {
      // One process-wide timer watches every parked call (see deadline_scheduler.ts).
      this.#timer = atDeadline(this.deadline, () => {
        this.#timer = undefined;
        if (!this.#settled) onExpire(this);
      });
    }
    return true;
  }

  /**
   * Listens for the signal alone, for an actor that watches the deadline itself (one
   * timer for many calls): an abort calls `onExpire`. Returns `false` when the signal
   * has already aborted.
   */
  listenForAbort(onExpire: (req: PendingCall) => void): boolean {
    const signal = this.#signal;
    if (!signal) return true;
    if (signal.aborted) {
      this.#aborted = true;
      return false;
    }
    if (this.#onAbort === null) {
      this.#onAbort = () => {
        this.#onAbort = null;
        this.#aborted = true;
        if (!this.#settled) onExpire(this);
      };
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    return true;
  }

  #settle(): void {
    this.#settled = true;
    if (this.#onAbort !== null) {
      this.#signal!.removeEventListener("abort", this.#onAbort);
      this.#onAbort = null;
    }
    if (this.#timer !== undefined) {
      cancelDeadline(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * libdill's rule after a call that failed mid-way (its deadline passed or its signal
 * aborted): the error every later call in that direction gets, naming the first failure.
 *
 * @example
 * ```ts
 * import { brokenAfter, Request } from "./request.ts";
 *
 * const req = new Request<void>("brecv", 0);
 * req.promise.catch(() => {}); // the caller's side, not shown
 * req.timeOut();
 * console.log(brokenAfter("receive", req).code); // ECONNRESET
 * ```
 */
export function brokenAfter(direction: "send" | "receive", failed: PendingCall): DillError {
  const code = failed.aborted ? "ECANCELED" : "ETIMEDOUT";
  return new DillError(
    "ECONNRESET",
    `this socket can no longer ${direction}: an earlier ${direction} failed (${code})`,
  );
}
