/**
 * Echo server on npm `ws` 8 running on Deno (no bufferutil). Prints its port when
 * ready. Needs `--allow-env` (ws reads a few variables) besides the network.
 *
 * @module
 */

import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";

/** The part of npm `ws`'s API this server uses. */
interface WsModule {
  WebSocketServer: new (options: { host: string; port: number }) => WsServer;
}
interface WsServer {
  on(event: "listening", listener: () => void): void;
  on(event: "connection", listener: (ws: WsSocket) => void): void;
  address(): { port: number };
}
interface WsSocket {
  on(event: "message", listener: (data: Uint8Array, isBinary: boolean) => void): void;
  on(event: "close", listener: (code: number) => void): void;
  on(event: "error", listener: (err: Error) => void): void;
  send(data: Uint8Array, options: { binary: boolean }): void;
}

// A computed specifier keeps `deno check` offline and the lock file untouched.
const specifier = ["npm:ws", "8"].join("@");
const { WebSocketServer } = (await import(specifier)) as WsModule;

const endings = new Endings();
exitOnStdinEnd(endings);
const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("listening", () => announcePort(server.address().port));
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("close", (code) => endings.add(`close ${code}`));
  ws.on("error", (err) => endings.add(`error: ${err.message}`));
});
