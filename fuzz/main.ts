/**
 * `deno task fuzz`: runs every fuzz target (or `FUZZ_TARGET`) for `FUZZ_RUNS` inputs
 * each (default 1,000,000, or the target's own `defaultRuns`) from `FUZZ_SEED` (default
 * 1), starting at input `FUZZ_START` (default 0). Prints the seed, progress and timing;
 * on a failure prints the input in hex with the settings that replay it, and exits with
 * status 1.
 *
 * @module
 */

import { FuzzFailure, type FuzzTarget, runTarget } from "./harness.ts";
import { TARGETS } from "./targets.ts";

function envInt(name: string, fallback: number): number {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(text)}`);
  }
  return value;
}

const runsSet = Deno.env.get("FUZZ_RUNS") ?? "";
const runs = envInt("FUZZ_RUNS", 1_000_000);
const seed = envInt("FUZZ_SEED", 1);
const start = envInt("FUZZ_START", 0);
const only = Deno.env.get("FUZZ_TARGET");
// deno-lint-ignore no-explicit-any
const targets: FuzzTarget<any>[] = only ? TARGETS.filter((t) => t.name === only) : TARGETS;
if (targets.length === 0) {
  console.error(
    `no fuzz target named ${only}; there are: ${TARGETS.map((t) => t.name).join(", ")}`,
  );
  Deno.exit(2);
}

console.log(`fuzzing with FUZZ_SEED=${seed} from input ${start}`);
try {
  for (const target of targets) {
    const targetRuns = runsSet === "" ? target.defaultRuns ?? runs : runs;
    console.log(`${target.name}: ${targetRuns} inputs`);
    const stats = runTarget(target, seed, targetRuns, start, (done) => {
      console.log(`  ${target.name}: ${done} inputs`);
    });
    const perSecond = Math.round(stats.runs / (stats.ms / 1000));
    console.log(
      `${target.name}: ${stats.runs} inputs ok in ${(stats.ms / 1000).toFixed(1)} s ` +
        `(${perSecond}/s)`,
    );
  }
} catch (e) {
  if (!(e instanceof FuzzFailure)) throw e;
  console.error(e.message);
  Deno.exit(1);
}
