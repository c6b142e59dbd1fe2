/**
 * One application function for every server: it only sees a message-socket handle,
 * so it runs unchanged on a `tcpListen` + `wsAttachServer` server and under
 * `Deno.serve` + `wsUpgrade` (see `both.ts` and `deploy.ts`). It echoes every message
 * with its type until the client closes, then reports how the client closed.
 *
 * @module
 */

import { type Handle, messages, now, wsSend, wsStatus } from "@dill/ws/serve";

/** Echoes until the peer closes; resolves the peer's close status. */
export async function echoApp(ws: Handle): Promise<{ status: number; reason: string }> {
  for await (const m of messages(ws)) await wsSend(ws, m.type, m.data, now() + 5000);
  return wsStatus(ws);
}
