// Calibration server for wss, not a WebSocket implementation: Node's TLS (OpenSSL)
// with TCP_NODELAY, answering the upgrade request with a valid 101 and then sending
// every byte it receives straight back (socket.pipe(socket)). Its rate is the load
// client's own ceiling on wss. Prints its port when ready; exits when stdin closes.
// Usage: node bench/servers/reflector_tls.mjs --tls <cert.pem> <key.pem>
// (Node, not Deno: a `Deno.listenTls` connection cannot turn Nagle's algorithm off,
// and a reflector that writes each read back would then stall on delayed ACKs.)

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import process from "node:process";
import { createServer } from "node:tls";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const args = process.argv.slice(2);
const at = args.indexOf("--tls");
if (at < 0) throw new Error("usage: node reflector_tls.mjs --tls <cert.pem> <key.pem>");

const endings = {};
const add = (reason) => (endings[reason] = (endings[reason] ?? 0) + 1);
process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  process.stderr.write(`SUMMARY ${JSON.stringify({ endings })}\n`, () => process.exit(0));
});

const server = createServer({
  cert: readFileSync(args[at + 1]),
  key: readFileSync(args[at + 2]),
}, (socket) => {
  socket.setNoDelay(true);
  let head = Buffer.alloc(0);
  const onHead = (chunk) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    socket.off("data", onHead);
    const text = head.subarray(0, end).toString("latin1");
    const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? "";
    const accept = createHash("sha1").update(key + GUID).digest("base64");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const rest = head.subarray(end + 4);
    if (rest.length > 0) socket.write(rest);
    socket.pipe(socket);
  };
  socket.on("data", onHead);
  socket.on("end", () => add("eof"));
  socket.on("error", (e) => add(`error: ${e.code ?? e.message}`));
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
