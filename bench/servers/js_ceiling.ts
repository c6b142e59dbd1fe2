/**
 * A reference, not a server: the least work a WebSocket echo written in JavaScript on
 * Deno's socket API (`Deno.listen`, `conn.read`, `conn.write`) can do per message. One
 * read buffer and one write buffer per connection, reused; each message unmasked in
 * place and answered with one awaited write; nothing allocated per message. It checks
 * nothing (no handshake validation, no UTF-8 check, no fragments, no limits) and trusts
 * the load client, so it runs only the workloads `deno task bench:ceiling` picks. Its
 * figures say what Deno's socket calls cost on their own: what any stack built on them,
 * ours included, spends beyond them is its own work. With `--tls <cert.pem> <key.pem>`
 * it listens with `Deno.listenTls` (wss), the socket our `tlsListen` path uses.
 *
 * @module
 */

import { wsResponseKey } from "../../mod.ts";
import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";
import { tlsFromArgs } from "./tls_args.ts";

const READ_BUFFER = 256 * 1024;
/** The longest header of an unmasked frame. */
const HEADER_MAX = 10;
const OP_TEXT = 1;
const OP_CLOSE = 8;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const endings = new Endings();

/** Writes all of `bytes`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** The size of an unmasked frame header for `length` payload bytes. */
function headerSize(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/** Writes a frame header for `length` payload bytes into `out`; returns its size. */
function header(out: Uint8Array, opcode: number, length: number): number {
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = length;
    return 2;
  }
  if (length < 65536) {
    out[1] = 126;
    out[2] = length >> 8;
    out[3] = length & 0xff;
    return 4;
  }
  out[1] = 127;
  new DataView(out.buffer, out.byteOffset).setBigUint64(2, BigInt(length));
  return 10;
}

/** XORs `data` with the 4-byte key at `key[at..at+4]` (bytewise: the ceiling is not the masking). */
function unmask(data: Uint8Array, key: Uint8Array, at: number): void {
  const k0 = key[at], k1 = key[at + 1], k2 = key[at + 2], k3 = key[at + 3];
  let i = 0;
  for (; i + 4 <= data.length; i += 4) {
    data[i] ^= k0;
    data[i + 1] ^= k1;
    data[i + 2] ^= k2;
    data[i + 3] ^= k3;
  }
  for (let j = 0; i < data.length; i++, j++) data[i] ^= key[at + j];
}

/** Reads the upgrade request and answers 101; returns the bytes read past it. */
async function handshake(conn: Deno.Conn, buf: Uint8Array): Promise<number> {
  let have = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(have));
    if (n === null) throw new Error("closed during the handshake");
    have += n;
    const text = decoder.decode(buf.subarray(0, have));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) continue;
    const key = /sec-websocket-key:\s*(\S+)/i.exec(text)?.[1] ?? "";
    await writeAll(
      conn,
      encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${wsResponseKey(key)}\r\n\r\n`,
      ),
    );
    buf.copyWithin(0, end + 4, have);
    return have - end - 4;
  }
}

/** Echoes every message until the client's close frame, which it answers. */
async function serve(conn: Deno.Conn): Promise<void> {
  if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true); // a TlsConn has none
  const rbuf = new Uint8Array(READ_BUFFER);
  let wbuf = new Uint8Array(HEADER_MAX + READ_BUFFER);
  let have = await handshake(conn, rbuf);
  for (;;) {
    let at = 0;
    for (;;) {
      if (have - at < 2) break;
      const opcode = rbuf[at] & 0x0f;
      let length = rbuf[at + 1] & 0x7f;
      let p = at + 2;
      if (length === 126) {
        if (have - at < 4) break;
        length = (rbuf[p] << 8) | rbuf[p + 1];
        p += 2;
      } else if (length === 127) {
        if (have - at < 10) break;
        length = Number(new DataView(rbuf.buffer, p).getBigUint64(0));
        p += 8;
      }
      const key = p;
      p += 4;
      if (p + length > READ_BUFFER) {
        // Larger than the read buffer: read the rest into a buffer of its own.
        const payload = new Uint8Array(length);
        let got = Math.max(0, have - p);
        payload.set(rbuf.subarray(p, have));
        while (got < length) {
          const n = await conn.read(payload.subarray(got));
          if (n === null) return conn.close();
          got += n;
        }
        unmask(payload, rbuf, key);
        const h = new Uint8Array(HEADER_MAX);
        await writeAll(conn, h.subarray(0, header(h, opcode, length)));
        await writeAll(conn, payload);
        at = have = 0;
        break;
      }
      if (have < p + length) break;
      const payload = rbuf.subarray(p, p + length);
      unmask(payload, rbuf, key);
      if (opcode === OP_CLOSE) {
        await writeAll(conn, new Uint8Array([0x88, 0]));
        endings.add("close");
        return conn.close();
      }
      // The payload goes at HEADER_MAX and its header right before it: text is decoded
      // and encoded back (as an application echoing strings does) straight into place.
      let size: number;
      if (opcode === OP_TEXT) {
        const text = decoder.decode(payload);
        if (wbuf.length < HEADER_MAX + 3 * text.length) {
          wbuf = new Uint8Array(HEADER_MAX + 3 * text.length);
        }
        size = encoder.encodeInto(text, wbuf.subarray(HEADER_MAX)).written;
      } else {
        wbuf.set(payload, HEADER_MAX);
        size = length;
      }
      const start = HEADER_MAX - headerSize(size);
      header(wbuf.subarray(start), opcode, size);
      await writeAll(conn, wbuf.subarray(start, HEADER_MAX + size));
      at = p + length;
    }
    if (at > 0) {
      rbuf.copyWithin(0, at, have);
      have -= at;
    }
    const n = await conn.read(rbuf.subarray(have));
    if (n === null) return conn.close();
    have += n;
  }
}

exitOnStdinEnd(endings);
const tls = tlsFromArgs(Deno.args);
const address = { hostname: "127.0.0.1", port: 0 };
const listener = tls ? Deno.listenTls({ ...address, ...tls }) : Deno.listen(address);
announcePort((listener.addr as Deno.NetAddr).port);
for await (const conn of listener) {
  serve(conn).catch((e) => {
    endings.add(`error: ${e instanceof Error ? e.message : String(e)}`);
    try {
      conn.close();
    } catch {
      // closed already
    }
  });
}
