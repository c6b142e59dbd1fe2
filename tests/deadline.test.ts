/**
 * Deadlines on blocking calls: `0` (only without waiting), already past, a future
 * time, and `-1` (forever), for brecv, bsend, tcpAccept/ipcAccept and
 * tcpConnect/ipcConnect.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  ipcAccept,
  ipcConnect,
  ipcListen,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
} from "../mod.ts";
import {
  closeQuietly,
  delay,
  isSettled,
  KINDS,
  pastDeadline,
  rejectsWith,
  withPair,
} from "./helpers/transports.ts";
import { withTimerSpy } from "./helpers/timers.ts";
import { deadlineWatch } from "../actors/deadline_scheduler.ts";

const T = 5000;
/** Waits of this length are measured; timers may fire late but never early. */
const WAIT = 50;

/** Asserts that `promise` fails ETIMEDOUT no earlier than `deadline`, and not much later. */
async function timesOutAt(promise: Promise<unknown>, deadline: number): Promise<void> {
  await rejectsWith(promise, "ETIMEDOUT");
  const late = now() - deadline;
  assert.ok(late >= -1, `timed out ${-late} ms before its deadline`);
  assert.ok(late < 1500, `timed out ${late} ms after its deadline`);
}

/** Asserts that `promise` fails ETIMEDOUT without waiting for any timer or I/O. */
async function timesOutAtOnce(promise: Promise<unknown>, what: string): Promise<void> {
  assert.equal(await isSettled(promise), true, `${what} waited`);
  await rejectsWith(promise, "ETIMEDOUT");
}

/**
 * Makes `a`'s next sends wait: queues a send of `size` bytes that the reader does not
 * read. The returned promise must be settled by the caller (it fails ECANCELED on close).
 */
function clog(a: Handle, size: number): Promise<void> {
  const big = bsend(a, new Uint8Array(size), -1);
  big.catch(() => {});
  return big;
}

for (const kind of KINDS) {
  // ---- brecv -------------------------------------------------------------------------

  Deno.test(`deadline/${kind}: brecv with deadline 0 or past fails at once when no data is there`, async () => {
    for (const deadline of [0, pastDeadline()]) {
      await withPair(kind, async (_a, b) => {
        await timesOutAtOnce(brecv(b, new Uint8Array(1), deadline), `brecv(${deadline})`);
      });
    }
  });

  Deno.test(`deadline/${kind}: brecv with deadline 0 succeeds when the bytes are already buffered`, async () => {
    await withPair(kind, async (a, b) => {
      await bsend(a, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), now() + T);
      await brecv(b, new Uint8Array(1), now() + T); // the rest arrived with the first byte
      const rest = await brecv(b, new Uint8Array(9), 0);
      assert.deepEqual([...rest], [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });
  });

  Deno.test(`deadline/${kind}: brecv with a future deadline fails ETIMEDOUT at that deadline`, async () => {
    await withPair(kind, async (a, b) => {
      // Some bytes but not enough: a partial fill still times out.
      await bsend(a, new Uint8Array(3), now() + T);
      const deadline = now() + WAIT;
      await timesOutAt(brecv(b, new Uint8Array(4), deadline), deadline);
    });
  });

  Deno.test(`deadline/${kind}: brecv with a future deadline succeeds when data comes in time`, async () => {
    await withPair(kind, async (a, b) => {
      const pending = brecv(b, new Uint8Array(2), now() + T);
      assert.equal(await isSettled(pending), false);
      await delay(10);
      await bsend(a, new Uint8Array([7, 9]), now() + T);
      assert.deepEqual([...await pending], [7, 9]);
      // Its deadline timer was cleared: the sanitizers would report it otherwise.
    });
  });

  Deno.test(`deadline/${kind}: brecv with deadline -1 waits as long as it takes`, async () => {
    await withPair(kind, async (a, b) => {
      const pending = brecv(b, new Uint8Array(1), -1);
      await delay(WAIT);
      assert.equal(await isSettled(pending), false, "brecv(-1) gave up");
      await bsend(a, new Uint8Array([42]), now() + T);
      assert.deepEqual([...await pending], [42]);
    });
  });

  // ---- bsend -------------------------------------------------------------------------

  Deno.test(`deadline/${kind}: bsend with deadline 0 or past fails at once when it would wait`, async () => {
    for (const deadline of [0, pastDeadline()]) {
      await withPair(kind, async (a) => {
        const big = clog(a, 8 << 20);
        await timesOutAtOnce(bsend(a, new Uint8Array(1), deadline), `bsend(${deadline})`);
        hclose(a);
        await rejectsWith(big, "ECANCELED");
      });
    }
  });

  Deno.test(`deadline/${kind}: bsend with deadline 0 succeeds when the transport takes the bytes at once`, async () => {
    await withPair(kind, async (a, b) => {
      await bsend(a, new Uint8Array([1, 2, 3]), 0);
      // A buffer larger than the copy threshold too: the socket buffer has room.
      await bsend(a, new Uint8Array(100_000).fill(5), 0);
      assert.deepEqual([...await brecv(b, new Uint8Array(3), now() + T)], [1, 2, 3]);
      const big = await brecv(b, new Uint8Array(100_000), now() + T);
      assert.ok(big.every((x) => x === 5));
    });
  });

  Deno.test(`deadline/${kind}: bsend with a future deadline fails ETIMEDOUT when the reader stalls`, async () => {
    await withPair(kind, async (a) => {
      // 64 MiB: more than kernel and stack buffers together can absorb.
      const big = clog(a, 64 << 20);
      const deadline = now() + WAIT;
      await timesOutAt(bsend(a, new Uint8Array(1), deadline), deadline);
      hclose(a);
      await rejectsWith(big, "ECANCELED");
    });
  });

  Deno.test(`deadline/${kind}: bsend with deadline -1 waits until the reader makes room`, async () => {
    await withPair(kind, async (a, b) => {
      const size = 8 << 20;
      const big = clog(a, size);
      const small = bsend(a, new Uint8Array([99]), -1);
      await delay(WAIT);
      assert.equal(await isSettled(small), false, "bsend(-1) did not wait for room");
      const sink = new Uint8Array(1 << 20);
      for (let got = 0; got < size; got += sink.length) await brecv(b, sink, now() + T);
      await big;
      await small;
      assert.deepEqual([...await brecv(b, new Uint8Array(1), now() + T)], [99]);
    });
  });
}

// ---- timers ------------------------------------------------------------------------------

Deno.test("deadline/pipe: bytestream calls arm a deadline timer only while they wait", async () => {
  await withPair("pipe", async (a, b) => {
    await withTimerSpy(async (spy) => {
      // Answered at once: no timer, whatever the deadline.
      await bsend(a, new Uint8Array(12), -1);
      await brecv(b, new Uint8Array(4), -1); // the 12 bytes are buffered at b after this
      await brecv(b, new Uint8Array(4), now() + 60_000);
      await brecv(b, new Uint8Array(4), 0);
      assert.equal(spy.created.length, 0, "a call answered at once armed a timer");
      assert.equal(deadlineWatch().watched, 0, "a call answered at once watched its deadline");
      // Waiting forever: still no timer.
      const forever = brecv(b, new Uint8Array(1), -1);
      await bsend(a, new Uint8Array(1), -1);
      await forever;
      assert.equal(spy.created.length, 0, "a call with deadline -1 armed a timer");
      assert.equal(deadlineWatch().watched, 0, "a call with deadline -1 watched its deadline");
      // Waiting with a finite deadline: watched (at most one timer, shared by every
      // call), and released when the call completes.
      const timed = brecv(b, new Uint8Array(1), now() + 60_000);
      assert.equal(await isSettled(timed), false);
      assert.ok(spy.created.length <= 1);
      assert.deepEqual(deadlineWatch(), { watched: 1, holding: true });
      await bsend(a, new Uint8Array(1), -1);
      await timed;
      assert.deepEqual(
        deadlineWatch(),
        { watched: 0, holding: false },
        "the deadline outlived the call",
      );
    });
  });
});

Deno.test("deadline/pipe: sends waiting for their write share one deadline timer", async () => {
  await withPair("pipe", async (a, b) => {
    await withTimerSpy(async (spy) => {
      for (let i = 0; i < 100; i++) await bsend(a, new Uint8Array(12), now() + 60_000);
      assert.ok(spy.created.length <= 1, "one timer per send");
      assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
      await brecv(b, new Uint8Array(1200), now() + 60_000);
    });
  });
});

Deno.test("deadline/pipe: bsend with deadline 0 fails when the peer cannot take the bytes in this turn", async () => {
  // The peer reads ahead at most 1 KiB and the pipe holds 1 KiB: 10 KiB cannot go out now.
  await withPair("pipe", async (a, b) => {
    await rejectsWith(bsend(a, new Uint8Array(10_000), 0), "ETIMEDOUT");
    // The send side is broken now, as after any failed send; the bytes already on
    // their way still arrive.
    await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "ECONNRESET");
    const got = await brecv(b, new Uint8Array(10_000), now() + T);
    assert.equal(got.length, 10_000);
  }, { b: { readHighWater: 1024 }, pipeCapacity: 1024 });
});

// ---- accept ------------------------------------------------------------------------------

/** A TCP listener on a free loopback port, closed after `body`. */
async function withListener(body: (ls: Handle) => Promise<void>): Promise<void> {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    await body(ls);
  } finally {
    hclose(ls);
  }
}

Deno.test("deadline/tcp: tcpAccept with deadline 0 or past fails at once with nobody connecting", async () => {
  await withListener(async (ls) => {
    await timesOutAtOnce(tcpAccept(ls, 0), "tcpAccept(0)");
    await timesOutAtOnce(tcpAccept(ls, pastDeadline()), "tcpAccept(past)");
  });
});

Deno.test("deadline/tcp: tcpAccept with a future deadline fails at it, then still accepts", async () => {
  await withListener(async (ls) => {
    const deadline = now() + WAIT;
    await timesOutAt(tcpAccept(ls, deadline), deadline);
    const [accepted, client] = await Promise.all([
      tcpAccept(ls, now() + T),
      tcpConnect(tcpLocalAddr(ls), now() + T),
    ]);
    hclose(accepted.handle);
    hclose(client);
  });
});

Deno.test("deadline/tcp: tcpAccept with deadline -1 waits for a connection", async () => {
  await withListener(async (ls) => {
    const pending = tcpAccept(ls, -1);
    await delay(WAIT);
    assert.equal(await isSettled(pending), false);
    const client = await tcpConnect(tcpLocalAddr(ls), now() + T);
    const { handle } = await pending;
    // The accepted handle is connected to the client.
    await bsend(client, new Uint8Array([5]), now() + T);
    assert.deepEqual([...await brecv(handle, new Uint8Array(1), now() + T)], [5]);
    hclose(handle);
    hclose(client);
  });
});

Deno.test({
  name: "deadline/tcp: tcpAccept with deadline 0 takes a connection that is already established",
  fn: async () => {
    await withListener(async (ls) => {
      const client = await tcpConnect(tcpLocalAddr(ls), now() + T);
      try {
        await delay(20);
        const { handle } = await tcpAccept(ls, 0);
        hclose(handle);
      } finally {
        hclose(client);
      }
    });
  },
});

Deno.test("deadline/unix: ipcAccept with deadline 0 fails at once; -1 waits for a connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-test-" });
  const path = `${dir}/sock`;
  const ls = ipcListen(path);
  try {
    await timesOutAtOnce(ipcAccept(ls, 0), "ipcAccept(0)");
    const deadline = now() + WAIT;
    await timesOutAt(ipcAccept(ls, deadline), deadline);
    const pending = ipcAccept(ls, -1);
    assert.equal(await isSettled(pending), false);
    const client = await ipcConnect(path, now() + T);
    hclose(await pending);
    hclose(client);
  } finally {
    hclose(ls);
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- connect -----------------------------------------------------------------------------

Deno.test("deadline/tcp: tcpConnect with deadline 0 or past fails at once, even to a listener", async () => {
  await withListener(async (ls) => {
    const addr = tcpLocalAddr(ls);
    await timesOutAtOnce(tcpConnect(addr, 0), "tcpConnect(0)");
    await timesOutAtOnce(tcpConnect(addr, pastDeadline()), "tcpConnect(past)");
  });
});

Deno.test("deadline/tcp: tcpConnect with a future deadline or -1 connects", async () => {
  await withListener(async (ls) => {
    for (const deadline of [now() + T, -1]) {
      const [client, accepted] = await Promise.all([
        tcpConnect(tcpLocalAddr(ls), deadline),
        tcpAccept(ls, now() + T),
      ]);
      hclose(client);
      hclose(accepted.handle);
    }
  });
});

Deno.test("deadline/tcp: tcpConnect fails ETIMEDOUT at its deadline when the peer never answers", async () => {
  // A listener that accepts nothing: once the kernel's accept queue is full, new SYNs are
  // dropped and a connect can only wait. Connect until that happens (the queue is ~512).
  await withListener(async (ls) => {
    const addr = tcpLocalAddr(ls);
    const clients: Handle[] = [];
    try {
      let timedOut = false;
      for (let i = 0; i < 5000 && !timedOut; i++) {
        const deadline = now() + 200;
        try {
          clients.push(await tcpConnect(addr, deadline));
        } catch (e) {
          await timesOutAt(Promise.reject(e), deadline);
          timedOut = true;
        }
      }
      assert.ok(timedOut, `all ${clients.length} connects succeeded`);
      assert.ok(clients.length >= 1, "the very first connect timed out");
    } finally {
      for (const h of clients) closeQuietly(h);
    }
  });
});

Deno.test("deadline/unix: ipcConnect with deadline 0 fails at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-test-" });
  const ls = ipcListen(`${dir}/sock`);
  try {
    await timesOutAtOnce(ipcConnect(`${dir}/sock`, 0), "ipcConnect(0)");
    await timesOutAtOnce(ipcConnect(`${dir}/sock`, pastDeadline()), "ipcConnect(past)");
  } finally {
    hclose(ls);
    await Deno.remove(dir, { recursive: true });
  }
});
