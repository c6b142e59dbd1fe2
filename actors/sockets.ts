/**
 * What TCP and Unix sockets share: wrapping a connection in a bytestream actor,
 * accepting, connecting within a deadline, and the clean close.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { call } from "./actor.ts";
import { abortError, checkDeadline } from "./args.ts";
import { type Handle, hclose, layerOf, openHandle, takeLayer } from "./handle.ts";
import { ListenerActor, type ListenerMsg } from "./listener.ts";
import { ByteStream, type StreamMsg } from "./stream.ts";
import type { StreamOptions } from "./stream_options.ts";
import { type Deadline, MAX_TIMER_MS, remaining, signalOf } from "./time.ts";
import type { Transport } from "./transport.ts";
import { addressError } from "./transport.ts";

/**
 * Wraps a connected transport in a bytestream actor and returns its handle.
 *
 * @example
 * ```ts
 * import { streamHandle } from "./sockets.ts";
 * import { pipePair } from "./pipe.ts";
 * import { hclose } from "./handle.ts";
 *
 * const [a, b] = pipePair();
 * const h = streamHandle(a, "pipe");
 * hclose(h);
 * b.close();
 * ```
 */
export function streamHandle(conn: Transport, label: string, options?: StreamOptions): Handle {
  return openHandle(new ByteStream(label, conn, options), label);
}

/**
 * Waits for a connection on a listener handle.
 *
 * @example
 * ```ts
 * import { acceptConn, listenerHandle } from "./sockets.ts";
 * import { hclose, } from "./handle.ts";
 * import { now } from "./time.ts";
 *
 * const ls = listenerHandle(Deno.listen({ hostname: "127.0.0.1", port: 0 }), "tcp", 8);
 * await acceptConn(ls, "tcpAccept", now() + 10).catch((e) => console.log(e.code)); // ETIMEDOUT
 * hclose(ls);
 * ```
 */
export function acceptConn(listener: Handle, op: string, deadline: Deadline): Promise<Deno.Conn> {
  try {
    checkDeadline(op, deadline);
    const layer = layerOf<ListenerActor>(listener, op, "listener");
    if (!(layer instanceof ListenerActor)) {
      // A tlsListen listener hands out finished TLS connections, through tlsAccept only.
      throw new DillError("ENOTSUP", `${op}: ${listener} is a TLS listener; use tlsAccept`);
    }
    return call<Deno.Conn, ListenerMsg>(layer, op, deadline, (req) => ({ kind: "accept", req }));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Wraps a `Deno.Listener` in a listener actor and returns its handle. `maxConnections`
 * (default: no bound) pauses accepting while that many accepted connections are open.
 *
 * @example
 * ```ts
 * import { listenerHandle } from "./sockets.ts";
 * import { hclose } from "./handle.ts";
 *
 * hclose(listenerHandle(Deno.listen({ hostname: "127.0.0.1", port: 0 }), "tcp", 8));
 * ```
 */
export function listenerHandle(
  listener: Deno.Listener,
  label: string,
  backlog: number,
  maxConnections = Infinity,
): Handle {
  const name = `${label} listener`;
  return openHandle(new ListenerActor(name, listener, backlog, maxConnections), name);
}

/**
 * The address a listener handle is bound to.
 *
 * @example
 * ```ts
 * import { listenerAddr, listenerHandle } from "./sockets.ts";
 * import { hclose } from "./handle.ts";
 *
 * const h = listenerHandle(Deno.listen({ hostname: "127.0.0.1", port: 0 }), "tcp", 8);
 * console.log((listenerAddr(h, "demo") as Deno.NetAddr).hostname); // "127.0.0.1"
 * hclose(h);
 * ```
 */
export function listenerAddr(h: Handle, op: string): Deno.Addr {
  return layerOf<ListenerActor>(h, op, "listener").addr;
}

/**
 * Runs a connect within a deadline: on timeout the attempt is aborted and a late
 * connection is closed, so nothing leaks.
 *
 * @example
 * ```ts
 * import { connectWithin } from "./sockets.ts";
 * import { now } from "./time.ts";
 *
 * await connectWithin("tcpConnect", now() + 100, (signal) =>
 *   Deno.connect({ hostname: "127.0.0.1", port: 1, signal })
 * ).catch((e) => console.log(e.code)); // ECONNREFUSED
 * ```
 */
export async function connectWithin(
  op: string,
  deadline: Deadline,
  connect: (signal: AbortSignal) => Promise<Deno.Conn>,
): Promise<Deno.Conn> {
  checkDeadline(op, deadline);
  const left = remaining(deadline);
  if (left === 0) throw new DillError("ETIMEDOUT", `${op}: a connection cannot be made at once`);
  const abort = new AbortController();
  // The caller's signal aborts the attempt too, through a listener removed when the
  // attempt ends: `AbortSignal.any` would leave a dependent signal on a long-lived
  // signal (a server's shutdown signal) for every connect made with it.
  const signal = signalOf(deadline);
  const onAbort = () => abort.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await attemptWithin(op, left, abort, connect);
  } catch (e) {
    // An attempt the caller's signal ended is ECANCELED.
    throw signal?.aborted ? abortError(op, signal) : e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Runs one connect attempt for at most `left` ms (`abort` ends it early). */
async function attemptWithin(
  op: string,
  left: number,
  abort: AbortController,
  connect: (signal: AbortSignal) => Promise<Deno.Conn>,
): Promise<Deno.Conn> {
  let attempt: Promise<Deno.Conn>;
  try {
    attempt = connect(abort.signal);
  } catch (e) {
    throw addressError(op, e);
  }
  // A deadline beyond what a timer can wait (weeks away) is left to the kernel's own
  // connect timeout, which ends the attempt long before.
  if (left > MAX_TIMER_MS) {
    try {
      return await attempt;
    } catch (e) {
      throw addressError(op, e);
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expiry = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.ceil(left));
  });
  try {
    const winner = await Promise.race([attempt, expiry]);
    if (winner === "timeout") {
      abort.abort();
      attempt.then((conn) => conn.close(), () => {});
      throw new DillError("ETIMEDOUT", `${op}: no connection before the deadline`);
    }
    return winner;
  } catch (e) {
    throw addressError(op, e);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The clean close of a connection (libdill's `tcp_close`): flush, half-close, read
 * and drop input until the peer closes too. The handle is closed even on failure.
 * On a listener handle it is the same as {@link hclose}.
 *
 * @example
 * ```ts
 * import { closeCleanly, streamHandle } from "./sockets.ts";
 * import { pipePair } from "./pipe.ts";
 * import { now } from "./time.ts";
 *
 * const [a, b] = pipePair();
 * const [ha, hb] = [streamHandle(a, "pipe"), streamHandle(b, "pipe")];
 * await Promise.all([closeCleanly(ha, "close", now() + 1000), closeCleanly(hb, "close", now() + 1000)]);
 * ```
 */
export async function closeCleanly(h: Handle, op: string, deadline: Deadline): Promise<void> {
  checkDeadline(op, deadline);
  const layer = layerOf(h, op);
  if (layer.kind === "listener") return hclose(h);
  const stream = takeLayer<ByteStream>(h, op, "bytestream");
  try {
    await call<void, StreamMsg>(stream, op, deadline, (req) => ({ kind: "shutdown", req }));
  } finally {
    stream.close(new DillError("ECANCELED", `${h} was closed by ${op}`));
  }
}

/**
 * The half-close of a connection (libdill's `tcp_done`, `ipc_done`, `tls_done`): what
 * was sent is flushed, then the output is closed (a FIN; over TLS a `close_notify`).
 * Receiving goes on; later sends fail with `EPIPE`, as does a second half-close. The
 * peer receives everything sent before, then `EPIPE`. `kinds` are the stream labels
 * the call accepts (`ENOTSUP` for others, as libdill's calls check the handle type).
 *
 * @example
 * ```ts
 * import { halfClose, streamHandle } from "./sockets.ts";
 * import { pipePair } from "./pipe.ts";
 * import { hclose } from "./handle.ts";
 * import { now } from "./time.ts";
 *
 * const [a, b] = pipePair();
 * const h = streamHandle(a, "pipe");
 * await halfClose(h, "ipcDone", now() + 1000, ["pipe"]);
 * hclose(h);
 * b.close();
 * ```
 */
export function halfClose(
  h: Handle,
  op: string,
  deadline: Deadline,
  kinds: readonly string[],
): Promise<void> {
  try {
    checkDeadline(op, deadline);
    const stream = layerOf<ByteStream>(h, op, "bytestream");
    if (!kinds.includes(stream.name)) {
      throw new DillError("ENOTSUP", `${op}: ${h} is a ${stream.name} stream, not ${kinds[0]}`);
    }
    return call<void, StreamMsg>(
      stream,
      op,
      deadline,
      (req) => ({ kind: "done", req, once: true }),
    );
  } catch (e) {
    return Promise.reject(e);
  }
}
