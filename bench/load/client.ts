/**
 * The load client process shared by every server: reads one JSON {@link Command}
 * per stdin line, runs it, and prints one JSON {@link Answer} per stdout line.
 * Exits on `{"op":"exit"}` or when stdin closes (so it never outlives bench/run.ts).
 *
 * Run by bench/run.ts as
 * `deno run --allow-net=127.0.0.1 --allow-read=/proc bench/load/client.ts`.
 *
 * @module
 */

import type { Answer, Command, Measurement } from "./commands.ts";
import { message } from "./conn.ts";
import { runIdle } from "./idle.ts";
import { runInflight } from "./inflight.ts";
import { runStorm } from "./storm.ts";
import { runThroughput } from "./throughput.ts";

const encoder = new TextEncoder();

function run(cmd: Command): Promise<Measurement> {
  switch (cmd.op) {
    case "throughput":
      return runThroughput(cmd);
    case "inflight":
      return runInflight(cmd);
    case "storm":
      return runStorm(cmd);
    case "idle":
      return runIdle(cmd);
    default:
      return Promise.reject(new Error(`unknown command ${JSON.stringify(cmd)}`));
  }
}

async function main(): Promise<void> {
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line === "") continue;
      const cmd = JSON.parse(line) as Command;
      if (cmd.op === "exit") return;
      let answer: Answer;
      try {
        answer = { ok: true, result: await run(cmd) };
      } catch (e) {
        answer = { ok: false, error: message(e) };
      }
      await Deno.stdout.write(encoder.encode(JSON.stringify(answer) + "\n"));
    }
  }
}

await main();
Deno.exit(0);
