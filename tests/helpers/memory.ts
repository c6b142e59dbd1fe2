/**
 * Memory readings for the tests that bound what an attack or an idle connection
 * keeps: garbage is collected first, so only what is still referenced counts. Needs
 * `--v8-flags=--expose-gc`, as `deno task test` runs.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Runs a full garbage collection (twice: the first may only queue finalizers). */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, "run with --v8-flags=--expose-gc (deno task test does) to measure memory");
  gc();
  gc();
}

/** External (ArrayBuffer and native) memory still referenced. */
export function retainedExternal(): number {
  collectGarbage();
  return Deno.memoryUsage().external;
}
