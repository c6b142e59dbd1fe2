/**
 * The README's echo example, as written there, run as its own process. Only the port
 * differs: `PORT` (0 picks a free one), printed on stdout once listening.
 *
 * @module
 */

import {
  type Handle,
  hclose,
  now,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  wsAttachServer,
  wsRecv,
  wsSend,
} from "../../mod.ts";

async function echo(tcp: Handle) {
  const { handle: ws } = await wsAttachServer(tcp, 0, now() + 5000); // handshake, then messages
  try {
    for (;;) {
      const message = await wsRecv(ws, -1); // text or binary, as the client sent it
      await wsSend(ws, message.type, message.data, now() + 5000);
    }
  } catch {
    /* EPIPE: the client closed (wsStatus(ws) tells how) */
  } finally {
    hclose(ws); // closes the WebSocket layer and the TCP connection beneath
  }
}
const listener = tcpListen({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT") ?? 0) });
console.log(tcpLocalAddr(listener).port);
for (;;) echo((await tcpAccept(listener, -1)).handle).catch(console.error); // a task per client
