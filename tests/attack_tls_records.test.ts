/**
 * TLS over any bytestream (`tlsAttachServer`) fed one read that holds thousands of small
 * records: each record's data is reported to the TLS actor while it is still busy
 * feeding the read, more reports than its mailbox bound on calls. A peer that writes one
 * small record per message (an ordinary client, one `SSL_write` each) got there as soon
 * as the server fell behind, and the data of the records past the bound was dropped
 * without a word: the stream went on with holes in it.
 *
 * A proxy between client and server holds the client's records once the handshake is
 * done and then hands them all to the server at once, so the server's reads are full of
 * records whatever the machine's speed.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  hclose,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
} from "../mod.ts";
import { tlsAttachClient, tlsAttachServer } from "../mod.ts";
import { CLIENT, SERVER } from "./helpers/tls_fixtures.ts";

const RECORDS = 10_000;
const T = 10_000;

/** Forwards both ways; from the client, holds everything while `holding`, then writes it at once. */
function holdingProxy(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Uint8Array[] = [];
  let holding = false;
  let server: Deno.Conn | null = null;
  const done = (async () => {
    const client = await listener.accept();
    listener.close();
    server = await Deno.connect({ hostname: "127.0.0.1", port: target });
    const toClient = server.readable.pipeTo(client.writable).catch(() => {});
    const toServer = (async () => {
      for await (const chunk of client.readable) {
        if (holding) held.push(chunk);
        else await writeAll(server!, chunk);
      }
      server!.closeWrite().catch(() => {});
    })().catch(() => {});
    await Promise.all([toClient, toServer]);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    hold: () => holding = true,
    /** Writes what was held in one go, then forwards as it comes. */
    release: async () => {
      let size = 0;
      for (const c of held) size += c.length;
      const all = new Uint8Array(size);
      let at = 0;
      for (const c of held.splice(0)) all.set(c, (at += c.length) - c.length);
      holding = false;
      await writeAll(server!, all);
      return size;
    },
    done,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

Deno.test("attack/tls records: a read of 10,000 small records loses none of their data", async () => {
  const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const proxy = holdingProxy(tcpLocalAddr(listener).port);
  const accepted = tcpAccept(listener, now() + T);
  const clientTcp = await tcpConnect({ hostname: "127.0.0.1", port: proxy.port }, now() + T);
  const [server, client] = await Promise.all([
    accepted.then(({ handle }) => tlsAttachServer(handle, SERVER, now() + T)),
    tlsAttachClient(clientTcp, CLIENT, now() + T),
  ]);
  hclose(listener);
  try {
    proxy.hold();
    // One awaited send per message: one TLS record each (8 bytes of data, about 30 on the wire).
    const message = new Uint8Array(8);
    const view = new DataView(message.buffer);
    for (let i = 0; i < RECORDS; i++) {
      view.setUint32(0, i);
      await bsend(client, message, now() + T);
    }
    const heldBytes = await proxy.release();
    assert.ok(heldBytes > 200_000, `the records reach the server together (${heldBytes} bytes)`);
    const got = new Uint8Array(RECORDS * 8);
    await brecv(server, got, now() + T); // ETIMEDOUT here was the loss
    const seen = new DataView(got.buffer);
    for (let i = 0; i < RECORDS; i++) assert.equal(seen.getUint32(i * 8), i, `message ${i}`);
  } finally {
    hclose(client);
    hclose(server);
    await proxy.done;
  }
});
