/**
 * Checks that work grows linearly with input size, by comparing the cost of one input of
 * size `factor × n` with the cost of `factor` inputs of size `n`: the same number of bytes
 * in total, so linear work gives a ratio near 1 and quadratic work a ratio near `factor`.
 * Comparing equal byte counts keeps both timings the same order of magnitude, and the
 * minimum over several samples cuts scheduler and GC noise on a busy machine.
 *
 * @module
 */

/** Time one sample should take at least, so the timer's resolution does not matter. */
const SAMPLE_MS = 4;
/** Samples per measurement; the fastest one counts. */
const SAMPLES = 5;

function timeOf(run: () => void, times: number): number {
  const start = performance.now();
  for (let i = 0; i < times; i++) run();
  return performance.now() - start;
}

/**
 * The ratio of the time of `work(factor * n)` to the time of `factor` runs of `work(n)`.
 *
 * @param work builds a closure that processes one input of the given size; the input
 *   should be built outside the closure, so only the processing is timed
 * @param n the small size
 * @param factor how much larger the big input is
 */
export function growthRatio(work: (n: number) => () => void, n: number, factor = 8): number {
  const small = work(n);
  const big = work(n * factor);
  // Warm up the JIT on both sizes.
  timeOf(small, factor);
  const once = timeOf(big, 1);
  const repeat = Math.max(1, Math.min(1000, Math.ceil(SAMPLE_MS / Math.max(once, 0.001))));
  let bestBig = Infinity;
  let bestSmall = Infinity;
  for (let s = 0; s < SAMPLES; s++) {
    bestBig = Math.min(bestBig, timeOf(big, repeat));
    bestSmall = Math.min(bestSmall, timeOf(small, repeat * factor));
  }
  return bestBig / Math.max(bestSmall, 0.001);
}

/**
 * Asserts that `work` is linear: the ratio of {@link growthRatio} stays below `limit`
 * (default 3, between linear's ~1 and quadratic's ~8). A busy machine can spoil one
 * measurement, so it is retried a few times; quadratic work never gets under the limit.
 *
 * @returns the best ratio seen, for the test's output
 */
export function assertLinear(
  what: string,
  work: (n: number) => () => void,
  n: number,
  limit = 3,
): number {
  const ratios: number[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const ratio = growthRatio(work, n);
    ratios.push(ratio);
    if (ratio < limit) return ratio;
  }
  throw new Error(
    `${what}: one input 8x as large took ${
      ratios.map((r) => r.toFixed(1)).join("x, ")
    }x the time of 8 inputs of ${n} (linear work gives about 1x, quadratic about 8x)`,
  );
}
