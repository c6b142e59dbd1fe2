/**
 * Red-team attacks on the WebSocket read path over real sockets, plain TCP and the
 * native TLS path (`tlsListen`), which reads large messages in place: a frame that
 * announces nearly `maxMessageSize`, then trickles, then the peer vanishes mid-payload;
 * a fragmented message that grows past the limit; a peer that writes one byte at a
 * time; the peer's FIN or reset arriving while the application is behind. What must
 * hold: every error is a clear one and comes at once, memory follows the bytes
 * received (never the announced length alone, never above the limit plus the read
 * buffers), and nothing the peer sent before it left is lost. (Memory given back after
 * `hclose` while the application keeps the error: the last test.)
 */

import assert from "node:assert/strict";
import {
  type Handle,
  hclose,
  mrecv,
  now,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  tlsAccept,
  tlsListen,
  WS_BINARY,
  wsAttachServer,
  type WsServerOptions,
  wsStatus,
} from "../mod.ts";
import { concat } from "./helpers/raw_peer/bytes.ts";
import { ConnWire } from "./helpers/raw_peer/conn_wire.ts";
import { closeBody, frame, OP } from "./helpers/raw_peer/frames.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";
import { RawPeer } from "./helpers/raw_peer/peer.ts";
import { retainedExternal } from "./helpers/memory.ts";
import { tcpTable } from "./helpers/tcp_table.ts";
import { delay, rejectsWith, within } from "./helpers/transports.ts";
import { CA, SERVER } from "./helpers/tls_fixtures.ts";

const MIB = 1024 * 1024;
const soon = (ms = 5000) => now() + ms;
/** A mask of zeros: masked frames (as a client must send) whose payload reads as sent. */
const ZERO_MASK = new Uint8Array(4);

type Kind = "tcp" | "tls native";
const KINDS: readonly Kind[] = ["tcp", "tls native"];

/** Our WebSocket server over `kind`, and the raw client connection that upgraded it. */
async function openWs(
  kind: Kind,
  options: WsServerOptions,
): Promise<{ ws: Handle; conn: Deno.Conn }> {
  const ls = kind === "tls native" ? await tlsListen({ port: 0 }, SERVER) : tcpListen({ port: 0 });
  try {
    const { port } = tcpLocalAddr(ls);
    const accepting = kind === "tls native" ? tlsAccept(ls, soon()) : tcpAccept(ls, soon());
    const conn = kind === "tls native"
      ? await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] })
      : await Deno.connect({ hostname: "127.0.0.1", port });
    const { handle } = await accepting;
    const attaching = wsAttachServer(handle, WS_BINARY, soon(), options);
    await writeAll(conn, upgradeRequest());
    const { handle: ws } = await attaching;
    return { ws, conn };
  } finally {
    hclose(ls);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

for (const kind of KINDS) {
  Deno.test(`attack/ws reading (${kind}): nearly maxMessageSize announced, an eighth sent, a trickle, then the peer vanishes: ECONNRESET at once, memory bounded`, async () => {
    const limit = 32 * MIB;
    const base = retainedExternal();
    const { ws, conn } = await openWs(kind, { maxMessageSize: limit });
    let connOpen = true;
    try {
      const receiving = mrecv(ws, soon(10_000));
      receiving.catch(() => {});
      // The header announces limit - 1 bytes; then an eighth of them, enough for the
      // rest to be read in place (a buffer of the message's size is reserved for it).
      await writeAll(conn, frame({ opcode: OP.BINARY, announced: limit - 1, mask: ZERO_MASK }));
      const part = new Uint8Array(MIB).fill(7);
      for (let i = 0; i < 4; i++) await writeAll(conn, part);
      // Then one byte every 5 ms.
      for (let i = 0; i < 20; i++) {
        await writeAll(conn, new Uint8Array([7]));
        await delay(5);
      }
      const grown = retainedExternal() - base;
      // The reserved message plus read buffers; never several times the limit.
      assert.ok(grown < limit + 8 * MIB, `memory grew by ${(grown / MIB).toFixed(1)} MiB`);
      // The peer vanishes mid-payload.
      conn.close();
      connOpen = false;
      const t0 = now();
      const e = await rejectsWith(receiving, "ECONNRESET");
      assert.ok(now() - t0 < 1000, `mrecv failed ${now() - t0} ms after the peer left`);
      assert.match(e.message, /1006|close frame|reset|closed/i);
      assert.deepEqual(await wsStatus(ws), { status: 1006, reason: "" });
    } finally {
      hclose(ws);
      if (connOpen) closeQuietly(conn);
    }
    // That the half-received message is given back after hclose, even while the
    // application keeps the error: the last test.
  });

  Deno.test(`attack/ws reading (${kind}): a fragmented message growing past maxMessageSize is 1009 and EMSGSIZE once past it`, async () => {
    const limit = MIB;
    const { ws, conn } = await openWs(kind, { maxMessageSize: limit });
    const peer = new RawPeer(new ConnWire(conn), "client");
    try {
      assert.equal((await peer.readResponse()).status, 101);
      const receiving = mrecv(ws, soon());
      receiving.catch(() => {});
      const fragment = new Uint8Array(256 * 1024).fill(3);
      // Four fragments reach the limit exactly; the fifth passes it. Sent as one write,
      // with 16 more fragments behind that the server must not need.
      const frames = [frame({ opcode: OP.BINARY, fin: false, payload: fragment, mask: true })];
      for (let i = 1; i < 20; i++) {
        frames.push(frame({ opcode: OP.CONT, fin: false, payload: fragment, mask: true }));
      }
      const writing = peer.wire.write(concat(...frames), soon());
      writing.catch(() => {});
      const close = await peer.readClose(soon());
      assert.equal(close.code, 1009);
      await rejectsWith(receiving, "EMSGSIZE");
      await writing.catch(() => {}); // the server may stop reading, or reset: either is fine
    } finally {
      hclose(ws);
      await peer.close();
    }
  });

  Deno.test(`attack/ws reading (${kind}): a peer writing one byte at a time (header included) gets its message byte-exact`, async () => {
    const { ws, conn } = await openWs(kind, {});
    const peer = new RawPeer(new ConnWire(conn), "client");
    try {
      assert.equal((await peer.readResponse()).status, 101);
      if (kind === "tcp") (conn as Deno.TcpConn).setNoDelay(true); // one segment per byte
      const payload = new Uint8Array(6000);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
      // A 16-bit length header, masked with a real key: every byte its own write.
      const bytes = frame({ opcode: OP.BINARY, payload, mask: true });
      const receiving = mrecv(ws, soon(15_000));
      const t0 = now();
      for (let i = 0; i < bytes.length; i++) {
        await writeAll(conn, bytes.subarray(i, i + 1));
        if (now() - t0 > 10_000) break; // bounded in time on a busy machine
      }
      assert.deepEqual(await within(receiving, 10_000, "the trickled message"), payload);
    } finally {
      hclose(ws);
      await peer.close();
    }
  });

  Deno.test(`attack/ws reading (${kind}): a burst, a close frame and the end of input while the application is behind: nothing lost`, async () => {
    const { ws, conn } = await openWs(kind, { maxQueuedMessages: 2 });
    const peer = new RawPeer(new ConnWire(conn), "client");
    try {
      assert.equal((await peer.readResponse()).status, 101);
      const count = 300;
      const frames: Uint8Array[] = [];
      for (let i = 0; i < count; i++) {
        frames.push(
          frame({ opcode: OP.BINARY, payload: new Uint8Array(1000).fill(i), mask: true }),
        );
      }
      frames.push(frame({ opcode: OP.CLOSE, payload: closeBody(1000, "bye"), mask: true }));
      await peer.send(concat(...frames), soon());
      // The end of the peer's input: TCP FIN, or TLS close_notify then FIN.
      await conn.closeWrite();
      await delay(50); // it arrives while all but two messages wait in the socket
      for (let i = 0; i < count; i++) {
        const m = await mrecv(ws, soon());
        assert.equal(m.length, 1000, `message ${i}`);
        assert.equal(m[0], i & 0xff, `message ${i}`);
        assert.equal(m[999], i & 0xff, `message ${i}`);
      }
      await rejectsWith(mrecv(ws, soon()), "EPIPE");
      assert.deepEqual(await wsStatus(ws), { status: 1000, reason: "bye" });
    } finally {
      hclose(ws);
      await peer.close();
    }
  });
}

/** Bytes the client at local port `port` has sent that its peer has not acknowledged. */
function unacknowledged(port: number): number {
  const row = tcpTable().find((r) => r.localPort === port);
  if (row === undefined) throw new Error(`no socket with local port ${port}`);
  return row.txQueue;
}

Deno.test("attack/ws reading (tcp): a burst then a reset while the application is behind: every message that reached us, in order, then ECONNRESET", async () => {
  const { ws, conn } = await openWs("tcp", { maxQueuedMessages: 2 });
  try {
    // 600 KB: more than we read ahead (256 KiB), so part waits in our socket's receive
    // queue, and part may not even leave the client (its reset discards that part).
    const count = 600;
    const size = 1000;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      frames.push(
        frame({ opcode: OP.BINARY, payload: new Uint8Array(size).fill(i & 0xff), mask: true }),
      );
    }
    const burst = concat(...frames);
    const frameSize = burst.length / count;
    let written = 0;
    const writing = (async () => {
      while (written < burst.length) written += await conn.write(burst.subarray(written));
    })();
    writing.catch(() => {}); // it may never finish: the reset ends it
    await delay(100); // what can reach us has
    // The messages whose every byte reached us before the reset.
    const clientPort = (conn.localAddr as Deno.NetAddr).port;
    const arrived = Math.floor((written - unacknowledged(clientPort)) / frameSize);
    // The client resets: it never read our 101 answer, so its close is a reset.
    conn.close();
    await writing.catch(() => {});
    await delay(50);
    let delivered = 0;
    for (;;) {
      const m = await mrecv(ws, soon()).catch((e) => e);
      if (m instanceof Error) {
        assert.match(m.message, /ECONNRESET/);
        break;
      }
      assert.equal(m.length, size, `message ${delivered}`);
      assert.equal(m[0], delivered & 0xff, `message ${delivered}`);
      assert.equal(m[size - 1], delivered & 0xff, `message ${delivered}`);
      delivered++;
    }
    assert.ok(arrived > 0, "nothing reached us before the reset");
    assert.ok(
      delivered >= arrived,
      `${arrived} messages reached us before the reset, ${delivered} were delivered`,
    );
    assert.deepEqual(await wsStatus(ws), { status: 1006, reason: "" });
  } finally {
    hclose(ws);
  }
});

Deno.test("attack: ws reading: an error the application keeps does not pin the half-received message after hclose", async () => {
  const limit = 32 * MIB;
  const base = retainedExternal();
  let kept: unknown = null; // the application's "last error" of the connection
  {
    const ls = tcpListen({ port: 0 });
    const { port } = tcpLocalAddr(ls);
    const accepting = tcpAccept(ls, now() + 5000);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const { handle } = await accepting;
    hclose(ls);
    const attaching = wsAttachServer(handle, WS_BINARY, now() + 5000, { maxMessageSize: limit });
    await writeAll(conn, upgradeRequest());
    const { handle: ws } = await attaching;
    const receiving = mrecv(ws, now() + 5000).catch((e) => kept = e);
    // A frame announcing limit - 1 bytes, and an eighth of them: the rest of the message
    // gets its buffer (32 MiB), to be read in place. Then the peer resets.
    await writeAll(
      conn,
      frame({ opcode: OP.BINARY, announced: limit - 1, mask: new Uint8Array(4) }),
    );
    for (let i = 0; i < 4; i++) await writeAll(conn, new Uint8Array(MIB));
    await delay(50);
    conn.close();
    await receiving;
    hclose(ws);
  }
  assert.ok(kept instanceof Error && /ECONNRESET/.test(kept.message), String(kept));
  // V8 frees array buffers in the background: give it up to 1 s.
  let left = retainedExternal() - base;
  for (let i = 0; i < 20 && left >= 8 * MIB; i++) {
    await delay(50);
    left = retainedExternal() - base;
  }
  // The error's captured stack frames keep their receivers, among them the closed
  // connection's reader: it must not still hold the reserved message buffer (32 MiB
  // stayed referenced before the reader dropped its parsing state on close).
  assert.ok(
    left < 8 * MIB,
    `${(left / MIB).toFixed(1)} MiB still referenced after hclose, while the error is kept`,
  );
  kept = null;
});
