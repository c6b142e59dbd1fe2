/**
 * The limits of a bytestream socket ({@link StreamOptions}), their check, and the
 * error a call gets when too many calls already wait.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { checkWholeNumber } from "../protocol/option_checks.ts";
import { MAX_TIMER_MS } from "./time.ts";

/** Default of {@link StreamOptions.readHighWater} and {@link StreamOptions.writeHighWater}: 256 KiB. */
export const DEFAULT_HIGH_WATER = 256 * 1024;

/**
 * Default of {@link StreamOptions.closeLinger}: `hclose` keeps a socket open up to 1 s
 * to write the bytes it still owes.
 *
 * @example
 * ```ts
 * import { DEFAULT_CLOSE_LINGER_MS } from "./stream_options.ts";
 *
 * console.log(DEFAULT_CLOSE_LINGER_MS); // 1000
 * ```
 */
export const DEFAULT_CLOSE_LINGER_MS = 1000;

/** Limits of a bytestream socket. Every field is optional. */
export interface StreamOptions {
  /** Bytes read ahead before reading stops until the application catches up. Default 256 KiB. */
  readHighWater?: number;
  /** Bytes queued for writing before senders wait. Default 256 KiB. */
  writeHighWater?: number;
  /** Calls that may wait at once in each direction; more fail with `EBUSY`. Default 1024. */
  maxWaitingCalls?: number;
  /**
   * Bytes a send may leave queued in the socket and still complete at once, before
   * they were written. Default 0: a send completes once its bytes were written to the
   * OS (or to the peer end of a pair), as in libdill. With a send buffer, an
   * application that awaits each send (an echo loop) no longer makes one write per
   * message: the sends of a batch complete as they are queued and go out in one write.
   * Bytes of a completed send are still written if the socket is closed right after
   * (`hclose` lingers up to `closeLinger` for them, per bytestream of the stack), and a
   * write that fails later fails the next call instead. Applies to every layer on top
   * of this socket.
   */
  sendBuffer?: number;
  /**
   * Longest `hclose` keeps the socket open, in ms, to write what it still owes: a write
   * in progress, the bytes of sends that completed under `sendBuffer`, and frames a
   * protocol on top sent on its own (the echo of a WebSocket close frame). The socket
   * is closed as soon as they are written, or when this time is up, whichever comes
   * first; `hclose` itself returns at once. Each bytestream of a stack lingers on its
   * own (TLS over TCP: up to twice this). Default 1000 ({@link DEFAULT_CLOSE_LINGER_MS});
   * 0 closes at once and drops what is owed.
   */
  closeLinger?: number;
}

/**
 * Checks a socket's {@link StreamOptions}: every limit given must be a whole number,
 * at least 1 (`sendBuffer`, `closeLinger`: at least 0; `closeLinger` at most
 * `MAX_TIMER_MS`). Called before any resource is taken.
 *
 * @example
 * ```ts
 * import { checkStreamOptions } from "./stream_options.ts";
 *
 * checkStreamOptions("tcpConnect", { sendBuffer: 65536 });
 * try {
 *   checkStreamOptions("tcpConnect", { sendBuffer: -1 });
 * } catch (e) {
 *   console.log((e as { code: string }).code); // "EINVAL"
 * }
 * ```
 */
export function checkStreamOptions(op: string, options: StreamOptions | undefined): void {
  if (!options) return;
  for (const [name, min, max] of STREAM_LIMITS) {
    const value = options[name];
    if (value !== undefined) checkWholeNumber(`${op}: option ${name}`, value, min, max);
  }
}

/** Each limit of {@link StreamOptions} with its range: made once (checked per connection). */
const STREAM_LIMITS: readonly (readonly [keyof StreamOptions, number, number?])[] = [
  ["readHighWater", 1],
  ["writeHighWater", 1],
  ["maxWaitingCalls", 1],
  ["sendBuffer", 0],
  ["closeLinger", 0, MAX_TIMER_MS],
];

/**
 * The `EBUSY` a call gets when `limit` calls already wait in its direction (option
 * {@link StreamOptions.maxWaitingCalls}).
 *
 * @example
 * ```ts
 * import { tooManyWaiting } from "./stream_options.ts";
 *
 * console.log(tooManyWaiting("tcp", "send", 1024).code); // "EBUSY"
 * ```
 */
export function tooManyWaiting(name: string, direction: string, limit: number): DillError {
  return new DillError(
    "EBUSY",
    `${name}: ${limit} calls already wait to ${direction} (option maxWaitingCalls)`,
  );
}
