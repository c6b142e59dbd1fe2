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
  brecvl,
  bsend,
  bsendl,
  type Deadline,
  deadlineSignal,
  type Handle,
  hclose,
  ipcAccept,
  ipcClose,
  ipcConnect,
  ipcDone,
  ipcListen,
  ipcPair,
  messages,
  mrecv,
  mrecvl,
  mrecvText,
  msend,
  msendl,
  now,
  tcpAccept,
  tcpClose,
  tcpConnect,
  tcpDone,
  tcpListen,
  tcpLocalAddr,
  tlsAccept,
  tlsAttachClient,
  tlsAttachServer,
  tlsDetach,
  tlsDone,
  tlsListen,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsDetach,
  wsDone,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
} from "../mod.ts";
import { assertFailed, assertOk, type Outcome, settle } from "./helpers/outcome.ts";
import { countingSignal } from "./helpers/signals.ts";
import { CLIENT, SERVER } from "./helpers/tls_fixtures.ts";
import { closeQuietly, delay, nohttpWsPair, openPair, within } from "./helpers/transports.ts";
import { connectClient, rawClient, upgradeServer } from "./helpers/serve.ts";

const T = 5000;
const soon = () => now() + T;
const BAD_DEADLINES: unknown[] = [
  -2,
  -0.5,
  NaN,
  Infinity,
  -Infinity,
  { deadline: NaN },
  { deadline: -5 },
  { deadline: Infinity },
];

/** One blocking call in a fresh scene where it waits (nothing arrives unless told). */
interface Scene {
  /** Makes the call; with nothing else happening it waits until its deadline. */
  call(d: Deadline): Promise<unknown>;
  /** After calls that failed before starting: nothing happened, the handles work. */
  untouched(): Promise<void>;
  /** After the call failed while waiting (ECANCELED or ETIMEDOUT): the documented state. */
  afterFailure(): Promise<void>;
  /** Closes everything. */
  cleanup(): Promise<void>;
}

interface Case {
  readonly name: string;
  open(): Promise<Scene>;
}

const bytes = (...b: number[]) => new Uint8Array(b);

/** The next message as text, whatever its type (the pairs here are binary sockets). */
async function textOf(h: Handle, d: Deadline): Promise<string> {
  const { data } = await wsRecv(h, d);
  return typeof data === "string" ? data : new TextDecoder().decode(data);
}

async function expectBytes(h: Handle, want: number[]): Promise<void> {
  assert.deepEqual([...await brecv(h, new Uint8Array(want.length), soon())], want);
}

/** The other side of a stream sees the end (EPIPE) or a reset: the stack was closed. */
async function seesEnd(h: Handle, what: string): Promise<void> {
  const o = await settle(brecv(h, new Uint8Array(1), soon()));
  assert.ok(!o.ok, `${what}: the peer still got data`);
  const code = (o.error as { code?: string }).code;
  assert.ok(code === "EPIPE" || code === "ECONNRESET", `${what}: peer got ${code}`);
}

function assertClosed(o: Outcome<unknown>, what: string): void {
  assertFailed(o, "EBADF", what);
}

// ---- bytestreams over every transport ---------------------------------------------

const KINDS = ["pipe", "tcp", "unix"] as const;

function receiveCase(name: string, kind: typeof KINDS[number], useList: boolean): Case {
  return {
    name: `${name}/${kind}`,
    async open() {
      const pair = await openPair(kind);
      const { a, b } = pair;
      return {
        call: (d) =>
          useList
            ? brecvl(b, [new Uint8Array(1), new Uint8Array(1)], d)
            : brecv(b, new Uint8Array(2), d),
        async untouched() {
          await bsend(a, bytes(5, 6), soon());
          await expectBytes(b, [5, 6]); // nothing was consumed by the failed calls
        },
        async afterFailure() {
          await bsend(a, bytes(1), soon());
          assertFailed(
            await settle(brecv(b, new Uint8Array(1), soon())),
            "ECONNRESET",
            "brecv after",
          );
          await bsend(b, bytes(9), soon()); // sending still works
          await expectBytes(a, [9]);
        },
        cleanup: () => pair.cleanup(),
      };
    },
  };
}

/** A pipe of 1 KiB whose reader does not read: a 1 MiB send waits for room. */
function sendCase(name: string, useList: boolean): Case {
  return {
    name,
    open() {
      const [a, b] = ipcPair({ pipeCapacity: 1024, writeHighWater: 1024 });
      const big = new Uint8Array(1024 * 1024).fill(0xee);
      return Promise.resolve({
        call: (d) => useList ? bsendl(a, [bytes(1), big], d) : bsend(a, big, d),
        async untouched() {
          await bsend(a, bytes(7), soon());
          await expectBytes(b, [7]); // the failed sends wrote nothing before it
        },
        async afterFailure() {
          assertFailed(await settle(bsend(a, bytes(1), soon())), "ECONNRESET", "bsend after");
          await bsend(b, bytes(3), soon()); // receiving still works
          await expectBytes(a, [3]);
        },
        cleanup: () => Promise.resolve(closeAll(a, b)),
      });
    },
  };
}

function closeAll(...hs: Handle[]): void {
  for (const h of hs) closeQuietly(h);
}

/** tcpClose/ipcClose: waits for the peer's FIN; the handle is closed even on failure. */
function cleanCloseCase(kind: "tcp" | "unix"): Case {
  const close = kind === "tcp" ? tcpClose : ipcClose;
  return {
    name: `${kind === "tcp" ? "tcpClose" : "ipcClose"}`,
    async open() {
      const pair = await openPair(kind);
      const { a, b } = pair;
      return {
        call: (d) => close(a, d),
        async untouched() {
          await bsend(a, bytes(4), soon()); // still open, both ways
          await expectBytes(b, [4]);
          await bsend(b, bytes(2), soon());
          await expectBytes(a, [2]);
        },
        async afterFailure() {
          assertClosed(await settle(bsend(a, bytes(1), soon())), "bsend after a failed close");
          await seesEnd(b, "peer of a failed close");
        },
        cleanup: () => pair.cleanup(),
      };
    },
  };
}

/** ipcDone queued behind a send that waits for a reader: the FIN waits too. */
function halfCloseCase(name: string, done: (h: Handle, d: Deadline) => Promise<void>): Case {
  return {
    name,
    open() {
      // Small buffers everywhere, so the reader's side holds little of what is sent.
      const [a, b] = ipcPair({ pipeCapacity: 1024, writeHighWater: 1024, readHighWater: 1024 });
      const ahead = settle(bsend(a, new Uint8Array(64 * 1024), -1)); // waits for the reader
      const readAll = async () => {
        await brecv(b, new Uint8Array(64 * 1024), soon());
        assertOk(await ahead, "the send ahead");
      };
      return Promise.resolve({
        call: (d: Deadline) => done(a, d),
        async untouched() {
          await readAll();
          await bsend(a, bytes(8), soon()); // no FIN went out: the stream goes on
          await expectBytes(b, [8]);
        },
        async afterFailure() {
          await readAll(); // the send ahead of the failed done still went
          assertFailed(await settle(bsend(a, bytes(1), soon())), "ECONNRESET", "bsend after");
        },
        cleanup: () => Promise.resolve(closeAll(a, b)),
      });
    },
  };
}

/** tcpDone has room in the kernel's buffers here, so it does not wait: refusals only. */
const tcpDoneCase: Case = {
  name: "tcpDone",
  async open() {
    const pair = await openPair("tcp");
    const { a, b } = pair;
    return {
      call: (d) => tcpDone(a, d),
      async untouched() {
        await bsend(a, bytes(8), soon()); // no FIN went out: the stream goes on
        await expectBytes(b, [8]);
      },
      afterFailure: () => Promise.resolve(),
      cleanup: () => pair.cleanup(),
    };
  },
};

// ---- listeners and connections --------------------------------------------------

const tcpAcceptCase: Case = {
  name: "tcpAccept",
  open() {
    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    const accepts = async () => {
      const [acc, c] = await Promise.all([
        tcpAccept(ls, soon()),
        tcpConnect(tcpLocalAddr(ls), soon()),
      ]);
      await bsend(c, bytes(1), soon());
      await expectBytes(acc.handle, [1]);
      closeAll(acc.handle, c);
    };
    return Promise.resolve({
      call: (d) => tcpAccept(ls, d),
      untouched: accepts,
      afterFailure: accepts,
      cleanup: () => Promise.resolve(hclose(ls)),
    });
  },
};

const ipcAcceptCase: Case = {
  name: "ipcAccept",
  async open() {
    const dir = await Deno.makeTempDir({ prefix: "dill-ws-cancel-" });
    const path = `${dir}/sock`;
    const ls = ipcListen(path);
    const accepts = async () => {
      const [acc, c] = await Promise.all([ipcAccept(ls, soon()), ipcConnect(path, soon())]);
      await bsend(c, bytes(1), soon());
      await expectBytes(acc, [1]);
      closeAll(acc, c);
    };
    return {
      call: (d) => ipcAccept(ls, d),
      untouched: accepts,
      afterFailure: accepts,
      async cleanup() {
        hclose(ls);
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

/**
 * Takes every connection the kernel has queued; returns how many. Not with deadline 0:
 * after a burst of ready I/O Deno defers an accept to a later turn (see tcpAccept).
 */
async function acceptQueued(
  ls: Handle,
  accept: (ls: Handle, d: Deadline) => Promise<Handle>,
): Promise<number> {
  for (let n = 0; n < 2000; n++) {
    const o = await settle(accept(ls, now() + 100));
    if (!o.ok) {
      assertFailed(o, "ETIMEDOUT", "an accept with nothing queued");
      return n;
    }
    closeQuietly(o.value);
  }
  throw new Error("the listener never ran dry");
}

const tcpAcceptHandle = async (ls: Handle, d: Deadline) => (await tcpAccept(ls, d)).handle;

/**
 * A listener whose accept queue is full (nobody accepts), so the kernel drops a new
 * SYN: a tcpConnect waits for real, as toward a host that does not answer.
 */
const tcpConnectCase: Case = {
  name: "tcpConnect",
  async open() {
    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    const addr = tcpLocalAddr(ls);
    const fillers: Deno.Conn[] = [];
    for (let i = 0; i < 2000; i++) {
      const probe = new AbortController();
      const timer = setTimeout(() => probe.abort(), 100);
      const o = await settle(
        Deno.connect({ hostname: "127.0.0.1", port: addr.port, signal: probe.signal }),
      );
      clearTimeout(timer);
      if (!o.ok) break; // the queue is full
      fillers.push(o.value);
    }
    const queued = fillers.length;
    return {
      call: (d) => tcpConnect(addr, d),
      async untouched() {
        assert.equal(await acceptQueued(ls, tcpAcceptHandle), queued, "the fillers, none of ours");
      },
      afterFailure: async () => {
        assert.equal(await acceptQueued(ls, tcpAcceptHandle), queued, "the fillers only");
        await delay(1200); // past the kernel's first SYN retry
        assert.equal(
          await acceptQueued(ls, tcpAcceptHandle),
          0,
          "the failed connect retried nothing",
        );
      },
      cleanup() {
        for (const c of fillers) c.close();
        hclose(ls);
        return Promise.resolve();
      },
    };
  },
};

/** ipcConnect cannot be made to wait on a Unix socket here: only the refusals apply. */
const ipcConnectCase: Case = {
  name: "ipcConnect",
  async open() {
    const dir = await Deno.makeTempDir({ prefix: "dill-ws-cancel-" });
    const path = `${dir}/sock`;
    const ls = ipcListen(path);
    return {
      call: (d) => ipcConnect(path, d),
      async untouched() {
        assert.equal(await acceptQueued(ls, ipcAccept), 0, "no connection was made");
      },
      afterFailure: () => Promise.resolve(),
      async cleanup() {
        hclose(ls);
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

// ---- WebSocket ----------------------------------------------------------------

type Recv = (h: Handle, d: Deadline) => Promise<unknown>;

function wsReceiveCase(name: string, recv: Recv, text = false): Case {
  return {
    name,
    async open() {
      const [s, c] = text ? await textWsPair() : await nohttpWsPair();
      return {
        call: (d) => recv(s, d),
        async untouched() {
          await wsSend(c, WS_TEXT, "kept", soon());
          assert.equal(await textOf(s, soon()), "kept");
        },
        async afterFailure() {
          await wsSend(c, WS_TEXT, "late", soon());
          assertFailed(await settle(mrecv(s, soon())), "ECONNRESET", "mrecv after");
          await msend(s, "still sends", soon());
          assert.equal(await textOf(c, soon()), "still sends");
        },
        cleanup: () => Promise.resolve(closeAll(s, c)),
      };
    },
  };
}

/** A pair of text sockets over a pipe, without the HTTP handshake. */
async function textWsPair(): Promise<[Handle, Handle]> {
  const [a, b] = ipcPair();
  const [{ handle: s }, { handle: c }] = await Promise.all([
    wsAttachServer(a, WS_NOHTTP | WS_TEXT, soon()),
    wsAttachClient(b, WS_NOHTTP | WS_TEXT, "", "", soon()),
  ]);
  return [s, c];
}

/** A client whose server does not read: a 4 MiB message waits for room. */
async function stalledWsPair(): Promise<[Handle, Handle]> {
  const [a, b] = ipcPair({ pipeCapacity: 1024, writeHighWater: 1024 });
  const [{ handle: s }, { handle: c }] = await Promise.all([
    wsAttachServer(a, WS_NOHTTP, soon(), { maxBufferedBytes: 1024 }),
    wsAttachClient(b, WS_NOHTTP, "", "", soon()),
  ]);
  await msend(c, new Uint8Array(1024), soon()); // one queued message pauses the server's reading
  return [s, c];
}

function wsSendCase(
  name: string,
  send: (h: Handle, big: Uint8Array, d: Deadline) => Promise<void>,
): Case {
  return {
    name,
    async open() {
      const [s, c] = await stalledWsPair();
      const big = new Uint8Array(4 * 1024 * 1024);
      return {
        call: (d) => send(c, big, d),
        async untouched() {
          await msend(c, "after", soon());
          assert.equal((await mrecv(s, soon())).length, 1024);
          assert.equal(await textOf(s, soon()), "after", "the failed sends sent nothing");
        },
        async afterFailure() {
          assertFailed(await settle(msend(c, "x", soon())), "ECONNRESET", "msend after");
        },
        cleanup: () => Promise.resolve(closeAll(s, c)),
      };
    },
  };
}

/** wsDone behind a send still waiting for room: the close frame waits too. */
const wsDoneCase: Case = {
  name: "wsDone",
  async open() {
    const [s, c] = await stalledWsPair();
    const ahead = settle(msend(c, new Uint8Array(64 * 1024), -1));
    return {
      call: (d) => wsDone(c, 1000, "bye", d),
      async untouched() {
        assert.equal((await mrecv(s, soon())).length, 1024);
        assert.equal((await mrecv(s, soon())).length, 64 * 1024);
        assertOk(await ahead, "the send ahead");
        await msend(c, "no close was sent", soon());
        assert.equal(await textOf(s, soon()), "no close was sent");
      },
      async afterFailure() {
        assert.equal((await mrecv(s, soon())).length, 1024);
        assert.equal((await mrecv(s, soon())).length, 64 * 1024);
        assertOk(await ahead, "the send ahead of the failed wsDone still went");
        // A failed wsDone is a failed send (libdill's rule), not a close that went: its
        // frame waited for room behind the send ahead, and was dropped with the call.
        for (
          const [what, p] of [
            ["msend", () => msend(c, "x", soon())],
            ["wsDone", () => wsDone(c, 1000, "", soon())],
          ] as const
        ) {
          const e = assertFailed(await settle(p()), "ECONNRESET", `${what} after a failed wsDone`);
          assert.match(e.message, /earlier send failed \((ECANCELED|ETIMEDOUT)\)/);
        }
      },
      cleanup: () => Promise.resolve(closeAll(s, c)),
    };
  },
};

/** wsDetach waits for the peer's close frame; the stack is closed when it fails. */
const wsDetachCase: Case = {
  name: "wsDetach",
  async open() {
    // The server (s) answers a close frame only when its application calls wsDone.
    const [s, c] = await nohttpWsPair({ halfCloseTimeout: 60_000 });
    return {
      call: (d) => wsDetach(c, 1000, "", d),
      async untouched() {
        await msend(s, "open", soon()); // no close frame went out
        assert.equal(await textOf(c, soon()), "open");
        await msend(c, "both ways", soon());
        assert.equal(await textOf(s, soon()), "both ways");
      },
      async afterFailure() {
        assertClosed(await settle(msend(c, "x", soon())), "msend after a failed wsDetach");
        const o = await settle(mrecv(s, soon()));
        assert.ok(!o.ok, "the peer sees the end");
      },
      cleanup: () => Promise.resolve(closeAll(s, c)),
    };
  },
};

/** An attach whose peer says nothing: it waits for the request (server) or the 101 (client). */
function wsAttachCase(side: "server" | "client"): Case {
  return {
    name: side === "server" ? "wsAttachServer" : "wsAttachClient",
    open() {
      const [a, b] = ipcPair();
      return Promise.resolve({
        call: (d) =>
          side === "server"
            ? wsAttachServer(a, WS_BINARY, d)
            : wsAttachClient(a, WS_BINARY, "/", "localhost", d),
        async untouched() {
          await bsend(a, bytes(1), soon()); // still the raw stream, not taken over
          await expectBytes(b, [1]); // and nothing (no request, no answer) went before it
        },
        async afterFailure() {
          assertClosed(await settle(bsend(a, bytes(1), soon())), "bsend after a failed attach");
          await drainToEnd(b, "peer of a failed attach");
        },
        cleanup: () => Promise.resolve(closeAll(a, b)),
      });
    },
  };
}

/** Reads until the stream ends (a client's request may be there first). */
async function drainToEnd(h: Handle, what: string): Promise<void> {
  for (let i = 0; i < 8192; i++) {
    const o = await settle(brecv(h, new Uint8Array(1), soon()));
    if (o.ok) continue;
    const code = (o.error as { code?: string }).code;
    assert.ok(code === "EPIPE" || code === "ECONNRESET", `${what}: got ${code}`);
    return;
  }
  assert.fail(`${what}: the stream did not end`);
}

// ---- TLS --------------------------------------------------------------------

function tlsAttachCase(side: "server" | "client"): Case {
  return {
    name: side === "server" ? "tlsAttachServer" : "tlsAttachClient",
    async open() {
      const pair = await openPair("tcp");
      const { a, b } = pair;
      return {
        call: (d) =>
          side === "server" ? tlsAttachServer(a, SERVER, d) : tlsAttachClient(a, CLIENT, d),
        async untouched() {
          await bsend(a, bytes(1), soon());
          await expectBytes(b, [1]);
        },
        async afterFailure() {
          assertClosed(await settle(bsend(a, bytes(1), soon())), "bsend after a failed attach");
          await drainToEnd(b, "peer of a failed TLS attach");
        },
        cleanup: () => pair.cleanup(),
      };
    },
  };
}

async function tlsPair(): Promise<{ s: Handle; c: Handle; cleanup: () => Promise<void> }> {
  const pair = await openPair("tcp");
  const [s, c] = await Promise.all([
    tlsAttachServer(pair.a, SERVER, soon()),
    tlsAttachClient(pair.b, CLIENT, soon()),
  ]);
  return { s, c, cleanup: () => Promise.resolve(closeAll(s, c)) };
}

const tlsDetachCase: Case = {
  name: "tlsDetach",
  async open() {
    const { s, c, cleanup } = await tlsPair();
    return {
      call: (d) => tlsDetach(s, d), // waits for the client's close_notify
      async untouched() {
        await bsend(s, bytes(6), soon());
        await expectBytes(c, [6]);
      },
      async afterFailure() {
        assertClosed(await settle(bsend(s, bytes(1), soon())), "bsend after a failed tlsDetach");
      },
      cleanup,
    };
  },
};

/** tlsDone does not wait here (the close_notify has room): only the refusals are checked. */
const tlsDoneCase: Case = {
  name: "tlsDone",
  async open() {
    const { s, c, cleanup } = await tlsPair();
    return {
      call: (d) => tlsDone(s, d),
      async untouched() {
        await bsend(s, bytes(6), soon()); // no close_notify went out
        await expectBytes(c, [6]);
      },
      afterFailure: () => Promise.resolve(),
      cleanup,
    };
  },
};

const tlsAcceptCase: Case = {
  name: "tlsAccept",
  async open() {
    const ls = await tlsListen({ hostname: "127.0.0.1", port: 0 }, SERVER);
    const accepts = async () => {
      const connecting = tcpConnect(tcpLocalAddr(ls), soon()).then((tcp) =>
        tlsAttachClient(tcp, CLIENT, soon())
      );
      const [acc, c] = await Promise.all([tlsAccept(ls, soon()), connecting]);
      await bsend(c, bytes(1), soon());
      await expectBytes(acc.handle, [1]);
      closeAll(acc.handle, c);
    };
    return {
      call: (d) => tlsAccept(ls, d),
      untouched: accepts,
      afterFailure: accepts,
      cleanup: () => Promise.resolve(hclose(ls)),
    };
  },
};

// ---- iteration and wsUpgrade ----------------------------------------------------

const messagesCase: Case = {
  name: "messages",
  async open() {
    const [s, c] = await nohttpWsPair();
    return {
      // deno-lint-ignore no-explicit-any
      call: (d) => messages(s, (typeof d === "number" ? { deadline: d } : d) as any).next(),
      async untouched() {
        await msend(c, "kept", soon());
        const it = messages(s, { deadline: soon() });
        assert.deepEqual((await it.next()).value?.data, new TextEncoder().encode("kept"));
        await it.return();
      },
      async afterFailure() {
        await msend(c, "late", soon());
        assertFailed(await settle(mrecv(s, soon())), "ECONNRESET", "mrecv after");
      },
      cleanup: () => Promise.resolve(closeAll(s, c)),
    };
  },
};

function upgradeCase(name: string, recv: Recv): Case {
  return {
    name,
    async open() {
      const server = upgradeServer(WS_TEXT);
      const client = connectClient(server.port);
      const h = await server.next();
      await client.opened;
      const nextText = () => client.next();
      return {
        call: (d) => recv(h, d),
        async untouched() {
          client.ws.send("kept");
          assert.equal(await textOf(h, soon()), "kept");
          await msend(h, "back", soon());
          assert.equal(await nextText(), "back");
        },
        async afterFailure() {
          client.ws.send("late");
          assertFailed(await settle(mrecv(h, soon())), "ECONNRESET", "mrecv after");
          await msend(h, "still sends", soon());
          assert.equal(await nextText(), "still sends");
        },
        async cleanup() {
          closeQuietly(h);
          client.ws.close();
          await client.closed;
          await server.shutdown();
        },
      };
    },
  };
}

/** A wsUpgrade socket whose raw client does not read: a 32 MiB send waits for it. */
function upgradeSendCase(
  name: string,
  send: (h: Handle, big: Uint8Array, d: Deadline) => Promise<void>,
): Case {
  return {
    name,
    async open() {
      const server = upgradeServer(WS_BINARY, { sendHighWater: 64 * 1024 });
      const client = await rawClient(server.port);
      const h = await server.next();
      const big = new Uint8Array(32 * 1024 * 1024);
      return {
        call: (d) => send(h, big, d),
        async untouched() {
          await msend(h, bytes(4), soon());
          const f = await client.reader().readFrame(soon());
          assert.deepEqual([...f.payload], [4], "the failed sends sent nothing");
        },
        async afterFailure() {
          const o = await settle(msend(h, bytes(1), soon()));
          assert.ok(!o.ok, "a send after the failed one fails");
        },
        async cleanup() {
          closeQuietly(h);
          await client.close();
          await server.shutdown();
        },
      };
    },
  };
}

/**
 * wsDone on a wsUpgrade socket behind a send its raw client does not read. It never
 * waits there (the close frame is queued behind that send): only the refusals apply.
 */
const upgradeDoneCase: Case = {
  name: "wsUpgrade wsDone",
  async open() {
    const server = upgradeServer(WS_BINARY, { sendHighWater: 64 * 1024 });
    const client = await rawClient(server.port);
    const h = await server.next();
    const big = new Uint8Array(32 * 1024 * 1024).fill(7);
    const ahead = settle(msend(h, big, -1));
    await delay(20); // it waits: the client reads nothing
    return {
      call: (d) => wsDone(h, 1000, "bye", d),
      async untouched() {
        const small = settle(msend(h, bytes(4), soon())); // still open: no close went out
        const peer = client.reader();
        assert.equal((await peer.readFrame(soon())).payload.length, big.length);
        assertOk(await ahead, "the send ahead");
        assert.deepEqual([...(await peer.readFrame(soon())).payload], [4]);
        assertOk(await small, "a send after the refused wsDone calls");
      },
      async afterFailure() {
        const o = await settle(msend(h, bytes(1), soon()));
        assert.ok(!o.ok, "a send after the failed wsDone fails");
      },
      async cleanup() {
        closeQuietly(h);
        await settle(ahead);
        await client.close();
        await server.shutdown();
      },
    };
  },
};

// ---- the table ------------------------------------------------------------------

const CASES: Case[] = [
  ...KINDS.map((k) => receiveCase("brecv", k, false)),
  ...KINDS.map((k) => receiveCase("brecvl", k, true)),
  sendCase("bsend", false),
  sendCase("bsendl", true),
  cleanCloseCase("tcp"),
  cleanCloseCase("unix"),
  halfCloseCase("ipcDone", ipcDone),
  tcpAcceptCase,
  ipcAcceptCase,
  tcpConnectCase,
  wsReceiveCase("mrecv", (h, d) => mrecv(h, d)),
  wsReceiveCase("mrecv(buf)", (h, d) => mrecv(h, new Uint8Array(16), d)),
  wsReceiveCase("mrecvl", (h, d) => mrecvl(h, [new Uint8Array(16)], d)),
  wsReceiveCase("wsRecv", (h, d) => wsRecv(h, d)),
  wsReceiveCase("wsRecvl", (h, d) => wsRecvl(h, [new Uint8Array(16)], d)),
  wsReceiveCase("mrecvText", (h, d) => mrecvText(h, d), true),
  wsSendCase("msend", (h, big, d) => msend(h, big, d)),
  wsSendCase("msendl", (h, big, d) => msendl(h, [bytes(1), big], d)),
  wsSendCase("wsSend", (h, big, d) => wsSend(h, WS_BINARY, big, d)),
  wsSendCase("wsSendl", (h, big, d) => wsSendl(h, WS_BINARY, [big], d)),
  wsDoneCase,
  wsDetachCase,
  wsAttachCase("server"),
  wsAttachCase("client"),
  tlsAttachCase("server"),
  tlsAttachCase("client"),
  tlsDetachCase,
  tlsAcceptCase,
  messagesCase,
  upgradeCase("wsUpgrade mrecv", (h, d) => mrecv(h, d)),
  upgradeCase("wsUpgrade wsRecv", (h, d) => wsRecv(h, d)),
  upgradeSendCase("wsUpgrade msend", (h, big, d) => msend(h, big, d)),
  upgradeSendCase("wsUpgrade wsSendl", (h, big, d) => wsSendl(h, WS_BINARY, [bytes(1), big], d)),
];

/** Calls that cannot be made to wait in a scene of their own: only the refusals apply. */
const REFUSAL_ONLY: Case[] = [tlsDoneCase, tcpDoneCase, ipcConnectCase, upgradeDoneCase];

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
