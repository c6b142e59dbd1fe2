/**
 * Going between libdill deadlines and `AbortSignal`s, so one time budget can bound
 * both dill-ws calls and Deno's own APIs (`fetch`, `Deno.connect`, streams).
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { checkDeadline } from "./args.ts";
import {
  type Deadline,
  deadlineOf,
  type DeadlineOptions,
  MAX_TIMER_MS,
  now,
  signalOf,
} from "./time.ts";

/**
 * An `AbortSignal` that aborts with a `TimeoutError` when `deadline` passes (never for
 * `-1`, at once for `0` or a past time), and with the bag's own signal when that
 * aborts first. Pass it to `fetch` or any API that takes a signal. Like every call
 * taking a deadline, it throws `ECANCELED` when the bag's signal has already aborted.
 * With a bag, the bag's signal holds one abort listener for it until the deadline
 * passes (or either signal aborts), so a long-lived signal reused for every request
 * keeps nothing past the deadlines.
 *
 * @example
 * ```ts
 * import { deadlineSignal, now } from "@dill/ws";
 *
 * const signal = deadlineSignal(now() + 2000);
 * await fetch("http://127.0.0.1:1/", { signal }).catch((e) => console.log(e.name));
 * ```
 */
export function deadlineSignal(deadline: Deadline): AbortSignal {
  checkDeadline("deadlineSignal", deadline);
  const at = deadlineOf(deadline);
  const own = signalOf(deadline);
  let timed: AbortSignal | null;
  if (at < 0) timed = null;
  else {
    const left = at === 0 ? 0 : at - now();
    timed = left > MAX_TIMER_MS
      ? farTimeout(at)
      : left > 0
      ? AbortSignal.timeout(Math.ceil(left))
      : AbortSignal.abort(new DOMException("the deadline has passed", "TimeoutError"));
  }
  if (timed && own) return firstOf(own, timed);
  return timed ?? own ?? new AbortController().signal;
}

/**
 * A signal that aborts with whichever of `own` and `timed` aborts first. Not
 * `AbortSignal.any`: that leaves an entry on `own` for every call until `own` aborts,
 * and `own` is typically long-lived (a server's shutdown signal bounding every request).
 * Here the listener on `own` goes once `timed` aborts, so nothing outlives the deadline.
 */
function firstOf(own: AbortSignal, timed: AbortSignal): AbortSignal {
  if (timed.aborted) return timed;
  const either = new AbortController();
  const onOwn = () => {
    timed.removeEventListener("abort", onTimed);
    either.abort(own.reason);
  };
  const onTimed = () => {
    own.removeEventListener("abort", onOwn);
    either.abort(timed.reason);
  };
  own.addEventListener("abort", onOwn, { once: true });
  timed.addEventListener("abort", onTimed, { once: true });
  return either.signal;
}

/**
 * A signal that aborts with a `TimeoutError` at `at`, more than `MAX_TIMER_MS` away:
 * `AbortSignal.timeout` beyond it would abort after 1 ms, so it waits in steps of
 * `AbortSignal.timeout` (which, unlike a plain timer, never holds the process).
 */
function farTimeout(at: number): AbortSignal {
  const controller = new AbortController();
  const step = (): void => {
    const left = at - now();
    if (left <= 0) {
      controller.abort(new DOMException("signal timed out", "TimeoutError"));
      return;
    }
    const part = AbortSignal.timeout(Math.min(MAX_TIMER_MS, Math.ceil(left)));
    part.addEventListener("abort", step, { once: true });
  };
  step();
  return controller.signal;
}

/**
 * A deadline `ms` milliseconds from now (`-1` for forever; any other negative number is
 * `EINVAL`) with an optional signal: whichever comes first ends the call.
 * `deadlineAfter(1000, shutdown.signal)` bounds a call by one second and by the server
 * shutting down.
 *
 * @example
 * ```ts
 * import { deadlineAfter, hclose, ipcPair, wsAttachClient, wsAttachServer, wsRecv, WS_NOHTTP } from "@dill/ws";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * const ctl = new AbortController();
 * setTimeout(() => ctl.abort(), 10);
 * await wsRecv(s, deadlineAfter(5000, ctl.signal)).catch((e) => console.log(e.code)); // ECANCELED
 * hclose(s);
 * hclose(c);
 * ```
 */
export function deadlineAfter(ms: number, signal?: AbortSignal): DeadlineOptions {
  // Like a deadline, any negative but -1 is EINVAL: a budget that went negative by
  // arithmetic must not turn into "wait forever".
  if (typeof ms !== "number" || !(ms === -1 || (ms >= 0 && ms < Infinity))) {
    throw new DillError(
      "EINVAL",
      `deadlineAfter: ms must be -1 or a finite number >= 0, not ${ms}`,
    );
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new DillError("EINVAL", "deadlineAfter: signal must be an AbortSignal");
  }
  const deadline = ms === -1 ? -1 : now() + ms;
  return signal ? { deadline, signal } : { deadline };
}
