/**
 * The listener (actors/listener.ts, actors/accept_errors.ts): one client that resets
 * before it is accepted never stops a listener, resource exhaustion backs off instead
 * of spinning or failing, and `hclose` frees the port at once.
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
  isDillError,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  wsAttachClient,
} from "../mod.ts";
import { classifyAcceptError } from "../actors/accept_errors.ts";
import { call } from "../actors/actor.ts";
import { ACCEPT_BACKOFF_MIN_MS, ListenerActor, type ListenerMsg } from "../actors/listener.ts";
import { DillError } from "../protocol/errors.ts";
import { LineChild } from "./helpers/child.ts";
import { delay, rejectsWith, rejectsWithOneOf } from "./helpers/transports.ts";
import { startPythonPeer } from "./peers/python_peer.ts";

const T = 5000;
const README_SERVER = new URL("./peers/readme_echo_server.ts", import.meta.url).pathname;
const CAPPED_SERVER = new URL("./peers/capped_server.ts", import.meta.url).pathname;

/** An error as Deno's accept() throws it: a message and the errno name in `code`. */
function osError(code: string, message = code): Error {
  return Object.assign(new Error(`${message} (os error)`), { code });
}

// ---- the policy --------------------------------------------------------------------------

Deno.test("listener: accept errors are classified per connection, exhaustion, closed or fatal", () => {
  for (const code of ["ECONNABORTED", "ECONNRESET", "ENOTCONN", "EPROTO", "EPERM", "ENETDOWN"]) {
    assert.equal(classifyAcceptError(osError(code)), "connection", code);
  }
  assert.equal(classifyAcceptError(new Deno.errors.NotConnected("x")), "connection");
  assert.equal(classifyAcceptError(new Deno.errors.ConnectionAborted("x")), "connection");
  assert.equal(classifyAcceptError(new Deno.errors.ConnectionReset("x")), "connection");
  for (const code of ["EMFILE", "ENFILE", "ENOMEM", "ENOBUFS"]) {
    assert.equal(classifyAcceptError(osError(code)), "exhausted", code);
  }
  assert.equal(classifyAcceptError(new Deno.errors.BadResource("x")), "closed");
  assert.equal(classifyAcceptError(new Deno.errors.Interrupted("x")), "closed");
  for (const code of ["EBADF", "EINVAL", "ENOTSOCK"]) {
    assert.equal(classifyAcceptError(osError(code)), "fatal", code);
  }
  assert.equal(classifyAcceptError(new Error("no code at all")), "fatal");
});

// ---- the actor, over a scripted listener ---------------------------------------------------

/** A stand-in for a connection: only `close` is used by the listener. */
class FakeConn {
  closed = false;
  close(): void {
    this.closed = true;
  }
}

/**
 * A `Deno.Listener` whose accept() follows a script: each call takes the next step (an
 * error to throw or a connection to return); past the script, accept() waits forever
 * (until close). Counts the calls.
 */
class ScriptedListener {
  calls = 0;
  closed = false;
  readonly addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  #hang: PromiseWithResolvers<never> | null = null;
  constructor(readonly script: (() => Error | FakeConn)[]) {}
  accept(): Promise<FakeConn> {
    this.calls++;
    const step = this.script.shift();
    if (step) {
      const r = step();
      return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
    }
    this.#hang = Promise.withResolvers<never>();
    return this.#hang.promise;
  }
  close(): void {
    this.closed = true;
    this.#hang?.reject(new Deno.errors.BadResource("closed"));
  }
}

function actorOver(script: ScriptedListener): ListenerActor {
  return new ListenerActor("test listener", script as unknown as Deno.Listener, 4);
}

function acceptFrom(actor: ListenerActor, deadline: number): Promise<Deno.Conn> {
  return call<Deno.Conn, ListenerMsg>(actor, "tcpAccept", deadline, (req) => ({
    kind: "accept",
    req,
  }));
}

Deno.test("listener: errors of single connections are skipped; the waiting call gets the next one", async () => {
  const conn = new FakeConn();
  const script = new ScriptedListener([
    () => new Deno.errors.NotConnected("Transport endpoint is not connected (os error 107)"),
    () => osError("ECONNABORTED"),
    () => new Deno.errors.ConnectionReset("reset"),
    () => osError("EPROTO"),
    () => conn,
  ]);
  const actor = actorOver(script);
  try {
    assert.equal(await acceptFrom(actor, now() + T), conn as unknown as Deno.Conn);
    assert.equal(script.calls, 5);
    assert.equal(actor.closedReason, null);
  } finally {
    actor.close(new DillError("ECANCELED", "test over"));
  }
  assert.equal(script.closed, true);
});

Deno.test("listener: nothing is accepted while no call waits", async () => {
  const script = new ScriptedListener([() => new FakeConn()]);
  const actor = actorOver(script);
  try {
    await delay(20);
    assert.equal(script.calls, 0);
    await acceptFrom(actor, now() + T);
    await delay(20);
    assert.equal(script.calls, 1, "no accept ahead of the next call");
  } finally {
    actor.close(new DillError("ECANCELED", "test over"));
  }
});

Deno.test("listener: EMFILE backs off with growing pauses and the waiting call is served later", async () => {
  const conn = new FakeConn();
  let exhausted = true;
  const script = new ScriptedListener([]);
  // Every accept fails with EMFILE until `exhausted` is cleared.
  script.accept = function (this: ScriptedListener) {
    this.calls++;
    return exhausted
      ? Promise.reject(osError("EMFILE", "Too many open files"))
      : Promise.resolve(conn);
  };
  const actor = actorOver(script);
  try {
    const pending = acceptFrom(actor, -1);
    let settled = false;
    pending.then(() => settled = true, () => settled = true);
    const WINDOW = 300;
    await delay(WINDOW);
    // Pauses of 5, 10, 20, 40, 80, 160 ms fit about 6 attempts in 300 ms; a retry loop
    // without pauses would make thousands.
    assert.ok(script.calls >= 2, `it retried (${script.calls} attempts)`);
    assert.ok(
      script.calls <= 1 + Math.log2(WINDOW / ACCEPT_BACKOFF_MIN_MS) + 2,
      `${script.calls} attempts in ${WINDOW} ms`,
    );
    assert.equal(settled, false, "the call keeps waiting while descriptors are exhausted");
    exhausted = false;
    assert.equal(await pending, conn as unknown as Deno.Conn);
  } finally {
    actor.close(new DillError("ECANCELED", "test over"));
  }
});

Deno.test("listener: EMFILE with a deadline: the call times out, the listener still works", async () => {
  let exhausted = true;
  const script = new ScriptedListener([]);
  script.accept = function (this: ScriptedListener) {
    this.calls++;
    return exhausted ? Promise.reject(osError("EMFILE")) : Promise.resolve(new FakeConn());
  };
  const actor = actorOver(script);
  try {
    await rejectsWith(acceptFrom(actor, now() + 50), "ETIMEDOUT");
    exhausted = false;
    const conn = await acceptFrom(actor, now() + T);
    assert.ok(conn instanceof FakeConn);
  } finally {
    actor.close(new DillError("ECANCELED", "test over"));
  }
});

Deno.test("listener: a broken listening socket fails the waiting call and every later one", async () => {
  const script = new ScriptedListener([() => osError("EBADF", "Bad file descriptor")]);
  const actor = actorOver(script);
  try {
    const e1 = await rejectsWith(acceptFrom(actor, now() + T), "ECONNRESET");
    assert.match(e1.message, /Bad file descriptor/);
    await rejectsWith(acceptFrom(actor, now() + T), "ECONNRESET");
    assert.equal(script.calls, 1);
  } finally {
    actor.close(new DillError("ECANCELED", "test over"));
  }
});

Deno.test("listener: a connection accepted after its call gave up goes to the next call", async () => {
  const late = Promise.withResolvers<FakeConn>();
  const script = new ScriptedListener([]);
  script.accept = function (this: ScriptedListener) {
    this.calls++;
    return late.promise;
  };
  const actor = actorOver(script);
  try {
    await rejectsWith(acceptFrom(actor, now() + 20), "ETIMEDOUT");
    const conn = new FakeConn();
    late.resolve(conn);
    await delay(0);
    assert.equal(await acceptFrom(actor, 0), conn as unknown as Deno.Conn);
    assert.equal(script.calls, 1);
  } finally {
    actor.close(new DillError("ECANCELED", "test over"));
  }
});

// ---- real resets -------------------------------------------------------------------------

Deno.test("listener/tcp: 2,000 clients that reset before accept, among 100 normal ones: all normal served", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const port = tcpLocalAddr(ls).port;
  const py = startPythonPeer("rst_clients.py", []);
  const ROUNDS = 20, RESETS = 100, NORMAL = 5;
  let accepted = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Nobody accepts while the clients connect and reset: every reset lands in the
      // kernel's queue before the accept that meets it.
      assert.equal((await py.ask(`mix ${port} ${RESETS} ${NORMAL}`)).event, "sent");
      for (let i = 0; i < NORMAL; i++) {
        const { handle } = await tcpAccept(ls, now() + T);
        accepted++;
        try {
          const id = await brecv(handle, new Uint8Array(8), now() + T);
          await bsend(handle, id, now() + T);
        } finally {
          hclose(handle);
        }
      }
      assert.deepEqual(await py.ask("collect"), { event: "served", n: NORMAL });
    }
    // Every accepted connection was a normal one: the resets never reached the caller.
    assert.equal(accepted, ROUNDS * NORMAL);
    await rejectsWith(tcpAccept(ls, 0), "ETIMEDOUT");
  } finally {
    await py.send("quit").catch(() => {});
    await py.dispose();
    hclose(ls);
  }
});

Deno.test("listener/unix: clients that connect and reset before accept do not disturb the others", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-test-" });
  const path = `${dir}/sock`;
  const ls = ipcListen(path);
  const py = startPythonPeer("rst_clients.py", []);
  try {
    for (let round = 0; round < 5; round++) {
      assert.equal((await py.ask(`unixrst ${path} 50`)).event, "rst");
      const client = await ipcConnect(path, now() + T);
      await bsend(client, new Uint8Array([round]), now() + T);
      // The reset clients come first in the queue. A Unix socket reports no error for
      // them: each is accepted as a stream that has already ended.
      let accepted = 0;
      for (let served = false; !served;) {
        const s = await ipcAccept(ls, now() + T);
        accepted++;
        try {
          const b = await brecv(s, new Uint8Array(1), now() + T);
          await bsend(s, b, now() + T);
          served = true;
        } catch (e) {
          assert.ok(isDillError(e, "EPIPE") || isDillError(e, "ECONNRESET"), String(e));
        } finally {
          hclose(s);
        }
      }
      assert.equal(accepted, 51);
      assert.deepEqual([...await brecv(client, new Uint8Array(1), now() + T)], [round]);
      hclose(client);
    }
  } finally {
    await py.send("quit").catch(() => {});
    await py.dispose();
    hclose(ls);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listener/tcp: the README echo example survives 2,000 resets before accept", async () => {
  const server = new LineChild(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-env",
    README_SERVER,
  ]);
  const py = startPythonPeer("rst_clients.py", []);
  try {
    const port = Number(await server.line("the server's port"));
    for (let round = 0; round < 20; round++) {
      // Frozen, the server cannot accept: the kernel completes each handshake and
      // then takes the reset, so every one of them meets the server's accept later.
      server.kill("SIGSTOP");
      try {
        assert.equal((await py.ask(`rst ${port} 100`)).event, "rst");
      } finally {
        server.kill("SIGCONT");
      }
      const tcp = await tcpConnect({ port }, now() + T);
      const { handle: ws } = await wsAttachClient(tcp, 0, "/", `127.0.0.1:${port}`, now() + T);
      try {
        const message = new TextEncoder().encode(`round ${round}`);
        await msend(ws, message, now() + T);
        assert.deepEqual(await mrecv(ws, now() + T), message);
      } finally {
        hclose(ws);
      }
    }
    assert.equal(server.exited, false);
  } finally {
    await py.send("quit").catch(() => {});
    await py.dispose();
    await server.dispose();
  }
});

// ---- hclose frees the address at once -------------------------------------------------------

Deno.test("listener/tcp: a connect right after hclose is refused", async () => {
  // A fresh listener, and one that has accepted (no accept is left in flight).
  for (const used of [false, true]) {
    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    const addr = tcpLocalAddr(ls);
    if (used) {
      const client = await tcpConnect(addr, now() + T);
      hclose((await tcpAccept(ls, now() + T)).handle);
      hclose(client);
    }
    hclose(ls);
    await rejectsWith(tcpConnect(addr, now() + T), "ECONNREFUSED");
  }
});

Deno.test("listener/unix: a connect right after hclose fails: the socket file is gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-test-" });
  try {
    for (const used of [false, true]) {
      const path = `${dir}/sock-${used}`;
      const ls = ipcListen(path);
      if (used) {
        const client = await ipcConnect(path, now() + T);
        hclose(await ipcAccept(ls, now() + T));
        hclose(client);
      }
      hclose(ls);
      // Closing the listener removes its socket file (Deno's own listener does).
      await rejectsWith(ipcConnect(path, now() + T), "ENOENT");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listener/tcp: hclose closes the connections nobody took", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const addr = tcpLocalAddr(ls);
  // One waits in the kernel's queue; one was accepted for a call that gave up.
  await rejectsWith(tcpAccept(ls, now() + 30), "ETIMEDOUT");
  const taken = await tcpConnect(addr, now() + T);
  const queued = await tcpConnect(addr, now() + T);
  await delay(20);
  hclose(ls);
  for (const client of [taken, queued]) {
    await rejectsWithOneOf(brecv(client, new Uint8Array(1), now() + T), ["EPIPE", "ECONNRESET"]);
    hclose(client);
  }
  await rejectsWith(tcpConnect(addr, now() + T), "ECONNREFUSED");
});

Deno.test("listener/tcp: hclose fails a waiting tcpAccept; the port is refused after one turn", async () => {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const addr = tcpLocalAddr(ls);
  const pending = tcpAccept(ls, -1);
  hclose(ls);
  await rejectsWith(pending, "ECANCELED");
  // Deno drops the socket of an accept in flight on the event loop's next turn.
  await delay(0);
  await rejectsWith(tcpConnect(addr, now() + T), "ECONNREFUSED");
});

Deno.test("listener/tcp: the README echo example survives running out of file descriptors", async () => {
  // The server may open 48 descriptors; Deno itself holds about 25. Sixty clients make
  // its accepts fail with EMFILE until they go.
  const server = new LineChild("/bin/sh", [
    "-c",
    `ulimit -n 48 && exec "$0" run --allow-net --allow-env "$1"`,
    Deno.execPath(),
    README_SERVER,
  ]);
  const clients: Deno.Conn[] = [];
  try {
    const port = Number(await server.line("the server's port"));
    for (let i = 0; i < 60; i++) clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await delay(300); // the server accepts what it can, then backs off
    assert.equal(server.exited, false);
    for (const c of clients.splice(0)) c.close();
    // Served again once descriptors are free (the pause is at most one second).
    const tcp = await tcpConnect({ port }, now() + T);
    const { handle: ws } = await wsAttachClient(tcp, 0, "/", `127.0.0.1:${port}`, now() + T);
    try {
      const message = new TextEncoder().encode("after EMFILE");
      await msend(ws, message, now() + T);
      assert.deepEqual(await mrecv(ws, now() + T), message);
    } finally {
      hclose(ws);
    }
    assert.equal(server.exited, false);
  } finally {
    for (const c of clients) c.close();
    await server.dispose();
  }
});

Deno.test("listener/tcp: maxConnections pauses accepting while that many are open; a close lets the next in", async () => {
  const ls = tcpListen({ port: 0 }, 128, { maxConnections: 2 });
  const addr = tcpLocalAddr(ls);
  const clients: Handle[] = [];
  const served: Handle[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await tcpConnect(addr, now() + T));
    // Each client says which it is, so that the test can tell which one got in.
    for (let i = 0; i < 3; i++) await bsend(clients[i], new Uint8Array([i]), now() + T);
    for (let i = 0; i < 2; i++) served.push((await tcpAccept(ls, now() + T)).handle);
    const seen = [];
    for (const s of served) seen.push((await brecv(s, new Uint8Array(1), now() + T))[0]);
    assert.deepEqual(seen.sort(), [0, 1]);
    // The third client is connected (the kernel queued it) but not accepted.
    await rejectsWith(tcpAccept(ls, now() + 300), "ETIMEDOUT");
    const waiting = tcpAccept(ls, now() + T);
    await delay(50);
    hclose(served.shift()!); // one slot frees
    const third = (await waiting).handle;
    served.push(third);
    assert.deepEqual(await brecv(third, new Uint8Array(1), now() + T), new Uint8Array([2]));
  } finally {
    for (const h of [...served, ...clients]) hclose(h);
    hclose(ls);
  }
});

Deno.test("listener/unix: maxConnections counts a connection until its handle is closed", async () => {
  const path = `${await Deno.makeTempDir()}/capped.sock`;
  const ls = ipcListen(path, 128, { maxConnections: 1 });
  const clients: Handle[] = [];
  try {
    clients.push(await ipcConnect(path, now() + T), await ipcConnect(path, now() + T));
    const first = await ipcAccept(ls, now() + T);
    // The peer leaving does not free the slot: the accepted handle still holds its socket.
    hclose(clients.shift()!);
    await rejectsWith(ipcAccept(ls, now() + 200), "ETIMEDOUT");
    hclose(first);
    hclose(await ipcAccept(ls, now() + T));
  } finally {
    for (const h of clients) hclose(h);
    hclose(ls);
    await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("listener: maxConnections must be a whole number >= 1 or Infinity", () => {
  for (const bad of [0, -1, 1.5, NaN, "10" as unknown as number]) {
    assert.throws(() => tcpListen({ port: 0 }, 128, { maxConnections: bad }), /maxConnections/);
    assert.throws(() => ipcListen("/tmp/x.sock", 128, { maxConnections: bad }), /maxConnections/);
  }
  hclose(tcpListen({ port: 0 }, 128, { maxConnections: Infinity }));
});

Deno.test("listener/tcp: with maxConnections a flood of clients leaves the process descriptors; without, it takes nearly all", async () => {
  // Under a limit of 64 descriptors (Deno itself holds about 25), 80 clients connect to a
  // server that accepts and holds every connection.
  const flood = async (cap: string) => {
    const server = new LineChild("/bin/sh", [
      "-c",
      `ulimit -n 64 && exec "$0" run --allow-net --allow-read=/dev/null "$1" "$2"`,
      Deno.execPath(),
      CAPPED_SERVER,
      cap,
    ]);
    const clients: Deno.Conn[] = [];
    try {
      const port = Number(await server.line("the server's port"));
      for (let i = 0; i < 80; i++) {
        clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      await delay(300); // the server accepts what it may
      return await server.ask<{ held: number; canOpen: number }>("probe");
    } finally {
      for (const c of clients) c.close();
      await server.dispose();
    }
  };
  assert.deepEqual(await flood("16"), { held: 16, canOpen: 8 });
  const uncapped = await flood("none");
  assert.ok(uncapped.held > 16 && uncapped.canOpen < 8, `uncapped: ${JSON.stringify(uncapped)}`);
});
