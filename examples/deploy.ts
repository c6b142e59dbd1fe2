/**
 * The echo app under `Deno.serve`, ready for Deno Deploy: it imports only
 * `@dill/ws/serve` (no raw sockets, no file reads, no subprocesses) and shuts down
 * gracefully on SIGINT, as Deploy asks before evicting an isolate: every WebSocket is
 * closed with 1001 (going away), then the server stops.
 *
 * Run: deno run --allow-net examples/deploy.ts [port]
 * (On Deno Deploy the port and hostname given to Deno.serve are not used.)
 *
 * @module
 */

import { hclose, wsUpgrade, WsUpgradeError } from "@dill/ws/serve";
import { echoApp } from "./echo_app.ts";

const shutdown = new AbortController();
const onSigint = () => shutdown.abort();
Deno.addSignalListener("SIGINT", onSigint);

const server = Deno.serve({
  port: Number(Deno.args[0] ?? 8000),
  hostname: "127.0.0.1",
  signal: shutdown.signal,
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}/`),
}, (request) => {
  if (request.headers.get("upgrade") === null) return new Response("a WebSocket echo server\n");
  try {
    const { response, handle } = wsUpgrade(request, 0, { shutdownSignal: shutdown.signal });
    echoApp(handle).catch(console.error).finally(() => hclose(handle));
    return response;
  } catch (e) {
    if (e instanceof WsUpgradeError) return e.response;
    throw e;
  }
});

await server.finished;
Deno.removeSignalListener("SIGINT", onSigint);
console.log("shut down");
