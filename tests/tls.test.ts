/**
 * The TLS layer: bsend/brecv over TLS on every transport (in-memory pair, TCP, Unix
 * socket), a 64 MiB byte-exact transfer, detach in both directions with plaintext
 * afterwards, and every failure of the handshake (untrusted CA, wrong host name, a
 * peer that speaks plain text, a silent peer, a peer that goes away) with its code.
 * Certificates come from tests/fixtures/tls (see its README.md).
 */

import assert from "node:assert/strict";
import {
  brecv,
  brecvl,
  bsend,
  bsendl,
  type Handle,
  hclose,
  ipcDone,
  ipcPair,
  now,
  tcpAccept,
  tcpClose,
  tcpConnect,
  tcpDone,
  tcpListen,
  tcpLocalAddr,
  tlsAttachClient,
  tlsAttachServer,
  tlsDetach,
  tlsDone,
  tlsInfo,
  type TlsOptions,
} from "../mod.ts";
import { TlsRecordScanner } from "../protocol/tls_records.ts";
import {
  assertWords,
  closeQuietly,
  delay,
  fillWords,
  type Kind,
  KINDS,
  openPair,
  pastDeadline,
  rejectsWith,
  rejectsWithOneOf,
  throwsWith,
  within,
} from "./helpers/transports.ts";
import { CA, CLIENT, fixture, pem, SERVER } from "./helpers/tls_fixtures.ts";

const WRONG_SERVER = { cert: pem("wrong_cert.pem"), key: pem("wrong_key.pem") };

const enc = new TextEncoder();
const dec = new TextDecoder();
const soon = (ms = 5000) => now() + ms;

interface TlsPair {
  /** The server side (accepting end). */
  s: Handle;
  /** The client side (connecting end). */
  c: Handle;
}

/** Runs `body` with a TLS connection over `kind`; everything is closed afterwards. */
async function withTls(
  kind: Kind,
  body: (p: TlsPair) => Promise<void>,
  options: { server?: TlsOptions; client?: TlsOptions } = {},
): Promise<void> {
  const pair = await openPair(kind);
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(pair.b, SERVER, soon(), options.server),
      tlsAttachClient(pair.a, CLIENT, soon(), options.client),
    ]);
    try {
      await within(body({ s, c }), 20_000, `TLS over ${kind}`);
    } finally {
      closeQuietly(s);
      closeQuietly(c);
    }
  } finally {
    await pair.cleanup();
  }
}

/** A plain TCP pair where only the client will speak TLS, for the failure tests. */
async function tcpPair(): Promise<{ a: Handle; b: Handle; close(): void }> {
  const ls = tcpListen({ port: 0 });
  try {
    const [accepted, a] = await Promise.all([
      tcpAccept(ls, soon()),
      tcpConnect(tcpLocalAddr(ls), soon()),
    ]);
    const b = accepted.handle;
    return { a, b, close: () => [a, b].forEach(closeQuietly) };
  } finally {
    hclose(ls);
  }
}

// ---- data over TLS on every transport ---------------------------------------------

for (const kind of KINDS) {
  Deno.test(`tls over ${kind}: bsend/brecv both ways, scatter/gather, TLS 1.3`, async () => {
    await withTls(kind, async ({ s, c }) => {
      assert.equal(tlsInfo(s).version, "TLSv1.3");
      assert.equal(tlsInfo(c).alpnProtocol, null);
      await bsend(c, enc.encode("hello, server"), soon());
      assert.equal(dec.decode(await brecv(s, new Uint8Array(13), soon())), "hello, server");
      await bsendl(s, [enc.encode("hello"), enc.encode(", "), enc.encode("client")], soon());
      const [x, y] = [new Uint8Array(4), new Uint8Array(9)];
      await brecvl(c, [x, y], soon());
      assert.equal(dec.decode(x) + dec.decode(y), "hello, client");
      // Many small sends in a row arrive in order and exact.
      const sends = [];
      for (let i = 0; i < 200; i++) sends.push(bsend(c, new Uint8Array([i]), soon()));
      await Promise.all(sends);
      const got = await brecv(s, new Uint8Array(200), soon());
      assert.deepEqual([...got], Array.from({ length: 200 }, (_, i) => i));
    });
  });

  Deno.test(`tls over ${kind}: detach both ways, then plaintext on the old stream`, async () => {
    const pair = await openPair(kind);
    try {
      const [s, c] = await Promise.all([
        tlsAttachServer(pair.b, SERVER, soon()),
        tlsAttachClient(pair.a, CLIENT, soon()),
      ]);
      await bsend(c, enc.encode("secret"), soon());
      assert.equal(dec.decode(await brecv(s, new Uint8Array(6), soon())), "secret");
      // Data still unread on either side when detaching is dropped, not handed down.
      await bsend(s, enc.encode("unread"), soon());
      const [ps, pc] = await Promise.all([tlsDetach(s, soon()), tlsDetach(c, soon())]);
      try {
        await rejectsWith(bsend(s, new Uint8Array(1), soon()), "EBADF");
        await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EBADF");
        await bsend(pc, enc.encode("plain up"), soon());
        assert.equal(dec.decode(await brecv(ps, new Uint8Array(8), soon())), "plain up");
        await bsend(ps, enc.encode("plain down"), soon());
        assert.equal(dec.decode(await brecv(pc, new Uint8Array(10), soon())), "plain down");
        // The plain streams can carry TLS again.
        const [s2, c2] = await Promise.all([
          tlsAttachServer(ps, SERVER, soon()),
          tlsAttachClient(pc, CLIENT, soon()),
        ]);
        await bsend(s2, enc.encode("again"), soon());
        assert.equal(dec.decode(await brecv(c2, new Uint8Array(5), soon())), "again");
        hclose(s2);
        hclose(c2);
      } finally {
        closeQuietly(ps);
        closeQuietly(pc);
      }
    } finally {
      await pair.cleanup();
    }
  });
}

// ---- half-close: tlsDone ------------------------------------------------------------

for (const kind of KINDS) {
  Deno.test(`tls over ${kind}: tlsDone flushes, sends close_notify, and keeps receiving`, async () => {
    await withTls(kind, async ({ s, c }) => {
      const sending = bsend(c, fillPattern(200_000), soon());
      await tlsDone(c, soon());
      await sending;
      // The server gets everything sent before, then EPIPE (the close_notify).
      assert.deepEqual(await brecv(s, new Uint8Array(200_000), soon()), fillPattern(200_000));
      await rejectsWith(brecv(s, new Uint8Array(1), soon()), "EPIPE");
      // The client still receives what the server sends.
      await bsend(s, enc.encode("still here"), soon());
      assert.equal(dec.decode(await brecv(c, new Uint8Array(10), soon())), "still here");
      // Later sends, and a second tlsDone, are EPIPE.
      await rejectsWith(bsend(c, new Uint8Array(1), soon()), "EPIPE");
      await rejectsWith(tlsDone(c, soon()), "EPIPE");
      // The server half-closes too; the client sees the end. TLS ended cleanly on both
      // sides: both detach to the plain stream with deadline 0, no waiting needed.
      await tlsDone(s, soon());
      await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EPIPE");
      const [ps, pc] = await Promise.all([tlsDetach(s, 0), tlsDetach(c, 0)]);
      await bsend(pc, enc.encode("plain"), soon());
      assert.equal(dec.decode(await brecv(ps, new Uint8Array(5), soon())), "plain");
      hclose(ps);
      hclose(pc);
    });
  });

  Deno.test(`tls over ${kind}: bsend with deadline 0 succeeds when the ciphertext goes out at once`, async () => {
    await withTls(kind, async ({ s, c }) => {
      await bsend(c, enc.encode("now"), 0);
      assert.equal(dec.decode(await brecv(s, new Uint8Array(3), soon())), "now");
    });
  });

  Deno.test(`tls over ${kind}: tcpClose with deadline 0 succeeds once the peer's close_notify came`, async () => {
    await withTls(kind, async ({ s, c }) => {
      await tlsDone(s, soon());
      await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EPIPE"); // it arrived
      await tcpClose(c, 0);
      await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EBADF");
      // The server saw the client's close_notify, then the end of the connection.
      await rejectsWith(brecv(s, new Uint8Array(1), soon()), "EPIPE");
    });
  });
}

Deno.test("tls: tlsDone on a handle that is not TLS is ENOTSUP and leaves it usable", async () => {
  const [a, b] = ipcPair();
  try {
    await rejectsWith(tlsDone(a, soon()), "ENOTSUP");
    await withTls("pipe", async ({ c }) => {
      await rejectsWith(tcpDone(c, soon()), "ENOTSUP"); // a TLS stream: tlsDone
      await rejectsWith(ipcDone(c, soon()), "ENOTSUP");
    });
    await bsend(a, enc.encode("ok"), soon());
    assert.equal(dec.decode(await brecv(b, new Uint8Array(2), soon())), "ok");
  } finally {
    hclose(a);
    hclose(b);
  }
});

Deno.test("tls: tlsDetach with deadline 0 fails while the peer's close_notify has not come", async () => {
  await withTls("pipe", async ({ s, c }) => {
    await rejectsWith(tlsDetach(c, 0), "ETIMEDOUT");
    await rejectsWith(bsend(c, new Uint8Array(1), soon()), "EBADF");
    // The client's close_notify went out before it gave up.
    await rejectsWithOneOf(brecv(s, new Uint8Array(1), soon()), ["EPIPE", "ECONNRESET"]);
  });
});

Deno.test("tls: a brecv pending during tlsDetach fails ECANCELED on the detaching side, EPIPE on the peer's", async () => {
  const [a, b] = ipcPair();
  const [s, c] = await Promise.all([
    tlsAttachServer(b, SERVER, soon()),
    tlsAttachClient(a, CLIENT, soon()),
  ]);
  const serverRead = brecv(s, new Uint8Array(10), soon());
  const clientRead = brecv(c, new Uint8Array(10), soon());
  const serverDetach = tlsDetach(s, soon());
  // The client's read meets the server's close_notify before the client detaches.
  await rejectsWith(within(clientRead, 2000, "the client's read"), "EPIPE");
  const [ps, pc] = await Promise.all([serverDetach, tlsDetach(c, soon())]);
  try {
    await rejectsWith(serverRead, "ECANCELED");
  } finally {
    hclose(ps);
    hclose(pc);
  }
});

/** `n` bytes of a simple position pattern. */
function fillPattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + (i >>> 9)) & 0xff;
  return out;
}

/** Reads one whole TLS record (header and body) from a plain bytestream. */
async function readRecord(h: Handle): Promise<Uint8Array> {
  const header = await brecv(h, new Uint8Array(5), soon());
  const body = await brecv(h, new Uint8Array((header[3] << 8) | header[4]), soon());
  const record = new Uint8Array(5 + body.length);
  record.set(header);
  record.set(body, 5);
  return record;
}

Deno.test("tls: data that arrives together with the client's Finished is not lost", async () => {
  // client ⇄ relay ⇄ server. The relay holds the client's Finished back until the
  // client's first data record follows it, then delivers both in one write: the server
  // decrypts the data in the same read that completes its handshake.
  const [c1, r1] = ipcPair();
  const [r2, s2] = ipcPair();
  try {
    const toClient = (async () => {
      for (;;) await bsend(r1, await readRecord(r2), soon());
    })().catch(() => {});
    const toServer = (async () => {
      await bsend(r2, await readRecord(r1), soon()); // ClientHello
      const held: Uint8Array[] = [];
      for (let encrypted = 0; encrypted < 2;) { // Finished, then the data
        const record = await readRecord(r1);
        held.push(record);
        if (record[0] === 23) encrypted++;
      }
      await bsendl(r2, held, soon());
      for (;;) await bsend(r2, await readRecord(r1), soon());
    })().catch(() => {});
    const serverSide = tlsAttachServer(s2, SERVER, soon());
    const c = await tlsAttachClient(c1, CLIENT, soon());
    await bsend(c, enc.encode("early"), soon());
    const s = await serverSide;
    assert.equal(dec.decode(await brecv(s, new Uint8Array(5), soon())), "early");
    hclose(s);
    hclose(c);
    closeQuietly(r1);
    closeQuietly(r2);
    await Promise.all([toClient, toServer]);
  } finally {
    [c1, r1, r2, s2].forEach(closeQuietly);
  }
});

Deno.test("tls over tcp: 64 MiB byte-exact one way while 8 MiB flow back", async () => {
  const TOTAL = 64 << 20;
  const BACK = 8 << 20;
  await withTls("tcp", async ({ s, c }) => {
    const started = performance.now();
    // Odd sizes on both sides, so sends and receives never line up with TLS records.
    const sendAll = async (h: Handle, total: number, sizes: number[]) => {
      for (let off = 0, i = 0; off < total; i++) {
        const n = Math.min(sizes[i % sizes.length], total - off);
        const buf = new Uint8Array(n);
        fillWords(buf, off >>> 2);
        await bsend(h, buf, soon(10_000));
        off += n;
      }
    };
    const recvAll = async (h: Handle, total: number, sizes: number[]) => {
      for (let off = 0, i = 0; off < total; i++) {
        const n = Math.min(sizes[i % sizes.length], total - off);
        const buf = await brecv(h, new Uint8Array(n), soon(10_000));
        assertWords(buf, off >>> 2);
        off += n;
      }
    };
    await Promise.all([
      sendAll(c, TOTAL, [1 << 20, 4, 65_536 + 12, 300_000, 16_384]),
      recvAll(s, TOTAL, [777_216, 8, 1 << 20, 40_000]),
      sendAll(s, BACK, [12_000, 1 << 20]),
      recvAll(c, BACK, [4096, 500_000]),
    ]);
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 10, `64 MiB over TLS took ${seconds.toFixed(1)} s`);
  });
});

Deno.test("tls: a slow reader makes the sender wait instead of buffering without bound", async () => {
  const opts = { readHighWater: 16_384, writeHighWater: 16_384 };
  await withTls("pipe", async ({ s, c }) => {
    const big = new Uint8Array(8 << 20);
    const sending = bsend(c, big, soon(10_000));
    await delay(100);
    let settled = false;
    sending.then(() => settled = true, () => settled = true);
    await delay(0);
    assert.equal(settled, false, "8 MiB cannot have been taken with nobody reading");
    await brecv(s, new Uint8Array(big.length), soon(10_000));
    await sending;
  }, { server: opts, client: opts });
});

Deno.test("tls over tls: a TLS stream can carry another TLS session", async () => {
  await withTls("pipe", async ({ s, c }) => {
    const [s2, c2] = await Promise.all([
      tlsAttachServer(s, SERVER, soon()),
      tlsAttachClient(c, CLIENT, soon()),
    ]);
    try {
      await bsend(c2, enc.encode("inner"), soon());
      assert.equal(dec.decode(await brecv(s2, new Uint8Array(5), soon())), "inner");
    } finally {
      hclose(s2);
      hclose(c2);
    }
  });
});

// ---- options: ALPN, IP addresses, files ---------------------------------------------

Deno.test("tls: ALPN agrees on a protocol both offer", async () => {
  const pair = await openPair("pipe");
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(pair.b, { ...SERVER, alpn: ["dill/1", "http/1.1"] }, soon()),
      tlsAttachClient(pair.a, { ...CLIENT, alpn: ["h2", "http/1.1"] }, soon()),
    ]);
    assert.equal(tlsInfo(s).alpnProtocol, "http/1.1");
    assert.equal(tlsInfo(c).alpnProtocol, "http/1.1");
    hclose(s);
    hclose(c);
  } finally {
    await pair.cleanup();
  }
});

Deno.test("tls: no ALPN protocol in common is EPROTO on the server", async () => {
  const pair = await openPair("pipe");
  try {
    const [server, client] = await Promise.allSettled([
      tlsAttachServer(pair.b, { ...SERVER, alpn: ["dill/1"] }, soon()),
      tlsAttachClient(pair.a, { ...CLIENT, alpn: ["h2"] }, soon()),
    ]);
    const error = await rejectsWith(
      Promise.reject(server.status === "rejected" && server.reason),
      "EPROTO",
    );
    assert.match(error.message, /ALPN/);
    await rejectsWithOneOf(Promise.reject(client.status === "rejected" && client.reason), [
      "ECONNRESET",
      "EPROTO",
    ]);
  } finally {
    await pair.cleanup();
  }
});

Deno.test("tls: an IP address is checked against the certificate's IP names", async () => {
  const pair = await openPair("tcp");
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(pair.b, SERVER, soon()),
      tlsAttachClient(pair.a, { hostname: "127.0.0.1", caCerts: [CA] }, soon()),
    ]);
    await bsend(s, enc.encode("ip"), soon());
    assert.equal(dec.decode(await brecv(c, new Uint8Array(2), soon())), "ip");
    hclose(s);
    hclose(c);
  } finally {
    await pair.cleanup();
  }
});

Deno.test("tls: credentials can be given as PEM files", async () => {
  const pair = await openPair("pipe");
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(
        pair.b,
        { certFile: fixture("cert.pem"), keyFile: fixture("key.pem") },
        soon(),
      ),
      tlsAttachClient(pair.a, { hostname: "localhost", caCertFiles: [fixture("ca.pem")] }, soon()),
    ]);
    hclose(s);
    hclose(c);
  } finally {
    await pair.cleanup();
  }
});

Deno.test("tls: bad arguments are EINVAL and leave the handle usable", async () => {
  const pair = await openPair("pipe");
  try {
    const { a, b } = pair;
    await rejectsWith(tlsAttachServer(a, { cert: SERVER.cert }, soon()), "EINVAL");
    await rejectsWith(tlsAttachServer(a, { cert: "not pem", key: SERVER.key }, soon()), "EINVAL");
    await rejectsWith(tlsAttachServer(a, { ...SERVER, certFile: "x.pem" }, soon()), "EINVAL");
    await rejectsWith(
      tlsAttachServer(a, { certFile: "/nonexistent/cert.pem", key: SERVER.key }, soon()),
      "EINVAL",
    );
    const wrongKey = { cert: SERVER.cert, key: WRONG_SERVER.key };
    const error = await rejectsWith(tlsAttachServer(a, wrongKey, soon()), "EINVAL");
    assert.match(error.message, /not the private key/);
    const badKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    await rejectsWith(tlsAttachServer(a, { cert: SERVER.cert, key: badKey }, soon()), "EINVAL");
    await rejectsWith(tlsAttachClient(a, { hostname: "" }, soon()), "EINVAL");
    await rejectsWith(
      tlsAttachClient(a, { hostname: "x", caCerts: [SERVER.key] }, soon()),
      "EINVAL",
    );
    await rejectsWith(tlsAttachClient(a, { ...CLIENT, alpn: [""] }, soon()), "EINVAL");
    await rejectsWith(tlsAttachClient(a, CLIENT, Infinity), "EINVAL");
    // Not TLS: detach and info say so, and the handle is still fine.
    await rejectsWith(tlsDetach(a, soon()), "ENOTSUP");
    throwsWith(() => tlsInfo(a), "ENOTSUP");
    await bsend(a, enc.encode("ok"), soon());
    assert.equal(dec.decode(await brecv(b, new Uint8Array(2), soon())), "ok");
  } finally {
    await pair.cleanup();
  }
});

// ---- handles and closing ------------------------------------------------------------

Deno.test("tls: attach takes the handle over; hclose closes the whole stack", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(b, SERVER, soon()),
      tlsAttachClient(a, CLIENT, soon()),
    ]);
    await rejectsWith(bsend(a, new Uint8Array(1), soon()), "EBADF");
    await rejectsWith(brecv(b, new Uint8Array(1), soon()), "EBADF");
    const pending = brecv(c, new Uint8Array(1), -1);
    hclose(c);
    await rejectsWith(pending, "ECANCELED");
    await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EBADF");
    // The server sees the connection go away without a close_notify.
    await rejectsWith(brecv(s, new Uint8Array(1), soon()), "ECONNRESET");
    hclose(s);
  } finally {
    close();
  }
});

Deno.test("tls: tcpClose on a TLS handle sends close_notify and waits for the peer's", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(b, SERVER, soon()),
      tlsAttachClient(a, CLIENT, soon()),
    ]);
    await bsend(c, enc.encode("last words"), soon());
    const closing = tcpClose(c, soon());
    assert.equal(dec.decode(await brecv(s, new Uint8Array(10), soon())), "last words");
    await rejectsWith(brecv(s, new Uint8Array(1), soon()), "EPIPE"); // the close_notify
    // The server answers with its own close_notify; the client's close then completes.
    const plain = await tlsDetach(s, soon());
    await closing;
    await rejectsWith(brecv(plain, new Uint8Array(1), soon()), "EPIPE"); // then TCP's FIN
    hclose(plain);
  } finally {
    close();
  }
});

Deno.test("tls: bytes sent right behind a close_notify survive the detach", async () => {
  for (let round = 0; round < 5; round++) {
    const pair = await openPair(round % 2 ? "tcp" : "pipe");
    try {
      const [s, c] = await Promise.all([
        tlsAttachServer(pair.b, SERVER, soon()),
        tlsAttachClient(pair.a, CLIENT, soon()),
      ]);
      // The server detaches first; the client's detach then completes at once and its
      // plaintext follows its close_notify closely, often in the same read.
      const serverSide = tlsDetach(s, soon());
      await delay(round);
      const pc = await tlsDetach(c, soon());
      await bsend(pc, enc.encode("right behind"), soon());
      const ps = await serverSide;
      assert.equal(dec.decode(await brecv(ps, new Uint8Array(12), soon())), "right behind");
      hclose(ps);
      hclose(pc);
    } finally {
      await pair.cleanup();
    }
  }
});

Deno.test("tls: detach fails with ETIMEDOUT if the peer never sends close_notify", async () => {
  await withTls("pipe", async ({ s, c }) => {
    await rejectsWith(tlsDetach(c, now() + 100), "ETIMEDOUT");
    await rejectsWith(bsend(c, new Uint8Array(1), soon()), "EBADF");
    // The client's stack is closed: the server sees its close_notify, then the end.
    await rejectsWithOneOf(brecv(s, new Uint8Array(1), soon()), ["EPIPE", "ECONNRESET"]);
  });
});

// ---- handshake failures -------------------------------------------------------------

Deno.test("tls: an untrusted certificate is EPROTO; both stacks end closed", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const [server, client] = await Promise.allSettled([
      tlsAttachServer(b, WRONG_SERVER, soon()),
      tlsAttachClient(a, CLIENT, soon()),
    ]);
    assert.equal(client.status, "rejected");
    const error = await rejectsWith(Promise.reject(client.reason), "EPROTO");
    assert.match(error.message, /not signed by a trusted CA/);
    // The server may have finished its side of the handshake before the client hung up.
    if (server.status === "fulfilled") {
      await rejectsWith(brecv(server.value, new Uint8Array(1), soon()), "ECONNRESET");
      hclose(server.value);
    } else {
      await rejectsWithOneOf(Promise.reject(server.reason), ["ECONNRESET", "EPROTO"]);
    }
    await rejectsWith(bsend(a, new Uint8Array(1), soon()), "EBADF");
  } finally {
    close();
  }
});

Deno.test("tls: a certificate for another host name is EPROTO", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const [server, client] = await Promise.allSettled([
      tlsAttachServer(b, SERVER, soon()),
      tlsAttachClient(a, { hostname: "example.com", caCerts: [CA] }, soon()),
    ]);
    const error = await rejectsWith(
      Promise.reject(client.status === "rejected" && client.reason),
      "EPROTO",
    );
    assert.match(error.message, /does not name the host/);
    if (server.status === "fulfilled") hclose(server.value);
  } finally {
    close();
  }
});

Deno.test("tls: the system roots do not trust the test CA", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const [server, client] = await Promise.allSettled([
      tlsAttachServer(b, SERVER, soon()),
      tlsAttachClient(a, { hostname: "localhost" }, soon()),
    ]);
    await rejectsWith(Promise.reject(client.status === "rejected" && client.reason), "EPROTO");
    if (server.status === "fulfilled") hclose(server.value);
  } finally {
    close();
  }
});

Deno.test("tls: a client speaking plain text makes the server fail with EPROTO", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const attaching = tlsAttachServer(b, SERVER, soon());
    await bsend(a, enc.encode("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), soon());
    const error = await rejectsWith(attaching, "EPROTO");
    assert.match(error.message, /does not speak TLS/);
  } finally {
    close();
  }
});

Deno.test("tls: a server answering in plain text makes the client fail with EPROTO", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const attaching = tlsAttachClient(a, CLIENT, soon());
    await brecv(b, new Uint8Array(5), soon()); // the start of the ClientHello
    await bsend(b, enc.encode("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), soon());
    const error = await rejectsWith(attaching, "EPROTO");
    assert.match(error.message, /does not speak TLS/);
  } finally {
    close();
  }
});

Deno.test("tls: a certificate chain over the client's handshake message limit is named as such", async () => {
  const { a, b, close } = await tcpPair();
  try {
    // 300 copies of the CA after the certificate: about 200 KiB in one handshake message.
    const chain = { cert: SERVER.cert + CA.repeat(300), key: SERVER.key };
    const [server, client] = await Promise.allSettled([
      tlsAttachServer(b, chain, soon()),
      tlsAttachClient(a, CLIENT, soon()),
    ]);
    const error = await rejectsWith(
      Promise.reject(client.status === "rejected" && client.reason),
      "EPROTO",
    );
    assert.match(error.message, /handshake message was too large/);
    if (server.status === "fulfilled") hclose(server.value);
  } finally {
    close();
  }
});

Deno.test("tls: a silent peer makes the handshake fail with ETIMEDOUT at the deadline", async () => {
  for (const side of ["server", "client"] as const) {
    const { a, b, close } = await tcpPair();
    try {
      const start = now();
      const attaching = side === "server"
        ? tlsAttachServer(b, SERVER, now() + 150)
        : tlsAttachClient(a, CLIENT, now() + 150);
      await rejectsWith(attaching, "ETIMEDOUT");
      assert.ok(now() - start >= 140, `${side}: failed before the deadline`);
      await rejectsWith(bsend(side === "server" ? b : a, new Uint8Array(1), soon()), "EBADF");
    } finally {
      close();
    }
  }
});

// A handshake needs at least one round trip with the peer after our first flight, which
// is waiting by definition: attach with deadline 0 (or past) never tries (README,
// "Differences from libdill").
Deno.test("tls: deadline 0 or past fails at once with ETIMEDOUT and closes the stack", async () => {
  const pair = await openPair("pipe");
  try {
    await rejectsWith(tlsAttachClient(pair.a, CLIENT, 0), "ETIMEDOUT");
    await rejectsWith(tlsAttachServer(pair.b, SERVER, pastDeadline()), "ETIMEDOUT");
    await rejectsWith(bsend(pair.a, new Uint8Array(1), soon()), "EBADF");
  } finally {
    await pair.cleanup();
  }
});

Deno.test("tls: attach with deadline 0 fails even when the peer's first flight is there", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const client = tlsAttachClient(a, CLIENT, soon());
    client.catch(() => {});
    await delay(50); // the ClientHello has arrived at b
    await rejectsWith(tlsAttachServer(b, SERVER, 0), "ETIMEDOUT");
    await rejectsWithOneOf(client, ["ECONNRESET", "EPROTO"]);
  } finally {
    close();
  }
});

Deno.test("tls: a peer that hangs up during the handshake is ECONNRESET", async () => {
  const { a, b, close } = await tcpPair();
  try {
    const attaching = tlsAttachClient(a, CLIENT, soon());
    await brecv(b, new Uint8Array(5), soon());
    hclose(b);
    await rejectsWith(attaching, "ECONNRESET");
  } finally {
    close();
  }
});

// ---- the record scanner (I/O-free) -----------------------------------------------------

Deno.test("tls records: cuts after small records, keeps large ones together", () => {
  const record = (type: number, size: number) => {
    const r = new Uint8Array(5 + size);
    r.set([type, 3, 3, size >> 8, size & 0xff]);
    return r;
  };
  const stream = new Uint8Array([
    ...record(23, 1000),
    ...record(23, 2000),
    ...record(23, 19), // a TLS 1.3 close_notify has this size
    ...record(23, 300),
    ...record(21, 2), // a TLS 1.2 alert
  ]);
  const cuts = (chunkSize: number) => {
    const scanner = new TlsRecordScanner();
    const out: number[] = [];
    for (let base = 0; base < stream.length; base += chunkSize) {
      const chunk = stream.subarray(base, base + chunkSize);
      for (let off = 0; off < chunk.length;) {
        off = scanner.nextCut(chunk, off);
        if (off < chunk.length) out.push(base + off); // a cut inside the chunk
      }
    }
    return out;
  };
  const afterClose = 1005 + 2005 + 24;
  assert.deepEqual(cuts(stream.length), [afterClose]);
  // Split anywhere (even inside headers), the cut lands on the same byte and nowhere else.
  for (const size of [2, 3, 7, 1000, 1004, 3030]) {
    assert.deepEqual(cuts(size).filter((c) => c !== afterClose), [], `chunks of ${size}`);
    if (afterClose % size !== 0) assert.ok(cuts(size).includes(afterClose), `chunks of ${size}`);
  }
});
