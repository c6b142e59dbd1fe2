/**
 * An in-memory connected pair of transports, behaving like a socketpair: bounded
 * buffering, half-close, and a reset for the peer when one end closes with unread
 * input. It fails with the same `Deno.errors` a TCP connection would.
 *
 * @module
 */

import type { Transport } from "./transport.ts";

/** Default bytes one direction of a pipe buffers before the writer waits. */
export const DEFAULT_PIPE_CAPACITY = 64 * 1024;

interface Waiter<T> {
  readonly buf: Uint8Array;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One end of an in-memory pipe. Make both ends with {@link pipePair}.
 *
 * @example
 * ```ts
 * import { pipePair } from "./pipe.ts";
 *
 * const [a, b] = pipePair();
 * await a.write(new TextEncoder().encode("hi"));
 * const buf = new Uint8Array(2);
 * console.log(await b.read(buf)); // 2
 * a.close();
 * b.close();
 * ```
 */
export class PipeEnd implements Transport {
  #peer: PipeEnd | null = null;
  #inbound: Uint8Array[] = [];
  #inBytes = 0;
  #reader: Waiter<number | null> | null = null;
  #writer: Waiter<number> | null = null;
  #closed = false;
  #outputClosed = false;
  /** Set when the peer closed with our data unread, like a TCP reset. */
  #reset = false;

  /** @param capacity bytes this end buffers before the peer's writes wait */
  constructor(readonly capacity: number = DEFAULT_PIPE_CAPACITY) {}

  /** Connects two ends; used by {@link pipePair}. */
  static connect(a: PipeEnd, b: PipeEnd): void {
    a.#peer = b;
    b.#peer = a;
  }

  read(buf: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("pipe closed"));
    if (this.#reader) return Promise.reject(new Deno.errors.Busy("a read is already pending"));
    if (this.#inBytes > 0 || this.#atEnd()) return this.#readNow(buf);
    const { promise, resolve, reject } = Promise.withResolvers<number | null>();
    this.#reader = { buf, resolve, reject };
    return promise;
  }

  write(buf: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("pipe closed"));
    if (this.#outputClosed) return Promise.reject(new Deno.errors.BrokenPipe("output closed"));
    const peer = this.#peer!;
    if (this.#reset || peer.#closed) {
      return Promise.reject(new Deno.errors.ConnectionReset("the peer closed the pipe"));
    }
    if (buf.length === 0) return Promise.resolve(0);
    if (peer.#inBytes < peer.capacity) return Promise.resolve(this.#writeNow(buf));
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#writer = { buf, resolve, reject };
    return promise;
  }

  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("pipe closed"));
    this.#outputClosed = true;
    this.#peer!.#wakeReader();
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const peer = this.#peer!;
    if (this.#inBytes > 0) peer.#reset = true;
    this.#inbound = [];
    this.#inBytes = 0;
    const interrupted = new Deno.errors.Interrupted("pipe closed");
    this.#reader?.reject(interrupted);
    this.#writer?.reject(interrupted);
    this.#reader = this.#writer = null;
    peer.#wakeReader();
    peer.#wakeWriter();
  }

  #atEnd(): boolean {
    const peer = this.#peer!;
    return this.#reset || peer.#closed || peer.#outputClosed;
  }

  #readNow(buf: Uint8Array): Promise<number | null> {
    if (this.#inBytes === 0) {
      return this.#reset
        ? Promise.reject(new Deno.errors.ConnectionReset("the peer reset the pipe"))
        : Promise.resolve(null);
    }
    let n = 0;
    while (n < buf.length && this.#inbound.length > 0) {
      const chunk = this.#inbound[0];
      const take = Math.min(chunk.length, buf.length - n);
      buf.set(take === chunk.length ? chunk : chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#inbound.shift();
      else this.#inbound[0] = chunk.subarray(take);
    }
    this.#inBytes -= n;
    this.#peer!.#wakeWriter();
    return Promise.resolve(n);
  }

  /** Copies what fits into the peer's buffer, as a kernel would. */
  #writeNow(buf: Uint8Array): number {
    const peer = this.#peer!;
    const n = Math.min(buf.length, peer.capacity - peer.#inBytes);
    peer.#inbound.push(buf.slice(0, n));
    peer.#inBytes += n;
    peer.#wakeReader();
    return n;
  }

  #wakeReader(): void {
    const reader = this.#reader;
    if (!reader || (this.#inBytes === 0 && !this.#atEnd())) return;
    this.#reader = null;
    this.#readNow(reader.buf).then(reader.resolve, reader.reject);
  }

  #wakeWriter(): void {
    const writer = this.#writer;
    if (!writer) return;
    const peer = this.#peer!;
    if (peer.#closed || this.#reset) {
      this.#writer = null;
      writer.reject(new Deno.errors.ConnectionReset("the peer closed the pipe"));
    } else if (peer.#inBytes < peer.capacity) {
      this.#writer = null;
      writer.resolve(this.#writeNow(writer.buf));
    }
  }
}

/**
 * Makes two connected in-memory transports.
 *
 * @example
 * ```ts
 * import { pipePair } from "./pipe.ts";
 *
 * const [a, b] = pipePair(1024);
 * a.close();
 * b.close();
 * ```
 */
export function pipePair(capacity: number = DEFAULT_PIPE_CAPACITY): [PipeEnd, PipeEnd] {
  const a = new PipeEnd(capacity);
  const b = new PipeEnd(capacity);
  PipeEnd.connect(a, b);
  return [a, b];
}
