/**
 * What every Deno echo server of the benchmark shares: a tally of how connections
 * ended, and exiting when stdin closes (bench/run.ts holds the other end, so a
 * server never outlives the run), printing the tally to stderr first.
 *
 * @module
 */

/** Counts connection endings by reason. */
export class Endings {
  readonly #counts = new Map<string, number>();

  /** Counts one ending. */
  add(reason: string): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
  }

  /** The tally as a plain object. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }
}

/** Prints the port (the "ready" signal bench/run.ts waits for) on stdout. */
export function announcePort(port: number): void {
  console.log(port);
}

/**
 * Exits when stdin reaches its end, after printing `SUMMARY {"endings":{...}}` to
 * stderr.
 */
export function exitOnStdinEnd(endings: Endings): void {
  (async () => {
    const buf = new Uint8Array(64);
    try {
      while ((await Deno.stdin.read(buf)) !== null) {
        // Nothing is sent on stdin; only its end matters.
      }
    } catch {
      // stdin broke: the parent is gone, exit all the same
    }
    console.error(`SUMMARY ${JSON.stringify({ endings })}`);
    Deno.exit(0);
  })();
}
