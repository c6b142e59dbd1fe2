/**
 * Red-team attacks on the native TLS server path (`tlsListen`/`tlsAccept`) that its
 * defences withstand, beyond tls_listen.test.ts: a crowd of clients that send half a
 * ClientHello and stall, more of them than `maxHandshakes`; a client that completes
 * its handshake and then resets, or goes silent; what the peer of a handle sees when
 * our side closes it. (What Deno's TLS does not let them bound, the sockets of dropped
 * clients, is a documented limit: README "TLS and wss".)
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  now,
  tcpLocalAddr,
  tlsAccept,
  tlsListen,
} from "../mod.ts";
import { delay, rejectsWith, within } from "./helpers/transports.ts";
import { CA, fixture, SERVER } from "./helpers/tls_fixtures.ts";
import { serverSocketsOn } from "./helpers/tcp_table.ts";

const PYTHON = "/usr/bin/python3";
const soon = (ms = 5000) => now() + ms;

/**
 * The first half of a TLS 1.2/1.3 ClientHello record: a handshake record header that
 * announces 512 bytes, the ClientHello's own header, a version and a few random bytes.
 */
const HALF_CLIENT_HELLO = new Uint8Array([
  0x16,
  0x03,
  0x01,
  0x02,
  0x00, // record: handshake, TLS 1.0 framing, 512 bytes
  0x01,
  0x00,
  0x01,
  0xfc, // ClientHello, 508 bytes
  0x03,
  0x03, // legacy version TLS 1.2
  ...new Uint8Array(40).fill(0x5a), // part of the random, then nothing more
]);

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

Deno.test("attack/tls listen: more stalled half-ClientHellos than maxHandshakes delay a good client by about handshakeTimeout, never block it", async () => {
  const ls = await tlsListen({ port: 0 }, SERVER, 128, {
    handshakeTimeout: 200,
    maxHandshakes: 3,
  });
  const { port } = tcpLocalAddr(ls);
  const stalled: Deno.Conn[] = [];
  try {
    // Six clients, twice maxHandshakes, each sends half a ClientHello and stalls.
    for (let i = 0; i < 6; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(HALF_CLIENT_HELLO);
      stalled.push(conn);
    }
    // While every slot is taken, a tlsAccept with a short deadline ends at it.
    const t0 = now();
    await rejectsWith(tlsAccept(ls, now() + 100), "ETIMEDOUT");
    assert.ok(now() - t0 < 400, `the short tlsAccept took ${now() - t0} ms`);
    // A good client queued behind them: served once the stalled ones time out, in
    // rounds of maxHandshakes (two rounds of 200 ms, the first one partly spent).
    const t1 = now();
    const accepting = tlsAccept(ls, soon());
    const client = await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] });
    try {
      const { handle } = await within(accepting, 5000, "the good client's tlsAccept");
      const waited = now() - t1;
      assert.ok(waited < 2000, `the good client waited ${waited} ms`);
      await client.write(new TextEncoder().encode("ok"));
      assert.deepEqual(await brecv(handle, new Uint8Array(2), soon()), new Uint8Array([111, 107]));
      hclose(handle);
    } finally {
      client.close();
    }
    // The stalled clients were dropped, but Deno keeps their sockets open until they
    // speak or leave (a documented limit: README "TLS and wss").
  } finally {
    for (const conn of stalled) closeQuietly(conn);
    hclose(ls);
  }
});

/** Python: a TLS client (port and CA file in argv) that sends "x" after its handshake. */
const PYTHON_TLS_CLIENT = `
import socket, ssl, struct, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.sendall(b"x")
`;

/**
 * Runs a Python TLS client against a fresh tlsListen: it sends "x" once its handshake
 * is done, then runs `then` (more Python). Accepts it, reads the "x", runs `accepted` on
 * the handle and closes it, checks that the client exited cleanly, then runs `after`
 * while the listener is still open.
 */
async function againstPythonClient(
  then: string,
  accepted: (handle: Handle) => Promise<void>,
  after?: (ls: Handle, port: number) => Promise<void>,
): Promise<void> {
  const ls = await tlsListen({ port: 0 }, SERVER);
  const { port } = tcpLocalAddr(ls);
  const python = new Deno.Command(PYTHON, {
    args: ["-c", PYTHON_TLS_CLIENT + then, String(port), fixture("ca.pem")],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const { handle } = await tlsAccept(ls, soon());
    try {
      assert.deepEqual(await brecv(handle, new Uint8Array(1), soon()), new Uint8Array([120]));
      await accepted(handle);
    } finally {
      hclose(handle);
    }
    const status = await python.output();
    assert.equal(status.code, 0, new TextDecoder().decode(status.stderr));
    await after?.(ls, port);
  } finally {
    hclose(ls);
  }
}

/** Python, after the "x": waits, then resets (SO_LINGER 0). */
const THEN_RESET = `
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

Deno.test("attack/tls listen: a client that resets after its handshake fails the pending brecv and the next bsend at once; the listener goes on", async () => {
  await againstPythonClient(
    THEN_RESET,
    async (handle) => {
      // Pending when the reset arrives: fails at once, long before its deadline.
      const t0 = now();
      await rejectsWith(brecv(handle, new Uint8Array(1), soon(4000)), "ECONNRESET");
      assert.ok(now() - t0 < 2000, `the brecv failed after ${now() - t0} ms`);
      // Writing to the reset connection fails too (maybe one write late: the kernel
      // learns of the reset from the first segment sent after it).
      let failed = false;
      for (let i = 0; i < 5 && !failed; i++) {
        failed = await bsend(handle, new Uint8Array(1000), soon(1000)).then(() => false, (e) => {
          assert.ok(["ECONNRESET", "EPIPE"].includes(e.code), e.message);
          return true;
        });
        if (!failed) await delay(20);
      }
      assert.ok(failed, "five sends to a reset connection all succeeded");
    },
    async (ls, port) => {
      // The next client is served.
      const accepting = tlsAccept(ls, soon());
      const client = await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] });
      try {
        const { handle: next } = await accepting;
        await bsend(next, new Uint8Array([1, 2, 3]), soon());
        const buf = new Uint8Array(3);
        assert.equal(await client.read(buf), 3);
        hclose(next);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("attack/tls listen: a client silent after its handshake: brecv ends at its deadline, hclose frees the socket at once", async () => {
  const ls = await tlsListen({ port: 0 }, SERVER);
  const { port } = tcpLocalAddr(ls);
  try {
    const accepting = tlsAccept(ls, soon());
    const client = await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] });
    try {
      const { handle } = await accepting;
      const t0 = now();
      await rejectsWith(brecv(handle, new Uint8Array(1), now() + 150), "ETIMEDOUT");
      assert.ok(now() - t0 < 1000, `the brecv ended after ${now() - t0} ms`);
      assert.equal(serverSocketsOn(port), 1, "the accepted connection is open");
      hclose(handle);
      await delay(50);
      // Nothing was owed to the client: the socket is closed, not handed to Deno to linger.
      assert.equal(serverSocketsOn(port), 0, "the server socket is still open after hclose");
      // The client sees a clean end (close_notify, then FIN).
      assert.equal(await within(client.read(new Uint8Array(8)), 2000, "the client's read"), null);
    } finally {
      client.close();
    }
  } finally {
    hclose(ls);
  }
});

/** Python, after the "x": ends TCP without a close_notify. */
const THEN_TRUNCATE = `
time.sleep(0.1)
socket.socket.shutdown(s, socket.SHUT_WR)  # the TCP FIN alone, under TLS's feet
time.sleep(0.5)
`;

Deno.test("attack/tls listen: a FIN without close_notify (a truncation) is ECONNRESET, never a clean EPIPE", async () => {
  await againstPythonClient(THEN_TRUNCATE, async (handle) => {
    const e = await rejectsWith(brecv(handle, new Uint8Array(1), soon()), "ECONNRESET");
    assert.match(e.message, /close_notify/);
  });
});

Deno.test("attack/tls listen: handshakes that fail (garbage, plain HTTP, half a ClientHello then FIN) close their sockets", async () => {
  const ls = await tlsListen({ port: 0 }, SERVER, 128, { maxHandshakes: 4 });
  const { port } = tcpLocalAddr(ls);
  const clients: Deno.Conn[] = [];
  try {
    const waiting = tlsAccept(ls, soon());
    waiting.catch(() => {});
    const payloads = [
      crypto.getRandomValues(new Uint8Array(2048)),
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      HALF_CLIENT_HELLO,
    ];
    for (let i = 0; i < 12; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      clients.push(conn);
      await conn.write(payloads[i % 3]);
      // The half ClientHello is followed by the client's FIN: the handshake cannot finish.
      if (i % 3 === 2) await conn.closeWrite();
    }
    // Each is cut off (an alert at most), and its server socket closed.
    for (const conn of clients) {
      const n = await within(
        (async () => {
          let total = 0;
          const buf = new Uint8Array(256);
          for (;;) {
            const got = await conn.read(buf).catch(() => null);
            if (got === null) return total;
            total += got;
          }
        })(),
        3000,
        "a failed client's read",
      );
      assert.ok(n < 64, `a failed client got ${n} bytes`);
    }
    await delay(50);
    assert.equal(serverSocketsOn(port), 0, "server sockets of failed handshakes still open");
    // And a good client still gets in, to the call that waited all along.
    const client = await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] });
    try {
      const { handle } = await waiting;
      hclose(handle);
    } finally {
      client.close();
    }
  } finally {
    for (const conn of clients) closeQuietly(conn);
    hclose(ls);
  }
});
