/**
 * Red-team attacks on `sendBuffer` (StreamOptions) with real sockets: a peer that never
 * reads while the application keeps sending, a peer that resets while completed sends
 * are still queued and another send waits, and `hclose` with bytes owed to a peer that
 * never reads. What must hold: the bytes of completed sends that are not yet written
 * stay within the send buffer (and everything queued within writeHighWater and one
 * send); a reset fails the waiting send and the next calls at once with a clear code;
 * `hclose` gives up after its linger and the socket is closed. (On the native TLS path
 * Deno keeps that socket until the peer reads: a documented limit, see README "TLS and
 * wss".)
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  DEFAULT_CLOSE_LINGER_MS,
  type Handle,
  hclose,
  isDillError,
  now,
  type StreamOptions,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  tlsAccept,
  tlsAttachServer,
  tlsListen,
  WS_BINARY,
  WS_NOHTTP,
  wsAttachServer,
  wsSend,
} from "../mod.ts";
import { OP } from "./helpers/raw_peer/frames.ts";
import { connectRaw } from "./helpers/raw_peer/rig.ts";
import { delay, rejectsWithOneOf, settlesWithin } from "./helpers/transports.ts";
import { CA, SERVER } from "./helpers/tls_fixtures.ts";
import { serverSocketsOn, tcpTable } from "./helpers/tcp_table.ts";

const KIB = 1024;
const soon = (ms = 5000) => now() + ms;

/** Bytes written into the kernel toward the client and not read by it yet. */
function bytesInKernel(serverPort: number): number {
  let total = 0;
  for (const r of tcpTable()) {
    if (r.state === "0A") continue;
    if (r.localPort === serverPort) total += r.txQueue; // the server's send queue
    if (r.remotePort === serverPort) total += r.rxQueue; // the client's receive queue
  }
  return total;
}

type Kind = "tcp" | "tls attach" | "tls native";

/** A server handle of `kind` with `options`, and a raw client that reads only when told. */
async function openServer(
  kind: Kind,
  options: StreamOptions,
  tlsOptions?: StreamOptions,
): Promise<{ server: Handle; client: Deno.Conn; port: number; cleanup: () => void }> {
  const ls = kind === "tls native" ? await tlsListen({ port: 0 }, SERVER) : tcpListen({ port: 0 });
  const { port } = tcpLocalAddr(ls);
  try {
    let server: Handle;
    let client: Deno.Conn;
    if (kind === "tls native") {
      const accepting = tlsAccept(ls, soon(), options);
      client = await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] });
      server = (await accepting).handle;
    } else if (kind === "tls attach") {
      const accepting = tcpAccept(ls, soon(), options);
      client = await Deno.connectTls({ hostname: "localhost", port, caCerts: [CA] });
      const [tls] = await Promise.all([
        tlsAttachServer((await accepting).handle, SERVER, soon(), tlsOptions),
        (client as Deno.TlsConn).handshake(),
      ]);
      server = tls;
    } else {
      const accepting = tcpAccept(ls, soon(), options);
      client = await Deno.connect({ hostname: "127.0.0.1", port });
      server = (await accepting).handle;
    }
    const cleanup = () => {
      try {
        hclose(server);
      } catch (e) {
        if (!isDillError(e, "EBADF")) throw e;
      }
      try {
        client.close();
      } catch {
        // Already closed.
      }
    };
    return { server, client, port, cleanup };
  } finally {
    hclose(ls);
  }
}

Deno.test("attack/send buffer: a peer that never reads: completed sends leave at most sendBuffer unwritten, and the queue stays within writeHighWater", async () => {
  for (
    const [sendBuffer, writeHighWater] of [
      [16 * 1024 * KIB, 256 * KIB], // a send buffer larger than the queue's bound
      [64 * KIB, 256 * KIB],
    ]
  ) {
    const { server, port, cleanup } = await openServer("tcp", { sendBuffer, writeHighWater });
    try {
      // Fresh 64 KiB sends, as an application producing data would make, up to 64 MiB:
      // completed until one has to wait (it then times out and ends the loop).
      const size = 64 * KIB;
      let completed = 0;
      for (let i = 0; i < 1024; i++) {
        const ok = await bsend(server, new Uint8Array(size).fill(i), now() + 200).then(
          () => true,
          () => false,
        );
        if (!ok) break;
        completed += size;
      }
      const kernel = bytesInKernel(port);
      const unwritten = completed - kernel;
      assert.ok(completed < 64 * 1024 * KIB, "every send completed: nothing bounds the queue");
      assert.ok(
        unwritten <= Math.min(sendBuffer, writeHighWater + size),
        `sendBuffer ${sendBuffer}: ${completed} bytes of completed sends, ${kernel} in the ` +
          `kernel: ${unwritten} held by us`,
      );
    } finally {
      cleanup();
    }
  }
});

for (const kind of ["tcp", "tls native", "tls attach"] as const) {
  Deno.test(`attack/send buffer (${kind}): a reset while completed sends are queued and one waits fails it at once, and the next calls`, async () => {
    const { server, client, port, cleanup } = await openServer(kind, { sendBuffer: 1024 * KIB });
    try {
      // The client reads nothing: sends complete (written, then within the send buffer)
      // until one has to wait for room.
      let waiting: Promise<void> | null = null;
      for (let i = 0; i < 512 && waiting === null; i++) {
        const sending = bsend(server, new Uint8Array(64 * KIB), soon(4000));
        if (!await settlesWithin(sending, 100)) waiting = sending;
        else await sending;
      }
      assert.ok(waiting, "no send ever waited");
      // The client resets: it closes with unread bytes in its receive queue.
      client.close();
      const t0 = now();
      await rejectsWithOneOf(waiting, ["ECONNRESET", "EPIPE"]);
      assert.ok(now() - t0 < 2000, `the waiting send failed after ${now() - t0} ms`);
      await rejectsWithOneOf(bsend(server, new Uint8Array(10), soon(1000)), [
        "ECONNRESET",
        "EPIPE",
      ]);
      await rejectsWithOneOf(brecv(server, new Uint8Array(1), soon(1000)), [
        "ECONNRESET",
        "EPIPE",
      ]);
      hclose(server);
      await delay(100);
      assert.equal(serverSocketsOn(port), 0, "the server socket is still open");
    } finally {
      cleanup();
    }
  });
}

/** The most `hclose` lingers per layer that owes bytes (`DEFAULT_CLOSE_LINGER_MS`). */
const LINGER_MS = DEFAULT_CLOSE_LINGER_MS;

/** Fills the kernel's buffers toward a client that never reads, and the send buffer. */
async function fillTowardNonReader(server: Handle): Promise<void> {
  for (let i = 0; i < 256; i++) {
    const ok = await bsend(server, new Uint8Array(64 * KIB), now() + 150).then(
      () => true,
      () => false,
    );
    if (!ok) break;
  }
}

/** Waits up to `bound` ms after `t0` for the server's sockets on `port` to be gone. */
async function socketsGoneWithin(port: number, t0: number, bound: number): Promise<void> {
  while (serverSocketsOn(port) > 0 && now() - t0 < bound) await delay(25);
  assert.equal(
    serverSocketsOn(port),
    0,
    `the server socket is still open ${now() - t0} ms after hclose`,
  );
}

for (const [kind, layers] of [["tcp", 1], ["tls attach", 2]] as const) {
  for (const sendBuffer of [0, 1024 * KIB]) {
    Deno.test(`attack/send buffer (${kind}, sendBuffer ${sendBuffer}): hclose toward a peer that never reads closes the socket once the linger is over`, async () => {
      const { server, port, cleanup } = await openServer(kind, { sendBuffer });
      try {
        // Fill the kernel's buffers, and the send buffer: until a send has to wait.
        await fillTowardNonReader(server);
        const t0 = now();
        hclose(server);
        assert.ok(now() - t0 < 50, "hclose blocked");
        assert.equal(serverSocketsOn(port), 1, "the socket lingers for the bytes owed");
        // Each layer that owes bytes lingers up to 1 s, one after the other (measured:
        // TLS over TCP about 2 s); then the socket is closed (the kernel may go on
        // trying to deliver what it holds: that is its business, and bounded).
        await socketsGoneWithin(port, t0, layers * LINGER_MS + 600);
      } finally {
        cleanup();
      }
    });
  }
}

for (const [kind, layers] of [["tcp", 1], ["tls attach", 2]] as const) {
  for (const closeLinger of [0, 150]) {
    Deno.test(`attack/send buffer (${kind}, closeLinger ${closeLinger}): hclose toward a peer that never reads lingers no longer than the option says`, async () => {
      const options = { sendBuffer: 1024 * KIB, closeLinger };
      const { server, port, cleanup } = await openServer(kind, options, options);
      try {
        await fillTowardNonReader(server);
        const t0 = now();
        hclose(server);
        if (closeLinger > 0) {
          assert.equal(serverSocketsOn(port), 1, "closed before the linger: bytes owed dropped");
        }
        // Far below the default's 1 s per layer, so the option is what bounded it.
        await socketsGoneWithin(port, t0, layers * closeLinger + 250);
      } finally {
        cleanup();
      }
    });
  }
}

Deno.test("attack/send buffer: closeLinger must be a whole number of ms from 0 to 2^31 - 1", async () => {
  const ls = tcpListen({ port: 0 });
  try {
    for (const closeLinger of [-1, 0.5, Number.NaN, 2 ** 31]) {
      await assert.rejects(
        tcpAccept(ls, soon(), { closeLinger }),
        (e) => isDillError(e, "EINVAL") && /closeLinger/.test(e.message),
      );
    }
  } finally {
    hclose(ls);
  }
});

for (const transport of ["tcp", "pipe"] as const) {
  Deno.test(`attack/send buffer (${transport}): hclose right after a frame too big to complete at once never leaves the peer a cut frame`, async () => {
    const { ours, peer } = await connectRaw(transport, "client", { sendBuffer: 64 * KIB });
    try {
      const { handle: ws } = await wsAttachServer(ours, WS_NOHTTP, soon());
      // The small frame fits in the send buffer: it completes at once and must be written
      // even though the handle closes right after. The big one cannot complete at once
      // (100,000 bytes > 64 KiB): its header is small, queued behind the small frame, its
      // payload large, queued on its own. hclose comes before any write started.
      const small = wsSend(ws, WS_BINARY, new Uint8Array(10).fill(7), soon());
      const big = wsSend(ws, WS_BINARY, new Uint8Array(100_000), soon());
      big.catch(() => {});
      hclose(ws);
      await small;
      const error = await big.then(() => null, (e) => e);
      assert.ok(isDillError(error), `the big send that waited: ${error}`);
      // The peer gets the completed frame whole, then the end: not the big frame's header
      // promising 100,000 bytes that never come.
      const first = await peer.readFrame();
      assert.equal(first.opcode, OP.BINARY);
      assert.deepEqual([...first.payload], new Array(10).fill(7));
      await peer.expectEnd();
    } finally {
      await peer.close();
    }
  });
}
