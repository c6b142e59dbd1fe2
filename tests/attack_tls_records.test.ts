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
 *
 * Also here: a record the server cannot decrypt after the handshake. The engine sent its
 * alert and reported the failure only in a way nobody listened to, so the connection
 * stayed open and the application's receive waited forever.
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
import { assertFailed, settle } from "./helpers/outcome.ts";

const MESSAGES = 20_000;
const T = 10_000;

/**
 * Forwards both ways. From the client: holds everything while `holding`, then writes it
 * at once; flips the last bit of the next chunk once `corrupt` was called.
 */
function holdingProxy(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Uint8Array[] = [];
  let holding = false;
  let corrupting = false;
  let corrupted = false;
  /** Bytes from the server since `corrupt` was called. */
  let answered = 0;
  let server: Deno.Conn | null = null;
  const done = (async () => {
    const client = await listener.accept();
    listener.close();
    server = await Deno.connect({ hostname: "127.0.0.1", port: target });
    const toClient = (async () => {
      for await (const chunk of server!.readable) {
        answered += chunk.length;
        await writeAll(client, chunk);
      }
      client.closeWrite().catch(() => {});
    })().catch(() => {});
    const toServer = (async () => {
      for await (const chunk of client.readable) {
        if (corrupting) {
          chunk[chunk.length - 1] ^= 1;
          corrupting = false;
          corrupted = true;
        }
        if (holding) held.push(chunk);
        else await writeAll(server!, chunk);
      }
      // After a corrupted record the server must end the connection on its own: the
      // client's end (its engine gives up on the alert) is not passed on.
      if (!corrupted) server!.closeWrite().catch(() => {});
    })().catch(() => {});
    await Promise.all([toClient, toServer]);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    hold: () => holding = true,
    corrupt: () => {
      corrupting = true;
      answered = 0;
    },
    answered: () => answered,
    /** Writes what was held in one go; returns how many TLS records it was. */
    release: async () => {
      let size = 0;
      for (const c of held) size += c.length;
      const all = new Uint8Array(size);
      let at = 0;
      for (const c of held.splice(0)) all.set(c, (at += c.length) - c.length);
      holding = false;
      await writeAll(server!, all);
      let records = 0;
      for (let p = 0; p + 5 <= all.length; p += 5 + ((all[p + 3] << 8) | all[p + 4])) records++;
      return records;
    },
    done,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

Deno.test("attack/tls records: reads of thousands of small records lose none of their data", async () => {
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
    // One awaited send per message: a small TLS record each (the engine may put two in one).
    const message = new Uint8Array(8);
    const view = new DataView(message.buffer);
    for (let i = 0; i < MESSAGES; i++) {
      view.setUint32(0, i);
      await bsend(client, message, now() + T);
    }
    // Each server read (up to 256 KiB) then holds thousands of records, past the mailbox bound.
    const records = await proxy.release();
    assert.ok(records > 8192, `${records} records reach the server at once`);
    const got = new Uint8Array(MESSAGES * 8);
    await brecv(server, got, now() + T); // ETIMEDOUT here was the loss
    const seen = new DataView(got.buffer);
    for (let i = 0; i < MESSAGES; i++) assert.equal(seen.getUint32(i * 8), i, `message ${i}`);
  } finally {
    hclose(client);
    hclose(server);
    await proxy.done;
  }
});

Deno.test("attack/tls records: a record the server cannot decrypt ends the connection with an alert", async () => {
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
    // A round trip first: what the server sent after its handshake (a session ticket)
    // has passed the proxy before it counts the server's answer to the bad record.
    await bsend(server, new Uint8Array([1]), now() + T);
    await brecv(client, new Uint8Array(1), now() + T);
    const receiving = settle(brecv(server, new Uint8Array(5), now() + T));
    proxy.corrupt();
    await bsend(client, new TextEncoder().encode("hello"), now() + T);
    // ETIMEDOUT here was the hang: the failure went unnoticed.
    const e = assertFailed(await receiving, "EPROTO", "the server's receive");
    // Named as a broken record of the open connection, not as a failed handshake.
    assert.match(e.message, /^EPROTO: tls server: a TLS record from the peer was broken/);
    // The server answered with its alert before it closed: one encrypted record, 24 bytes.
    assert.equal((await settle(brecv(client, new Uint8Array(1), now() + T))).ok, false);
    assert.equal(proxy.answered(), 24, "the server's alert");
  } finally {
    hclose(client);
    hclose(server);
    await proxy.done;
  }
});
