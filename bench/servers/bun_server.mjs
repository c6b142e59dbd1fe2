// Echo server on Bun (`Bun.serve` with a `websocket` handler: uWebSockets inside).
// Prints its port when ready; exits when stdin closes, printing how connections
// ended to stderr. Runs only under Bun (bench/run.ts installs the binary from the
// npm package @oven/bun-linux-x64 into its cache directory).
// Usage: bun bench/servers/bun_server.mjs [--tls <cert.pem> <key.pem>]

import process from "node:process";

const args = process.argv.slice(2);
const tlsAt = args.indexOf("--tls");
const tls = tlsAt >= 0
  ? { cert: Bun.file(args[tlsAt + 1]), key: Bun.file(args[tlsAt + 2]) }
  : undefined;

const endings = {};
const add = (reason) => (endings[reason] = (endings[reason] ?? 0) + 1);

process.stderr.write(`INFO ${JSON.stringify({ bun: Bun.version })}\n`);
process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  process.stderr.write(`SUMMARY ${JSON.stringify({ endings })}\n`, () => process.exit(0));
});

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  tls,
  fetch(req, srv) {
    if (srv.upgrade(req)) return undefined;
    return new Response("WebSocket upgrade expected", { status: 426 });
  },
  websocket: {
    // Messages of the benchmark reach 1 MiB; keep Bun's limits well above them.
    maxPayloadLength: 64 * 1024 * 1024,
    backpressureLimit: 64 * 1024 * 1024,
    // The echo keeps the message type: a string for text, bytes for binary.
    message(ws, msg) {
      // 0: dropped (never expected at these windows); -1: queued under backpressure.
      if (ws.send(msg) === 0) add("send dropped");
    },
    close(_ws, code) {
      add(`close ${code}`);
    },
  },
});
process.stdout.write(`${server.port}\n`);
