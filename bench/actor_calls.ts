/**
 * Micro-benchmark of the actor runtime: `call` round trips to an idle actor (deadline
 * -1 and a finite deadline) and `cast`s. Each measurement stops after `maxCount`
 * operations or `maxMs` milliseconds, whichever comes first.
 *
 * Run: `deno run -A bench/actor_calls.ts` (prints a Markdown table), or import
 * {@link runActorBench} from a bench runner.
 *
 * @module
 */

import { Actor, call, cast } from "../actors/actor.ts";
import type { Request } from "../actors/request.ts";
import { now } from "../actors/time.ts";

type EchoMsg =
  | { readonly kind: "echo"; readonly n: number; readonly req: Request<number> }
  | { readonly kind: "tick" };

/** An actor that answers every call at once and counts casts. */
class Echo extends Actor<EchoMsg> {
  ticks = 0;

  protected receive(msg: EchoMsg): void {
    if (msg.kind === "echo") msg.req.resolve(msg.n);
    else this.ticks++;
  }

  protected expired(): void {}

  protected terminate(): void {}
}

/** Limits of one measurement. */
export interface ActorBenchOptions {
  /** Operations per measurement at most. Default 1e6. */
  maxCount?: number;
  /** Milliseconds per measurement at most. Default 1000. */
  maxMs?: number;
}

/** One measured operation. */
export interface Measurement {
  /** What was measured. */
  readonly name: string;
  /** Operations done. */
  readonly count: number;
  /** Milliseconds they took. */
  readonly ms: number;
  /** Operations per second. */
  readonly perSec: number;
}

/** Results of {@link runActorBench}. */
export interface ActorBenchResult {
  /** `call` round trips per second to an idle actor, deadline -1. */
  callsPerSec: number;
  /** `call` round trips per second to an idle actor, finite deadline. */
  timedCallsPerSec: number;
  /** `cast`s per second. */
  castsPerSec: number;
  /** Every measurement, for printing. */
  measurements: Measurement[];
}

const CHECK_EVERY = 1024;

function measurement(name: string, count: number, ms: number): Measurement {
  return { name, count, ms, perSec: ms > 0 ? (count / ms) * 1000 : Infinity };
}

async function measureCalls(
  name: string,
  deadline: () => number,
  maxCount: number,
  maxMs: number,
): Promise<Measurement> {
  const echo = new Echo("bench echo");
  const start = now();
  let count = 0;
  let sum = 0;
  while (count < maxCount) {
    sum += await call<number, EchoMsg>(
      echo,
      "echo",
      deadline(),
      (req) => ({ kind: "echo", n: count, req }),
    );
    count++;
    if (count % CHECK_EVERY === 0 && now() - start >= maxMs) break;
  }
  const ms = now() - start;
  if (sum !== (count * (count - 1)) / 2) throw new Error(`${name}: wrong answers`);
  return measurement(name, count, ms);
}

function measureCasts(maxCount: number, maxMs: number): Measurement {
  const echo = new Echo("bench sink");
  const tick = { kind: "tick" } as const;
  const start = now();
  let count = 0;
  while (count < maxCount) {
    cast(echo, tick);
    count++;
    if (count % CHECK_EVERY === 0 && now() - start >= maxMs) break;
  }
  const ms = now() - start;
  if (echo.ticks !== count) throw new Error(`cast: ${echo.ticks} of ${count} casts handled`);
  return measurement("cast", count, ms);
}

/**
 * Measures call and cast throughput of the actor runtime.
 *
 * @example
 * ```ts
 * import { runActorBench } from "./actor_calls.ts";
 *
 * const { callsPerSec, castsPerSec } = await runActorBench({ maxCount: 10_000 });
 * console.log(callsPerSec > 0 && castsPerSec > 0);
 * ```
 */
export async function runActorBench(options: ActorBenchOptions = {}): Promise<ActorBenchResult> {
  const maxCount = options.maxCount ?? 1e6;
  const maxMs = options.maxMs ?? 1000;
  // Warm up the JIT on every path first.
  await measureCalls("warmup", () => -1, 10_000, 100);
  await measureCalls("warmup", () => now() + 60_000, 10_000, 100);
  measureCasts(10_000, 100);

  const forever = await measureCalls("call (deadline -1)", () => -1, maxCount, maxMs);
  const timed = await measureCalls(
    "call (deadline now()+60s)",
    () => now() + 60_000,
    maxCount,
    maxMs,
  );
  const casts = measureCasts(maxCount, maxMs);
  return {
    callsPerSec: forever.perSec,
    timedCallsPerSec: timed.perSec,
    castsPerSec: casts.perSec,
    measurements: [forever, timed, casts],
  };
}

/** Formats measurements as a Markdown table. */
export function markdownTable(measurements: Measurement[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const rows = measurements.map((m) =>
    `| ${m.name} | ${fmt(m.count)} | ${m.ms.toFixed(1)} | ${fmt(m.perSec)} |`
  );
  return [
    "| operation | count | time (ms) | ops/s |",
    "| --- | ---: | ---: | ---: |",
    ...rows,
  ].join("\n");
}

if (import.meta.main) {
  const result = await runActorBench();
  console.log(`Actor runtime, Deno ${Deno.version.deno}\n`);
  console.log(markdownTable(result.measurements));
}
