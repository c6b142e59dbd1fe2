/**
 * Cancellation scenes of the WebSocket calls (attached and wsUpgrade sockets) and of
 * `messages`: see tests/attack_cancellation.test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  bsend,
  type Deadline,
  type Handle,
  ipcPair,
  messages,
  mrecv,
  msend,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsDetach,
  wsDone,
  wsSend,
} from "../../mod.ts";
import { assertFailed, assertOk, settle } from "./outcome.ts";

import { closeQuietly, delay, nohttpWsPair } from "./transports.ts";
import { connectClient, rawClient, upgradeServer } from "./serve.ts";
import {
  assertClosed,
  bytes,
  type Case,
  closeAll,
  drainToEnd,
  expectBytes,
  soon,
  textOf,
} from "./cancel_scene.ts";

// ---- WebSocket ----------------------------------------------------------------

type Recv = (h: Handle, d: Deadline) => Promise<unknown>;

/** A receive with nothing sent: it waits; after a failure, receiving is over. */
export function wsReceiveCase(name: string, recv: Recv, text = false): Case {
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

/** A 4 MiB send to a server that does not read; after a failure, sending is over. */
export function wsSendCase(
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
export const wsDoneCase: Case = {
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
export const wsDetachCase: Case = {
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
export function wsAttachCase(side: "server" | "client"): Case {
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

// ---- iteration and wsUpgrade ----------------------------------------------------

/**
 * `messages` and its first step with nothing sent (bad options throw at the call, as a
 * rejection here); after a failure, receiving is over.
 */
export const messagesCase: Case = {
  name: "messages",
  async open() {
    const [s, c] = await nohttpWsPair();
    return {
      call: (d) => {
        try {
          // deno-lint-ignore no-explicit-any
          return messages(s, (typeof d === "number" ? { deadline: d } : d) as any).next();
        } catch (e) {
          return Promise.reject(e);
        }
      },
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

/** A receive on a wsUpgrade socket whose client sends nothing. */
export function upgradeCase(name: string, recv: Recv): Case {
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
export function upgradeSendCase(
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
export const upgradeDoneCase: Case = {
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
