/**
 * Web Streams over a bytestream handle (TCP, Unix socket, pipe, TLS), like
 * `Deno.Conn`'s `readable` and `writable`. The readable is fed by the bytestream
 * actor as bytes arrive, and pauses the actor's reads while the reader is behind; a
 * write resolves when the actor has the bytes (as `bsend` does).
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { checkAmount } from "../protocol/option_checks.ts";
import { call } from "./actor.ts";
import { checkBytes } from "./args.ts";
import { type Handle, takeLayer } from "./handle.ts";
import type { ByteStream, StreamEvent, StreamMsg } from "./stream.ts";
import { transportError } from "./transport.ts";

/** Options of {@link byteStreams}. */
export interface ByteStreamsOptions {
  /** Bytes the readable holds for a slow reader before the socket stops reading. Default 64 KiB. */
  readableHighWaterMark?: number;
  /** Bytes the writable queues before `writer.ready` waits. Default 64 KiB. */
  writableHighWaterMark?: number;
}

/** The two streams of a bytestream, as on `Deno.Conn`. */
export interface ByteStreams {
  /** Bytes received, in chunks as they arrive; ends when the peer closes its side. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to send; closing it half-closes the connection (the peer reads the end). */
  readonly writable: WritableStream<Uint8Array>;
}

/**
 * Turns a bytestream handle into a `readable` and a `writable`, like `Deno.Conn`. The
 * handle is taken over (using it afterwards fails with `EBADF`); the connection closes
 * once both streams are done (the readable ended or was cancelled, the writable
 * closed or aborted) or one of them failed. Aborting the writable cancels a write or
 * close still waiting for the peer (`ECANCELED`) and closes the connection, so it ends
 * even when the peer does not read. Chunks read may be views into a buffer
 * that small reads share: `slice()` one before transferring its `buffer`.
 *
 * @example
 * ```ts
 * import { byteStreams, ipcPair } from "@dill/ws";
 *
 * const [a, b] = ipcPair();
 * const left = byteStreams(a), right = byteStreams(b);
 * const writer = left.writable.getWriter();
 * await writer.write(new TextEncoder().encode("hello"));
 * await writer.close(); // half-close: the other side reads the end
 * console.log(await new Response(right.readable).text()); // hello
 * await right.writable.close();
 * await new Response(left.readable).text();
 * ```
 */
export function byteStreams(h: Handle, options: ByteStreamsOptions = {}): ByteStreams {
  const readAhead = options.readableHighWaterMark ?? 64 * 1024;
  const writeAhead = options.writableHighWaterMark ?? 64 * 1024;
  checkAmount("byteStreams: readableHighWaterMark", readAhead);
  checkAmount("byteStreams: writableHighWaterMark", writeAhead);
  const lower = takeLayer<ByteStream>(h, "byteStreams", "bytestream");
  let readDone = false, writeDone = false;
  const release = (error?: DillError) => {
    if (error) {
      if (!readDone) {
        readDone = true;
        controller.error(error);
      }
      return lower.close(error);
    }
    if (readDone && writeDone) {
      lower.close(new DillError("ECANCELED", `${h}: both of its streams are done`));
    }
  };

  let paused = false;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const consumer = {
    send(event: StreamEvent): void {
      if (readDone) return;
      switch (event.kind) {
        case "data":
          controller.enqueue(event.chunk);
          if ((controller.desiredSize ?? 0) <= 0 && !paused) {
            paused = true;
            lower.send({ kind: "pause" });
          }
          return;
        case "eof":
          readDone = true;
          controller.close();
          return release();
        case "fail":
          readDone = true;
          controller.error(event.error);
          return release(event.error);
      }
    },
  };
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      lower.send({ kind: "attach", consumer });
    },
    pull() {
      if (paused) {
        paused = false;
        lower.send({ kind: "resume" });
      }
    },
    cancel() {
      readDone = true;
      release();
    },
  }, { highWaterMark: readAhead, size: (chunk) => chunk.byteLength });

  let aborted!: AbortSignal;
  const writable = new WritableStream<Uint8Array>({
    // A write or close in flight holds up an abort until it settles (the streams spec):
    // the controller's signal, aborted at once, cancels the call beneath, so aborting works
    // even while the peer does not read.
    start(controller) {
      aborted = controller.signal;
    },
    // A failed write errors the writable without calling abort() (the streams spec): the
    // connection is released here, or nothing would ever close it.
    async write(chunk) {
      try {
        checkBytes("byteStreams", chunk, "a chunk written");
        await call<void, StreamMsg>(lower, "write", { signal: aborted }, (req) => ({
          kind: "send",
          chunks: [chunk],
          req,
        }));
      } catch (e) {
        writeDone = true;
        release(transportError("byteStreams", e));
        throw e;
      }
    },
    async close() {
      const until = { signal: aborted };
      try {
        await call<void, StreamMsg>(lower, "close", until, (req) => ({ kind: "done", req }));
      } finally {
        writeDone = true;
        release();
      }
    },
    abort() {
      writeDone = true;
      release(new DillError("ECANCELED", `${h}: its writable was aborted`));
    },
  }, {
    highWaterMark: writeAhead,
    // Anything but bytes counts 0 here, so that write() refuses it with EINVAL rather than
    // the strategy with a RangeError.
    size: (chunk) => chunk instanceof Uint8Array ? chunk.byteLength : 0,
  });
  return { readable, writable };
}
