/**
 * Calibration server, not a WebSocket implementation: answers the upgrade request
 * with a valid `101`, then sends every byte it receives straight back (the client's
 * masked frames come back as they are). It does the least work a server can do per
 * message, so the load client's rate against it is the client's own ceiling.
 * Prints its port when ready. (For wss: reflector_tls.mjs.)
 *
 * @module
 */

import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const endings = new Endings();

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

async function handshake(conn: Deno.Conn, buf: Uint8Array): Promise<Uint8Array> {
  let len = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) throw new Error("EOF in handshake");
    len += n;
    const text = decoder.decode(buf.subarray(0, len));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? "";
    const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await writeAll(
      conn,
      encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
    );
    return buf.slice(end + 4, len); // the head is ASCII: string and byte offsets agree
  }
}

async function reflect(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(256 * 1024);
  try {
    const rest = await handshake(conn, buf);
    if (rest.length > 0) await writeAll(conn, rest);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      await writeAll(conn, buf.subarray(0, n));
    }
    endings.add("eof");
  } catch (e) {
    endings.add(e instanceof Error ? e.name : String(e));
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
exitOnStdinEnd(endings);
announcePort((listener.addr as Deno.NetAddr).port);
for await (const conn of listener) {
  (conn as Deno.TcpConn).setNoDelay(true);
  reflect(conn);
}
