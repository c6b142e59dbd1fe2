/**
 * Runs `runActorBench()` from bench/actor_calls.ts (another module's benchmark of
 * actor calls per second) in its own process and prints its result as JSON, so
 * bench/run.ts can bound it in time and include it in the report. The first
 * argument is the time limit of each measurement in ms.
 *
 * @module
 */

import { message } from "./conn.ts";

// Computed at run time: the module is optional and may not exist yet.
const url = new URL("../actor_calls.ts", import.meta.url).href;
const maxMs = Number(Deno.args[0] ?? 1000);
try {
  const mod = await import(url);
  if (typeof mod.runActorBench !== "function") {
    throw new Error("bench/actor_calls.ts has no runActorBench export");
  }
  console.log(JSON.stringify({ ok: true, result: await mod.runActorBench({ maxMs }) }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: message(e) }));
}
Deno.exit(0);
