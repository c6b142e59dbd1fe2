/**
 * TCP and Unix sockets (actors/tcp.ts, actors/ipc.ts, actors/sockets.ts,
 * actors/listener.ts): addresses, refused and taken addresses, the clean close and
 * its deadline, and argument checks.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  ipcAccept,
  ipcClose,
  ipcConnect,
  ipcDone,
  ipcListen,
  now,
  tcpAccept,
  tcpClose,
  tcpConnect,
  tcpDone,
  tcpListen,
  tcpLocalAddr,
} from "../mod.ts";
import { transportError } from "../actors/transport.ts";
import {
  assertPattern,
  delay,
  isSettled,
  openPair,
  patternBytes,
  rejectsWith,
  throwsWith,
  within,
  withPair,
} from "./helpers/transports.ts";

const T = 5000;
const WAIT = 50;

/** A port on 127.0.0.1 that nobody listens on (it was just released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Runs `body` with a fresh temp dir, removed afterwards. */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-test-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---- addresses ---------------------------------------------------------------------------

Deno.test("tcp: tcpLocalAddr gives the bound port and tcpAccept the peer's address", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const { hostname, port } = tcpLocalAddr(ls);
  assert.equal(hostname, "127.0.0.1");
  assert.ok(port > 0 && port < 65536);
  // A raw Deno client tells us which port it connects from.
  const [raw, accepted] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port }),
    tcpAccept(ls, now() + T),
  ]);
  try {
    const local = raw.localAddr as Deno.NetAddr;
    assert.deepEqual(accepted.addr, { hostname: local.hostname, port: local.port });
    await raw.write(new Uint8Array([1, 2]));
    assert.deepEqual([...await brecv(accepted.handle, new Uint8Array(2), now() + T)], [1, 2]);
  } finally {
    raw.close();
    hclose(accepted.handle);
    hclose(ls);
  }
});

Deno.test("tcp: tcpConnect to a port nobody listens on fails ECONNREFUSED", async () => {
  await rejectsWith(
    tcpConnect({ hostname: "127.0.0.1", port: freePort() }, now() + T),
    "ECONNREFUSED",
  );
  await rejectsWith(tcpConnect({ port: freePort() }, -1), "ECONNREFUSED");
});

Deno.test("tcp: a host name that does not resolve is EADDRNOTAVAIL, as libdill's ipaddr_remote says", () => {
  // Resolving a name would query a DNS server off this machine, so the test feeds the mapping
  // the error Deno 2.9.6 raises for it (a plain Error, checked by hand with a .invalid name).
  const lookup = new Error("failed to lookup address information: Name or service not known");
  const err = transportError("tcpConnect", lookup);
  assert.equal(err.code, "EADDRNOTAVAIL");
  assert.match(err.message, /^EADDRNOTAVAIL: tcpConnect: the host name did not resolve \(failed/);
  assert.equal(err.cause, lookup);
  // Other plain errors are still a broken connection.
  assert.equal(transportError("brecv", new Error("something else")).code, "ECONNRESET");
});

Deno.test("tcp: tcpListen on a taken port fails EADDRINUSE; the first listener is unharmed", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    const addr = tcpLocalAddr(ls);
    const err = throwsWith(() => tcpListen(addr), "EADDRINUSE");
    assert.match(err.message, /tcpListen/);
    const [client, accepted] = await Promise.all([
      tcpConnect(addr, now() + T),
      tcpAccept(ls, now() + T),
    ]);
    hclose(client);
    hclose(accepted.handle);
  } finally {
    hclose(ls);
  }
});

Deno.test("unix: ipcListen on a path in use fails EADDRINUSE", async () => {
  await withTempDir(async (dir) => {
    const ls = ipcListen(`${dir}/sock`);
    try {
      throwsWith(() => ipcListen(`${dir}/sock`), "EADDRINUSE");
      // The first listener is unharmed.
      const [server, client] = await Promise.all([
        ipcAccept(ls, now() + T),
        ipcConnect(`${dir}/sock`, now() + T),
      ]);
      hclose(server);
      hclose(client);
    } finally {
      hclose(ls);
    }
  });
});

Deno.test({
  name:
    "unix: ipcConnect to a path that does not exist fails ENOENT, to a socket nobody listens on ECONNREFUSED",
  fn: async () => {
    await withTempDir(async (dir) => {
      await rejectsWith(ipcConnect(`${dir}/missing`, now() + T), "ENOENT");
      await rejectsWith(ipcConnect(`${dir}/no-folder/sock`, now() + T), "ENOENT");
      // A socket file nobody listens on (bound by a process that exited; Deno's own
      // listener removes its file when it closes).
      const path = `${dir}/stale`;
      const bind = "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])";
      const { success } = await new Deno.Command("python3", { args: ["-c", bind, path] }).output();
      assert.ok(success, "python3 could not bind the socket file");
      assert.ok((await Deno.lstat(path)).isSocket, "no socket file was left");
      await rejectsWith(ipcConnect(path, now() + T), "ECONNREFUSED");
    });
  },
});

// ---- clean close ---------------------------------------------------------------------------

for (const kind of ["tcp", "unix"] as const) {
  const close = kind === "tcp" ? tcpClose : ipcClose;
  const name = kind === "tcp" ? "tcpClose" : "ipcClose";

  Deno.test(`${kind}: ${name} on both sides at once completes cleanly within the deadline`, async () => {
    await withPair(kind, async (a, b) => {
      await bsend(a, patternBytes(0, 1000), now() + T);
      assertPattern(await brecv(b, new Uint8Array(1000), now() + T), 0);
      const start = now();
      await Promise.all([close(a, now() + T), close(b, now() + T)]);
      assert.ok(now() - start < 1000, `the clean close took ${now() - start} ms`);
      await rejectsWith(bsend(a, new Uint8Array(1), -1), "EBADF");
      await rejectsWith(brecv(b, new Uint8Array(1), -1), "EBADF");
    });
  });

  Deno.test(`${kind}: ${name} flushes queued data and drops the peer's unread data`, async () => {
    await withPair(kind, async (a, b) => {
      // a queues data and closes; b has sent a lot that a never reads.
      const fromB = bsend(b, patternBytes(0, 1 << 20), now() + T);
      // More than a socket buffer takes: still being written when the close begins.
      const sending = bsend(a, patternBytes(0, 300_000), now() + T);
      const closingA = close(a, now() + T);
      const got = await brecv(b, new Uint8Array(300_000), now() + T);
      assertPattern(got, 0, "data a sent before closing");
      await sending; // it resolved once written
      await fromB; // a read and dropped it while closing
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
      await close(b, now() + T);
      await closingA;
    });
  });

  Deno.test(`${kind}: ${name} fails ETIMEDOUT when the peer never closes, and closes the handle`, async () => {
    await withPair(kind, async (a, b) => {
      const deadline = now() + WAIT;
      await rejectsWith(close(a, deadline), "ETIMEDOUT");
      assert.ok(now() >= deadline - 1, "gave up before the deadline");
      await rejectsWith(bsend(a, new Uint8Array(1), -1), "EBADF");
      // The peer saw a's half-close first, then the connection went away.
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
    });
  });

  Deno.test(`${kind}: ${name} with deadline 0 fails without waiting while the peer is open`, async () => {
    await withPair(kind, async (a, b) => {
      // It sends its FIN (local I/O), then fails: the peer's close would need waiting.
      await rejectsWith(within(close(a, 0), 1000, `${name}(0)`), "ETIMEDOUT");
      await rejectsWith(brecv(a, new Uint8Array(1), -1), "EBADF");
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
    });
  });

  Deno.test(`${kind}: ${name} with deadline 0 succeeds once the peer closed`, async () => {
    await withPair(kind, async (a, b) => {
      const closingB = close(b, now() + T);
      await rejectsWith(brecv(a, new Uint8Array(1), now() + T), "EPIPE"); // a saw the end
      await close(a, 0); // our FIN is local I/O: no waiting needed
      await rejectsWith(brecv(a, new Uint8Array(1), -1), "EBADF");
      await closingB; // and b saw it
    });
  });

  Deno.test(`${kind}: ${name} after the peer closed still flushes what we queued`, async () => {
    await withPair(kind, async (a, b) => {
      const closingA = close(a, now() + T); // a half-closes and waits for b's end
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
      // b answers with a large send and closes at once: nothing of it may be cut off.
      const sending = bsend(b, patternBytes(0, 4 << 20), now() + T);
      await close(b, now() + T);
      await sending;
      await closingA;
    });
  });

  Deno.test(`${kind}: ${name} with deadline -1 waits for the peer's close`, async () => {
    await withPair(kind, async (a, b) => {
      const closing = close(a, -1);
      assert.equal(await isSettled(closing), false);
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
      assert.equal(await isSettled(closing), false, "did not wait for the peer");
      await close(b, now() + T);
      await closing;
    });
  });

  Deno.test(`${kind}: ${name} with a bad deadline fails EINVAL and leaves the handle open`, async () => {
    await withPair(kind, async (a, b) => {
      for (const deadline of [NaN, -5, Infinity, "1" as unknown as number]) {
        await rejectsWith(close(a, deadline), "EINVAL");
      }
      await bsend(a, new Uint8Array([3]), now() + T);
      assert.deepEqual([...await brecv(b, new Uint8Array(1), now() + T)], [3]);
    });
  });
}

Deno.test("tcp: tcpClose on a listener closes it like hclose", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const addr = tcpLocalAddr(ls);
  const pending = tcpAccept(ls, -1);
  await tcpClose(ls, now() + T);
  await rejectsWith(pending, "ECANCELED");
  await rejectsWith(tcpAccept(ls, -1), "EBADF");
  // Deno frees the socket once the cancelled accept op has settled (a connect racing it
  // is reset instead of refused), so give that a moment before checking the port is free.
  await delay(20);
  await rejectsWith(tcpConnect(addr, now() + T), "ECONNREFUSED");
});

Deno.test("unix: a listener in a temp dir accepts, and its clients talk both ways", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/sock`;
    const ls = ipcListen(path);
    const clients: Handle[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const [server, client] = await Promise.all([
          ipcAccept(ls, now() + T),
          ipcConnect(path, now() + T),
        ]);
        clients.push(server, client);
        await bsend(client, new Uint8Array([i]), now() + T);
        assert.deepEqual([...await brecv(server, new Uint8Array(1), now() + T)], [i]);
        await bsend(server, new Uint8Array([i + 10]), now() + T);
        assert.deepEqual([...await brecv(client, new Uint8Array(1), now() + T)], [i + 10]);
      }
    } finally {
      for (const h of clients) hclose(h);
      hclose(ls);
    }
  });
});

// ---- arguments -----------------------------------------------------------------------------

Deno.test("tcp/unix: bad deadlines fail EINVAL, never TypeError", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    for (const d of [NaN, -5, Infinity, undefined, "now"] as unknown as number[]) {
      await rejectsWith(tcpAccept(ls, d), "EINVAL");
      await rejectsWith(tcpConnect(tcpLocalAddr(ls), d), "EINVAL");
      await rejectsWith(ipcConnect("/nonexistent/sock", d), "EINVAL");
    }
  } finally {
    hclose(ls);
  }
  const pair = await openPair("pipe");
  try {
    await rejectsWith(ipcAccept(pair.a, NaN), "EINVAL");
  } finally {
    await pair.cleanup();
  }
});

// ---- Nagle's algorithm (option noDelay) -------------------------------------------------

/**
 * Runs `body` while every TCP connection's `setNoDelay` records its argument in `calls`
 * (Deno has no getsockopt; the prototype is taken from a real connection).
 */
async function recordingNoDelay(body: (calls: boolean[]) => Promise<void>): Promise<void> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const c = await Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port });
  const proto = Object.getPrototypeOf(c) as { setNoDelay(on?: boolean): void };
  c.close();
  l.close();
  const original = proto.setNoDelay;
  const calls: boolean[] = [];
  proto.setNoDelay = function (this: unknown, on?: boolean) {
    calls.push(on ?? true);
    return original.call(this, on);
  };
  try {
    await body(calls);
  } finally {
    proto.setNoDelay = original;
  }
}

/** Connects a client to `ls` with `options` and accepts it with `options`; echoes one chunk. */
async function connectWith(ls: Handle, options: { noDelay?: boolean }): Promise<void> {
  const [client, accepted] = await Promise.all([
    tcpConnect(tcpLocalAddr(ls), now() + T, options),
    tcpAccept(ls, now() + T, options),
  ]);
  try {
    await bsend(client, patternBytes(1, 1000), now() + T);
    const got = await brecv(accepted.handle, new Uint8Array(1000), now() + T);
    assertPattern(got, 1);
  } finally {
    hclose(client);
    hclose(accepted.handle);
  }
}

Deno.test("tcp: connections set TCP_NODELAY by default, and Nagle's algorithm stays on with noDelay: false", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    await recordingNoDelay(async (calls) => {
      await connectWith(ls, {});
      assert.deepEqual(calls, [true, true]);
      calls.length = 0;
      await connectWith(ls, { noDelay: true });
      assert.deepEqual(calls, [true, true]);
      calls.length = 0;
      await connectWith(ls, { noDelay: false });
      assert.deepEqual(calls, [false, false]);
    });
  } finally {
    hclose(ls);
  }
});

Deno.test("tcp: a noDelay that is not a boolean fails EINVAL before connecting or accepting", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    for (const bad of [1, "false", null]) {
      const options = { noDelay: bad } as never;
      const e1 = await rejectsWith(tcpConnect(tcpLocalAddr(ls), now() + T, options), "EINVAL");
      assert.match(e1.message, /tcpConnect: option noDelay must be a boolean/);
      const e2 = await rejectsWith(tcpAccept(ls, now() + T, options), "EINVAL");
      assert.match(e2.message, /tcpAccept: option noDelay must be a boolean/);
    }
    // Nothing was taken: the listener still accepts, and nobody connected meanwhile.
    await connectWith(ls, {});
  } finally {
    hclose(ls);
  }
});

Deno.test("tcp: tcpListen with a malformed address fails EINVAL", () => {
  for (const addr of [null, undefined, {}, { port: "80" }, 80]) {
    throwsWith(() => tcpListen(addr as never), "EINVAL");
  }
});

Deno.test({
  name: "tcp/unix: malformed addresses and ports fail EINVAL, never TypeError or ECONNRESET",
  fn: async () => {
    for (const addr of [null, undefined, {}, { port: 70_000 }, { port: -1 }, { port: "x" }]) {
      await rejectsWith(tcpConnect(addr as never, now() + T), "EINVAL");
    }
    for (const addr of [{ port: -1 }, { port: 70_000 }, { port: 1.5 }]) {
      throwsWith(() => tcpListen(addr), "EINVAL");
    }
    for (const path of [42, null, ""]) {
      await rejectsWith(ipcConnect(path as never, now() + T), "EINVAL");
    }
  },
});

// ---- half-close: tcpDone / ipcDone ---------------------------------------------------------

for (const kind of ["tcp", "unix"] as const) {
  const done = kind === "tcp" ? tcpDone : ipcDone;
  const name = kind === "tcp" ? "tcpDone" : "ipcDone";

  Deno.test(`${kind}: ${name} flushes, sends the end, and keeps receiving`, async () => {
    await withPair(kind, async (a, b) => {
      const sending = bsend(a, patternBytes(0, 300_000), now() + T); // more than a buffer
      await done(a, now() + T);
      await sending;
      // The peer gets everything sent before, then EPIPE.
      assertPattern(await brecv(b, new Uint8Array(300_000), now() + T), 0);
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
      // Our side still receives; the peer still sends.
      await bsend(b, patternBytes(5, 70_000), now() + T);
      assertPattern(await brecv(a, new Uint8Array(70_000), now() + T), 5);
      // Later sends, and a second half-close, are EPIPE; the handle stays usable.
      await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "EPIPE");
      await rejectsWith(done(a, now() + T), "EPIPE");
      await done(b, now() + T);
      await rejectsWith(brecv(a, new Uint8Array(1), now() + T), "EPIPE");
    });
  });

  Deno.test(`${kind}: ${name} with deadline 0 succeeds when the end can be sent at once`, async () => {
    await withPair(kind, async (a, b) => {
      await bsend(a, new Uint8Array([1, 2, 3]), now() + T);
      await done(a, 0);
      assert.deepEqual([...await brecv(b, new Uint8Array(3), now() + T)], [1, 2, 3]);
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
    });
  });

  Deno.test(`${kind}: ${name} with deadline 0 fails when queued data cannot be written now`, async () => {
    await withPair(kind, async (a, b) => {
      // b reads ahead at most 1 KiB, so 64 MiB cannot be flushed before the end is sent.
      const big = bsend(a, new Uint8Array(64 << 20), -1);
      big.catch(() => {});
      await rejectsWith(done(a, 0), "ETIMEDOUT");
      // The send side is broken now, as after any failed send.
      await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "ECONNRESET");
      hclose(a);
      await rejectsWith(big, "ECANCELED");
      hclose(b);
    }, { b: { readHighWater: 1024 } });
  });

  Deno.test(`${kind}: ${name} on a listener or on another transport is ENOTSUP`, async () => {
    const dir = kind === "unix" ? await Deno.makeTempDir({ prefix: "dill-ws-test-" }) : "";
    const ls = kind === "tcp" ? tcpListen({ port: 0 }) : ipcListen(`${dir}/sock`);
    try {
      await rejectsWith(done(ls, now() + T), "ENOTSUP");
      await withPair(kind === "tcp" ? "unix" : "tcp", async (a, b) => {
        await rejectsWith(done(a, now() + T), "ENOTSUP");
        await bsend(a, new Uint8Array([1]), now() + T); // still usable
        assert.deepEqual([...await brecv(b, new Uint8Array(1), now() + T)], [1]);
      });
    } finally {
      hclose(ls);
      if (dir) await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("pipe: ipcDone on an ipcPair end half-closes it", async () => {
  await withPair("pipe", async (a, b) => {
    await bsend(a, new Uint8Array([7]), now() + T);
    await ipcDone(a, now() + T);
    assert.deepEqual([...await brecv(b, new Uint8Array(1), now() + T)], [7]);
    await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
    await bsend(b, new Uint8Array([8]), now() + T);
    assert.deepEqual([...await brecv(a, new Uint8Array(1), now() + T)], [8]);
    await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "EPIPE");
  });
});
