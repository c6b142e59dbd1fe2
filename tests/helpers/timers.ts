/**
 * A spy on `setTimeout`/`clearTimeout`, to prove which calls arm deadline timers.
 *
 * @module
 */

/** What the spy saw while installed. */
export interface TimerSpy {
  /** Ids of every timer created while the spy was installed. */
  readonly created: unknown[];
  /** Ids passed to clearTimeout while the spy was installed. */
  readonly cleared: unknown[];
}

/**
 * Runs `body` with `setTimeout`/`clearTimeout` wrapped to record every timer created
 * and cleared; the originals are restored afterwards, whatever happens.
 */
export async function withTimerSpy(body: (spy: TimerSpy) => Promise<void>): Promise<void> {
  const originalSet = globalThis.setTimeout;
  const originalClear = globalThis.clearTimeout;
  const spy: TimerSpy = { created: [], cleared: [] };
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    const id = originalSet(fn, ms);
    spy.created.push(id);
    return id;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id?: Parameters<typeof clearTimeout>[0]) => {
    spy.cleared.push(id);
    originalClear(id);
  }) as typeof clearTimeout;
  try {
    await body(spy);
  } finally {
    globalThis.setTimeout = originalSet;
    globalThis.clearTimeout = originalClear;
  }
}
