// Echo server on npm `ws` 8 running on Node. Prints its port when ready; exits when
// stdin closes, printing how connections ended to stderr.
// Usage: node bench/servers/ws_node.mjs <npm prefix> [--tls <cert.pem> <key.pem>]
// The prefix is where `npm install --prefix <dir> ws@8 bufferutil@4` ran. `ws` uses
// bufferutil (native masking) when it loads, unless WS_NO_BUFFER_UTIL is set (the
// pure-JS variant). With --tls, `ws` runs over a `node:https` server (wss).
// At start it prints `INFO {"masking": ...}` on stderr: which masking `ws` uses.

import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { createRequire } from "node:module";
import { join } from "node:path";
import process from "node:process";

const [prefix, ...rest] = process.argv.slice(2);
if (!prefix) throw new Error("usage: node ws_node.mjs <npm prefix> [--tls <cert> <key>]");
const require = createRequire(join(prefix, "index.js"));
const { WebSocketServer } = require("ws");

/** Which masking `ws` ends up with, decided the way ws/lib/buffer-util.js decides it. */
function masking() {
  if (process.env.WS_NO_BUFFER_UTIL) return "pure JavaScript (WS_NO_BUFFER_UTIL set)";
  try {
    const bu = require("bufferutil");
    const version = require("bufferutil/package.json").version;
    const native = /\[native code\]/.test(Function.prototype.toString.call(bu.mask));
    return native
      ? `bufferutil ${version}, native addon loaded`
      : `bufferutil ${version}, but its JavaScript fallback (no native addon)`;
  } catch (e) {
    return `pure JavaScript (bufferutil not loadable: ${e.message.split("\n")[0]})`;
  }
}
process.stderr.write(`INFO ${JSON.stringify({ masking: masking() })}\n`);

const endings = {};
const add = (reason) => (endings[reason] = (endings[reason] ?? 0) + 1);

process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  process.stderr.write(`SUMMARY ${JSON.stringify({ endings })}\n`, () => process.exit(0));
});

const tlsAt = rest.indexOf("--tls");
let server;
if (tlsAt >= 0) {
  const https = createServer({
    cert: readFileSync(rest[tlsAt + 1]),
    key: readFileSync(rest[tlsAt + 2]),
  });
  server = new WebSocketServer({ server: https });
  https.listen(0, "127.0.0.1", () => process.stdout.write(`${https.address().port}\n`));
} else {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("listening", () => process.stdout.write(`${server.address().port}\n`));
}
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("close", (code) => add(`close ${code}`));
  ws.on("error", (err) => add(`error: ${err.message}`));
});
