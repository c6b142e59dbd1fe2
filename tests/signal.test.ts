/**
 * AbortSignal wherever a deadline is taken: `{ signal }`, `{ deadline, signal }`, an
 * abort fails the call with ECANCELED and libdill's rules on failed sends/receives
 * apply; a signal already aborted fails at once and leaves the socket alone; no abort
 * listener outlives its call; the helpers between deadlines and AbortSignal.
 */

import { nohttpWsPair } from "./helpers/transports.ts";
import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  deadlineAfter,
  deadlineSignal,
  hclose,
  ipcPair,
  isDillError,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  wsRecv,
} from "../mod.ts";
import { connectWithin } from "../actors/sockets.ts";
import { assertFailed, settle } from "./helpers/outcome.ts";
import { countingSignal } from "./helpers/signals.ts";

const T = 5000;

Deno.test("signal/ws: aborting a waiting mrecv fails it with ECANCELED; receiving is then over", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    const ctl = new AbortController();
    const pending = settle(mrecv(s, { signal: ctl.signal }));
    setTimeout(() => ctl.abort(new Error("user left")), 20);
    const e = assertFailed(await pending, "ECANCELED", "aborted mrecv");
    assert.equal((e.cause as Error).message, "user left", "the signal's reason is the cause");
    // libdill's rule: after a failed receive the socket can no longer receive.
    await msend(c, new Uint8Array([1]), now() + T);
    const later = assertFailed(await settle(mrecv(s, now() + T)), "ECONNRESET", "mrecv after");
    assert.match(later.message, /earlier receive failed \(ECANCELED\)/, "names the abort");
    // Sending still works.
    await msend(s, new Uint8Array([2]), now() + T);
    assert.deepEqual([...await mrecv(c, now() + T)], [2]);
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("signal/ws: a signal already aborted fails at once and leaves the socket usable", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    const aborted = AbortSignal.abort();
    assertFailed(await settle(mrecv(s, { signal: aborted })), "ECANCELED", "mrecv");
    assertFailed(await settle(msend(s, "x", { signal: aborted })), "ECANCELED", "msend");
    assertFailed(
      await settle(wsRecv(s, { deadline: now() + T, signal: aborted })),
      "ECANCELED",
      "wsRecv",
    );
    await msend(c, new Uint8Array([7]), now() + T);
    assert.deepEqual([...await mrecv(s, { signal: new AbortController().signal })], [7]);
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("signal/ws: with { deadline, signal } the deadline still fails the call with ETIMEDOUT", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    const ctl = new AbortController();
    const started = now();
    assertFailed(
      await settle(mrecv(s, { deadline: now() + 50, signal: ctl.signal })),
      "ETIMEDOUT",
      "mrecv",
    );
    assert.ok(now() - started >= 45, "it waited for the deadline");
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("signal/ws: an abort during the opening handshake fails the attach with ECANCELED", async () => {
  const [a, b] = ipcPair();
  try {
    const ctl = new AbortController();
    const pending = settle(wsAttachServer(a, 0, { signal: ctl.signal })); // no client speaks
    setTimeout(() => ctl.abort(), 20);
    assertFailed(await pending, "ECANCELED", "wsAttachServer");
  } finally {
    hclose(b);
  }
});

Deno.test("signal/bytestream: an aborted brecv is ECANCELED, and the socket can no longer receive", async () => {
  const [a, b] = ipcPair();
  try {
    const ctl = new AbortController();
    const pending = settle(brecv(b, new Uint8Array(4), { signal: ctl.signal }));
    await bsend(a, new Uint8Array([1, 2]), now() + T); // half of what brecv waits for
    setTimeout(() => ctl.abort(), 20);
    assertFailed(await pending, "ECANCELED", "brecv");
    await bsend(a, new Uint8Array([3, 4]), now() + T);
    const later = assertFailed(
      await settle(brecv(b, new Uint8Array(2), now() + T)),
      "ECONNRESET",
      "brecv after",
    );
    assert.match(later.message, /earlier receive failed \(ECANCELED\)/, "names the abort");
  } finally {
    hclose(a);
    hclose(b);
  }
});

Deno.test("signal/bytestream: an aborted bsend (pipe full) is ECANCELED, and the socket can no longer send", async () => {
  const [a, b] = ipcPair({ pipeCapacity: 1024, writeHighWater: 1024 });
  try {
    const ctl = new AbortController();
    const pending = settle(bsend(a, new Uint8Array(1024 * 1024), { signal: ctl.signal }));
    setTimeout(() => ctl.abort(), 20);
    assertFailed(await pending, "ECANCELED", "bsend");
    const after = await settle(bsend(a, new Uint8Array(1), now() + T));
    assert.equal(after.ok, false, "a send after the aborted one fails");
  } finally {
    hclose(a);
    hclose(b);
  }
});

Deno.test("signal/ws: an aborted msend (peer not reading) is ECANCELED, and the socket can no longer send", async () => {
  const [a, b] = ipcPair({ pipeCapacity: 1024, writeHighWater: 1024 });
  const [{ handle: s }, { handle: c }] = await Promise.all([
    wsAttachServer(a, WS_NOHTTP, now() + T, { maxBufferedBytes: 1024 }),
    wsAttachClient(b, WS_NOHTTP, "", "", now() + T),
  ]);
  try {
    // The server's application does not read: one queued message pauses its reading.
    await msend(c, new Uint8Array(1024), now() + T);
    const ctl = new AbortController();
    const pending = settle(msend(c, new Uint8Array(4 * 1024 * 1024), { signal: ctl.signal }));
    setTimeout(() => ctl.abort(), 20);
    assertFailed(await pending, "ECANCELED", "msend");
    const after = await settle(msend(c, new Uint8Array(1), now() + T));
    assert.equal(after.ok, false, "a send after the aborted one fails");
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("signal/tcp: tcpAccept aborts with ECANCELED and the listener still accepts", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    const ctl = new AbortController();
    const pending = settle(tcpAccept(ls, { signal: ctl.signal }));
    setTimeout(() => ctl.abort(), 20);
    assertFailed(await pending, "ECANCELED", "tcpAccept");
    const [accepted, client] = await Promise.all([
      tcpAccept(ls, { deadline: now() + T, signal: new AbortController().signal }),
      tcpConnect(tcpLocalAddr(ls), { deadline: now() + T, signal: new AbortController().signal }),
    ]);
    hclose(accepted.handle);
    hclose(client);
    assertFailed(
      await settle(tcpConnect(tcpLocalAddr(ls), { signal: AbortSignal.abort() })),
      "ECANCELED",
      "tcpConnect with an aborted signal",
    );
  } finally {
    hclose(ls);
  }
});

Deno.test("signal/args: a bad signal or options bag is EINVAL", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    // deno-lint-ignore no-explicit-any
    const bad: any[] = [{ signal: {} }, { deadline: -5 }, { deadline: "1" }, null, [1]];
    for (const d of bad) {
      assertFailed(await settle(mrecv(s, d)), "EINVAL", `mrecv(${JSON.stringify(d)})`);
    }
    // The socket is untouched by argument errors.
    await msend(c, new Uint8Array([3]), now() + T);
    assert.deepEqual([...await mrecv(s, {})], [3]);
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("signal/leaks: no abort listener outlives its call, answered at once or after waiting", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    const { ctl, live } = countingSignal();
    for (let i = 0; i < 50; i++) await msend(c, new Uint8Array([i]), { signal: ctl.signal });
    for (let i = 0; i < 50; i++) await mrecv(s, { signal: ctl.signal }); // answered at once
    assert.equal(live(), 0, "calls answered at once add no listener");
    const waiting = mrecv(s, { signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(live(), 1, "a parked call listens to its signal");
    await msend(c, new Uint8Array([1]), now() + T);
    await waiting;
    assert.equal(live(), 0, "the listener is removed when the call settles");
    const closing = settle(mrecv(s, { signal: ctl.signal }));
    await new Promise((r) => setTimeout(r, 10));
    hclose(s);
    assertFailed(await closing, "ECANCELED", "mrecv on a closed handle");
    assert.equal(live(), 0, "the listener is removed when the handle closes");
  } finally {
    hclose(c);
  }
});

Deno.test("signal/helpers: deadlineSignal aborts with TimeoutError at the deadline", async () => {
  const started = now();
  const signal = deadlineSignal(now() + 40);
  await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
  assert.ok(now() - started >= 35, "not before the deadline");
  assert.equal((signal.reason as DOMException).name, "TimeoutError");
  assert.equal(deadlineSignal(0).aborted, true, "deadline 0 is already over");
  assert.equal(deadlineSignal(now() - 1).aborted, true, "a past deadline is over");
  assert.equal(deadlineSignal(-1).aborted, false, "-1 never aborts");
  const ctl = new AbortController();
  const both = deadlineSignal({ deadline: -1, signal: ctl.signal });
  ctl.abort("stop");
  assert.equal(both.aborted, true, "the bag's signal aborts it");
  assert.equal(both.reason, "stop");
  assert.throws(() => deadlineSignal(-7), (e) => isDillError(e, "EINVAL"));
});

Deno.test("signal/helpers: deadlineAfter bounds a call by time and by a signal", async () => {
  const [s, c] = await nohttpWsPair();
  try {
    const t = deadlineAfter(30);
    assert.ok(t.deadline! > now() && t.deadline! <= now() + 30);
    assert.equal(deadlineAfter(-1).deadline, -1);
    assertFailed(await settle(mrecv(s, deadlineAfter(30))), "ETIMEDOUT", "mrecv(deadlineAfter)");
    const [s2, c2] = await nohttpWsPair();
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 10);
    assertFailed(
      await settle(mrecv(s2, deadlineAfter(T, ctl.signal))),
      "ECANCELED",
      "mrecv(deadlineAfter(T, signal))",
    );
    hclose(s2);
    hclose(c2);
    assert.throws(() => deadlineAfter(NaN), (e) => isDillError(e, "EINVAL"));
  } finally {
    hclose(s);
    hclose(c);
  }
});

Deno.test("signal/connect: an abort while connecting aborts the attempt and fails with ECANCELED", async () => {
  // A connect that only ends when its signal aborts (a peer that never answers the SYN).
  let attemptAborted = false;
  const hanging = (signal: AbortSignal) =>
    new Promise<Deno.Conn>((_, reject) =>
      signal.addEventListener("abort", () => {
        attemptAborted = true;
        reject(new DOMException("aborted", "AbortError"));
      }, { once: true })
    );
  for (const deadline of [-1, now() + T]) {
    attemptAborted = false;
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 20);
    const outcome = await settle(
      connectWithin("tcpConnect", { deadline, signal: ctl.signal }, hanging),
    );
    assertFailed(outcome, "ECANCELED", `connect with deadline ${deadline}`);
    assert.ok(attemptAborted, "the connection attempt itself was aborted");
  }
});
