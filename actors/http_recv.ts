/**
 * Reading an HTTP/1.1 head from a bytestream: a request, for a server that answers HTTP
 * itself before it attaches the WebSocket layer with `WS_NOHTTP` (libdill's
 * `http_recvrequest` and `http_recvfield` in one call), or a response, for a client
 * that speaks HTTP before its handshake (a proxy's answer to `CONNECT`; libdill's
 * `http_recvstatus`).
 *
 * @module
 */

import {
  blankLineStep,
  checkHttpLimits,
  HttpError,
  HttpHeadReader,
  type HttpLimits,
  type HttpRequestHead,
  type HttpResponseHead,
} from "../protocol/http11.ts";
import { DillError } from "../protocol/errors.ts";
import { brecvHead } from "./bytestream.ts";
import { type Handle, layerOf } from "./handle.ts";
import type { Deadline } from "./time.ts";

/**
 * Receives one HTTP/1.1 request head from the bytestream `h` and takes no byte beyond
 * it: what the client sent after the head (its first WebSocket frames, say) stays in the
 * stream for the next layer. The head is checked as its bytes arrive (a client that
 * does not speak HTTP fails at its first read), under the limits of `limits` (default
 * 8 KiB and 64 header fields), and the deadline bounds the whole head, so a client that
 * trickles bytes cannot hold the call longer. It asks the stream for what has arrived,
 * but never past the head's blank line.
 *
 * A bad or oversized head fails with an `HttpError` whose `status` is the answer to
 * send (`writeHttpErrorResponse(e.status, e.message)`) before closing; `EPROTO` for
 * malformed input, `EMSGSIZE` for an exceeded limit. Failures of the bytestream are
 * those of `brecv` (`ETIMEDOUT`, `EPIPE` when the client closed, `ECONNRESET`...).
 * After any failure the stream is left mid-head: close it. A head takes several reads
 * from the stream: a second `httpRecvRequest` or `httpRecvResponse` on `h` while one
 * runs fails with `EBUSY`, and other receives on `h` must wait for it (a `brecv` made
 * meanwhile would take bytes of the head).
 *
 * @param h a bytestream handle (TCP, TLS, IPC)
 * @param deadline when to give up, as with every blocking call
 * @param limits the head's size limits
 * @returns the request head: method, target, version and headers
 * @throws {HttpError} for a head that is malformed or too large
 * @throws {DillError} `EINVAL` for an invalid limit or deadline, `EBUSY` while a head is
 *   being read from `h` already, and `brecv`'s errors
 *
 * @example
 * ```ts
 * import { bsend, hclose, httpRecvRequest, ipcPair, now } from "../mod.ts";
 *
 * const [server, client] = ipcPair();
 * await bsend(client, new TextEncoder().encode("GET /chat HTTP/1.1\r\nHost: a.example\r\n\r\n"), -1);
 * const head = await httpRecvRequest(server, now() + 1000);
 * console.log(head.method, head.target, head.headers.get("host")); // GET /chat a.example
 * hclose(server);
 * hclose(client);
 * ```
 */
export function httpRecvRequest(
  h: Handle,
  deadline: Deadline,
  limits: HttpLimits = {},
): Promise<HttpRequestHead> {
  return recvHead(h, "request", deadline, limits, "httpRecvRequest");
}

/**
 * Receives one HTTP/1.1 response head from the bytestream `h` and takes no byte beyond
 * it, as {@link httpRecvRequest} does for a request: for a client that speaks HTTP on
 * the stream before anything else, such as a tunnel through a proxy (`CONNECT`), before
 * `wsAttachClient` runs its own handshake on the same stream. A bad or oversized head
 * fails with an `HttpError` (its `status` says what was wrong; nobody answers it).
 *
 * @param h a bytestream handle (TCP, TLS, IPC)
 * @param deadline when to give up, as with every blocking call
 * @param limits the head's size limits
 * @returns the response head: version, status, reason and headers
 * @throws {HttpError} for a head that is malformed or too large
 * @throws {DillError} `EINVAL` for an invalid limit or deadline, `EBUSY` while a head is
 *   being read from `h` already, and `brecv`'s errors
 *
 * @example
 * ```ts
 * import { bsend, hclose, httpRecvResponse, ipcPair, now } from "../mod.ts";
 *
 * const [proxy, client] = ipcPair();
 * await bsend(proxy, new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"), -1);
 * const answer = await httpRecvResponse(client, now() + 1000);
 * console.log(answer.status, answer.reason); // 200 Connection established
 * hclose(proxy);
 * hclose(client);
 * ```
 */
export function httpRecvResponse(
  h: Handle,
  deadline: Deadline,
  limits: HttpLimits = {},
): Promise<HttpResponseHead> {
  return recvHead(h, "response", deadline, limits, "httpRecvResponse");
}

/**
 * Handles a head is being read from. A head takes several receives from the stream, and
 * a second head read between them would take bytes from the middle of the first.
 */
const readingHead = new WeakSet<Handle>();

async function recvHead<K extends "request" | "response">(
  h: Handle,
  kind: K,
  deadline: Deadline,
  limits: HttpLimits,
  op: string,
): Promise<K extends "request" ? HttpRequestHead : HttpResponseHead> {
  // One byte more than a head may have: past that the reader has failed already.
  const most = checkHttpLimits(op, limits).maxHeadBytes + 1;
  layerOf(h, op, "bytestream"); // EBADF for anything but a handle, before the set sees it
  if (readingHead.has(h)) {
    throw new DillError("EBUSY", `${op}: a head is already being read from ${h}`);
  }
  readingHead.add(h);
  try {
    return await readHead(h, kind, deadline, limits, op, most);
  } finally {
    readingHead.delete(h);
  }
}

async function readHead<K extends "request" | "response">(
  h: Handle,
  kind: K,
  deadline: Deadline,
  limits: HttpLimits,
  op: string,
  most: number,
): Promise<K extends "request" ? HttpRequestHead : HttpResponseHead> {
  const reader = new HttpHeadReader(kind, limits);
  let fed = 0;
  let matched = 0; // bytes of the final CR LF CR LF the bytes fed so far end with
  for (;;) {
    // What has arrived, but nothing past the blank line: the rest stays in the stream.
    const bytes = await brecvHead(h, most - fed, matched, deadline, op);
    fed += bytes.length;
    const done = reader.feed(bytes);
    if (done !== null) return done.head;
    if (fed >= most) {
      // The reader fails a head past its limit before this; never ask for 0 bytes.
      throw new HttpError("EMSGSIZE", 431, `${op}: head over ${most - 1} bytes`);
    }
    for (const b of bytes) matched = blankLineStep(matched, b);
  }
}
