/**
 * A {@link Wire} over one of our bytestream handles (an `ipcPair()` end, with `bsend` and
 * `brecv`): the raw peer then runs without a socket, and its failures come back as our
 * `DillError` codes mapped to {@link WireError} kinds.
 *
 * @module
 */

import {
  brecv,
  bsend,
  DillError,
  type Handle,
  hclose,
  ipcClose,
  isDillError,
  now,
} from "../../../mod.ts";
import { type Wire, WireError } from "./wire.ts";

/**
 * A {@link Wire} over one of our bytestream handles (such as an `ipcPair()` end). After
 * {@link HandleWire.closeWrite} the handle is shutting down (`ipcClose`): bytes still
 * arriving are dropped and a read only tells whether the other side ended too.
 *
 * @example
 * ```ts
 * import { ipcPair, now } from "../../../mod.ts";
 * import { HandleWire } from "./handle_wire.ts";
 *
 * const [ours, theirs] = ipcPair();
 * const wire = new HandleWire(theirs);
 * await wire.write(new Uint8Array([0x81, 0x00]), now() + 1000);
 * await wire.close();
 * ```
 */
export class HandleWire implements Wire {
  #closed = false;
  #shutdown: Promise<void> | null = null;

  /** @param handle the bytestream handle; the wire owns it */
  constructor(readonly handle: Handle) {}

  async readExact(n: number, deadline: number): Promise<Uint8Array> {
    if (this.#shutdown) {
      try {
        await beforeDeadline(this.#shutdown, deadline);
      } catch (e) {
        throw toWireError(e);
      }
      throw new WireError("eof", "the other side ended after our half-close");
    }
    try {
      return await brecv(this.handle, new Uint8Array(n), deadline);
    } catch (e) {
      throw toWireError(e);
    }
  }

  async write(data: Uint8Array, deadline: number): Promise<boolean> {
    try {
      await bsend(this.handle, data, deadline);
      return true;
    } catch (e) {
      if (isDillError(e, "ETIMEDOUT")) return false;
      throw toWireError(e);
    }
  }

  closeWrite(): Promise<void> {
    if (!this.#shutdown && !this.#closed) {
      this.#closed = true;
      const shutdown = ipcClose(this.handle, now() + 5000);
      shutdown.catch(() => {});
      this.#shutdown = shutdown;
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        hclose(this.handle);
      } catch (e) {
        if (!isDillError(e, "EBADF")) throw e;
      }
    }
    await this.#shutdown?.catch(() => {});
  }
}

/** Waits for `p`, failing with `ETIMEDOUT` at `deadline` (-1: never). */
async function beforeDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  if (deadline < 0) return await p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DillError("ETIMEDOUT", "deadline passed")),
      Math.max(0, deadline - now()),
    );
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Our error codes as the raw peer reports them; anything else stays as it is. */
function toWireError(e: unknown): unknown {
  if (isDillError(e, "EPIPE")) return new WireError("eof", e.message);
  if (isDillError(e, "ETIMEDOUT")) return new WireError("timeout", e.message);
  if (isDillError(e, "ECONNRESET")) return new WireError("reset", e.message);
  return e;
}
