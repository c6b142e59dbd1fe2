/**
 * The bytestream calls: `bsend`/`brecv` and their scatter/gather forms. They move
 * exactly the bytes asked for, or fail; there is no partial send or receive.
 *
 * @module
 */

import { call } from "./actor.ts";
import { checkByteList, checkBytes, checkDeadline } from "./args.ts";
import { type Handle, layerOf } from "./handle.ts";
import { Request } from "./request.ts";
import type { ByteStream, StreamMsg } from "./stream.ts";
import type { Deadline } from "./time.ts";

/**
 * Sends all of `buf`. Resolves once every byte was written to the layer beneath (the
 * OS socket, the peer end of an in-memory pair, or, over TLS, once the ciphertext
 * was), as libdill's `bsend` returns once the kernel took the bytes: a close right
 * after it loses nothing, and a failure to write fails this call. Sends made together
 * (before the running code awaits) still share one write. With deadline `0` the write
 * must complete without waiting for the peer (there is room in the socket buffer);
 * otherwise it fails with `ETIMEDOUT` and, as after any failed send, the socket can
 * no longer send.
 *
 * @example
 * ```ts
 * import { bsend, hclose, ipcPair, now } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new Uint8Array([1, 2, 3]), now() + 1000);
 * hclose(a);
 * hclose(b);
 * ```
 */
export function bsend(h: Handle, buf: Uint8Array, deadline: Deadline): Promise<void> {
  try {
    checkBytes("bsend", buf);
    return sendList(h, "bsend", [buf], deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Sends all the buffers in order, as one contiguous stream of bytes; resolves once
 * they were written, like {@link bsend}.
 *
 * @example
 * ```ts
 * import { bsendl, hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsendl(a, [new Uint8Array([1]), new Uint8Array([2, 3])], -1);
 * hclose(a);
 * hclose(b);
 * ```
 */
export function bsendl(h: Handle, bufs: Uint8Array[], deadline: Deadline): Promise<void> {
  try {
    checkByteList("bsendl", bufs);
    return sendList(h, "bsendl", bufs, deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Fills `buf` exactly. Fails with `EPIPE` if the peer closed cleanly first and
 * `ECONNRESET` if the connection broke. Resolves to `buf`.
 *
 * @example
 * ```ts
 * import { brecv, bsend, hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new Uint8Array([7, 8]), -1);
 * console.log(await brecv(b, new Uint8Array(2), -1)); // Uint8Array(2) [ 7, 8 ]
 * hclose(a);
 * hclose(b);
 * ```
 */
export function brecv(h: Handle, buf: Uint8Array, deadline: Deadline): Promise<Uint8Array> {
  try {
    checkBytes("brecv", buf);
    return recvList(h, "brecv", [buf], deadline).then(() => buf);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Fills every buffer of `bufs` exactly, in order.
 *
 * @example
 * ```ts
 * import { brecvl, bsend, hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new Uint8Array([1, 2, 3]), -1);
 * const [x, y] = [new Uint8Array(1), new Uint8Array(2)];
 * await brecvl(b, [x, y], -1);
 * hclose(a);
 * hclose(b);
 * ```
 */
export function brecvl(h: Handle, bufs: Uint8Array[], deadline: Deadline): Promise<void> {
  try {
    checkByteList("brecvl", bufs);
    return recvList(h, "brecvl", bufs, deadline);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Receives the bytes that have arrived (waiting for at least one), at most `max`, but
 * none past the first blank line (CR LF CR LF, the end of an HTTP head); `matched`: how
 * many bytes of CR LF CR LF the bytes received before ended with. For the HTTP reader
 * (`httpRecvRequest`), which must not take a byte of what follows the head; fails as
 * `brecv` does, naming `op`.
 *
 * @example
 * ```ts
 * import { brecvHead } from "./bytestream.ts";
 * import { bsend, hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * await bsend(a, new TextEncoder().encode("GET / HTTP/1.1\r\n\r\nrest"), -1);
 * console.log((await brecvHead(b, 100, 0, -1)).length); // 18
 * hclose(a);
 * hclose(b);
 * ```
 */
export function brecvHead(
  h: Handle,
  max: number,
  matched: number,
  deadline: Deadline,
  op = "brecvHead",
): Promise<Uint8Array> {
  try {
    checkDeadline(op, deadline);
    const layer = layerOf<ByteStream>(h, op, "bytestream");
    const req = new Request<Uint8Array>(op, deadline);
    layer.send({ kind: "recvHead", max, matched, req });
    return req.promise;
  } catch (e) {
    return Promise.reject(e);
  }
}

function sendList(h: Handle, op: string, chunks: Uint8Array[], deadline: Deadline): Promise<void> {
  checkDeadline(op, deadline);
  const layer = layerOf<ByteStream>(h, op, "bytestream");
  return call<void, StreamMsg>(layer, op, deadline, (req) => ({ kind: "send", chunks, req }));
}

function recvList(h: Handle, op: string, bufs: Uint8Array[], deadline: Deadline): Promise<void> {
  checkDeadline(op, deadline);
  const layer = layerOf<ByteStream>(h, op, "bytestream");
  return call<void, StreamMsg>(layer, op, deadline, (req) => ({ kind: "recv", bufs, req }));
}
