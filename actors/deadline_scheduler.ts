/**
 * One process-wide watch over deadlines: every call parked with a finite deadline
 * (and every lingering close) is an entry in one min-heap, and a single timer is
 * armed for the earliest. Setting and clearing a timer per call cost more than the
 * rest of a short call (a timer object, a runtime op each way); a heap entry costs a
 * few comparisons, and since most deadlines are "now + the same timeout", new ones
 * land at the bottom and the armed timer rarely changes.
 *
 * An entry fires once `now()` reached its deadline, never before (a timer that
 * fires early is armed again). A timer that fires more than `STALL_MS` late found the
 * event loop held (a long computation, a GC pause): the runtime has not yet read what
 * arrived meanwhile, and would judge a call whose bytes came before its deadline. It
 * then waits `SETTLE_MS` more, a wait in which the runtime polls for I/O, before
 * firing (again if that wait was held up too, up to `MAX_SETTLES` times).
 *
 * When the heap empties by cancellation, the timer stays armed but unref'd: a program
 * (or a test) with nothing waiting is not held by it, and the next call, typically due
 * later, takes it back with a ref instead of a new timer (an application awaiting one
 * call at a time would otherwise set and clear a timer per call).
 *
 * @module
 */

import { MAX_TIMER_MS, now, SETTLE_MS } from "./time.ts";

/** A deadline being watched; pass it to {@link cancelDeadline} once it no longer matters. */
export interface DeadlineEntry {
  /** The deadline, in ms on `now()`. */
  readonly at: number;
}

class Entry implements DeadlineEntry {
  /** Position in the heap; -1 once fired or cancelled. */
  index = -1;
  constructor(readonly at: number, readonly seq: number, readonly fire: () => void) {}
}

const heap: Entry[] = [];
let nextSeq = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
/** When the armed timer is due (Infinity: none armed). */
let timerAt = Infinity;
/** Whether the armed timer holds the process (it does while anything is watched). */
let timerHeld = false;
/** After a stall, nothing fires before this time (see `onTimer`). */
let settleUntil = -Infinity;

/** A timer this late (ms past when it was due) means the event loop was held. */
const STALL_MS = 5;
/** Waits in a row after stalls before the due entries fire regardless. */
const MAX_SETTLES = 3;
/** Waits in a row so far, for the entry then earliest. */
let settles = 0;
let settlingFor: Entry | null = null;

/**
 * Calls `fire` once `now()` reached `at` (ms on `now()`), unless cancelled first.
 * Entries due at the same time fire in the order they were made.
 *
 * @example
 * ```ts
 * import { atDeadline, cancelDeadline } from "./deadline_scheduler.ts";
 * import { now } from "./time.ts";
 *
 * const entry = atDeadline(now() + 1000, () => console.log("expired"));
 * cancelDeadline(entry); // nothing is printed, and no timer holds the process
 * ```
 */
export function atDeadline(at: number, fire: () => void): DeadlineEntry {
  const entry = new Entry(at, nextSeq++, fire);
  entry.index = heap.length;
  heap.push(entry);
  siftUp(entry.index);
  if (at < timerAt) arm(at);
  else if (!timerHeld) hold(true);
  return entry;
}

/**
 * Stops watching `entry` (a no-op if it fired or was cancelled already).
 *
 * @example
 * ```ts
 * import { atDeadline, cancelDeadline } from "./deadline_scheduler.ts";
 *
 * const entry = atDeadline(Date.now() + 50, () => {});
 * cancelDeadline(entry);
 * cancelDeadline(entry); // harmless
 * ```
 */
export function cancelDeadline(entry: DeadlineEntry): void {
  const e = entry as Entry;
  if (e.index < 0) return;
  removeAt(e.index);
  // The armed timer may now be early: it then finds nothing due and re-arms. With
  // nothing left to watch it stops holding the process (or a test).
  if (heap.length === 0) hold(false);
}

/**
 * How many deadlines are watched, and whether the timer holds the process (for
 * tests: once every call completed, nothing may be watched or held).
 *
 * @example
 * ```ts
 * import { deadlineWatch } from "./deadline_scheduler.ts";
 *
 * console.log(deadlineWatch()); // { watched: 0, holding: false }
 * ```
 */
export function deadlineWatch(): { watched: number; holding: boolean } {
  return { watched: heap.length, holding: timer !== undefined && timerHeld };
}

function arm(at: number): void {
  // Beyond MAX_TIMER_MS, setTimeout would fire after 1 ms (a deadline weeks away would
  // re-arm a thousand times a second): a farther deadline's timer fires early, finds
  // nothing due and is armed again.
  if (timer !== undefined) clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(onTimer, Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(at - now()))));
  timerHeld = true;
}

function hold(held: boolean): void {
  timerHeld = held;
  if (held) Deno.refTimer(timer!);
  else Deno.unrefTimer(timer!);
}

function onTimer(): void {
  timer = undefined;
  timerAt = Infinity;
  timerHeld = false;
  const t = now();
  if (heap.length > 0) {
    if (t < settleUntil) return arm(Math.max(heap[0].at, settleUntil));
    // The event loop was held (a long computation, a GC pause) past when this timer was
    // due: bytes that arrived before the deadline may wait unread in a socket (see
    // SETTLE_MS). A short wait lets those reads finish a call before its deadline judges
    // it; a wait that was held up too waits again, a few times at most, so that a loop
    // held all the time still gets its deadlines.
    const due = Math.max(heap[0].at, settleUntil);
    if (heap[0] !== settlingFor) settles = 0;
    if (t - due > STALL_MS && settles < MAX_SETTLES) {
      settles++;
      settlingFor = heap[0];
      settleUntil = t + SETTLE_MS;
      return arm(settleUntil);
    }
  }
  settles = 0;
  settlingFor = null;
  while (heap.length > 0 && heap[0].at <= t) {
    const entry = heap[0];
    removeAt(0);
    try {
      entry.fire();
    } catch (error) {
      // One failing callback must not stop the others; report it as an uncaught error.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
  if (heap.length > 0 && heap[0].at < timerAt) arm(heap[0].at);
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function place(entry: Entry, index: number): void {
  heap[index] = entry;
  entry.index = index;
}

function siftUp(index: number): void {
  const entry = heap[index];
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (!before(entry, heap[parent])) break;
    place(heap[parent], index);
    index = parent;
  }
  place(entry, index);
}

function siftDown(index: number): void {
  const entry = heap[index];
  const n = heap.length;
  for (;;) {
    const left = 2 * index + 1;
    if (left >= n) break;
    const right = left + 1;
    const child = right < n && before(heap[right], heap[left]) ? right : left;
    if (!before(heap[child], entry)) break;
    place(heap[child], index);
    index = child;
  }
  place(entry, index);
}

function removeAt(index: number): void {
  const removed = heap[index];
  removed.index = -1;
  const last = heap.pop()!;
  if (last === removed) return;
  place(last, index);
  if (index > 0 && before(last, heap[(index - 1) >> 1])) siftUp(index);
  else siftDown(index);
}
