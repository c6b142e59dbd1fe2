/**
 * A peer on an event loop of its own (a Worker), for tests that hold the test's event
 * loop: what it sends arrives while the test's loop is blocked. It serves one connection
 * on 127.0.0.1 and answers each message after a delay: in `tcp` mode each byte `d` read
 * is answered `d` × 10 ms later with the 4 bytes `abcd`; in `ws` mode (our own server
 * stack) each message is echoed `m[0]` × 10 ms later. It posts `{ port }` when listening
 * and `"done"` when the connection ended.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  hclose,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  WS_BINARY,
  wsAttachServer,
} from "../../mod.ts";

const ANSWER = new Uint8Array([0x61, 0x62, 0x63, 0x64]);
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serveTcp(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  self.postMessage({ port: (listener.addr as Deno.NetAddr).port });
  const conn = await listener.accept();
  listener.close();
  const byte = new Uint8Array(1);
  try {
    while ((await conn.read(byte)) !== null) {
      await delay(byte[0] * 10);
      await conn.write(ANSWER);
    }
  } catch {
    // the test closed first
  } finally {
    conn.close();
  }
}

async function serveWs(): Promise<void> {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  self.postMessage({ port: tcpLocalAddr(ls).port });
  const { handle: tcp } = await tcpAccept(ls, now() + 10_000);
  hclose(ls);
  const { handle } = await wsAttachServer(tcp, WS_BINARY, now() + 10_000);
  try {
    for (;;) {
      const m = await mrecv(handle, -1);
      await delay(m[0] * 10);
      await msend(handle, m, now() + 10_000);
    }
  } catch {
    // the test closed first
  } finally {
    hclose(handle);
  }
}

self.onmessage = async (e: MessageEvent<"tcp" | "ws">) => {
  await (e.data === "ws" ? serveWs() : serveTcp());
  self.postMessage("done");
};
