/**
 * Cancellation scenes of the bytestream calls (over pipe, TCP, Unix socket), the
 * listeners and connects, and TLS: see tests/attack_cancellation.test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  brecv,
  brecvl,
  bsend,
  bsendl,
  type Deadline,
  type Handle,
  hclose,
  ipcAccept,
  ipcClose,
  ipcConnect,
  ipcListen,
  ipcPair,
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
} from "../../mod.ts";
import { assertFailed, assertOk, settle } from "./outcome.ts";
import { CLIENT, SERVER } from "./tls_fixtures.ts";
import { closeQuietly, delay, type Kind, openPair } from "./transports.ts";

import {
  assertClosed,
  bytes,
  type Case,
  closeAll,
  drainToEnd,
  expectBytes,
  seesEnd,
  soon,
} from "./cancel_scene.ts";

// ---- bytestreams over every transport ---------------------------------------------

/** brecv/brecvl over `kind`, with nothing sent: it waits; after a failure, receiving is over. */
export function receiveCase(name: string, kind: Kind, useList: boolean): Case {
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
export function sendCase(name: string, useList: boolean): Case {
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

/** tcpClose/ipcClose: waits for the peer's FIN; the handle is closed even on failure. */
export function cleanCloseCase(kind: "tcp" | "unix"): Case {
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
export function halfCloseCase(name: string, done: (h: Handle, d: Deadline) => Promise<void>): Case {
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
export const tcpDoneCase: Case = {
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

/** tcpAccept with nobody connecting; the listener still accepts after any failure. */
export const tcpAcceptCase: Case = {
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

/** ipcAccept with nobody connecting; the listener still accepts after any failure. */
export const ipcAcceptCase: Case = {
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
export const tcpConnectCase: Case = {
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
export const ipcConnectCase: Case = {
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

// ---- TLS --------------------------------------------------------------------

/** A TLS attach whose peer says nothing; after a failure the stack is closed. */
export function tlsAttachCase(side: "server" | "client"): Case {
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

/** tlsDetach waiting for the peer's close_notify; after a failure the stack is closed. */
export const tlsDetachCase: Case = {
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
export const tlsDoneCase: Case = {
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

/** tlsAccept with nobody connecting; the listener still accepts after any failure. */
export const tlsAcceptCase: Case = {
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
