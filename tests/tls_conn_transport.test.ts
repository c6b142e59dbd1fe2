/**
 * The transport under tlsAccept's handles (actors/tls_conn_transport.ts): a
 * `Deno.TlsConn` read ahead into arenas, records read meanwhile handed over as one
 * contiguous chunk, bounded read-ahead, byte order kept through `read`, and the end of
 * the stream after the data.
 */

import assert from "node:assert/strict";
import { TlsConnTransport } from "../actors/tls_conn_transport.ts";
import { delay, within } from "./helpers/transports.ts";
import { CA, SERVER } from "./helpers/tls_fixtures.ts";

function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

/** A handshaken server TlsConn and its client, both Deno's own TLS. */
async function tlsConns(): Promise<{ server: Deno.TlsConn; client: Deno.TlsConn }> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    ...SERVER,
  });
  try {
    const connecting = Deno.connectTls({
      hostname: "localhost",
      port: (listener.addr as Deno.NetAddr).port,
      caCerts: [CA],
    });
    const server = await listener.accept();
    const [client] = await Promise.all([connecting, server.handshake()]);
    return { server, client };
  } finally {
    listener.close();
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

Deno.test("tls conn transport: records read while nobody asked come up merged, in order", async () => {
  const { server, client } = await tlsConns();
  const t = new TlsConnTransport(server, 1 << 20);
  try {
    const data = pattern(200_000, 1);
    await writeAll(client, data);
    await delay(200); // every record is read ahead meanwhile
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < data.length) {
      const got = await within(t.readChunks(), 5000, "readChunks");
      assert.ok(got);
      for (const c of got) {
        chunks.push(c);
        total += c.length;
      }
    }
    // 13 records of at most 16 KiB: contiguous ones in an arena are one chunk.
    assert.ok(chunks.length <= 3, `${chunks.length} chunks for 13 records`);
    const joined = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      joined.set(c, off);
      off += c.length;
    }
    assert.deepEqual(joined, data);
    client.close();
    assert.equal(await within(t.readChunks(), 5000, "end"), null);
  } finally {
    t.close();
  }
});

Deno.test("tls conn transport: read-ahead stops at its bound until chunks are taken", async () => {
  const { server, client } = await tlsConns();
  const t = new TlsConnTransport(server, 32 * 1024);
  try {
    const data = pattern(300_000, 2);
    const writing = writeAll(client, data);
    await delay(200);
    const first = await within(t.readChunks(), 5000, "first");
    assert.ok(first);
    const held = first.reduce((n, c) => n + c.length, 0);
    // At most the bound plus the one record in flight when it was reached.
    assert.ok(held <= 32 * 1024 + 16 * 1024, `${held} bytes read ahead`);
    let total = held;
    while (total < data.length) {
      const got = await within(t.readChunks(), 5000, "more");
      assert.ok(got);
      total += got.reduce((n, c) => n + c.length, 0);
    }
    assert.equal(total, data.length);
    await writing;
  } finally {
    t.close();
    client.close();
  }
});

Deno.test("tls conn transport: read() into small buffers keeps the bytes in order", async () => {
  const { server, client } = await tlsConns();
  const t = new TlsConnTransport(server, 1 << 20);
  try {
    const data = pattern(50_000, 3);
    await writeAll(client, data);
    await client.closeWrite();
    const out = new Uint8Array(data.length);
    let off = 0;
    for (;;) {
      const n = await within(t.read(out.subarray(off, off + 777)), 5000, "read");
      if (n === null) break;
      off += n;
    }
    assert.equal(off, data.length);
    assert.deepEqual(out, data);
    // Writes and the half-close go to the connection.
    await t.write(new Uint8Array([9]));
    await t.closeWrite();
    const buf = new Uint8Array(2);
    assert.equal(await client.read(buf), 1);
    assert.equal(await client.read(buf), null);
  } finally {
    t.close();
    client.close();
  }
});

Deno.test("tls conn transport: close fails the read in flight as a closed connection", async () => {
  const { server, client } = await tlsConns();
  const t = new TlsConnTransport(server, 1 << 20);
  const pending = t.readChunks();
  t.close();
  t.close(); // harmless
  client.close();
  await assert.rejects(within(pending, 1000, "the read in flight"), Deno.errors.BadResource);
  await assert.rejects(t.readChunks(), Deno.errors.BadResource);
});
