/**
 * Echo server on Deno's built-in WebSocket server (`Deno.serve` +
 * `Deno.upgradeWebSocket`). Prints its port when ready.
 *
 * @module
 */

import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";

const endings = new Endings();
exitOnStdinEnd(endings);

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => announcePort(port),
}, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (e) => socket.send(e.data);
  socket.onerror = (e) => endings.add(`error: ${(e as ErrorEvent).message}`);
  socket.onclose = (e) => endings.add(`close ${e.code}`);
  return response;
});
