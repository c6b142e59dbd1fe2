/**
 * What the cancellation attack tests (tests/attack_cancellation.test.ts) run each
 * blocking call in: a fresh scene where the call waits, with checks of what a failed
 * call must leave behind, and the small helpers those checks share.
 *
 * @module
 */

import assert from "node:assert/strict";
import { brecv, type Deadline, type Handle, now, wsRecv } from "../../mod.ts";
import { assertFailed, type Outcome, settle } from "./outcome.ts";
import { closeQuietly } from "./transports.ts";

/** Deadline of the checks (ms). */
export const T = 5000;
/** A deadline T ms from now. */
export const soon = (): number => now() + T;

/** One blocking call in a fresh scene where it waits (nothing arrives unless told). */
export interface Scene {
  /** Makes the call; with nothing else happening it waits until its deadline. */
  call(d: Deadline): Promise<unknown>;
  /** After calls that failed before starting: nothing happened, the handles work. */
  untouched(): Promise<void>;
  /** After the call failed while waiting (ECANCELED or ETIMEDOUT): the documented state. */
  afterFailure(): Promise<void>;
  /** Closes everything. */
  cleanup(): Promise<void>;
}

/** A blocking call under test: its name and how to open a scene where it waits. */
export interface Case {
  readonly name: string;
  open(): Promise<Scene>;
}

/** Bytes from numbers. */
export const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);

/** The next message as text, whatever its type (the pairs here are binary sockets). */
export async function textOf(h: Handle, d: Deadline): Promise<string> {
  const { data } = await wsRecv(h, d);
  return typeof data === "string" ? data : new TextDecoder().decode(data);
}

/** Asserts the next bytes received on `h` are `want`. */
export async function expectBytes(h: Handle, want: number[]): Promise<void> {
  assert.deepEqual([...await brecv(h, new Uint8Array(want.length), soon())], want);
}

/** The other side of a stream sees the end (EPIPE) or a reset: the stack was closed. */
export async function seesEnd(h: Handle, what: string): Promise<void> {
  const o = await settle(brecv(h, new Uint8Array(1), soon()));
  assert.ok(!o.ok, `${what}: the peer still got data`);
  const code = (o.error as { code?: string }).code;
  assert.ok(code === "EPIPE" || code === "ECONNRESET", `${what}: peer got ${code}`);
}

/** Asserts the call failed with `EBADF`: the handle was closed. */
export function assertClosed(o: Outcome<unknown>, what: string): void {
  assertFailed(o, "EBADF", what);
}

/** Closes every handle still open. */
export function closeAll(...hs: Handle[]): void {
  for (const h of hs) closeQuietly(h);
}

/** Reads until the stream ends (a client's request may be there first). */
export async function drainToEnd(h: Handle, what: string): Promise<void> {
  for (let i = 0; i < 8192; i++) {
    const o = await settle(brecv(h, new Uint8Array(1), soon()));
    if (o.ok) continue;
    const code = (o.error as { code?: string }).code;
    assert.ok(code === "EPIPE" || code === "ECONNRESET", `${what}: got ${code}`);
    return;
  }
  assert.fail(`${what}: the stream did not end`);
}
