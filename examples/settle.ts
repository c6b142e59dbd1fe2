/**
 * Small helpers the demo's servers share for shutting down: closing a handle that may be
 * closed already, waiting a bounded time for work to settle, and a failure as a log line.
 *
 * @module
 */

import { type Handle, hclose } from "../mod.ts";

/**
 * Closes `h`, ignoring that it was closed already (or handed to a layer that closes it).
 *
 * @example
 * ```ts
 * import { closeQuietly } from "./settle.ts";
 * import { hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * hclose(a);
 * closeQuietly(a); // no error
 * closeQuietly(b);
 * ```
 */
export function closeQuietly(h: Handle): void {
  try {
    hclose(h);
  } catch {
    // Already closed, or handed to another layer that closes it.
  }
}

/**
 * Whether `p` settles (resolves or rejects) within `ms`; the timer never outlives the call.
 *
 * @example
 * ```ts
 * import { settlesWithin } from "./settle.ts";
 *
 * console.log(await settlesWithin(Promise.resolve(), 100)); // true
 * console.log(await settlesWithin(new Promise(() => {}), 10)); // false
 * ```
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A failure as one line of log.
 *
 * @example
 * ```ts
 * import { describe } from "./settle.ts";
 *
 * console.log(describe(new Error("boom")), describe("plain")); // boom plain
 * ```
 */
export function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
