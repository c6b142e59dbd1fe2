/**
 * The transport under a TLS bytestream from `tlsAccept`: a `Deno.TlsConn`, read ahead
 * into shared arenas. A `TlsConn` read returns at most one TLS record (16 KiB of
 * plaintext), so a 16 KiB WebSocket message always spans two reads, and a 1 MiB one
 * sixty-five. Reading each record into the next bytes of one arena, and handing the
 * records read meanwhile over as one contiguous chunk (`readChunks`), lets the layer
 * above take most messages in place, without assembling them from pieces, and spares
 * a buffer allocation per record.
 *
 * @module
 */

import type { Transport } from "./transport.ts";

const KIB = 1024;
/** The most plaintext one TLS record (and so one `TlsConn` read) carries. */
const RECORD_MAX = 16 * KIB;
/** Arena of a connection with bulk traffic. */
const BIG_ARENA = 256 * KIB;
/** Arena of a connection with small or no traffic (an idle one's pending read pins it). */
const SMALL_ARENA = 4 * KIB;
/** A read this short switches to small arenas; one that fills its buffer, to big ones. */
const SMALL_READ = 1 * KIB;

/**
 * A `Deno.TlsConn` as a {@link Transport} that reads ahead, at most `readAhead` bytes
 * beyond what was handed over. One read is in flight while there is room.
 *
 * @example
 * ```ts
 * import { TlsConnTransport } from "./tls_conn_transport.ts";
 *
 * function wrap(conn: Deno.TlsConn) {
 *   return new TlsConnTransport(conn, 256 * 1024);
 * }
 * ```
 */
export class TlsConnTransport implements Transport {
  readonly #conn: Deno.TlsConn;
  readonly #readAhead: number;
  #arena = new Uint8Array(0);
  #used = 0;
  #big = false;
  /** Chunks read and not yet handed over; contiguous reads are merged. */
  #ready: Uint8Array[] = [];
  #readyBytes = 0;
  #reading = false;
  #ended = false;
  #failure: { error: unknown } | null = null;
  #closed = false;
  #waiter: PromiseWithResolvers<Uint8Array[] | null> | null = null;

  /**
   * @param conn the connection, whose handshake completed
   * @param readAhead bytes read ahead of the layer above before reading pauses
   */
  constructor(conn: Deno.TlsConn, readAhead: number) {
    this.#conn = conn;
    this.#readAhead = Math.max(readAhead, RECORD_MAX);
    this.#pump();
  }

  /** Every chunk read so far (waiting for one if there is none); `null` at the end. */
  readChunks(): Promise<Uint8Array[] | null> {
    if (this.#readyBytes > 0) {
      const chunks = this.#ready;
      this.#ready = [];
      this.#readyBytes = 0;
      this.#pump();
      return Promise.resolve(chunks);
    }
    if (this.#closed) return Promise.reject(closedError());
    if (this.#failure) return Promise.reject(this.#failure.error);
    if (this.#ended) return Promise.resolve(null);
    if (this.#waiter) return Promise.reject(new Error("TlsConnTransport: one read at a time"));
    this.#waiter = Promise.withResolvers();
    this.#pump();
    return this.#waiter.promise;
  }

  /** Reads into `buf` (what does not fit stays for the next read). */
  async read(buf: Uint8Array): Promise<number | null> {
    const chunks = await this.readChunks();
    if (chunks === null) return null;
    let n = 0;
    let i = 0;
    for (; i < chunks.length && n < buf.length; i++) {
      const take = Math.min(chunks[i].length, buf.length - n);
      buf.set(chunks[i].subarray(0, take), n);
      n += take;
      if (take < chunks[i].length) {
        chunks[i] = chunks[i].subarray(take);
        break;
      }
    }
    const rest = chunks.slice(i);
    if (rest.length > 0) {
      this.#ready.unshift(...rest);
      for (const c of rest) this.#readyBytes += c.length;
    }
    return n;
  }

  write(buf: Uint8Array): Promise<number> {
    return this.#conn.write(buf);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready = [];
    this.#readyBytes = 0;
    // A read waiting here fails as one on the connection itself would.
    this.#waiter?.reject(closedError());
    this.#waiter = null;
    this.#conn.close();
  }

  #pump(): void {
    if (this.#reading || this.#ended || this.#failure || this.#closed) return;
    if (this.#readyBytes >= this.#readAhead) return;
    const size = this.#big ? BIG_ARENA : SMALL_ARENA;
    const room = this.#arena.length - this.#used;
    if (room < (this.#big ? RECORD_MAX : SMALL_READ) || this.#arena.length > size) {
      this.#arena = new Uint8Array(size);
      this.#used = 0;
    }
    const buf = this.#arena.subarray(this.#used);
    this.#reading = true;
    this.#conn.read(buf).then(
      (n) => this.#readDone(buf, n),
      (error) => this.#readFailed(error),
    );
  }

  #readDone(buf: Uint8Array, n: number | null): void {
    this.#reading = false;
    if (this.#closed) return;
    if (n === null) {
      this.#ended = true;
    } else {
      if (buf.buffer === this.#arena.buffer) this.#used += n;
      if (n === buf.length || n >= 8 * KIB) this.#big = true;
      else if (n < SMALL_READ) this.#big = false;
      this.#add(buf.subarray(0, n));
    }
    this.#wake();
    this.#pump();
  }

  #readFailed(error: unknown): void {
    this.#reading = false;
    if (this.#closed) return;
    this.#failure = { error };
    this.#wake();
  }

  /** Appends a chunk read, merged with the previous one when it follows it in memory. */
  #add(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#readyBytes += chunk.length;
    const last = this.#ready.at(-1);
    if (
      last && last.buffer === chunk.buffer && last.byteOffset + last.length === chunk.byteOffset
    ) {
      this.#ready[this.#ready.length - 1] = new Uint8Array(
        last.buffer,
        last.byteOffset,
        last.length + chunk.length,
      );
    } else {
      this.#ready.push(chunk);
    }
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    if (this.#readyBytes === 0 && !this.#ended && !this.#failure) return;
    this.#waiter = null;
    if (this.#readyBytes > 0) {
      const chunks = this.#ready;
      this.#ready = [];
      this.#readyBytes = 0;
      waiter.resolve(chunks);
      this.#pump();
    } else if (this.#failure) {
      waiter.reject(this.#failure.error);
    } else {
      waiter.resolve(null);
    }
  }
}

function closedError(): Error {
  return new Deno.errors.BadResource("the TLS connection was closed");
}
