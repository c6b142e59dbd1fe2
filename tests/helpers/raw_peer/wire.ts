/**
 * The bytes under a raw peer: a {@link Wire} reads exactly so many bytes or writes them
 * by a deadline, and says with a {@link WireError} why it could not (EOF, reset,
 * deadline). `conn_wire.ts` and `handle_wire.ts` implement it over a raw `Deno.Conn` and
 * over one of our bytestream handles.
 *
 * @example
 * ```ts
 * import { type Wire, WireError } from "./wire.ts";
 *
 * async function endOf(wire: Wire, deadline: number): Promise<string> {
 *   try {
 *     await wire.readExact(1, deadline);
 *     return "a byte";
 *   } catch (e) {
 *     if (e instanceof WireError) return e.kind;
 *     throw e;
 *   }
 * }
 * ```
 *
 * @module
 */

/**
 * Why a raw read or write did not complete.
 *
 * @example
 * ```ts
 * import type { WireFailure } from "./wire.ts";
 *
 * const ends: WireFailure[] = ["eof", "reset"];
 * ```
 */
export type WireFailure = "eof" | "reset" | "timeout";

/**
 * A raw read or write that did not complete: EOF, a broken connection or a deadline.
 *
 * @example
 * ```ts
 * import { WireError } from "./wire.ts";
 *
 * const e = new WireError("eof", "the peer closed its side");
 * console.log(e.kind, e.message); // "eof", "eof: the peer closed its side"
 * ```
 */
export class WireError extends Error {
  /**
   * @param kind what happened
   * @param message details
   */
  constructor(readonly kind: WireFailure, message: string) {
    super(`${kind}: ${message}`);
    this.name = "WireError";
  }
}

/**
 * A bidirectional byte pipe under the raw peer. Deadlines are `now()`-based ms; -1 = none.
 *
 * @example
 * ```ts
 * import { now } from "../../../mod.ts";
 * import type { Wire } from "./wire.ts";
 *
 * async function hello(wire: Wire): Promise<void> {
 *   await wire.write(new TextEncoder().encode("hello"), now() + 1000);
 *   await wire.closeWrite();
 *   await wire.close();
 * }
 * ```
 */
export interface Wire {
  /** Reads exactly `n` bytes; throws {@link WireError} on EOF, reset or deadline. */
  readExact(n: number, deadline: number): Promise<Uint8Array>;
  /**
   * Writes all of `bytes`. Resolves `true` when written, `false` if the deadline passed
   * first (the write may stay in flight until {@link Wire.close}).
   */
  write(bytes: Uint8Array, deadline: number): Promise<boolean>;
  /** Half-closes: no more bytes from us (FIN). */
  closeWrite(): Promise<void>;
  /** Closes everything and waits for every pending operation to end. Idempotent. */
  close(): Promise<void>;
}
