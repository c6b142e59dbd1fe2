/**
 * Echo server on our stack: tcpListen/tcpAccept, wsAttachServer over TCP, and one
 * async task per connection echoing each message with its type (wsRecv/wsSend).
 * With `--tls <cert.pem> <key.pem>`: tcpAccept → tlsAttachServer → wsAttachServer
 * (wss). Prints its port when ready.
 *
 * @module
 */

import {
  hclose,
  isDillError,
  now,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  tlsAttachServer,
  WS_BINARY,
  wsAttachServer,
  wsRecv,
  wsSend,
} from "../../mod.ts";
import type { Handle } from "../../mod.ts";
import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";
import { tlsFromArgs } from "./tls_args.ts";

const endings = new Endings();
const tls = tlsFromArgs(Deno.args);

async function serve(tcp: Handle): Promise<void> {
  let h = tcp;
  try {
    if (tls) h = await tlsAttachServer(h, tls, now() + 5000);
    h = (await wsAttachServer(h, WS_BINARY, now() + 5000)).handle;
    for (;;) {
      const m = await wsRecv(h, -1);
      await wsSend(h, m.type, m.data, -1);
    }
  } catch (e) {
    endings.add(isDillError(e) ? e.code : String(e));
  } finally {
    hclose(h);
  }
}

const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
exitOnStdinEnd(endings);
announcePort(tcpLocalAddr(listener).port);
for (;;) {
  const { handle } = await tcpAccept(listener, -1);
  serve(handle);
}
