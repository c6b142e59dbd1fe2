/**
 * Synchronous raw DEFLATE streams that stay open between calls: the engine under
 * permessage-deflate (RFC 7692).
 *
 * Why this engine (measured on Deno 2.9.6, 1 KiB JSON-like messages, one core):
 *
 * | engine                                                  | deflate per message |
 * | ------------------------------------------------------- | ------------------- |
 * | `node:zlib` handle, synchronous write with `Z_SYNC_FLUSH` | about 2 µs          |
 * | `node:zlib` stream, `write` + `flush(Z_SYNC_FLUSH)` (async) | about 11 µs      |
 * | `CompressionStream("deflate-raw")`, one per message     | about 54 µs         |
 *
 * `CompressionStream` cannot flush without ending its stream, so it cannot keep a
 * context between messages at all. The asynchronous `node:zlib` streams can, but every
 * message then waits for a callback, and the WS actor would need a queue per
 * connection to keep messages in order (the source of ordering bugs elsewhere).
 *
 * The public synchronous calls of `node:zlib` (`deflateRawSync`, `_processChunk`)
 * close their stream after one use, so this module drives the stream's native handle
 * directly: `writeSync(flush, input, inOffset, inLength, output, outOffset, outLength)`,
 * which leaves the bytes left in input and output in the stream's `_writeState` and
 * reports errors through `handle.onerror`, synchronously. That is how Node's own
 * synchronous helpers work, and Deno's polyfill keeps the same shape; a test pins it
 * (`tests/protocol_deflate.test.ts`), and construction fails with a clear `ENOTSUP` if a
 * future Deno changes it. Work per call is bounded by the caller: one message to
 * deflate (at most `maxMessageSize`), or one received chunk to inflate, whose output
 * stops at the caller's limit.
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { LazyModule } from "./lazy_module.ts";

/** `node:zlib`, imported by {@link loadZlib} (it costs start-up time: see lazy_module.ts). */
const zlibModule = new LazyModule("node:zlib", () => import("node:zlib"));

/**
 * Imports `node:zlib` once, for {@link SyncZlib}: awaited by whatever may need
 * compression before it makes one (the WebSocket attach calls, `PerMessageDeflate.ready`).
 *
 * @example
 * ```ts
 * import { loadZlib, SyncZlib } from "./zlib_sync.ts";
 *
 * await loadZlib();
 * new SyncZlib("inflate", { windowBits: 15 }).close();
 * ```
 */
export async function loadZlib(): Promise<void> {
  await zlibModule.load();
}

/** Whether {@link loadZlib} is done, so that a {@link SyncZlib} can be made now. */
export function zlibLoaded(): boolean {
  return zlibModule.loaded;
}

/** Bytes produced per native call; output is copied out of this shared buffer. */
const OUTPUT_STEP = 16 * 1024;

/** One scratch output buffer for the process: calls are synchronous, never nested. */
const scratch = new Uint8Array(OUTPUT_STEP);

/** zlib's flush modes (zlib.h): the same numbers in every zlib. */
const Z_NO_FLUSH = 0;
const Z_SYNC_FLUSH = 2;

/** The native handle's synchronous write, as Node's and Deno's zlib expose it. */
interface NativeZlib {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
  reset(): void;
  close(): void;
  onerror: (message: string, errno: number) => void;
}

/** Settings of a {@link SyncZlib}. */
export interface SyncZlibOptions {
  /** LZ77 window, 2^bits bytes: 8 to 15. */
  windowBits: number;
  /** Deflate only: memory for the match state, 1 to 9 (zlib's `memLevel`). */
  memLevel?: number;
  /** Deflate only: compression level, 0 to 9. */
  level?: number;
}

/**
 * What one {@link SyncZlib.write} did: `consumed` input bytes, `produced` output bytes,
 * and `ended` when the stream reached the end of a final block (BFINAL) and will not
 * take more input until {@link SyncZlib.reset}.
 */
export interface ZlibWrite {
  consumed: number;
  produced: number;
  ended: boolean;
}

/**
 * A raw DEFLATE compressor or decompressor whose state lives across calls, driven
 * synchronously.
 *
 * @example
 * ```ts
 * import { loadZlib, SyncZlib } from "./zlib_sync.ts";
 *
 * await loadZlib();
 * const deflater = new SyncZlib("deflate", { windowBits: 15, memLevel: 8, level: 6 });
 * const inflater = new SyncZlib("inflate", { windowBits: 15 });
 * const packed: Uint8Array[] = [];
 * deflater.write(new TextEncoder().encode("hello hello hello"), true, (c) => {
 *   packed.push(c.slice());
 *   return true;
 * });
 * const text: string[] = [];
 * for (const p of packed) {
 *   inflater.write(p, true, (c) => {
 *     text.push(new TextDecoder().decode(c));
 *     return true;
 *   });
 * }
 * console.log(text.join("")); // hello hello hello
 * deflater.close();
 * inflater.close();
 * ```
 */
export class SyncZlib {
  readonly #handle: NativeZlib;
  readonly #state: Uint32Array;
  #error: string | null = null;
  #closed = false;

  /**
   * @param mode `"deflate"` to compress, `"inflate"` to decompress
   * @param options window bits, and for deflate memory level and compression level
   * @throws {DillError} `ENOTSUP` when the runtime's `node:zlib` lacks the synchronous
   *   native write this module relies on, or {@link loadZlib} has not loaded it yet
   */
  constructor(mode: "deflate" | "inflate", options: SyncZlibOptions) {
    const zlib = zlibModule.get("permessage-deflate");
    const stream = mode === "deflate"
      ? zlib.createDeflateRaw({
        windowBits: options.windowBits,
        memLevel: options.memLevel,
        level: options.level,
      })
      : zlib.createInflateRaw({ windowBits: options.windowBits });
    // deno-lint-ignore no-explicit-any
    const internals = stream as any;
    const handle = internals._handle as NativeZlib | undefined;
    const state = internals._writeState as Uint32Array | undefined;
    if (
      typeof handle?.writeSync !== "function" || typeof handle.reset !== "function" ||
      !(state instanceof Uint32Array)
    ) {
      stream.destroy();
      throw new DillError("ENOTSUP", "node:zlib has no synchronous native write here");
    }
    // Only the handle is used from now on; the stream object is dropped.
    handle.onerror = (message) => {
      this.#error = message;
    };
    this.#handle = handle;
    this.#state = state;
  }

  /**
   * Runs `input` through the stream. With `flush`, everything is output (Z_SYNC_FLUSH:
   * a deflater then ends on an empty stored block, `00 00 ff ff`). Each output piece is
   * handed to `sink` as a view into a shared scratch buffer, valid only during the
   * call: copy it. `sink` returns `false` to stop early (the stream must then be reset).
   *
   * @param input the bytes to compress or decompress
   * @param flush whether to flush all output now
   * @param sink receives each output piece; `false` stops
   * @returns bytes consumed and produced, and whether a final block ended the stream
   * @throws {DillError} `EPROTO` with zlib's message for invalid compressed data; the
   *   stream must then be reset; `EBADF` after {@link SyncZlib.close}
   */
  write(input: Uint8Array, flush: boolean, sink: (chunk: Uint8Array) => boolean): ZlibWrite {
    if (this.#closed) throw new DillError("EBADF", "zlib stream is closed");
    const handle = this.#handle;
    const state = this.#state;
    const mode = flush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    let offset = 0;
    let left = input.length;
    let produced = 0;
    for (;;) {
      handle.writeSync(mode, input, offset, left, scratch, 0, OUTPUT_STEP);
      if (this.#error !== null) {
        const message = this.#error;
        this.#error = null;
        throw new DillError("EPROTO", `invalid deflate data: ${message}`);
      }
      const outLeft = state[0];
      const inLeft = state[1];
      const made = OUTPUT_STEP - outLeft;
      offset += left - inLeft;
      left = inLeft;
      produced += made;
      if (made > 0 && !sink(scratch.subarray(0, made))) {
        return { consumed: offset, produced, ended: false };
      }
      // Room left in the output means zlib had nothing more to give: all input was
      // used, or the stream ended at a final block with input left over.
      if (outLeft !== 0) return { consumed: offset, produced, ended: left > 0 };
    }
  }

  /** Forgets the stream's history, as if new (used between messages without context takeover). */
  reset(): void {
    if (this.#closed) return;
    this.#error = null;
    this.#handle.reset();
  }

  /** Frees the native state. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handle.close();
  }
}
