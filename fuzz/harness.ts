/**
 * Runs fuzz targets: input `i` of a run with seed `s` is generated from `new Rng(s, i)`,
 * so any input can be regenerated from the seed and its index. A failure is reported
 * with both and with the input in hex.
 *
 * @module
 */

import { Rng } from "./prng.ts";

/** A fuzz target: generates an input and checks the code under test on it. */
export interface FuzzTarget<C> {
  /** Short name, used by `FUZZ_TARGET` and in messages. */
  name: string;
  /** Generates one input. */
  generate(rng: Rng): C;
  /**
   * Checks one input; throws when the code under test disagrees with the oracle or with
   * itself under another chunking. `rng` chooses the chunkings.
   */
  check(input: C, rng: Rng): void;
  /** The input as replayable text (hex bytes and options). */
  describe(input: C): string;
  /**
   * Inputs `deno task fuzz` runs when `FUZZ_RUNS` is not set, for a target whose inputs
   * are much larger than the others' (default 10^6).
   */
  defaultRuns?: number;
}

/** A fuzz target's input that failed, with what is needed to replay it. */
export class FuzzFailure extends Error {
  /**
   * @param target the target's name
   * @param seed the run's seed
   * @param index the input's index in the run
   * @param input the input, described by the target
   * @param cause what went wrong
   */
  constructor(
    readonly target: string,
    readonly seed: number,
    readonly index: number,
    readonly input: string,
    cause: unknown,
  ) {
    super(
      `fuzz target ${target} failed on input ${index} of seed ${seed} ` +
        `(replay: FUZZ_TARGET=${target} FUZZ_SEED=${seed} FUZZ_START=${index} FUZZ_RUNS=1)\n` +
        `input: ${input}\n` +
        `problem: ${cause instanceof Error ? cause.stack ?? cause.message : String(cause)}`,
      { cause },
    );
    this.name = "FuzzFailure";
  }
}

/** What a run did. */
export interface RunStats {
  runs: number;
  ms: number;
}

/**
 * Runs `runs` inputs of `target` starting at index `start`; throws a {@link FuzzFailure}
 * on the first failing input. `progress` is called every `every` inputs.
 */
export function runTarget<C>(
  // deno-lint-ignore no-explicit-any
  target: FuzzTarget<any> | FuzzTarget<C>,
  seed: number,
  runs: number,
  start = 0,
  progress?: (done: number) => void,
  every = 100_000,
): RunStats {
  const began = performance.now();
  for (let i = start; i < start + runs; i++) {
    const rng = new Rng(seed, i);
    const input = target.generate(rng);
    try {
      target.check(input, rng);
    } catch (e) {
      throw new FuzzFailure(target.name, seed, i, target.describe(input), e);
    }
    if (progress && (i - start + 1) % every === 0) progress(i - start + 1);
  }
  return { runs, ms: performance.now() - began };
}
