/**
 * Async iteration over the messages of a WebSocket handle: `for await` ends when the
 * peer closes cleanly and throws on anything else.
 *
 * @module
 */

import { checkDeadline } from "./args.ts";
import type { Handle } from "./handle.ts";
import type { DeadlineOptions } from "./time.ts";
import { wsLayer } from "./ws_layer.ts";
import { type WsMessage, wsRecv } from "./ws_message_calls.ts";
import { DillError } from "../protocol/errors.ts";

/**
 * Yields every message received on `h` (text as a string, binary as bytes, like
 * `wsRecv`), one receive at a time: nothing is read ahead, so a slow loop leaves the
 * socket's own flow control in charge. The loop ends when the peer's close frame
 * arrives (`EPIPE`; `wsStatus(h)` then tells how it closed) and throws any other
 * failure. `signal` cancels the waiting receive (`ECANCELED`); `deadline` bounds each
 * receive. Leaving the loop early leaves the handle open: close it yourself (`using`).
 * Invalid options (`EINVAL`) and a handle that is not an open WebSocket (`EBADF`,
 * `ENOTSUP`) throw at the call.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, messages, wsAttachClient, wsAttachServer, wsDone, wsSend, WS_NOHTTP, WS_TEXT } from "@dill/ws";
 *
 * const [a, b] = ipcPair();
 * const [{ handle: s }, { handle: c }] = await Promise.all([
 *   wsAttachServer(a, WS_NOHTTP, -1),
 *   wsAttachClient(b, WS_NOHTTP, "", "", -1),
 * ]);
 * await wsSend(c, WS_TEXT, "one", -1);
 * await wsSend(c, WS_TEXT, "two", -1);
 * await wsDone(c, 1000, "", -1);
 * for await (const m of messages(s)) console.log(m.data); // one, two
 * hclose(s);
 * hclose(c);
 * ```
 */
export function messages(
  h: Handle,
  options: DeadlineOptions = {},
): AsyncGenerator<WsMessage, void, undefined> {
  // Checked at the call, not at the first step: the mistake shows where it was made.
  checkDeadline("messages", options);
  wsLayer(h, "messages");
  return receiveEach(h, options);
}

async function* receiveEach(
  h: Handle,
  options: DeadlineOptions,
): AsyncGenerator<WsMessage, void, undefined> {
  for (;;) {
    let m: WsMessage;
    try {
      m = await wsRecv(h, options);
    } catch (e) {
      if (e instanceof DillError && e.code === "EPIPE") return;
      throw e;
    }
    yield m;
  }
}
