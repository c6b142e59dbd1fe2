/**
 * Echo server on our stack: tcpListen/tcpAccept, wsAttachServer over TCP, and one
 * async task per connection echoing each message with its type (wsRecv/wsSend).
 * With `--tls <cert.pem> <key.pem>`: tcpAccept → tlsAttachServer → wsAttachServer
 * (wss). With `--tls-listen <cert.pem> <key.pem>`: tlsListen/tlsAccept (Deno's own
 * TLS) → wsAttachServer (wss, the native fast path). With `--send-buffer <bytes>`: the
 * accepted sockets get that `sendBuffer` (sends complete once queued while that many
 * bytes fit). With `--recv-buffer <bytes>`: each connection receives every message
 * into one buffer of that size, made once (`wsRecv(h, buf, deadline)`). Prints its port
 * when ready.
 *
 * @module
 */

import {
  type Handle,
  isDillError,
  tcpListen,
  tcpLocalAddr,
  tlsAccept,
  tlsListen,
} from "../../mod.ts";
import { acceptEach, echoConnection } from "../../tests/helpers/echo_server.ts";
import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";
import { tlsFromArgs } from "./tls_args.ts";

const endings = new Endings();
const tls = tlsFromArgs(Deno.args);
const nativeTls = tlsFromArgs(Deno.args, "--tls-listen");
const sendBufferAt = Deno.args.indexOf("--send-buffer");
const sendBuffer = sendBufferAt >= 0 ? Number(Deno.args[sendBufferAt + 1]) : 0;
const recvBufferAt = Deno.args.indexOf("--recv-buffer");
const recvBuffer = recvBufferAt >= 0 ? Number(Deno.args[recvBufferAt + 1]) : undefined;
const ended = (e: unknown) => endings.add(isDillError(e) ? e.code : String(e));

const addr = { hostname: "127.0.0.1", port: 0 };
const listener = nativeTls ? await tlsListen(addr, nativeTls) : tcpListen(addr);
exitOnStdinEnd(endings);
announcePort(tcpLocalAddr(listener).port);
if (nativeTls) {
  // TLS is already on each accepted handle: the echo attaches only the WebSocket layer.
  for (;;) {
    let s: Handle;
    try {
      s = (await tlsAccept(listener, -1, { sendBuffer })).handle;
    } catch (e) {
      if (isDillError(e, "ECANCELED") || isDillError(e, "EBADF")) break; // closed
      throw e;
    }
    echoConnection(s, { tls: null, sendTimeout: -1, ended });
  }
} else {
  await acceptEach(
    listener,
    (tcp) =>
      echoConnection(tcp, { tls, tlsOptions: { sendBuffer }, sendTimeout: -1, recvBuffer, ended }),
    { sendBuffer },
  );
}
