/**
 * Shared test helpers: connected bytestream pairs over each transport (in-memory
 * pipe, TCP loopback, Unix socket), error assertions, byte patterns and timing.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type DillError,
  type ErrorCode,
  type Handle,
  hclose,
  ipcAccept,
  ipcConnect,
  ipcListen,
  ipcPair,
  isDillError,
  now,
  type StreamOptions,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  type WsOptions,
} from "../../mod.ts";

/** The transports every bytestream test runs over. */
export const KINDS = ["pipe", "tcp", "unix"] as const;
/** One of {@link KINDS}. */
export type Kind = typeof KINDS[number];

/** Two connected bytestream handles and how to release everything behind them. */
export interface Pair {
  /** The connecting side (first end of a pipe). */
  readonly a: Handle;
  /** The accepting side (second end of a pipe). */
  readonly b: Handle;
  /** Closes whatever is still open (handles, temp dir). Safe to call after closing. */
  cleanup(): Promise<void>;
}

/** Options for {@link openPair}: per-side stream options and the pipe capacity. */
export interface PairSetup {
  /** Options of the connecting side (for a pipe: both sides, merged with `b`). */
  a?: StreamOptions;
  /** Options of the accepting side. */
  b?: StreamOptions;
  /** Bytes each direction of an in-memory pipe buffers. */
  pipeCapacity?: number;
}

/** Closes `h` unless it is already closed. */
export function closeQuietly(h: Handle): void {
  try {
    hclose(h);
  } catch (e) {
    if (!isDillError(e, "EBADF")) throw e;
  }
}

/** Opens a connected pair over `kind`. The listener used to make it is closed at once. */
export async function openPair(kind: Kind, setup: PairSetup = {}): Promise<Pair> {
  if (kind === "pipe") {
    const [a, b] = ipcPair({ ...setup.a, ...setup.b, pipeCapacity: setup.pipeCapacity });
    return { a, b, cleanup: () => Promise.resolve(closeAll(a, b)) };
  }
  if (kind === "tcp") {
    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    try {
      const [accepted, a] = await Promise.all([
        tcpAccept(ls, now() + 5000, setup.b),
        tcpConnect(tcpLocalAddr(ls), now() + 5000, setup.a),
      ]);
      const b = accepted.handle;
      return { a, b, cleanup: () => Promise.resolve(closeAll(a, b)) };
    } finally {
      hclose(ls);
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-test-" });
  const path = `${dir}/sock`;
  const ls = ipcListen(path);
  try {
    const [b, a] = await Promise.all([
      ipcAccept(ls, now() + 5000, setup.b),
      ipcConnect(path, now() + 5000, setup.a),
    ]);
    return {
      a,
      b,
      cleanup: async () => {
        closeAll(a, b);
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  } finally {
    hclose(ls);
  }
}

function closeAll(...handles: Handle[]): void {
  for (const h of handles) closeQuietly(h);
}

/** Runs `body` with a fresh pair over `kind`, and always cleans up. */
export async function withPair(
  kind: Kind,
  body: (a: Handle, b: Handle) => Promise<void>,
  setup?: PairSetup,
): Promise<void> {
  const pair = await openPair(kind, setup);
  try {
    await body(pair.a, pair.b);
  } finally {
    await pair.cleanup();
  }
}

/** Asserts that `promise` rejects with a {@link DillError} of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<DillError> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error !== undefined, `expected ${code}, but the call succeeded`);
  assert.ok(
    isDillError(error),
    `expected a DillError ${code}, got ${error instanceof Error ? error.stack : String(error)}`,
  );
  assert.equal(error.code, code, `expected ${code}, got: ${error.message}`);
  return error;
}

/** Asserts that `promise` rejects with a {@link DillError} whose code is one of `codes`. */
export async function rejectsWithOneOf(
  promise: Promise<unknown>,
  codes: readonly ErrorCode[],
): Promise<DillError> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error !== undefined, `expected one of ${codes}, but the call succeeded`);
  assert.ok(isDillError(error), `expected a DillError, got ${String(error)}`);
  assert.ok(codes.includes(error.code), `expected one of ${codes}, got: ${error.message}`);
  return error;
}

/** Asserts that `fn` throws (synchronously) a {@link DillError} of `code`. */
export function throwsWith(fn: () => unknown, code: ErrorCode): DillError {
  try {
    fn();
  } catch (e) {
    assert.ok(isDillError(e), `expected a DillError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

/**
 * Tells whether `promise` settles without waiting: only microtasks run meanwhile (no
 * timer, no I/O), so a call that had to wait for either is reported as pending.
 */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  for (let i = 0; i < 20 && !settled; i++) await Promise.resolve();
  return settled;
}

/** Resolves after `ms` milliseconds (its timer always completes, so no op leaks). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every 20 ms until it returns something other than `undefined`, and
 * resolves that; fails naming `what` after `ms` (5 s by default).
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 5_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await delay(20);
  }
}

/**
 * Rejects with an `Error` naming `what` if `promise` does not settle within `ms`, so a
 * hang fails the test instead of stalling the run. The timer is always cleared.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expiry]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves to whether `p` settled within `ms` (it is left running either way). */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  p.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  const result = await Promise.race([p.then(() => true, () => true), late]);
  clearTimeout(timer);
  return result;
}

/**
 * A deadline that is already in the past but is neither `0` nor `-1`.
 */
export function pastDeadline(): number {
  return Math.max(1e-3, now() - 1000);
}

/**
 * Bytes of a cheap, position-dependent pattern: byte `i` of the stream is
 * `(i * 31 + (i >>> 8)) & 0xff`, so shifted, dropped or repeated bytes show up.
 */
export function patternBytes(offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const p = offset + i;
    out[i] = (p * 31 + (p >>> 8)) & 0xff;
  }
  return out;
}

/** Asserts that `buf` holds the pattern of {@link patternBytes} starting at `offset`. */
export function assertPattern(buf: Uint8Array, offset: number, what = "data"): void {
  for (let i = 0; i < buf.length; i++) {
    const p = offset + i;
    if (buf[i] !== ((p * 31 + (p >>> 8)) & 0xff)) {
      assert.fail(
        `${what}: byte ${p} of the stream is ${buf[i]}, expected ${(p * 31 + (p >>> 8)) & 0xff}`,
      );
    }
  }
}

/**
 * Fills `buf` (length a multiple of 4, 4-byte aligned) with 32-bit words counting up
 * from `firstWord`: word `k` of the stream is `k`. Cheap for big transfers.
 */
export function fillWords(buf: Uint8Array, firstWord: number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = firstWord + i;
}

/** Asserts that `buf` holds words counting up from `firstWord` (see {@link fillWords}). */
export function assertWords(buf: Uint8Array, firstWord: number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== firstWord + i) {
      assert.fail(
        `word ${firstWord + i} of the stream (byte ${(firstWord + i) * 4}) is ${words[i]}`,
      );
    }
  }
}

/**
 * A server and a client WebSocket over an in-memory pair, without the HTTP handshake;
 * `pipeCapacity` also bounds the write queue, so a peer that does not read soon stops
 * the sender.
 */
export async function nohttpWsPair(
  server: WsOptions = {},
  pipeCapacity?: number,
): Promise<[Handle, Handle]> {
  const [a, b] = ipcPair({ pipeCapacity, writeHighWater: pipeCapacity });
  const [s, c] = await Promise.all([
    wsAttachServer(a, WS_NOHTTP, now() + 5000, server),
    wsAttachClient(b, WS_NOHTTP, "", "", now() + 5000),
  ]);
  return [s.handle, c.handle];
}
