/**
 * A {@link Wire} over a raw `Deno.Conn`: TCP that bypasses our stack entirely, so the
 * raw peer sees exactly the bytes our side put on the socket.
 *
 * @module
 */

import { now } from "../../../mod.ts";
import { type Wire, WireError } from "./wire.ts";

/**
 * A {@link Wire} over a raw `Deno.Conn`: one background read loop fills a queue.
 *
 * @example
 * ```ts
 * import { now } from "../../../mod.ts";
 * import { ConnWire } from "./conn_wire.ts";
 *
 * const wire = new ConnWire(await Deno.connect({ hostname: "127.0.0.1", port: 8080 }));
 * try {
 *   await wire.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), now() + 1000);
 *   console.log(await wire.readExact(12, now() + 1000));
 * } finally {
 *   await wire.close();
 * }
 * ```
 */
export class ConnWire implements Wire {
  readonly #conn: Deno.Conn;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended: WireError | null = null;
  #wake: (() => void) | null = null;
  readonly #pump: Promise<void>;
  readonly #writes = new Set<Promise<unknown>>();
  #closed = false;

  /** @param conn the connection; the wire owns it */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#pump = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const buf = new Uint8Array(64 * 1024);
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.#ended = new WireError("eof", "the peer closed its side");
          break;
        }
        this.#chunks.push(buf.subarray(0, n));
        this.#queued += n;
        this.#signal();
      }
    } catch (e) {
      this.#ended = this.#closed
        ? new WireError("eof", "closed locally")
        : new WireError("reset", e instanceof Error ? e.message : String(e));
    }
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Bytes received and not read yet. */
  get queued(): number {
    return this.#queued;
  }

  async readExact(n: number, deadline: number): Promise<Uint8Array> {
    while (this.#queued < n) {
      if (this.#ended) {
        throw new WireError(
          this.#ended.kind,
          `${this.#ended.message} (wanted ${n} bytes, have ${this.#queued})`,
        );
      }
      await this.#waitForData(deadline, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.#chunks[0];
      const take = Math.min(head.length, n - at);
      out.set(head.subarray(0, take), at);
      at += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#queued -= n;
    return out;
  }

  #waitForData(deadline: number, n: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
      if (deadline >= 0) {
        timer = setTimeout(() => {
          this.#wake = null;
          reject(
            new WireError("timeout", `no ${n} bytes before the deadline (have ${this.#queued})`),
          );
        }, Math.max(0, deadline - now()));
      }
    });
  }

  async write(bytes: Uint8Array, deadline: number): Promise<boolean> {
    const writing = (async () => {
      let at = 0;
      while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
    })();
    const tracked = writing.catch((e) => e);
    this.#writes.add(tracked);
    tracked.then(() => this.#writes.delete(tracked));
    if (deadline < 0) {
      await writing.catch(mapWriteError);
      return true;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, deadline - now()));
    });
    const done = writing.then(() => true as const, mapWriteError);
    done.catch(() => {}); // a failure after the deadline is nobody's business
    try {
      return await Promise.race([done, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // already closed
      }
    }
    await this.#pump;
    await Promise.all(this.#writes);
  }
}

/** A failed write on the connection, as the raw peer reports it: a reset. */
function mapWriteError(e: unknown): never {
  throw new WireError("reset", e instanceof Error ? e.message : String(e));
}
