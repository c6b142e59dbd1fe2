/**
 * Echo server on our stack: tcpListen/tcpAccept, wsAttachServer over TCP, and one
 * async task per connection echoing each message with its type (wsRecv/wsSend).
 * With `--tls <cert.pem> <key.pem>`: tcpAccept → tlsAttachServer → wsAttachServer
 * (wss). With `--send-buffer <bytes>`: the accepted sockets get that `sendBuffer` (sends
 * complete once queued while that many bytes fit). Prints its port when ready.
 *
 * @module
 */

import { isDillError, tcpListen, tcpLocalAddr } from "../../mod.ts";
import { acceptEach, echoConnection } from "../../tests/helpers/echo_server.ts";
import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";
import { tlsFromArgs } from "./tls_args.ts";

const endings = new Endings();
const tls = tlsFromArgs(Deno.args);
const sendBufferAt = Deno.args.indexOf("--send-buffer");
const sendBuffer = sendBufferAt >= 0 ? Number(Deno.args[sendBufferAt + 1]) : 0;
const ended = (e: unknown) => endings.add(isDillError(e) ? e.code : String(e));

const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
exitOnStdinEnd(endings);
announcePort(tcpLocalAddr(listener).port);
await acceptEach(
  listener,
  (tcp) => echoConnection(tcp, { tls, tlsOptions: { sendBuffer }, sendTimeout: -1, ended }),
  { sendBuffer },
);
