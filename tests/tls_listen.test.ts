/**
 * The native TLS server path (actors/tls_listen.ts, actors/tls_listener.ts): tlsListen
 * on `Deno.listenTls`, tlsAccept handing out TLS bytestream handles whose handshake
 * completed. With real peers: Deno's `WebSocket` client and Python `websockets` over
 * wss, our own tlsAttachClient over TCP. The handles keep the attach path's guarantees
 * (tlsDone = close_notify + half-close, clean close, send then hclose delivers,
 * deadlines and signals), tlsDetach is refused with ENOTSUP, and hostile clients
 * (silent, garbage, resetting mid-handshake) never block or kill the listener.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_HANDSHAKES,
  type Handle,
  hclose,
  isDillError,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpClose,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  tlsAccept,
  tlsAttachClient,
  tlsDetach,
  tlsDone,
  tlsInfo,
  tlsListen,
  type TlsOptions,
  WS_BINARY,
  wsAttachClient,
  wsAttachServer,
  wsDetach,
} from "../mod.ts";
import {
  closeQuietly,
  delay,
  rejectsWith,
  rejectsWithOneOf,
  within,
} from "./helpers/transports.ts";
import { CA, CLIENT, fixture, pem, SERVER } from "./helpers/tls_fixtures.ts";
import { denoClientEchoes, echoUntilClosed } from "./helpers/wss_echo.ts";
import { PYTHON, startPythonPeer } from "./peers/python_peer.ts";

const T = 5000;
const soon = (ms = T) => now() + ms;
const enc = new TextEncoder();
const dec = new TextDecoder();

function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Connects our own TLS client (tcpConnect → tlsAttachClient) to a TLS listener. */
async function connectTls(ls: Handle, options?: TlsOptions): Promise<Handle> {
  const tcp = await tcpConnect(tcpLocalAddr(ls), soon());
  return await tlsAttachClient(tcp, CLIENT, soon(), options);
}

/** A client on our stack and the server handle tlsAccept gave for it. */
async function tlsPair(ls: Handle, server?: TlsOptions): Promise<{ s: Handle; c: Handle }> {
  const [accepted, c] = await Promise.all([tlsAccept(ls, soon(), server), connectTls(ls)]);
  return { s: accepted.handle, c };
}

/** Runs `body` with a listener (default options); closes it afterwards. */
async function withListener(
  body: (ls: Handle) => Promise<void>,
  options?: Parameters<typeof tlsListen>[3],
  config: Parameters<typeof tlsListen>[1] = SERVER,
): Promise<void> {
  const ls = await tlsListen({ port: 0 }, config, 128, options);
  try {
    await within(body(ls), 20_000, "tls listener test");
  } finally {
    hclose(ls);
  }
}

// ---- data --------------------------------------------------------------------------------

Deno.test("tls listen: bsend/brecv both ways with our TLS client; tlsInfo; the peer's address", async () => {
  await withListener(async (ls) => {
    const [accepted, c] = await Promise.all([tlsAccept(ls, soon()), connectTls(ls)]);
    const s = accepted.handle;
    try {
      assert.equal(accepted.addr.hostname, "127.0.0.1");
      assert.ok(accepted.addr.port > 0);
      assert.deepEqual(tlsInfo(s), { version: null, alpnProtocol: null });
      assert.equal(tlsInfo(c).version, "TLSv1.3");
      const up = pattern(300_000, 1), down = pattern(200_000, 2);
      const got = new Uint8Array(up.length);
      await Promise.all([bsend(c, up, soon()), brecv(s, got, soon())]);
      assert.deepEqual(got, up);
      const back = new Uint8Array(down.length);
      await Promise.all([bsend(s, down, soon()), brecv(c, back, soon())]);
      assert.deepEqual(back, down);
    } finally {
      hclose(s);
      hclose(c);
    }
  });
});

Deno.test("tls listen: ALPN from the config is offered and agreed", async () => {
  await withListener(
    async (ls) => {
      const tcp = await tcpConnect(tcpLocalAddr(ls), soon());
      const [{ handle: s }, c] = await Promise.all([
        tlsAccept(ls, soon()),
        tlsAttachClient(tcp, { ...CLIENT, alpn: ["h2", "http/1.1"] }, soon()),
      ]);
      assert.equal(tlsInfo(s).alpnProtocol, "http/1.1");
      assert.equal(tlsInfo(c).alpnProtocol, "http/1.1");
      hclose(s);
      hclose(c);
    },
    {},
    { ...SERVER, alpn: ["http/1.1"] },
  );
});

Deno.test("tls listen: 40 clients at once, each echoed byte-exact", async () => {
  await withListener(async (ls) => {
    const N = 40;
    const serving = (async () => {
      const done: Promise<void>[] = [];
      for (let i = 0; i < N; i++) {
        const { handle } = await tlsAccept(ls, soon(10_000));
        done.push((async () => {
          try {
            const buf = await brecv(handle, new Uint8Array(20_000), soon(10_000));
            await bsend(handle, buf, soon(10_000));
          } finally {
            hclose(handle);
          }
        })());
      }
      await Promise.all(done);
    })();
    await Promise.all(Array.from({ length: N }, async (_, i) => {
      const c = await connectTls(ls);
      try {
        const msg = pattern(20_000, i);
        await bsend(c, msg, soon(10_000));
        assert.deepEqual(await brecv(c, new Uint8Array(20_000), soon(10_000)), msg);
      } finally {
        hclose(c);
      }
    }));
    await serving;
  });
});

// ---- wss with real clients -----------------------------------------------------------------

Deno.test("tls listen: Deno's WebSocket client talks to tlsListen → tlsAccept → wsAttachServer", async () => {
  const ls = await tlsListen({ port: 0 }, { ...SERVER, alpn: ["http/1.1"] });
  const { port } = tcpLocalAddr(ls);
  try {
    const serving = (async () => {
      const { handle: tls } = await tlsAccept(ls, soon());
      const { handle, resource } = await wsAttachServer(tls, WS_BINARY, soon());
      assert.equal(resource, "/native");
      return await echoUntilClosed(handle, 15_000);
    })();
    await denoClientEchoes(
      `wss://localhost:${port}/native`,
      serving,
      "héllo native wss",
      pattern(1 << 20, 5),
    );
  } finally {
    hclose(ls);
  }
});

Deno.test("tls listen: Python websockets client talks to tlsListen → wsAttachServer", async () => {
  const ls = await tlsListen({ port: 0 }, SERVER);
  const { port } = tcpLocalAddr(ls);
  const py = startPythonPeer("py_wss.py", [
    "client",
    `wss://localhost:${port}/py`,
    fixture("ca.pem"),
  ]);
  try {
    const { handle: tls } = await tlsAccept(ls, soon(10_000));
    const { handle, resource } = await wsAttachServer(tls, WS_BINARY, soon());
    assert.equal(resource, "/py");
    const serving = echoUntilClosed(handle, 15_000);
    assert.deepEqual(await py.json("echoed"), {
      event: "echoed",
      text: "hello over wss",
      binary_ok: true,
    });
    assert.deepEqual(await py.json("closed"), { event: "closed", code: 1000, reason: "" });
    assert.deepEqual(await within(serving, T, "server side"), { status: 1000, reason: "done" });
    assert.equal((await py.wait()).code, 0);
  } finally {
    await py.dispose();
    hclose(ls);
  }
});

Deno.test("tls listen: our wss client, then wsDetach back to the native TLS bytestream", async () => {
  await withListener(async (ls) => {
    const { s: tlsS, c: tlsC } = await tlsPair(ls);
    let server: Handle = tlsS, client: Handle = tlsC;
    try {
      const [accepted, attached] = await Promise.all([
        wsAttachServer(tlsS, WS_BINARY, soon()),
        wsAttachClient(tlsC, WS_BINARY, "/layers", "localhost", soon()),
      ]);
      server = accepted.handle;
      client = attached.handle;
      for (let i = 0; i < 12; i++) {
        const payload = pattern(1 + i * 90_000, i);
        await msend(client, payload, soon());
        assert.deepEqual(await mrecv(server, soon()), payload);
      }
      // Down one layer: the TLS bytestreams again, bytes right behind the close frames kept.
      [server, client] = await Promise.all([
        wsDetach(server, 1000, "", soon()),
        wsDetach(client, 1000, "", soon()),
      ]);
      await bsend(client, enc.encode("tls again"), soon());
      assert.equal(dec.decode(await brecv(server, new Uint8Array(9), soon())), "tls again");
      await rejectsWith(tlsDetach(server, soon()), "ENOTSUP");
    } finally {
      closeQuietly(server);
      closeQuietly(client);
    }
  });
});

// ---- the attach path's guarantees ------------------------------------------------------------

Deno.test("tls listen: tlsDone flushes, sends close_notify, and keeps receiving", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls);
    try {
      // The server half-closes after a large send: the client gets all of it, then EPIPE.
      const sending = bsend(s, pattern(200_000), soon());
      await tlsDone(s, soon());
      await sending;
      assert.deepEqual(await brecv(c, new Uint8Array(200_000), soon()), pattern(200_000));
      await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EPIPE");
      // The server still receives.
      await bsend(c, enc.encode("still here"), soon());
      assert.equal(dec.decode(await brecv(s, new Uint8Array(10), soon())), "still here");
      // Later sends, and a second tlsDone, are EPIPE.
      await rejectsWith(bsend(s, new Uint8Array(1), soon()), "EPIPE");
      await rejectsWith(tlsDone(s, soon()), "EPIPE");
      // The client half-closes too, with close_notify: the server sees the end.
      await tlsDone(c, soon());
      await rejectsWith(brecv(s, new Uint8Array(1), soon()), "EPIPE");
      // TLS ended cleanly on both sides: the client detaches to plain TCP at once.
      hclose(await tlsDetach(c, 0));
    } finally {
      closeQuietly(s);
      closeQuietly(c);
    }
  });
});

Deno.test("tls listen: tcpClose sends close_notify and waits for the peer's", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls);
    try {
      await bsend(s, enc.encode("last words"), soon());
      const closing = tcpClose(s, soon());
      assert.equal(dec.decode(await brecv(c, new Uint8Array(10), soon())), "last words");
      await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EPIPE"); // the close_notify
      // The client answers with its own close_notify; the server's close then completes.
      const plain = await tlsDetach(c, soon());
      await within(closing, T, "tcpClose on the server");
      await rejectsWith(brecv(plain, new Uint8Array(1), soon()), "EPIPE"); // then TCP's FIN
      hclose(plain);
      await rejectsWith(brecv(s, new Uint8Array(1), soon()), "EBADF");
    } finally {
      closeQuietly(c);
    }
  });
});

Deno.test("tls listen: tcpClose with deadline 0 succeeds once the peer's close_notify came", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls);
    try {
      await tlsDone(c, soon());
      await rejectsWith(brecv(s, new Uint8Array(1), soon()), "EPIPE"); // it arrived
      await tcpClose(s, 0);
      await rejectsWith(brecv(c, new Uint8Array(1), soon()), "EPIPE");
    } finally {
      closeQuietly(c);
    }
  });
});

for (const sendBuffer of [0, 65536]) {
  Deno.test(`tls listen: bsend then hclose delivers every byte (sendBuffer ${sendBuffer})`, async () => {
    await withListener(async (ls) => {
      const { s, c } = await tlsPair(ls, { sendBuffer });
      try {
        const data = pattern(1 << 20, 7);
        await bsend(s, data.subarray(0, 1000), soon());
        await bsend(s, data.subarray(1000), soon());
        hclose(s);
        assert.deepEqual(await brecv(c, new Uint8Array(data.length), soon(10_000)), data);
        await rejectsWithOneOf(brecv(c, new Uint8Array(1), soon()), ["EPIPE", "ECONNRESET"]);
      } finally {
        closeQuietly(c);
      }
    });
  });
}

Deno.test("tls listen: a sendBuffer send completes once queued, before the peer reads", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls, { sendBuffer: 65536 });
    try {
      // Deadline 0 would fail if the send waited for its write.
      await bsend(s, pattern(1000), 0);
      assert.deepEqual(await brecv(c, new Uint8Array(1000), soon()), pattern(1000));
    } finally {
      hclose(s);
      hclose(c);
    }
  });
});

Deno.test("tls listen: tlsDetach is ENOTSUP, names the attach path, and leaves the handle usable", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls);
    try {
      const e = await rejectsWith(tlsDetach(s, soon()), "ENOTSUP");
      assert.match(e.message, /tcpAccept/);
      assert.match(e.message, /tlsAttachServer/);
      await bsend(s, enc.encode("after"), soon());
      assert.equal(dec.decode(await brecv(c, new Uint8Array(5), soon())), "after");
    } finally {
      hclose(s);
      hclose(c);
    }
  });
});

Deno.test("tls listen: brecv deadlines and signals on a native TLS handle", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls);
    try {
      await rejectsWith(brecv(s, new Uint8Array(1), now() + 30), "ETIMEDOUT");
    } finally {
      hclose(s);
    }
    const { s: s2 } = await tlsPair(ls);
    try {
      const ctl = new AbortController();
      const pending = brecv(s2, new Uint8Array(1), { signal: ctl.signal });
      ctl.abort();
      await rejectsWith(pending, "ECANCELED");
    } finally {
      hclose(s2);
      hclose(c);
    }
  });
});

// ---- tlsAccept: deadlines, signals, closing -------------------------------------------------

Deno.test("tls listen: tlsAccept times out, honours deadline 0 and its signal; the listener goes on", async () => {
  await withListener(async (ls) => {
    await rejectsWith(tlsAccept(ls, now() + 30), "ETIMEDOUT");
    await rejectsWith(tlsAccept(ls, 0), "ETIMEDOUT");
    const ctl = new AbortController();
    const pending = tlsAccept(ls, { signal: ctl.signal });
    ctl.abort();
    await rejectsWith(pending, "ECANCELED");
    const { s, c } = await tlsPair(ls);
    hclose(s);
    hclose(c);
  });
});

Deno.test("tls listen: deadline 0 takes a connection whose handshake already completed", async () => {
  await withListener(async (ls) => {
    // Two clients while one call waits: the second one's handshake completes unclaimed.
    const connecting = [connectTls(ls), connectTls(ls)];
    const first = await tlsAccept(ls, soon());
    const clients = await Promise.all(connecting);
    const second = await tlsAccept(ls, 0);
    for (const h of [first.handle, second.handle, ...clients]) hclose(h);
  }, { maxHandshakes: 4 });
});

Deno.test("tls listen: hclose fails a waiting tlsAccept, drops the handshakes, frees the port", async () => {
  const ls = await tlsListen({ port: 0 }, SERVER);
  const addr = tcpLocalAddr(ls);
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: addr.port });
  try {
    const pending = tlsAccept(ls, -1);
    await delay(50); // the slow client's handshake is in progress
    hclose(ls);
    await rejectsWith(pending, "ECANCELED");
    await delay(0); // Deno drops the socket of an accept in flight on the next turn
    await rejectsWith(tcpConnect(addr, soon()), "ECONNREFUSED");
    // The handshake in progress was dropped: when the client finally speaks, it is shut out.
    assert.equal(await lateHandshakeThenRead(slow), "dropped");
  } finally {
    closeConn(slow); // startTls took it over
  }
});

/**
 * A client that connected earlier starts its TLS handshake now and reads: `"dropped"`
 * when the server shut the connection (Deno finishes a dropped server handshake in the
 * background, then closes), `"data"` if it got application data.
 */
async function lateHandshakeThenRead(tcp: Deno.TcpConn): Promise<"dropped" | "data"> {
  try {
    const tls = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [CA] });
    try {
      const n = await within(tls.read(new Uint8Array(16)), T, "the late client's read");
      return n === null ? "dropped" : "data";
    } finally {
      tls.close();
    }
  } catch (e) {
    if (e instanceof Error && /pending after/.test(e.message)) throw e;
    return "dropped"; // the handshake or the read failed: the server was gone
  }
}

// ---- hostile clients --------------------------------------------------------------------------

Deno.test("tls listen: a silent client blocks nobody and is dropped after handshakeTimeout", async () => {
  await withListener(async (ls) => {
    const { port } = tcpLocalAddr(ls);
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const waiting = tlsAccept(ls, soon());
      await delay(20); // the silent one is accepted first, its handshake starts
      const c = await connectTls(ls);
      const { handle: s } = await waiting;
      await bsend(c, enc.encode("ok"), soon());
      assert.equal(dec.decode(await brecv(s, new Uint8Array(2), soon())), "ok");
      hclose(s);
      hclose(c);
      // Past its handshakeTimeout, the silent client was dropped: a tlsAccept waiting now
      // is not handed it when it finally completes its handshake, and it is shut out.
      await delay(500);
      const late = tlsAccept(ls, now() + 1500);
      assert.equal(await lateHandshakeThenRead(silent), "dropped");
      await rejectsWith(late, "ETIMEDOUT");
    } finally {
      closeConn(silent); // startTls took it over
    }
  }, { handshakeTimeout: 300 });
});

Deno.test("tls listen: a slow client within handshakeTimeout is handed out", async () => {
  await withListener(async (ls) => {
    const { port } = tcpLocalAddr(ls);
    const slow = await Deno.connect({ hostname: "127.0.0.1", port });
    const waiting = tlsAccept(ls, soon());
    await delay(200);
    const tls = Deno.startTls(slow, { hostname: "localhost", caCerts: [CA] });
    const { handle: s } = await waiting;
    const c = await tls;
    try {
      await bsend(s, enc.encode("hi"), soon());
      const buf = new Uint8Array(2);
      assert.equal(await c.read(buf), 2);
      assert.equal(dec.decode(buf), "hi");
    } finally {
      hclose(s);
      c.close();
    }
  }, { handshakeTimeout: 2000 });
});

Deno.test("tls listen: maxHandshakes bounds the handshakes; a free slot lets the next client in", async () => {
  await withListener(async (ls) => {
    const { port } = tcpLocalAddr(ls);
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const waiting = tlsAccept(ls, soon());
      await delay(20); // the silent client holds the only slot
      const connecting = connectTls(ls);
      const t0 = now();
      const { handle: s } = await waiting;
      // The good client's handshake could start only once the silent one timed out.
      assert.ok(now() - t0 > 200, `accepted after ${now() - t0} ms, before the timeout`);
      hclose(s);
      hclose(await connecting);
    } finally {
      silent.close();
    }
  }, { handshakeTimeout: 400, maxHandshakes: 1 });
});

Deno.test("tls listen: maxConnections holds the next client in the kernel's queue until one closes", async () => {
  await withListener(async (ls) => {
    const { s, c } = await tlsPair(ls);
    // The second client is not even accepted: its handshake waits with it.
    const connecting = connectTls(ls);
    await rejectsWith(tlsAccept(ls, soon(300)), "ETIMEDOUT");
    hclose(s);
    hclose(c);
    const [{ handle: s2 }, c2] = await Promise.all([tlsAccept(ls, soon()), connecting]);
    await bsend(c2, enc.encode("in"), soon());
    assert.equal(dec.decode(await brecv(s2, new Uint8Array(2), soon())), "in");
    hclose(s2);
    hclose(c2);
  }, { maxConnections: 1 });
});

Deno.test("tls listen: a silent client past handshakeTimeout holds its connection slot until it leaves", async () => {
  // Deno closes a TLS connection whose handshake has not ended only once it ends, so the
  // listener keeps counting a silent client (it still has a socket) after its timeout.
  await withListener(async (ls) => {
    const { port } = tcpLocalAddr(ls);
    const silent = [
      await Deno.connect({ hostname: "127.0.0.1", port }),
      await Deno.connect({ hostname: "127.0.0.1", port }),
    ];
    try {
      await rejectsWith(tlsAccept(ls, soon(600)), "ETIMEDOUT"); // both timed out meanwhile
      // Their handshake slots are free (maxHandshakes 1), their connection slots are not.
      const connecting = connectTls(ls);
      await rejectsWith(tlsAccept(ls, soon(300)), "ETIMEDOUT");
      silent.shift()!.close(); // its handshake ends; its socket closes; a slot frees
      const [{ handle: s }, c] = await Promise.all([tlsAccept(ls, soon()), connecting]);
      await bsend(c, enc.encode("in"), soon());
      assert.equal(dec.decode(await brecv(s, new Uint8Array(2), soon())), "in");
      hclose(s);
      hclose(c);
    } finally {
      for (const conn of silent) conn.close();
    }
  }, { maxConnections: 2, maxHandshakes: 1, handshakeTimeout: 200 });
});

Deno.test("tls listen: garbage, plain HTTP and mid-handshake resets do not kill the listener", async () => {
  await withListener(async (ls) => {
    const { port } = tcpLocalAddr(ls);
    const waiting = tlsAccept(ls, soon(10_000));
    // A plain-text client: its handshake fails; it is cut off.
    const plain = await Deno.connect({ hostname: "127.0.0.1", port });
    await plain.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    // Random bytes.
    const garbage = await Deno.connect({ hostname: "127.0.0.1", port });
    await garbage.write(crypto.getRandomValues(new Uint8Array(4096)));
    // Python clients that send the start of a TLS record, then reset (SO_LINGER 0).
    const resets = new Deno.Command(PYTHON, {
      args: ["-c", RESET_MID_HANDSHAKE, String(port), "20"],
      stdout: "piped",
      stderr: "piped",
    });
    const out = await resets.output();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    try {
      for (const conn of [plain, garbage]) {
        const n = await within(readToEnd(conn), T, "cut off");
        assert.ok(n < 100, `the hostile client got ${n} bytes`);
      }
      // A real client still gets through, to the call that waited all along.
      const c = await connectTls(ls);
      const { handle: s } = await waiting;
      await bsend(s, enc.encode("fine"), soon());
      assert.equal(dec.decode(await brecv(c, new Uint8Array(4), soon())), "fine");
      hclose(s);
      hclose(c);
    } finally {
      plain.close();
      garbage.close();
    }
  });
});

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed, or taken over by Deno.startTls.
  }
}

/** Reads until the end or an error; returns the bytes read. */
async function readToEnd(conn: Deno.Conn): Promise<number> {
  let total = 0;
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return total;
      total += n;
    }
  } catch {
    return total;
  }
}

/** Python: N clients connect, send 5 bytes of a TLS handshake record header, then reset. */
const RESET_MID_HANDSHAKE = `
import socket, struct, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00]))
    time.sleep(0.005)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;

// ---- bad arguments -------------------------------------------------------------------------------

Deno.test("tls listen: bad arguments are EINVAL; the wrong listener kind is ENOTSUP", async () => {
  const bad: [Parameters<typeof tlsListen>, string][] = [
    [[{ port: 0 }, SERVER, 128, { handshakeTimeout: 0 }], "handshakeTimeout"],
    [[{ port: 0 }, SERVER, 128, { handshakeTimeout: NaN }], "handshakeTimeout"],
    [[{ port: 0 }, SERVER, 128, { handshakeTimeout: 2 ** 31 }], "handshakeTimeout"],
    [[{ port: 0 }, SERVER, 128, { maxHandshakes: 0 }], "maxHandshakes"],
    [[{ port: 0 }, SERVER, 128, { maxHandshakes: 1.5 }], "maxHandshakes"],
    [[{ port: 0 }, SERVER, 128, { maxConnections: 0 }], "maxConnections"],
    [[{ port: 0 }, SERVER, 128, null as never], "options"],
    [[{ port: 0 }, SERVER, 0], "backlog"],
    [[{ port: 70000 }, SERVER], "port"],
    [[{ port: 0 }, { cert: SERVER.cert }], "key"],
    [[{ port: 0 }, { cert: "not pem", key: SERVER.key }], "cert"],
    [[{ port: 0 }, { cert: SERVER.cert, key: pem("wrong_key.pem") }], "private key"],
    [[{ port: 0 }, { ...SERVER, alpn: [""] }], "alpn"],
    [[{ port: 0 }, { certFile: "/nonexistent.pem", keyFile: "/nonexistent.pem" }], "read"],
  ];
  for (const [args, what] of bad) {
    const e = await rejectsWith(tlsListen(...args), "EINVAL");
    assert.match(e.message, new RegExp(what), e.message);
  }
  assert.equal(DEFAULT_HANDSHAKE_TIMEOUT_MS, 10_000);
  assert.ok(DEFAULT_MAX_HANDSHAKES >= 1);

  const tcp = tcpListen({ port: 0 });
  const ls = await tlsListen({ port: 0 }, SERVER);
  try {
    await rejectsWith(tlsAccept(tcp, 0), "ENOTSUP");
    await rejectsWith(tcpAccept(ls, 0), "ENOTSUP");
    await rejectsWith(tlsAccept(ls, soon(), { sendBuffer: -1 }), "EINVAL");
    await rejectsWith(tlsAccept(ls, -5), "EINVAL");
    // The listener is still fine after all that.
    const { s, c } = await tlsPair(ls);
    hclose(s);
    hclose(c);
  } finally {
    hclose(tcp);
    hclose(ls);
  }
  await rejectsWith(tlsAccept(ls, 0), "EBADF");
  assert.ok(isDillError(await tlsAccept(ls, 0).catch((e) => e), "EBADF"));
});
