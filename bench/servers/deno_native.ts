/**
 * Echo server on Deno's built-in WebSocket server (`Deno.serve` +
 * `Deno.upgradeWebSocket`). With `--tls <cert.pem> <key.pem>`, `Deno.serve` gets
 * the certificate and key (wss). Prints its port when ready.
 *
 * @module
 */

import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";
import { tlsFromArgs } from "./tls_args.ts";

const endings = new Endings();
exitOnStdinEnd(endings);
const tls = tlsFromArgs(Deno.args);

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  ...(tls ?? {}),
  onListen: ({ port }) => announcePort(port),
}, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (e) => socket.send(e.data);
  socket.onerror = (e) => endings.add(`error: ${(e as ErrorEvent).message}`);
  socket.onclose = (e) => endings.add(`close ${e.code}`);
  return response;
});
