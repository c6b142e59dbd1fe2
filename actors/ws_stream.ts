/**
 * Web Streams over a message socket, shaped like the web's `WebSocketStream`:
 * `readable`, `writable`, `opened`, `closed` and `close({ closeCode, reason })`.
 * Backpressure goes through the streams: the readable pulls one receive at a time,
 * so a slow reader leaves messages in the socket (whose own flow control then stops
 * reading from the network), and a write resolves when the send does.
 *
 * @module
 */

import { encodeClosePayload, isSendableCloseCode } from "../protocol/close_codes.ts";
import { DillError, isDillError } from "../protocol/errors.ts";
import { checkAmount } from "../protocol/option_checks.ts";
import { type Handle, hclose, openHandle, takeLayer } from "./handle.ts";
import { MAX_TIMER_MS, now } from "./time.ts";
import { wsDone, wsStatus } from "./ws.ts";
import { wsLayer } from "./ws_layer.ts";
import { wsRecv, wsSend } from "./ws_message_calls.ts";
import { WS_BINARY, WS_TEXT } from "./ws_options.ts";

/** How to close: a status (default 1000) and a reason of at most 123 bytes. */
export interface WsCloseInfo {
  /** The close status, 1000 or 3000–4999 as in `WebSocketStream` (1000–4999 accepted). */
  closeCode?: number;
  /** The close reason. */
  reason?: string;
}

/** What `opened` resolves to, as in `WebSocketStream`. */
export interface WsStreamOpened {
  /** Received messages: text as strings, binary as bytes. */
  readable: ReadableStream<string | Uint8Array>;
  /**
   * Messages to send: a string is sent as text, bytes as binary (at run time any
   * `BufferSource`: a typed array or `DataView` sends the bytes it views); anything else
   * fails the write with `EINVAL`. Typed as what `readable` gives, plus `ArrayBuffer`, so
   * that `readable.pipeTo(writable)` type-checks.
   */
  writable: WritableStream<string | Uint8Array | ArrayBuffer>;
  /** The subprotocol, as given in the options (`""` when none). */
  protocol: string;
  /** Negotiated extensions (`""`). */
  extensions: string;
}

/** Options of {@link wsStream}. */
export interface WsStreamOptions {
  /** Messages the readable reads ahead of its reader. Default 1; 0 reads only on demand. */
  readableHighWaterMark?: number;
  /** Messages the writable queues before `writer.ready` waits. Default 1. */
  writableHighWaterMark?: number;
  /**
   * After `close()`, how long the peer has to answer before the handle is closed
   * (`closed` fails with `ETIMEDOUT`). If it answered but a reader holding the readable
   * has not read to the end by then, the rest moves into the readable's queue and
   * `closed` settles with the peer's status. Default 10 000 ms.
   */
  closeTimeout?: number;
  /** The subprotocol to report in `opened` (from the attach or upgrade result). */
  protocol?: string;
}

/** A `WebSocketStream`-shaped adapter returned by {@link wsStream}. */
export interface WsStream extends WsStreamOpened {
  /** Resolves at once: the handle is already open. */
  readonly opened: Promise<WsStreamOpened>;
  /**
   * Resolves with the peer's close status once the closing handshake is over; rejects
   * with the `DillError` when the connection failed.
   */
  readonly closed: Promise<{ closeCode: number; reason: string }>;
  /** Starts the closing handshake (once); `closed` tells when it is over. */
  close(info?: WsCloseInfo): void;
}

/**
 * Wraps a message-socket handle (from `wsAttachServer`, `wsAttachClient` or
 * `wsUpgrade`) in Web Streams shaped like `WebSocketStream`. The adapter takes the
 * socket over: `handle` is no longer valid (`EBADF`, as after `byteStreams`), and the
 * socket is closed once `closed` settles (after the closing handshake, a failure, or
 * `closeTimeout` after `close()`); a write after that fails with how it ended (`EPIPE`
 * after a clean close). Cancelling the readable or closing the
 * writable starts the closing handshake. Aborting the writable does too, and first
 * cancels a send still waiting for a peer that does not read (`ECANCELED`): the socket
 * can then send no more, so no close frame goes out, and `closed` fails once
 * `closeTimeout` has passed.
 *
 * @example
 * ```ts
 * import { ipcPair, wsAttachClient, wsAttachServer, WS_NOHTTP, wsStream } from "@dill/ws";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * const server = wsStream(s), client = wsStream(c);
 * const writer = client.writable.getWriter();
 * await writer.write("hello");
 * const reader = server.readable.getReader();
 * console.log((await reader.read()).value); // hello
 * reader.releaseLock();
 * client.close({ closeCode: 1000, reason: "bye" });
 * console.log(await server.closed); // { closeCode: 1000, reason: "bye" }
 * await client.closed;
 * ```
 */
export function wsStream(handle: Handle, options: WsStreamOptions = {}): WsStream {
  wsLayer(handle, "wsStream"); // EBADF for a closed handle, ENOTSUP for one that is not WebSocket
  const closeTimeout = options.closeTimeout ?? 10_000;
  const readAhead = options.readableHighWaterMark ?? 1;
  const writeAhead = options.writableHighWaterMark ?? 1;
  const limits = [
    ["closeTimeout", closeTimeout, MAX_TIMER_MS],
    ["readableHighWaterMark", readAhead, Infinity],
    ["writableHighWaterMark", writeAhead, Infinity],
  ] as const;
  for (const [name, v, max] of limits) checkAmount(`wsStream: option ${name}`, v, max, " ms");
  // The adapter takes the socket over: the caller's handle is no longer valid (EBADF), so
  // nothing else can take its messages or close it under the streams.
  const h = openHandle(takeLayer(handle, "wsStream"), "wsStream");
  const closed = Promise.withResolvers<{ closeCode: number; reason: string }>();
  closed.promise.catch(() => {}); // a failure nobody awaits is not an unhandled rejection
  let ended = false;
  /** Why the connection ended, for writes after it (EPIPE after a clean close). */
  let endedWith: unknown = null;
  let closing = false;
  let cancelled = false;
  /** The readable was closed or errored (its queue may still hold messages). */
  let readableEnded = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** When the peer's close is due after our `close()` (`Infinity` before). */
  let closeBy = Infinity;
  const noCloseInTime = () =>
    new DillError("ETIMEDOUT", `wsStream: no close from the peer within ${closeTimeout} ms`);

  /** The socket's input ended (or failed): settle `closed` and release the handle. */
  const finish = (error: unknown): void => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    const clean = isDillError(error, "EPIPE"); // the peer's close
    // Past closeBy, whatever ended the input (a drain receive that timed out, or one that
    // failed because of it) is the peer not closing in time.
    if (!clean && now() >= closeBy) error = noCloseInTime();
    // A reader still holding the readable learns the end from it, not from a closed handle.
    endReadable(error);
    endedWith = clean ? new DillError("EPIPE", "wsStream: the connection is closed") : error;
    try {
      if (clean) {
        const { status, reason } = wsStatus(h);
        closed.resolve({ closeCode: status, reason });
      } else closed.reject(error);
    } catch (e) {
      closed.reject(e);
    } finally {
      try {
        hclose(h);
      } catch { /* already closed by its owner */ }
    }
  };

  /** Ends the readable as the input ended: closed after `EPIPE`, errored otherwise. */
  const endReadable = (error: unknown): void => {
    if (cancelled || readableEnded) return;
    readableEnded = true;
    if (isDillError(error, "EPIPE")) controller.close();
    else controller.error(error);
  };

  /** Receives one message into the readable's queue; false once the input has ended. */
  const receiveOne = async (deadline: -1 | 0): Promise<boolean> => {
    try {
      const m = await wsRecv(h, deadline);
      if (!cancelled && !readableEnded) controller.enqueue(m.data);
      return true;
    } catch (e) {
      endReadable(e);
      finish(e);
      return false;
    }
  };
  /** Set while {@link handOver} moves the last messages into the readable's queue. */
  let handingOver: Promise<void> | null = null;
  /**
   * Moves what is still queued on the socket into the readable's queue, up to the end of
   * its input, as a `WebSocketStream` does once a connection ends: a reader that reads
   * slowly, or only later, loses nothing, and `closed` settles. `0` once the peer's close
   * has come (everything is queued already), `-1` when the connection failed (its end is
   * on the way).
   */
  const handOver = (deadline: -1 | 0): Promise<void> =>
    handingOver ??= (async () => {
      while (await receiveOne(deadline));
    })();

  let controller!: ReadableStreamDefaultController<string | Uint8Array>;
  const readable = new ReadableStream<string | Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull() {
      if (handingOver) return await handingOver;
      await receiveOne(-1);
    },
    cancel() {
      cancelled = true;
      close();
      // close() drains by itself when nobody holds the readable; one drain loop only.
      if (readable.locked) drain();
    },
  }, new CountQueuingStrategy({ highWaterMark: readAhead }));

  const writable = new WritableStream<string | Uint8Array | ArrayBuffer>({
    // An abort waits for the write in flight (the streams spec): the controller's signal,
    // aborted at once, cancels a send still waiting for a peer that does not read.
    async write(chunk, controller) {
      // The connection ended (and its handle was closed): a write meets that end.
      if (ended) throw endedWith;
      const until = { signal: controller.signal };
      try {
        if (typeof chunk === "string") return await wsSend(h, WS_TEXT, chunk, until);
        return await wsSend(h, WS_BINARY, bytesOf(chunk), until);
      } catch (e) {
        // The connection failed under the send: when nobody reads, nothing else would
        // reach the end of its input, settle `closed` and release the handle. (A bad chunk
        // leaves the connection as it was; an abort goes through close().)
        const failed = !(e instanceof DillError && (e.code === "EINVAL" || e.code === "ECANCELED"));
        if (failed && !readable.locked) void handOver(-1);
        throw e;
      }
    },
    close() {
      close();
    },
    abort() {
      close();
    },
  }, new CountQueuingStrategy({ highWaterMark: writeAhead }));

  /** Reads and drops messages until the peer's close, for a closing socket nobody reads. */
  let draining = false;
  const drain = (): void => {
    if (draining) return;
    draining = true;
    (async () => {
      for (;;) await wsRecv(h, { deadline: now() + closeTimeout });
    })().catch(finish);
  };

  const close = (info: WsCloseInfo = {}): void => {
    const code = info.closeCode ?? 1000;
    if (!isSendableCloseCode(code)) {
      throw new DillError(
        "EINVAL",
        `wsStream: closeCode must be a sendable code 1000-4999, not ${code}`,
      );
    }
    const reason = info.reason ?? "";
    // Refused here, as WebSocketStream does: wsDone would reject with nothing awaiting it,
    // and the stream would only fail closeTimeout later, without any close frame sent.
    if (typeof reason !== "string") {
      throw new DillError("EINVAL", "wsStream: reason must be a string");
    }
    try {
      encodeClosePayload(code, reason);
    } catch (e) {
      if (e instanceof DillError) throw new DillError(e.code, `wsStream: ${e.message}`);
      throw e;
    }
    if (closing || ended) return;
    closing = true;
    closeBy = now() + closeTimeout;
    wsDone(h, code, reason, -1).catch(() => {
      // Already closed or failed: the end shows on the receiving side.
    });
    timer = setTimeout(() => {
      timer = undefined;
      if (readable.locked && !cancelled && peerHasClosed(h)) void handOver(0);
      else finish(noCloseInTime());
    }, closeTimeout);
    if (!readable.locked) drain();
  };

  const opened: WsStreamOpened = {
    readable,
    writable,
    protocol: options.protocol ?? "",
    extensions: "",
  };
  return { ...opened, opened: Promise.resolve(opened), closed: closed.promise, close };
}

/** The bytes of a `BufferSource` written to the stream (a view of them, not a copy). */
function bytesOf(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) {
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  if (chunk instanceof ArrayBuffer || chunk instanceof SharedArrayBuffer) {
    return new Uint8Array(chunk);
  }
  throw new DillError(
    "EINVAL",
    `wsStream: the writable takes strings and BufferSources, not ${
      chunk === null ? "null" : typeof chunk
    }`,
  );
}

/** Whether the peer's close frame has arrived (messages sent before it may still be queued). */
function peerHasClosed(h: Handle): boolean {
  try {
    wsStatus(h);
    return true;
  } catch {
    return false; // EAGAIN: not yet (or the handle is gone)
  }
}
