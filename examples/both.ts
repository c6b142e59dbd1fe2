/**
 * The same application function (`echoApp`) on both kinds of server at once: a raw
 * `tcpListen` server (our own handshake and framing) and `Deno.serve` (Deno's).
 *
 * Run: deno run --allow-net=127.0.0.1 examples/both.ts [tcpPort] [servePort]
 *
 * @module
 */

import { hclose, now, tcpAccept, tcpListen, wsAttachServer, wsUpgrade } from "@dill/ws";
import { echoApp } from "./echo_app.ts";

const tcpPort = Number(Deno.args[0] ?? 8081), servePort = Number(Deno.args[1] ?? 8082);

// Deno.serve: wsUpgrade gives the handle; the response goes back to Deno.
Deno.serve({ hostname: "127.0.0.1", port: servePort }, (request) => {
  const { response, handle } = wsUpgrade(request, 0);
  echoApp(handle).catch(console.error).finally(() => hclose(handle));
  return response;
});

// tcpListen: wsAttachServer runs the handshake on the raw connection.
const listener = tcpListen({ hostname: "127.0.0.1", port: tcpPort });
console.log(`tcpListen on ws://127.0.0.1:${tcpPort}/, Deno.serve on ws://127.0.0.1:${servePort}/`);
for (;;) {
  const { handle: tcp } = await tcpAccept(listener, -1);
  wsAttachServer(tcp, 0, now() + 5000)
    .then(({ handle }) => echoApp(handle).finally(() => hclose(handle)))
    .catch(console.error);
}
