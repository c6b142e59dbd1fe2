/**
 * Reading an HTTP/1.1 request head from a bytestream, for a server that answers HTTP
 * itself before it attaches the WebSocket layer with `WS_NOHTTP` (libdill's
 * `http_recvrequest` and `http_recvfield` in one call).
 *
 * @module
 */

import { HttpHeadReader, type HttpLimits, type HttpRequestHead } from "../protocol/http11.ts";
import { brecv } from "./bytestream.ts";
import type { Handle } from "./handle.ts";
import type { Deadline } from "./time.ts";

const CR = 0x0d;
const LF = 0x0a;
/** A head ends with an empty line: CR LF CR LF (the reader accepts no bare LF). */
const HEAD_END = [CR, LF, CR, LF];

/**
 * Receives one HTTP/1.1 request head from the bytestream `h` and takes no byte beyond
 * it: what the client sent after the head (its first WebSocket frames, say) stays in the
 * stream for the next layer. The head is checked byte by byte as it arrives, under the
 * limits of `limits` (default 8 KiB and 64 header fields), and the deadline bounds the
 * whole head, so a client that trickles bytes cannot hold the call longer.
 *
 * A bad or oversized head fails with an `HttpError` whose `status` is the answer to
 * send (`writeHttpErrorResponse(e.status, e.message)`) before closing; `EPROTO` for
 * malformed input, `EMSGSIZE` for an exceeded limit. Failures of the bytestream are
 * those of `brecv` (`ETIMEDOUT`, `EPIPE` when the client closed, `ECONNRESET`...).
 * After any failure the stream is left mid-head: close it.
 *
 * @param h a bytestream handle (TCP, TLS, IPC)
 * @param deadline when to give up, as with every blocking call
 * @param limits the head's size limits
 * @returns the request head: method, target, version and headers
 * @throws {HttpError} for a head that is malformed or too large
 * @throws {DillError} `EINVAL` for an invalid limit or deadline, and `brecv`'s errors
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
export async function httpRecvRequest(
  h: Handle,
  deadline: Deadline,
  limits: HttpLimits = {},
): Promise<HttpRequestHead> {
  const reader = new HttpHeadReader("request", limits);
  const buf = new Uint8Array(HEAD_END.length);
  // How many bytes of HEAD_END the bytes read so far end with: the head cannot end before
  // the rest of HEAD_END arrives, so that many bytes can be asked for without reading past
  // it (four at a time inside a line, instead of one).
  let matched = 0;
  for (;;) {
    const chunk = buf.subarray(0, HEAD_END.length - matched);
    await brecv(h, chunk, deadline);
    const done = reader.feed(chunk);
    if (done !== null) return done.head;
    for (const b of chunk) matched = b === HEAD_END[matched] ? matched + 1 : b === CR ? 1 : 0;
  }
}
