/**
 * Red-team pass on cancellation across the public API: every blocking call, over real
 * sockets on 127.0.0.1 where the call has them, against a signal already aborted (fails
 * at once with ECANCELED, the reason as `cause`, and no side effect), a signal aborted
 * while it waits (ECANCELED promptly, then libdill's rules), a deadline and a signal
 * together (whichever comes first), bad deadlines (EINVAL, no side effect) and deadline
 * 0, and abort listeners left behind by a long-lived signal.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Deadline,
  deadlineSignal,
  hclose,
  ipcDone,
  ipcPair,
  messages,
  mrecv,
  mrecvl,
  mrecvText,
  msend,
  msendl,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  WS_BINARY,
  wsAttachServer,
  wsDone,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
} from "../mod.ts";
import { assertFailed, assertOk, settle } from "./helpers/outcome.ts";
import { countingSignal } from "./helpers/signals.ts";
import { closeQuietly, delay, KINDS, nohttpWsPair, within } from "./helpers/transports.ts";
import { rawClient, upgradeServer } from "./helpers/serve.ts";
import {
  assertClosed,
  bytes,
  type Case,
  closeAll,
  type Scene,
  soon,
  T,
} from "./helpers/cancel_scene.ts";
import * as streams from "./helpers/cancel_cases_streams.ts";
import * as ws from "./helpers/cancel_cases_ws.ts";

const BAD_DEADLINES: unknown[] = [
  -2,
  -0.5,
  NaN,
  Infinity,
  -Infinity,
  { deadline: NaN },
  { deadline: -5 },
  { deadline: Infinity },
  { timeout: 1000 }, // a misspelled key must not mean "wait forever"
  { deadline: 1, until: 5 },
  new Number(5),
];

// ---- the table ------------------------------------------------------------------

const CASES: Case[] = [
  ...KINDS.map((k) => streams.receiveCase("brecv", k, false)),
  ...KINDS.map((k) => streams.receiveCase("brecvl", k, true)),
  streams.sendCase("bsend", false),
  streams.sendCase("bsendl", true),
  streams.cleanCloseCase("tcp"),
  streams.cleanCloseCase("unix"),
  streams.halfCloseCase("ipcDone", ipcDone),
  streams.tcpAcceptCase,
  streams.ipcAcceptCase,
  streams.tcpConnectCase,
  ws.wsReceiveCase("mrecv", (h, d) => mrecv(h, d)),
  ws.wsReceiveCase("mrecv(buf)", (h, d) => mrecv(h, new Uint8Array(16), d)),
  ws.wsReceiveCase("mrecvl", (h, d) => mrecvl(h, [new Uint8Array(16)], d)),
  ws.wsReceiveCase("wsRecv", (h, d) => wsRecv(h, d)),
  ws.wsReceiveCase("wsRecvl", (h, d) => wsRecvl(h, [new Uint8Array(16)], d)),
  ws.wsReceiveCase("mrecvText", (h, d) => mrecvText(h, d), true),
  ws.wsSendCase("msend", (h, big, d) => msend(h, big, d)),
  ws.wsSendCase("msendl", (h, big, d) => msendl(h, [bytes(1), big], d)),
  ws.wsSendCase("wsSend", (h, big, d) => wsSend(h, WS_BINARY, big, d)),
  ws.wsSendCase("wsSendl", (h, big, d) => wsSendl(h, WS_BINARY, [big], d)),
  ws.wsDoneCase,
  ws.wsDetachCase,
  ws.wsAttachCase("server"),
  ws.wsAttachCase("client"),
  streams.tlsAttachCase("server"),
  streams.tlsAttachCase("client"),
  streams.tlsDetachCase,
  streams.tlsAcceptCase,
  ws.messagesCase,
  ws.upgradeCase("wsUpgrade mrecv", (h, d) => mrecv(h, d)),
  ws.upgradeCase("wsUpgrade wsRecv", (h, d) => wsRecv(h, d)),
  ws.upgradeSendCase("wsUpgrade msend", (h, big, d) => msend(h, big, d)),
  ws.upgradeSendCase("wsUpgrade wsSendl", (h, big, d) => wsSendl(h, WS_BINARY, [bytes(1), big], d)),
];

/** Calls that cannot be made to wait in a scene of their own: only the refusals apply. */
const REFUSAL_ONLY: Case[] = [
  streams.tlsDoneCase,
  streams.tcpDoneCase,
  streams.ipcConnectCase,
  ws.upgradeDoneCase,
];

async function withScene(c: Case, body: (s: Scene) => Promise<void>): Promise<void> {
  const scene = await c.open();
  try {
    await body(scene);
  } finally {
    await scene.cleanup();
  }
}

for (const c of [...CASES, ...REFUSAL_ONLY]) {
  Deno.test(`cancel/${c.name}: an aborted signal or a bad deadline fails at once and changes nothing`, async () => {
    await withScene(c, async (scene) => {
      const reason = new Error("gave up");
      const e = assertFailed(
        await within(settle(scene.call({ signal: AbortSignal.abort(reason) })), 1000, c.name),
        "ECANCELED",
        `${c.name} with an aborted signal`,
      );
      assert.equal(e.cause, reason, "the signal's reason is the cause");
      assertFailed(
        await settle(scene.call({ deadline: soon(), signal: AbortSignal.abort() })),
        "ECANCELED",
        `${c.name} with a deadline and an aborted signal`,
      );
      for (const bad of BAD_DEADLINES) {
        assertFailed(
          await settle(scene.call(bad as Deadline)),
          "EINVAL",
          `${c.name} with deadline ${typeof bad === "object" ? JSON.stringify(bad) : bad}`,
        );
      }
      await scene.untouched();
    });
  });
}

for (const c of CASES) {
  Deno.test(`cancel/${c.name}: an abort while it waits ends it promptly with ECANCELED`, async () => {
    await withScene(c, async (scene) => {
      const { ctl, signal, live } = countingSignal();
      const reason = new Error("user left");
      const pending = settle(scene.call({ deadline: soon(), signal }));
      await delay(30);
      const started = now();
      ctl.abort(reason);
      const e = assertFailed(await within(pending, 1000, c.name), "ECANCELED", c.name);
      assert.ok(now() - started < 500, `${c.name} ended ${now() - started} ms after the abort`);
      assert.equal(e.cause, reason, "the signal's reason is the cause");
      assert.equal(live(), 0, "no abort listener is left on the signal");
      await scene.afterFailure();
    });
  });

  Deno.test(`cancel/${c.name}: with a deadline and a signal, the deadline first is ETIMEDOUT`, async () => {
    await withScene(c, async (scene) => {
      const { ctl, signal, live } = countingSignal();
      const o = await within(settle(scene.call({ deadline: now() + 40, signal })), 2000, c.name);
      ctl.abort(); // too late to change anything
      assertFailed(o, "ETIMEDOUT", c.name);
      assert.equal(live(), 0, "no abort listener is left on the signal");
      await scene.afterFailure();
    });
  });

  Deno.test(`cancel/${c.name}: deadline 0 (with a live signal) fails with ETIMEDOUT without waiting`, async () => {
    await withScene(c, async (scene) => {
      const { signal, live } = countingSignal();
      const o = await within(settle(scene.call({ deadline: 0, signal })), 200, c.name);
      assertFailed(o, "ETIMEDOUT", c.name);
      assert.equal(live(), 0, "no abort listener is left on the signal");
      await scene.afterFailure();
    });
  });
}

// ---- a long-lived signal over many calls --------------------------------------------

Deno.test("cancel/leaks: one signal over 10,000 parked receives and sends keeps no listener", async () => {
  const [s, c] = await nohttpWsPair();
  const [a, b] = ipcPair();
  try {
    const { signal, live } = countingSignal();
    const until = { deadline: now() + 20_000, signal };
    for (let i = 0; i < 2500; i++) { // 10,000 calls, half of them parked
      const got = mrecv(s, until); // parks: nothing is there yet
      await msend(c, bytes(i & 0xff), until);
      await got;
      const raw = brecv(b, new Uint8Array(1), until); // parks too
      await bsend(a, bytes(1), until);
      await raw;
    }
    assert.equal(live(), 0, "every call removed its abort listener");
    const it = messages(s, until);
    for (let i = 0; i < 100; i++) {
      const next = it.next();
      await msend(c, bytes(1), until);
      await next;
    }
    await it.return();
    assert.equal(live(), 0, "messages() removed its listeners");
  } finally {
    closeAll(s, c, a, b);
  }
});

Deno.test("cancel/leaks: one signal over 10,000 connects keeps nothing per call", async () => {
  // connectWithin is what tcpConnect and ipcConnect run; a connect that succeeds at once
  // keeps the loop cheap. Whatever the signal keeps per call (listeners, dependent
  // signals) shows up as retained heap.
  const { connectWithin } = await import("../actors/sockets.ts");
  const { collectGarbage } = await import("./helpers/memory.ts");
  const { signal, live } = countingSignal();
  const conn = {} as Deno.Conn;
  const connectAll = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await connectWithin(
        "tcpConnect",
        { deadline: now() + T, signal },
        () => Promise.resolve(conn),
      );
    }
  };
  await connectAll(1000); // warm up
  collectGarbage();
  const before = Deno.memoryUsage().heapUsed;
  await connectAll(10_000);
  collectGarbage();
  const grown = Deno.memoryUsage().heapUsed - before;
  assert.equal(live(), 0, "no abort listener is left");
  assert.ok(grown < 1_000_000, `the signal kept ${grown} bytes after 10,000 connects`);
  // Real sockets: the same over tcpConnect and ipcConnect.
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    for (let i = 0; i < 50; i++) {
      const [acc, cl] = await Promise.all([
        tcpAccept(ls, { deadline: soon(), signal }),
        tcpConnect(tcpLocalAddr(ls), { deadline: soon(), signal }),
      ]);
      closeAll(acc.handle, cl);
    }
    assert.equal(live(), 0, "tcpAccept/tcpConnect left no abort listener");
  } finally {
    hclose(ls);
  }
});

Deno.test("cancel/leaks: deadlineSignal with a long-lived signal keeps nothing once its deadline passed", async () => {
  const { collectGarbage } = await import("./helpers/memory.ts");
  const { signal: shutdown } = countingSignal();
  const make = (n: number) => {
    for (let i = 0; i < n; i++) deadlineSignal({ deadline: now() + 5, signal: shutdown });
  };
  make(1000); // warm up
  await delay(30);
  collectGarbage();
  const before = Deno.memoryUsage().heapUsed;
  make(10_000);
  await delay(50); // every deadline passed: those signals are over
  collectGarbage();
  const grown = Deno.memoryUsage().heapUsed - before;
  assert.ok(grown < 1_000_000, `the long-lived signal kept ${grown} bytes for 10,000 calls`);
  // Still both ways: the long-lived signal aborts one that is waiting, with its reason.
  const ctl = new AbortController();
  const either = deadlineSignal({ deadline: now() + T, signal: ctl.signal });
  ctl.abort("bye");
  assert.equal(either.aborted, true);
  assert.equal(either.reason, "bye");
});

Deno.test("cancel/wsAttachServer: an abort while a refusal is written fails with the refusal's EPROTO", async () => {
  // The client sends a request that is not an upgrade and reads nothing back, so the
  // 400 answer cannot be written (tiny buffers): the abort ends the call.
  const [a, b] = ipcPair({ pipeCapacity: 16, writeHighWater: 16, readHighWater: 16 });
  try {
    await bsend(b, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), soon());
    const ctl = new AbortController();
    const pending = settle(wsAttachServer(a, WS_BINARY, { deadline: soon(), signal: ctl.signal }));
    await delay(30);
    ctl.abort();
    assertFailed(await within(pending, 1000, "wsAttachServer"), "EPROTO", "a refused request");
    assertClosed(await settle(bsend(a, bytes(1), soon())), "the stack was closed");
  } finally {
    closeAll(a, b);
  }
});

Deno.test("cancel/wsUpgrade wsDone: resolves at once behind a waiting send; the close frame follows that send", async () => {
  const server = upgradeServer(WS_BINARY, { sendHighWater: 64 * 1024 });
  const client = await rawClient(server.port);
  const h = await server.next();
  try {
    const big = new Uint8Array(32 * 1024 * 1024).fill(7);
    const ahead = settle(msend(h, big, -1));
    await delay(20);
    const { signal } = countingSignal();
    // Deadline 0 and a live signal: it does not wait, so neither can end it.
    await within(wsDone(h, 1000, "bye", { deadline: 0, signal }), 200, "wsDone");
    const peer = client.reader();
    assert.equal((await peer.readFrame(soon())).payload.length, big.length, "the send first");
    assertOk(await ahead, "the send ahead of the close");
    assert.equal((await peer.readFrame(soon())).opcode, 8, "then the close frame");
  } finally {
    closeQuietly(h);
    await client.close();
    await server.shutdown();
  }
});
