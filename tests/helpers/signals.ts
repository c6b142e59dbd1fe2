/**
 * An `AbortSignal` that counts its live abort listeners, to prove that no call leaves
 * one behind (a long-lived signal reused for many calls must not grow).
 *
 * @module
 */

/** A controller and how many abort listeners its signal holds right now. */
export interface CountingSignal {
  /** Aborts the signal. */
  readonly ctl: AbortController;
  /** The signal (`ctl.signal`). */
  readonly signal: AbortSignal;
  /** Abort listeners added and not yet removed. */
  live(): number;
}

/**
 * A signal whose `addEventListener`/`removeEventListener` for `"abort"` are counted; a
 * listener added with `{ once: true }` stops counting once it fired.
 */
export function countingSignal(): CountingSignal {
  const ctl = new AbortController();
  const signal = ctl.signal;
  const listeners = new Set<unknown>();
  /** For each `once` listener, ours that stops counting it when it fires. */
  const uncount = new Map<unknown, () => void>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, fn: EventListener, opts?: AddEventListenerOptions) => {
    if (type === "abort") {
      listeners.add(fn);
      // A `once` listener is gone after it fired: stop counting it then.
      if (opts?.once && !uncount.has(fn)) {
        const forget = () => {
          listeners.delete(fn);
          uncount.delete(fn);
        };
        uncount.set(fn, forget);
        add("abort", forget, { once: true });
      }
    }
    add(type, fn, opts);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, fn: EventListener) => {
    if (type === "abort") {
      listeners.delete(fn);
      const forget = uncount.get(fn);
      if (forget) remove("abort", forget);
      uncount.delete(fn);
    }
    remove(type, fn);
  }) as typeof signal.removeEventListener;
  return { ctl, signal, live: () => listeners.size };
}
