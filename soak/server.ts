/**
 * The server under soak: the README's echo example on one port and the same echo over
 * TLS (wss, with the test certificates) on another, in its own process. It reports
 * on a control channel: each line on stdin is a command, answered by one JSON line on
 * stdout.
 *
 * - `stats`: forces garbage collection (run with `--v8-flags=--expose-gc`), then
 *   `{ heap, heapTotal, rss, external, live, errors }`: JS heap used and reserved, resident set size, memory
 *   held by ArrayBuffers and other native objects (bytes), connections being served,
 *   and failed connections by error code. (The soak counts the server's descriptors
 *   itself, in `/proc/PID/fd`.)
 * - `quit`: closes both listeners and exits.
 *
 * It prints `{ "ws": port, "wss": port }` once listening.
 *
 * @module
 */

import { type Handle, hclose, isDillError, tcpListen, tcpLocalAddr } from "../mod.ts";
import { acceptEach, echoConnection } from "../tests/helpers/echo_server.ts";
import { SERVER } from "../tests/helpers/tls_fixtures.ts";

let live = 0;
const errors: Record<string, number> = {};

function count(e: unknown): void {
  const code = isDillError(e) ? e.code : "other";
  errors[code] = (errors[code] ?? 0) + 1;
}

/** The README's echo, counting the connections it serves and how they fail. */
async function echo(tcp: Handle, tls: boolean): Promise<void> {
  live++;
  try {
    await echoConnection(tcp, {
      tls: tls ? SERVER : null,
      sendTimeout: 5000,
      // EPIPE while echoing: the client closed; anything else is counted.
      ended: (e, stage) => {
        if (stage === "handshake" || !isDillError(e, "EPIPE")) count(e);
      },
    });
  } finally {
    live--;
  }
}

function stats(): Record<string, unknown> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the soak server with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) gc();
  const memory = Deno.memoryUsage();
  return {
    heap: memory.heapUsed,
    heapTotal: memory.heapTotal,
    rss: memory.rss,
    external: memory.external,
    live,
    errors: { ...errors },
  };
}

const ws = tcpListen({ hostname: "127.0.0.1", port: 0 });
const wss = tcpListen({ hostname: "127.0.0.1", port: 0 });
const serving = Promise.all([
  acceptEach(ws, (tcp) => echo(tcp, false)),
  acceptEach(wss, (tcp) => echo(tcp, true)),
]);
console.log(JSON.stringify({ ws: tcpLocalAddr(ws).port, wss: tcpLocalAddr(wss).port }));

let rest = "";
const decoder = new TextDecoder();
commands: for await (const chunk of Deno.stdin.readable) {
  rest += decoder.decode(chunk, { stream: true });
  for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
    const command = rest.slice(0, nl).trim();
    rest = rest.slice(nl + 1);
    if (command === "stats") console.log(JSON.stringify(stats()));
    else if (command === "quit") break commands;
    else console.log(JSON.stringify({ error: `unknown command ${command}` }));
  }
}
hclose(ws);
hclose(wss);
await serving;
