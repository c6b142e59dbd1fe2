/**
 * The I/O edge under a bytestream actor: anything that reads and writes bytes like
 * a `Deno.Conn` (TCP and Unix connections, the in-memory pipe, TLS streams).
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { DillError } from "../protocol/errors.ts";
import { atDeadline, cancelDeadline } from "./deadline_scheduler.ts";
import { now } from "./time.ts";

/**
 * A connected byte transport. `Deno.Conn` satisfies it as it is.
 *
 * @example
 * ```ts
 * import type { Transport } from "./transport.ts";
 *
 * // A transport that is always at end of stream and swallows writes.
 * const sink: Transport = {
 *   read: () => Promise.resolve(null),
 *   write: (b: Uint8Array) => Promise.resolve(b.length),
 *   closeWrite: () => Promise.resolve(),
 *   close: () => {},
 * };
 * console.log(await sink.read(new Uint8Array(8))); // null
 * ```
 */
export interface Transport {
  /** Reads into `buf`; resolves the byte count, or `null` at a clean end of stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /**
   * Optional, instead of `read`: resolves every byte available as chunks handed over
   * (the caller owns them), or `null` at a clean end of stream. Offered by a transport
   * whose input already sits in buffers of its own (TLS plaintext), to spare a copy
   * and a read buffer per read.
   */
  readChunks?(): Promise<Uint8Array[] | null>;
  /** Writes some of `buf`; resolves how many bytes were taken. */
  write(buf: Uint8Array): Promise<number>;
  /** Ends the outbound direction (TCP FIN). */
  closeWrite(): Promise<void>;
  /** Releases the transport at once; pending reads and writes fail. */
  close(): void;
}

/**
 * Turns a failure from a transport or socket call into a {@link DillError}: broken
 * connections are `ECONNRESET`, a transport closed under the call is `ECANCELED`,
 * and refused, taken or exhausted resources get their own codes.
 *
 * @example
 * ```ts
 * import { transportError } from "./transport.ts";
 *
 * console.log(transportError("brecv", new Deno.errors.ConnectionReset("reset")).code); // ECONNRESET
 * ```
 */
export function transportError(op: string, e: unknown): DillError {
  if (e instanceof DillError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) {
    return new DillError("ECANCELED", `${op}: the connection was closed locally (${detail})`, {
      cause: e,
    });
  }
  if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.NotFound) {
    return new DillError("ECONNREFUSED", `${op}: nobody is listening there (${detail})`, {
      cause: e,
    });
  }
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return new DillError("EACCES", `${op}: not permitted (${detail})`, { cause: e });
  }
  if (e instanceof Deno.errors.AddrInUse) {
    return new DillError("EADDRINUSE", `${op}: the address is already in use (${detail})`, {
      cause: e,
    });
  }
  if (/^failed to lookup address information/i.test(detail)) {
    // Deno reports a failed name lookup as a plain Error; libdill's ipaddr_remote, EADDRNOTAVAIL.
    return new DillError("EADDRNOTAVAIL", `${op}: the host name did not resolve (${detail})`, {
      cause: e,
    });
  }
  if (/too many open files|os error 24/i.test(detail)) {
    return new DillError("EMFILE", `${op}: out of file descriptors (${detail})`, { cause: e });
  }
  return new DillError("ECONNRESET", `${op}: the connection broke (${detail})`, { cause: e });
}

/**
 * {@link transportError} for a connect or listen call: an address Deno refuses to use
 * (port 0 to connect to, a host name too long or with a NUL, a socket path too long)
 * is the caller's mistake, `EINVAL`, not a broken connection worth retrying.
 *
 * @example
 * ```ts
 * import { addressError } from "./transport.ts";
 *
 * console.log(addressError("tcpConnect", new RangeError("Invalid port")).code); // EINVAL
 * ```
 */
export function addressError(op: string, e: unknown): DillError {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof URIError) {
    return new DillError("EINVAL", `${op}: invalid address (${e.message})`, { cause: e });
  }
  return transportError(op, e);
}

/**
 * Closes a transport, ignoring that it may be closed already.
 *
 * @example
 * ```ts
 * import { closeTransport } from "./transport.ts";
 * import { pipePair } from "./pipe.ts";
 *
 * const [a, b] = pipePair();
 * closeTransport(a);
 * closeTransport(a); // no error
 * b.close();
 * ```
 */
export function closeTransport(transport: Transport): void {
  try {
    transport.close();
  } catch {
    // Already closed by the peer or by a failed operation: nothing left to release.
  }
}

/**
 * The end of an abrupt close with a write in progress (`inflight`), or with bytes
 * still to write (`chunks`: frames a protocol sent on its own, such as the echo of the
 * peer's close frame): they are written first, as a kernel socket keeps delivering
 * what was written before close(), then the transport closes. Over TLS the transport
 * is the TLS layer, which would otherwise be torn down before its ciphertext went
 * out. Bounded by `lingerMs` (the stream's `closeLinger` option); failures only end it
 * early; with 0 the transport closes at once.
 *
 * @returns whether the writes settled (written or failed) before the transport closed, so
 *   that no write uses their buffers any more; `false` after the linger ran out, or with 0
 *
 * @example
 * ```ts
 * import { lingerThenClose } from "./transport.ts";
 * import { pipePair } from "./pipe.ts";
 *
 * const [a, b] = pipePair();
 * await lingerThenClose(a, null, [new Uint8Array([1, 2])], 1000);
 * console.log(await b.read(new Uint8Array(2))); // 2
 * b.close();
 * ```
 */
export function lingerThenClose(
  transport: Transport,
  inflight: Promise<void> | null,
  chunks: Uint8Array[],
  lingerMs: number,
): Promise<boolean> {
  if (lingerMs <= 0) {
    closeTransport(transport);
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    let ended = false;
    const end = (settled: boolean) => {
      if (ended) return;
      ended = true;
      cancelDeadline(timer);
      closeTransport(transport);
      resolve(settled);
    };
    const timer = atDeadline(now() + lingerMs, () => end(false));
    // Usually only a write is in flight (the echo of a close frame): wait for it alone.
    const flushed = chunks.length === 0 ? inflight ?? Promise.resolve() : writeRest(
      transport,
      inflight,
      concatBytes(chunks),
    );
    flushed.then(() => end(true), () => end(true));
  });
}

async function writeRest(
  transport: Transport,
  inflight: Promise<void> | null,
  rest: Uint8Array,
): Promise<void> {
  await inflight;
  for (let off = 0; off < rest.length;) {
    off += await transport.write(off === 0 ? rest : rest.subarray(off));
  }
}
