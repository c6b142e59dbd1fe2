// Echo server on npm `ws` 8 running on Node (no bufferutil). Prints its port when
// ready; exits when stdin closes, printing how connections ended to stderr.
// Usage: node bench/servers/ws_node.mjs <dir where `npm install --prefix <dir> ws@8` ran>

import { createRequire } from "node:module";
import { join } from "node:path";
import process from "node:process";

const prefix = process.argv[2];
if (!prefix) throw new Error("usage: node ws_node.mjs <npm prefix holding node_modules/ws>");
const { WebSocketServer } = createRequire(join(prefix, "index.js"))("ws");

const endings = {};
const add = (reason) => (endings[reason] = (endings[reason] ?? 0) + 1);

process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  process.stderr.write(`SUMMARY ${JSON.stringify({ endings })}\n`, () => process.exit(0));
});

const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("listening", () => process.stdout.write(`${server.address().port}\n`));
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("close", (code) => add(`close ${code}`));
  ws.on("error", (err) => add(`error: ${err.message}`));
});
