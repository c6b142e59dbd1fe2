/**
 * Which TLS engine should a client over TCP use? Measures a 64 MiB transfer each way
 * between a native `Deno.listenTls` server and three clients:
 *
 * - `dill (node:tls)`: `tcpConnect` → `tlsAttachClient` → `bsend`/`brecv`, the path
 *   the module takes (TLS actor with the `node:tls` engine over the TCP actor);
 * - `Deno.startTls + ByteStream`: the native rustls stream from `Deno.startTls` on a
 *   raw `Deno.TcpConn`, under the same bytestream actor (what a native fast path for
 *   clients would look like);
 * - `Deno.startTls raw`: the native stream alone, no actors (the ceiling).
 *
 * Run with `deno run -A bench/tls_paths.ts`; prints MB/s (best of a few rounds).
 *
 * @module
 */

import { brecv, bsend, type Handle, hclose, now, tcpConnect, tlsAttachClient } from "../mod.ts";
import { streamHandle } from "../actors/sockets.ts";

const TOTAL = 64 << 20;
const CHUNK = 1 << 20;
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const FIXTURES = new URL("../tests/fixtures/tls/", import.meta.url);
const pem = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));
const CA = pem("ca.pem");

/** A native TLS server: per connection, one byte says the direction, then 64 MiB flow. */
function startServer(): { port: number; close(): Promise<void> } {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: pem("cert.pem"),
    key: pem("key.pem"),
  });
  const conns = new Set<Promise<void>>();
  const serve = async (conn: Deno.TlsConn) => {
    try {
      const mode = new Uint8Array(1);
      await readFull(conn, mode);
      const buf = new Uint8Array(CHUNK);
      if (mode[0] === 0x55) { // upload: read everything, then acknowledge
        for (let got = 0; got < TOTAL;) {
          const n = await conn.read(buf);
          if (n === null) throw new Error("upload cut short");
          got += n;
        }
        await writeFull(conn, new Uint8Array([1]));
      } else { // download
        for (let sent = 0; sent < TOTAL; sent += CHUNK) await writeFull(conn, buf);
        await readFull(conn, new Uint8Array(1));
      }
    } finally {
      conn.close();
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      const p = serve(conn).catch((e) => console.error("server:", e));
      conns.add(p);
      p.finally(() => conns.delete(p));
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    async close() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(conns);
    },
  };
}

async function readFull(conn: Deno.Conn, buf: Uint8Array): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const n = await conn.read(buf.subarray(off));
    if (n === null) throw new Error("unexpected end of stream");
    off += n;
  }
}

async function writeFull(conn: Deno.Conn, buf: Uint8Array): Promise<void> {
  for (let off = 0; off < buf.length;) off += await conn.write(buf.subarray(off));
}

type Direction = "upload" | "download";

/** One transfer over a handle; returns MB/s. */
async function overHandle(h: Handle, dir: Direction): Promise<number> {
  const buf = new Uint8Array(CHUNK);
  const start = performance.now();
  await bsend(h, new Uint8Array([dir === "upload" ? 0x55 : 0xdd]), -1);
  if (dir === "upload") {
    for (let sent = 0; sent < TOTAL; sent += CHUNK) await bsend(h, buf, -1);
    await brecv(h, new Uint8Array(1), -1);
  } else {
    for (let got = 0; got < TOTAL; got += CHUNK) await brecv(h, buf, -1);
    await bsend(h, new Uint8Array(1), -1);
  }
  return mbps(start);
}

/** One transfer over a raw native TLS connection; returns MB/s. */
async function overConn(conn: Deno.TlsConn, dir: Direction): Promise<number> {
  const buf = new Uint8Array(CHUNK);
  const start = performance.now();
  await writeFull(conn, new Uint8Array([dir === "upload" ? 0x55 : 0xdd]));
  if (dir === "upload") {
    for (let sent = 0; sent < TOTAL; sent += CHUNK) await writeFull(conn, buf);
    await readFull(conn, new Uint8Array(1));
  } else {
    for (let got = 0; got < TOTAL; got += CHUNK) await readFull(conn, buf);
    await writeFull(conn, new Uint8Array(1));
  }
  return mbps(start);
}

function mbps(start: number): number {
  return TOTAL / (1 << 20) / ((performance.now() - start) / 1000);
}

async function startTls(port: number): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  tcp.setNoDelay(true);
  return await Deno.startTls(tcp, { hostname: "localhost", caCerts: [CA] });
}

const PATHS: Record<string, (port: number, dir: Direction) => Promise<number>> = {
  "dill (node:tls)": async (port, dir) => {
    const tcp = await tcpConnect({ port }, now() + 5000);
    const h = await tlsAttachClient(tcp, { hostname: "localhost", caCerts: [CA] }, now() + 5000);
    try {
      return await overHandle(h, dir);
    } finally {
      hclose(h);
    }
  },
  "Deno.startTls + ByteStream": async (port, dir) => {
    const h = streamHandle(await startTls(port), "tls");
    try {
      return await overHandle(h, dir);
    } finally {
      hclose(h);
    }
  },
  "Deno.startTls raw": async (port, dir) => {
    const conn = await startTls(port);
    try {
      return await overConn(conn, dir);
    } finally {
      conn.close();
    }
  },
};

const server = startServer();
try {
  console.log(`TLS client paths, ${TOTAL >> 20} MiB each way, best of ${ROUNDS} (MB/s)\n`);
  console.log("| client path | upload | download |");
  console.log("| --- | ---: | ---: |");
  for (const [name, run] of Object.entries(PATHS)) {
    const best: Record<Direction, number> = { upload: 0, download: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      for (const dir of ["upload", "download"] as const) {
        best[dir] = Math.max(best[dir], await run(server.port, dir));
      }
    }
    console.log(`| ${name} | ${best.upload.toFixed(0)} | ${best.download.toFixed(0)} |`);
  }
} finally {
  await server.close();
}
