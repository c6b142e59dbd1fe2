/**
 * The WebSocket API contract (actors/ws.ts) between our own server and client over
 * `ipcPair()`, with `WS_NOHTTP` and with the HTTP handshake: socket types, buffers,
 * scatter/gather, wsDone/wsDetach/wsStatus, handle ownership, deadlines, hclose while
 * pending, concurrent senders. Then, against a raw peer: flow control for a slow
 * reader, keepalive pings and the idle timeout.
 */

import assert from "node:assert/strict";
import {
  brecv,
  brecvl,
  bsend,
  bsendl,
  type Handle,
  hclose,
  ipcPair,
  mrecv,
  mrecvl,
  mrecvText,
  msend,
  msendl,
  now,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  type WsClientOptions,
  wsDetach,
  wsDone,
  wsRecv,
  wsRecvl,
  wsSend,
  wsSendl,
  type WsServerOptions,
  wsStatus,
} from "../mod.ts";
import { assertFailed, assertOk, settle } from "./helpers/outcome.ts";
import { delay, settlesWithin } from "./helpers/transports.ts";
import { bytes, concat } from "./helpers/raw_peer/bytes.ts";
import { closeBody, frame, OP } from "./helpers/raw_peer/frames.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";
import { openServer, type Transport } from "./helpers/raw_peer/rig.ts";
import { pipePair } from "../actors/pipe.ts";
import { streamHandle } from "../actors/sockets.ts";
import type { Transport as StreamTransport } from "../actors/transport.ts";

const MODES = ["nohttp", "http"] as const;
type Mode = typeof MODES[number];
const T = () => now() + 2000;
const dec = new TextDecoder();

interface WsPair {
  /** Server side. */
  s: Handle;
  /** Client side. */
  c: Handle;
  /** The bytestream handles underneath, taken over by the attach calls. */
  lower: [Handle, Handle];
  close(): void;
}

function closeQuietly(h: Handle): void {
  try {
    hclose(h);
  } catch {
    // already closed or detached
  }
}

/** Our server and our client, connected over an in-memory pipe. */
async function wsPair(
  mode: Mode,
  flags: { s?: number; c?: number } = {},
  options: { s?: WsServerOptions; c?: WsClientOptions } = {},
): Promise<WsPair> {
  const [a, b] = ipcPair();
  const extra = mode === "nohttp" ? WS_NOHTTP : 0;
  const [server, client] = await Promise.all([
    wsAttachServer(a, (flags.s ?? 0) | extra, T(), options.s),
    wsAttachClient(b, (flags.c ?? 0) | extra, "/api", "localhost", T(), options.c),
  ]);
  if (mode === "http") assert.equal(server.resource, "/api");
  const s = server.handle;
  const c = client.handle;
  return {
    s,
    c,
    lower: [a, b],
    close() {
      closeQuietly(s);
      closeQuietly(c);
    },
  };
}

/** Runs `body` on a fresh pair and always closes it. */
async function withWs(
  mode: Mode,
  body: (p: WsPair) => Promise<void>,
  flags: { s?: number; c?: number } = {},
  options: { s?: WsServerOptions; c?: WsClientOptions } = {},
): Promise<void> {
  const p = await wsPair(mode, flags, options);
  try {
    await body(p);
  } finally {
    p.close();
  }
}

/** wsStatus is synchronous: its outcome as a promise, for {@link fails}. */
function statusOf(h: Handle): Promise<{ status: number; reason: string }> {
  try {
    return Promise.resolve(wsStatus(h));
  } catch (e) {
    return Promise.reject(e);
  }
}

async function fails(p: Promise<unknown>, code: Parameters<typeof assertFailed>[1], what: string) {
  return assertFailed(await settle(p), code, what);
}

for (const mode of MODES) {
  const name = (s: string) => `ws api/${mode}: ${s}`;

  // ---- socket types ------------------------------------------------------------------

  Deno.test(name("msend on a WS_TEXT socket sends text; on WS_BINARY, binary"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await msend(s, "héllo", T());
      assert.deepEqual(await wsRecv(c, T()), { type: WS_TEXT, data: "héllo" });
      await msend(c, new Uint8Array([1, 2]), T());
      assert.deepEqual(await wsRecv(s, T()), { type: WS_BINARY, data: new Uint8Array([1, 2]) });
      await msend(c, "as bytes", T()); // a string on a binary socket is sent as binary
      assert.deepEqual(await wsRecv(s, T()), { type: WS_BINARY, data: bytes("as bytes") });
    }, { s: WS_TEXT, c: WS_BINARY });
  });

  Deno.test(name("mrecv of a text message on a binary socket → EPROTO"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await wsSend(s, WS_TEXT, "text", T());
      await fails(mrecv(c, T()), "EPROTO", "mrecv");
    });
  });

  Deno.test(name("mrecv of a binary message on a text socket → EPROTO"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await wsSend(s, WS_BINARY, new Uint8Array([1]), T());
      await fails(mrecv(c, new Uint8Array(8), T()), "EPROTO", "mrecv");
    }, { s: WS_TEXT, c: WS_TEXT });
  });

  Deno.test(
    name("a type mismatch consumes the message and leaves the socket usable (libdill ws.c)"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await wsSend(s, WS_TEXT, "text", T());
        await wsSend(s, WS_BINARY, new Uint8Array([7]), T());
        await fails(mrecv(c, T()), "EPROTO", "mrecv of text on a binary socket");
        assert.deepEqual(await mrecv(c, T()), new Uint8Array([7])); // the next one, not "text"
      });
    },
  );

  Deno.test(
    name("a buffer too small → EMSGSIZE; the message is consumed, the socket stays usable"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await msend(s, new Uint8Array(10), T());
        await msend(s, new Uint8Array([1, 2]), T());
        await fails(mrecv(c, new Uint8Array(4), T()), "EMSGSIZE", "mrecv into 4 bytes");
        const buf = new Uint8Array(4);
        assert.equal(await mrecvl(c, [buf], T()), 2);
        assert.deepEqual(buf.subarray(0, 2), new Uint8Array([1, 2]));
      });
    },
  );

  Deno.test(
    name("mrecvl/wsRecvl with no buffers drop the message and return its size"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await msend(s, new Uint8Array(5), T());
        await wsSend(s, WS_TEXT, "abc", T());
        await msend(s, new Uint8Array([9]), T());
        assert.equal(await mrecvl(c, [], T()), 5);
        assert.deepEqual(await wsRecvl(c, [], T()), { type: WS_TEXT, size: 3 });
        assert.deepEqual(await mrecv(c, T()), new Uint8Array([9]));
      });
    },
  );

  Deno.test(name("wsStatus is synchronous: a value, or a thrown EAGAIN"), async () => {
    await withWs(mode, async ({ s, c }) => {
      assert.throws(() => wsStatus(s), { code: "EAGAIN" });
      await wsDone(c, 4000, "sync", T());
      await fails(mrecv(s, T()), "EPIPE", "mrecv after the close");
      const status = wsStatus(s);
      assert.ok(!(status instanceof Promise));
      assert.deepEqual(status, { status: 4000, reason: "sync" });
    });
  });

  Deno.test(
    name("wsDetach with deadline 0 while reading is paused and the peer's close is there"),
    async () => {
      await withWs(
        mode,
        async ({ s, c }) => {
          // The app does not read: after the first message we stop reading, so the rest
          // and the peer's close wait in the pipe, already arrived.
          for (let i = 0; i < 3; i++) await msend(c, new Uint8Array(20_000), T());
          await wsDone(c, 1000, "", T());
          await new Promise((resolve) => setTimeout(resolve, 50));
          const raw = await wsDetach(s, 1000, "", 0);
          hclose(raw);
        },
        {},
        { s: { maxBufferedBytes: 1 } },
      );
    },
  );

  Deno.test(
    name("default: the peer's close is answered at once; sending after it → EPIPE"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await wsDone(c, 4000, "", T());
        await fails(mrecv(s, T()), "EPIPE", "mrecv after the close");
        await fails(msend(s, "late", T()), "EPIPE", "msend after the peer's close");
        await fails(mrecv(c, T()), "EPIPE", "the client got our echo");
        assert.deepEqual(wsStatus(c), { status: 4000, reason: "" });
      });
    },
  );

  Deno.test(
    name("halfCloseTimeout: libdill's half-close, the peer's wsDone leaves our sending half open"),
    async () => {
      await withWs(
        mode,
        async ({ s, c }) => {
          await wsDone(c, 1000, "bye", T());
          await fails(mrecv(s, T()), "EPIPE", "mrecv after the close");
          await msend(s, "still talking", T()); // our sending half is still open
          assert.equal(dec.decode(await mrecv(c, T())), "still talking");
          await wsDone(s, 4001, "done", T()); // our reply to the peer's close
          await fails(mrecv(c, T()), "EPIPE", "mrecv after our close");
          assert.deepEqual(wsStatus(c), { status: 4001, reason: "done" });
          assert.deepEqual(wsStatus(s), { status: 1000, reason: "bye" });
        },
        {},
        { s: { halfCloseTimeout: 5000 } },
      );
    },
  );

  Deno.test(
    name("halfCloseTimeout: an application that never calls wsDone still answers in time"),
    async () => {
      await withWs(
        mode,
        async ({ c }) => {
          const t0 = now();
          await wsDone(c, 4002, "", T());
          await fails(mrecv(c, T()), "EPIPE", "the peer waits for our close");
          const waited = now() - t0;
          assert.ok(waited >= 150 && waited < 1500, `our close came after ${waited} ms`);
          assert.deepEqual(wsStatus(c), { status: 4002, reason: "" }); // the echo
        },
        {},
        { s: { halfCloseTimeout: 200 } },
      );
    },
  );

  Deno.test(name("wsDetach with deadline 0 after the peer's close arrived succeeds"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await wsDone(c, 1000, "", T());
      await fails(mrecv(s, T()), "EPIPE", "mrecv after the close");
      const raw = await wsDetach(s, 1000, "", 0);
      hclose(raw);
    });
  });

  Deno.test(name("mrecvText on a text socket; EPROTO on a binary one"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await msend(s, "ünïcode", T());
      assert.equal(await mrecvText(c, T()), "ünïcode");
    }, { s: WS_TEXT, c: WS_TEXT });
    await withWs(mode, async ({ s, c }) => {
      await msend(s, new Uint8Array([1]), T());
      await fails(mrecvText(c, T()), "EPROTO", "mrecvText");
    });
  });

  Deno.test(name("wsSend/wsRecv mix types on one socket"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await wsSend(c, WS_TEXT, "one", T());
      await wsSend(c, WS_BINARY, new Uint8Array([2]), T());
      await wsSend(c, WS_TEXT, bytes("three"), T());
      await wsSend(c, WS_BINARY, "four", T());
      assert.deepEqual(await wsRecv(s, T()), { type: WS_TEXT, data: "one" });
      assert.deepEqual(await wsRecv(s, T()), { type: WS_BINARY, data: new Uint8Array([2]) });
      const buf = new Uint8Array(16);
      assert.deepEqual(await wsRecv(s, buf, T()), { size: 5, type: WS_TEXT });
      assert.equal(dec.decode(buf.subarray(0, 5)), "three");
      assert.deepEqual(await wsRecv(s, T()), { type: WS_BINARY, data: bytes("four") });
    });
  });

  Deno.test(name("wsSend of invalid UTF-8 as text → EINVAL; bad flags → EINVAL"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await fails(wsSend(c, WS_TEXT, new Uint8Array([0xff]), T()), "EINVAL", "wsSend");
      await fails(wsSend(c, 7, "x", T()), "EINVAL", "wsSend flags");
      await msend(c, new Uint8Array([1]), T()); // the socket still works
      assert.deepEqual(await mrecv(s, T()), new Uint8Array([1]));
    });
  });

  Deno.test(name("msend, msendl and wsSendl of invalid UTF-8 as text → EINVAL too"), async () => {
    await withWs(mode, async ({ s, c }) => {
      const bad = new Uint8Array([0x61, 0xff]);
      await fails(msend(c, bad, T()), "EINVAL", "msend on a text socket");
      await fails(msendl(c, [bad.subarray(0, 1), bad.subarray(1)], T()), "EINVAL", "msendl");
      await fails(wsSendl(c, WS_TEXT, [bad], T()), "EINVAL", "wsSendl");
      await msend(c, bytes("ok"), T()); // nothing invalid went out; the socket still works
      assert.equal(await mrecvText(s, T()), "ok");
    }, { s: WS_TEXT, c: WS_TEXT });
  });

  // ---- buffers and scatter/gather ----------------------------------------------------

  Deno.test(
    name("mrecv into a buffer: exact fit, room to spare, too small → EMSGSIZE"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await msend(c, new Uint8Array([1, 2, 3]), T());
        await msend(c, new Uint8Array([4, 5]), T());
        await msend(c, new Uint8Array(100), T());
        const exact = new Uint8Array(3);
        assert.equal(await mrecv(s, exact, T()), 3);
        assert.deepEqual(exact, new Uint8Array([1, 2, 3]));
        const roomy = new Uint8Array(10).fill(9);
        assert.equal(await mrecv(s, roomy, T()), 2);
        assert.deepEqual(roomy.subarray(0, 3), new Uint8Array([4, 5, 9]));
        await fails(mrecv(s, new Uint8Array(99), T()), "EMSGSIZE", "mrecv");
      });
    },
  );

  Deno.test(name("msendl/mrecvl and wsSendl/wsRecvl gather and scatter one message"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await msendl(c, [new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3, 4, 5])], T());
      const parts = [new Uint8Array(1), new Uint8Array(0), new Uint8Array(3), new Uint8Array(4)];
      assert.equal(await mrecvl(s, parts, T()), 5);
      assert.deepEqual(parts.map((p) => [...p]), [[1], [], [2, 3, 4], [5, 0, 0, 0]]);

      await wsSendl(c, WS_TEXT, [bytes("he"), bytes("llo")], T());
      await wsSendl(c, WS_BINARY, [new Uint8Array([7]), new Uint8Array([8])], T());
      const t = [new Uint8Array(2), new Uint8Array(8)];
      assert.deepEqual(await wsRecvl(s, t, T()), { size: 5, type: WS_TEXT });
      assert.equal(dec.decode(t[0]) + dec.decode(t[1].subarray(0, 3)), "hello");
      const b = [new Uint8Array(1), new Uint8Array(1)];
      assert.deepEqual(await wsRecvl(s, b, T()), { size: 2, type: WS_BINARY });
      assert.deepEqual(b, [new Uint8Array([7]), new Uint8Array([8])]);

      await msendl(c, [new Uint8Array(4)], T());
      await fails(mrecvl(s, [new Uint8Array(1), new Uint8Array(2)], T()), "EMSGSIZE", "mrecvl");
    });
  });

  Deno.test(name("an empty message goes through"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await msend(c, new Uint8Array(0), T());
      assert.equal(await mrecv(s, new Uint8Array(0), T()), 0);
      await wsSend(c, WS_TEXT, "", T());
      assert.deepEqual(await wsRecv(s, T()), { type: WS_TEXT, data: "" });
    });
  });

  // ---- wsDone, wsStatus, wsDetach ----------------------------------------------------

  Deno.test(name("wsStatus before the peer closed → EAGAIN"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await fails(statusOf(s), "EAGAIN", "wsStatus server");
      await fails(statusOf(c), "EAGAIN", "wsStatus client");
    });
  });

  Deno.test(
    name("wsDone: later sends EPIPE; the peer gets everything, then EPIPE and the status"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await msend(c, new Uint8Array([1]), T());
        await msend(c, new Uint8Array([2]), T());
        await wsDone(c, 1000, "bye", T());
        await fails(msend(c, new Uint8Array([3]), T()), "EPIPE", "msend after wsDone");
        await fails(wsSend(c, WS_TEXT, "x", T()), "EPIPE", "wsSend after wsDone");
        await fails(wsDone(c, 1000, "", T()), "EPIPE", "wsDone twice");
        assert.deepEqual(await mrecv(s, T()), new Uint8Array([1]));
        assert.deepEqual(await mrecv(s, T()), new Uint8Array([2]));
        await fails(mrecv(s, T()), "EPIPE", "peer mrecv after close");
        await fails(mrecv(s, T()), "EPIPE", "peer mrecv again");
        assert.deepEqual(await wsStatus(s), { status: 1000, reason: "bye" });
        // The server echoed; the client sees its status too.
        await fails(mrecv(c, T()), "EPIPE", "mrecv on the closing side");
        assert.deepEqual(await wsStatus(c), { status: 1000, reason: "" });
      });
    },
  );

  Deno.test(name("wsDone with status 0 sends no status (peer sees 1005)"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await wsDone(s, 0, "", T());
      await fails(mrecv(c, T()), "EPIPE", "mrecv");
      assert.deepEqual(await wsStatus(c), { status: 1005, reason: "" });
    });
  });

  const BAD_DONE: [number, string, string][] = [
    [1005, "", "status 1005"],
    [1006, "", "status 1006"],
    [1015, "", "status 1015"],
    [999, "", "status 999"],
    [5000, "", "status 5000"],
    [2000, "", "status 2000"],
    [1000.5, "", "status 1000.5"],
    [1000, "x".repeat(124), "reason of 124 bytes"],
    [1000, "é".repeat(62), "reason of 124 bytes in 62 characters"],
    [0, "why", "reason with status 0"],
    [1000, "\ud800", "reason with a lone surrogate"],
  ];
  Deno.test(
    name("wsDone and wsDetach with an invalid status or reason → EINVAL; the socket still works"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        for (const [status, reason, what] of BAD_DONE) {
          await fails(wsDone(c, status, reason, T()), "EINVAL", `wsDone(${what})`);
          // As libdill's ws_detach: a bad argument is refused before anything is sent.
          await fails(wsDetach(c, status, reason, T()), "EINVAL", `wsDetach(${what})`);
        }
        await msend(c, new Uint8Array([1]), T());
        assert.deepEqual(await mrecv(s, T()), new Uint8Array([1]));
        await wsDone(c, 1000, "x".repeat(123), T()); // the longest reason is fine
        await fails(mrecv(s, T()), "EPIPE", "mrecv");
        assert.deepEqual(await wsStatus(s), { status: 1000, reason: "x".repeat(123) });
      });
    },
  );

  Deno.test(name("wsDetach on both sides hands back working bytestreams"), async () => {
    const p = await wsPair(mode);
    let rawS: Handle | null = null;
    let rawC: Handle | null = null;
    try {
      await msend(p.c, new Uint8Array([1]), T()); // dropped by the server's detach
      [rawS, rawC] = await Promise.all([
        wsDetach(p.s, 1000, "", T()),
        wsDetach(p.c, 1001, "", T()),
      ]);
      await fails(mrecv(p.s, T()), "EBADF", "the detached ws handle");
      await bsend(rawC, bytes("raw from client"), T());
      assert.equal(dec.decode(await brecv(rawS, new Uint8Array(15), T())), "raw from client");
      await bsendl(rawS, [bytes("raw "), bytes("back")], T());
      const back = [new Uint8Array(3), new Uint8Array(5)];
      await brecvl(rawC, back, T());
      assert.equal(dec.decode(back[0]) + dec.decode(back[1]), "raw back");
    } finally {
      p.close();
      if (rawS) closeQuietly(rawS);
      if (rawC) closeQuietly(rawC);
    }
  });

  Deno.test(
    name("libdill's detach pattern: server detaches, client sees EPIPE, then detaches"),
    async () => {
      const p = await wsPair(mode);
      let rawS: Handle | null = null;
      let rawC: Handle | null = null;
      try {
        await msend(p.c, bytes("ABC"), T());
        assert.deepEqual(await mrecv(p.s, T()), bytes("ABC"));
        await msend(p.s, bytes("DEF"), T());
        const serverDetach = settle(wsDetach(p.s, 1000, "OK", T()));
        assert.deepEqual(await mrecv(p.c, T()), bytes("DEF"));
        await fails(mrecv(p.c, T()), "EPIPE", "client mrecv");
        assert.deepEqual(await wsStatus(p.c), { status: 1000, reason: "OK" });
        rawC = await wsDetach(p.c, 0, "", T());
        rawS = assertOk(await serverDetach, "server wsDetach");
        await bsend(rawS, bytes("s>c"), T());
        assert.equal(dec.decode(await brecv(rawC, new Uint8Array(3), T())), "s>c");
        await bsend(rawC, bytes("c>s"), T());
        assert.equal(dec.decode(await brecv(rawS, new Uint8Array(3), T())), "c>s");
      } finally {
        p.close();
        if (rawS) closeQuietly(rawS);
        if (rawC) closeQuietly(rawC);
      }
    },
  );

  Deno.test({
    name: name(
      "libdill's detach pattern reversed: client detaches, server sees EPIPE, then detaches",
    ),
    fn: async () => {
      const p = await wsPair(mode);
      let rawS: Handle | null = null;
      let rawC: Handle | null = null;
      try {
        await msend(p.s, bytes("ABC"), T());
        assert.deepEqual(await mrecv(p.c, T()), bytes("ABC"));
        await msend(p.c, bytes("DEF"), T());
        const clientDetach = settle(wsDetach(p.c, 1000, "OK", T()));
        assert.deepEqual(await mrecv(p.s, T()), bytes("DEF"));
        await fails(mrecv(p.s, T()), "EPIPE", "server mrecv");
        rawS = await wsDetach(p.s, 0, "", T());
        rawC = assertOk(await clientDetach, "client wsDetach");
        await bsend(rawC, bytes("c>s"), T());
        assert.equal(dec.decode(await brecv(rawS, new Uint8Array(3), T())), "c>s");
        await bsend(rawS, bytes("s>c"), T());
        assert.equal(dec.decode(await brecv(rawC, new Uint8Array(3), T())), "s>c");
      } finally {
        p.close();
        if (rawS) closeQuietly(rawS);
        if (rawC) closeQuietly(rawC);
      }
    },
  });

  // ---- handles -------------------------------------------------------------------------

  Deno.test(name("the bytestream handle is taken over by attach → EBADF"), async () => {
    await withWs(mode, async ({ lower: [a, b] }) => {
      for (const h of [a, b]) {
        await fails(bsend(h, new Uint8Array(1), T()), "EBADF", "bsend on the old handle");
        await fails(brecv(h, new Uint8Array(1), T()), "EBADF", "brecv on the old handle");
        await fails(wsAttachServer(h, 0, T()), "EBADF", "attaching the old handle again");
        assert.throws(() => hclose(h), (e: { code?: string }) => e.code === "EBADF");
      }
    });
  });

  Deno.test(name("bytestream calls on a ws handle → ENOTSUP, and the reverse"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await fails(bsend(s, new Uint8Array(1), T()), "ENOTSUP", "bsend");
      await fails(brecv(s, new Uint8Array(1), T()), "ENOTSUP", "brecv");
      await fails(bsendl(c, [new Uint8Array(1)], T()), "ENOTSUP", "bsendl");
      await fails(brecvl(c, [new Uint8Array(1)], T()), "ENOTSUP", "brecvl");
      await fails(wsAttachServer(s, 0, T()), "ENOTSUP", "wsAttachServer on a ws handle");
      const [x, y] = ipcPair();
      try {
        await fails(mrecv(x, T()), "ENOTSUP", "mrecv on a bytestream");
        await fails(msend(y, "m", T()), "ENOTSUP", "msend on a bytestream");
        await fails(statusOf(x), "ENOTSUP", "wsStatus on a bytestream");
      } finally {
        hclose(x);
        hclose(y);
      }
      // The ws sockets are untouched by all this.
      await msend(c, new Uint8Array([1]), T());
      assert.deepEqual(await mrecv(s, T()), new Uint8Array([1]));
    });
  });

  Deno.test(name("hclose with a pending mrecv → ECANCELED; later calls → EBADF"), async () => {
    const p = await wsPair(mode);
    try {
      const t0 = now();
      const pending = settle(mrecv(p.s, T()));
      hclose(p.s);
      assertFailed(await pending, "ECANCELED", "pending mrecv");
      assert.ok(now() - t0 < 500);
      await fails(mrecv(p.s, T()), "EBADF", "mrecv after hclose");
      await fails(msend(p.s, "x", T()), "EBADF", "msend after hclose");
      await fails(statusOf(p.s), "EBADF", "wsStatus after hclose");
      // The peer sees the connection end without a close frame.
      await fails(mrecv(p.c, T()), "ECONNRESET", "peer mrecv");
      assert.deepEqual(await wsStatus(p.c), { status: 1006, reason: "" });
    } finally {
      p.close();
    }
  });

  // ---- deadlines -----------------------------------------------------------------------

  Deno.test(
    name("mrecv deadline 0, nothing queued → ETIMEDOUT, then receiving is over"),
    async () => {
      await withWs(mode, async ({ s, c }) => {
        await fails(mrecv(s, 0), "ETIMEDOUT", "mrecv(0)");
        await msend(c, new Uint8Array([1]), T());
        // libdill: after a failed receive the socket can no longer receive.
        await fails(mrecv(s, T()), "ECONNRESET", "mrecv after the timeout");
        // Sending still works.
        await msend(s, new Uint8Array([2]), T());
        assert.deepEqual(await mrecv(c, T()), new Uint8Array([2]));
      });
    },
  );

  Deno.test(
    name("after a receive timed out, messages are dropped, not held, and pings are still answered"),
    async () => {
      // Found by an attack: the messages nobody could take filled the inbox, reading paused
      // for good, and the peer's pings went unanswered (its keepalive failed us).
      await withWs(
        mode,
        async ({ s, c }) => {
          const other = settle(mrecv(s, -1)); // a second receive waiting behind the first
          await fails(mrecv(s, now() + 20), "ETIMEDOUT", "mrecv");
          assertFailed(await other, "ECONNRESET", "the receive waiting behind it");
          for (let i = 0; i < 20; i++) await msend(c, new Uint8Array(1000).fill(i), T());
          await delay(300); // the client's keepalive pings every 20 ms, wants a pong in 100
          // The client is fine: its keepalive would have failed it (ECONNRESET) by now.
          await msend(s, new Uint8Array([7]), T());
          assert.deepEqual(await mrecv(c, T()), new Uint8Array([7]));
          await fails(mrecv(s, T()), "ECONNRESET", "mrecv after the timeout");
          // The peer's close is still seen and answered.
          await wsDone(c, 1000, "bye", T());
          await fails(mrecv(c, T()), "EPIPE", "the client's receive after the close reply");
          assert.equal(wsStatus(c).status, 1000, "the server's close reply");
        },
        {},
        {
          s: { maxQueuedMessages: 4 },
          c: { pingInterval: 20, pongTimeout: 100 },
        },
      );
    },
  );

  Deno.test(
    name("after a receive timed out, the messages dropped do not keep an idle connection open"),
    async () => {
      await withWs(
        mode,
        async ({ s, c }) => {
          await fails(mrecv(s, now() + 20), "ETIMEDOUT", "mrecv");
          // The peer goes on sending, every 20 ms, for up to 1 s: none of it is delivered.
          const t0 = now();
          let closed = false;
          while (!closed && now() - t0 < 1000) {
            closed = !(await settle(msend(c, new Uint8Array([1]), T()))).ok;
            await delay(20);
          }
          assertFailed(await settle(mrecv(c, T())), "EPIPE", "the client after the idle close");
          assert.deepEqual(wsStatus(c), { status: 1001, reason: "idle timeout" });
          assert.ok(now() - t0 < 800, `closed after ${now() - t0} ms`);
        },
        {},
        { s: { idleTimeout: 150 } },
      );
    },
  );

  Deno.test(name("mrecv deadline 0 with a message queued succeeds"), async () => {
    await withWs(mode, async ({ s, c }) => {
      await msend(c, new Uint8Array([1]), T());
      await msend(c, new Uint8Array([2]), T());
      assert.deepEqual(await mrecv(s, T()), new Uint8Array([1])); // so [2] has arrived too
      assert.deepEqual(await mrecv(s, 0), new Uint8Array([2]));
    });
  });

  Deno.test(
    name("mrecv with a short deadline fails at it, not before, not much later"),
    async () => {
      await withWs(mode, async ({ s }) => {
        const t0 = now();
        await fails(mrecv(s, now() + 100), "ETIMEDOUT", "mrecv");
        const elapsed = now() - t0;
        assert.ok(elapsed >= 95 && elapsed < 600, `failed after ${elapsed.toFixed(0)} ms`);
      });
    },
  );

  // ---- concurrency -----------------------------------------------------------------------

  Deno.test(name("50 tasks × 20 msends of distinct sizes never interleave"), async () => {
    await withWs(mode, async ({ s, c }) => {
      const TASKS = 50;
      const PER_TASK = 20;
      const message = (t: number, k: number) => {
        const size = 4 + (t * PER_TASK + k) * 37; // 4 .. ~37 KB, all distinct
        const m = new Uint8Array(size);
        m[0] = t;
        m[1] = k;
        for (let i = 2; i < size; i++) m[i] = (t * 31 + k * 7 + i) & 0xff;
        return m;
      };
      const senders = Array.from({ length: TASKS }, async (_, t) => {
        for (let k = 0; k < PER_TASK; k++) await msend(s, message(t, k), now() + 10_000);
      });
      const next = new Array<number>(TASKS).fill(0);
      for (let n = 0; n < TASKS * PER_TASK; n++) {
        const m = await mrecv(c, now() + 10_000);
        const [t, k] = m;
        assert.ok(t < TASKS, `message ${n}: bad task ${t}`);
        assert.equal(k, next[t], `task ${t}: message ${k} arrived out of order`);
        next[t]++;
        assert.deepEqual(m, message(t, k), `task ${t} message ${k} is damaged`);
      }
      await Promise.all(senders);
      assert.deepEqual(next, new Array(TASKS).fill(PER_TASK));
    });
  });
}

// ---- against a raw peer: flow control, keepalive, idle timeout --------------------------

/** `count` masked binary messages of `size` bytes (zero mask key: cheap), each numbered. */
function floodFrames(count: number, size: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const payload = new Uint8Array(size);
    new DataView(payload.buffer).setUint32(0, i);
    payload.fill(i & 0xff, 4);
    frames.push(frame({ opcode: OP.BINARY, payload, mask: new Uint8Array(4) }));
  }
  return frames;
}

function checkFlood(m: Uint8Array, i: number, size: number): void {
  assert.equal(m.length, size);
  assert.equal(new DataView(m.buffer, m.byteOffset).getUint32(0), i);
  assert.ok(m.subarray(4).every((b) => b === (i & 0xff)), `message ${i} is damaged`);
}

const MIB = 1024 * 1024;

for (const transport of ["pipe", "tcp"] as Transport[]) {
  Deno.test(`ws api/${transport}: a slow reader: 50 MiB sent while the app does not read → the sender blocks`, async () => {
    const rig = await openServer(transport);
    try {
      const size = 64 * 1024;
      const frames = floodFrames(50 * MIB / size, size);
      let written = 0;
      if (transport === "pipe") {
        // One bsend of all 50 MiB: it must time out, since our side stops reading.
        const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
        let at = 0;
        for (const f of frames) {
          all.set(f, at);
          at += f.length;
        }
        const ok = await rig.peer.wire.write(all, now() + 1000);
        assert.equal(ok, false, "the 50 MiB bsend completed: our side read it all");
      } else {
        for (const f of frames) {
          if (!(await rig.peer.wire.write(f, now() + 300))) break;
          written += f.length;
        }
        assert.ok(written < 40 * MIB, `the sender wrote ${written} bytes without blocking`);
      }
      // What was buffered is intact and readable.
      for (let i = 0; i < 8; i++) checkFlood(await mrecv(rig.ws, now() + 2000), i, size);
    } finally {
      await rig.close();
    }
  });
}

Deno.test("ws api/pipe: a slow reader: a flood of empty messages is bounded by maxQueuedMessages", async () => {
  const rig = await openServer("pipe", { options: { maxQueuedMessages: 100 } });
  try {
    const one = frame({ opcode: OP.BINARY, mask: new Uint8Array(4) });
    const count = Math.floor((2 * MIB) / one.length);
    const flood = new Uint8Array(one.length * count);
    for (let i = 0; i < count; i++) flood.set(one, i * one.length);
    const ok = await rig.peer.wire.write(flood, now() + 500);
    assert.equal(ok, false, `all ${count} messages were taken in while the app read none`);
    for (let i = 0; i < 200; i++) assert.equal((await mrecv(rig.ws, now() + 2000)).length, 0);
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: keepalive: a peer that never answers pings → ECONNRESET near pongTimeout, 1006", async () => {
  const rig = await openServer("tcp", { options: { pingInterval: 100, pongTimeout: 200 } });
  try {
    const t0 = now();
    const receiving = settle(mrecv(rig.ws, now() + 2000));
    const ping = await rig.peer.readFrame();
    assert.equal(ping.opcode, OP.PING);
    const pingAt = now() - t0;
    assert.ok(pingAt >= 90 && pingAt < 600, `first ping after ${pingAt.toFixed(0)} ms`);
    assertFailed(await receiving, "ECONNRESET", "the pending mrecv");
    const elapsed = now() - t0;
    assert.ok(elapsed >= 280 && elapsed < 1000, `failed after ${elapsed.toFixed(0)} ms`);
    assert.deepEqual(await wsStatus(rig.ws), { status: 1006, reason: "" });
    await rig.peer.expectEnd();
    await assert.rejects(msend(rig.ws, "x", now() + 2000));
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: keepalive: a peer that answers pings keeps the connection", async () => {
  const rig = await openServer("tcp", { options: { pingInterval: 80, pongTimeout: 150 } });
  try {
    const t0 = now();
    const receiving = settle(mrecv(rig.ws, now() + 3000));
    for (let i = 0; i < 5; i++) {
      const ping = await rig.peer.readFrame();
      assert.equal(ping.opcode, OP.PING);
      await rig.peer.sendFrame({ opcode: OP.PONG, payload: ping.payload });
    }
    assert.ok(now() - t0 >= 5 * 80 - 20, "pings came faster than pingInterval");
    await rig.peer.sendFrame({ opcode: OP.BINARY, payload: new Uint8Array([1]) });
    assert.deepEqual(assertOk(await receiving, "mrecv"), new Uint8Array([1]));
    await msend(rig.ws, new Uint8Array([2]), now() + 2000);
    const f = await rig.peer.readFrame(); // maybe a ping first
    const data = f.opcode === OP.PING ? await rig.peer.readFrame() : f;
    assert.deepEqual(data.payload, new Uint8Array([2]));
    await fails(statusOf(rig.ws), "EAGAIN", "wsStatus");
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: keepalive: an answered ping makes the next one due pingInterval later, not pongTimeout", async () => {
  const rig = await openServer("tcp", { options: { pingInterval: 100, pongTimeout: 1000 } });
  try {
    let last = now();
    for (let i = 0; i < 4; i++) {
      const ping = await rig.peer.readFrame();
      assert.equal(ping.opcode, OP.PING);
      const gap = now() - last;
      // Once answered, the next ping comes an interval later (it came pongTimeout later).
      assert.ok(gap < 500, `ping ${i} came ${gap.toFixed(0)} ms after the last`);
      last = now();
      await rig.peer.sendFrame({ opcode: OP.PONG, payload: ping.payload });
    }
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: keepalive: a live peer is not failed while the application is behind and reading paused", async () => {
  // The queue is full, so our side reads nothing: what the peer sends waits in the socket
  // and no ping could be answered. The silence is ours, not the peer's.
  const options = { pingInterval: 100, pongTimeout: 150, maxQueuedMessages: 2 };
  const rig = await openServer("tcp", { options });
  try {
    for (let i = 0; i < 5; i++) {
      await rig.peer.sendFrame({ opcode: OP.BINARY, payload: new Uint8Array([i]) });
    }
    await delay(800); // several pongTimeouts with the application not reading
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await mrecv(rig.ws, now() + 2000), new Uint8Array([i]));
    }
    await fails(statusOf(rig.ws), "EAGAIN", "wsStatus"); // still open
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: keepalive: after wsDone, a peer that never answers our close fails near pongTimeout", async () => {
  const rig = await openServer("tcp", { options: { pingInterval: 100, pongTimeout: 200 } });
  try {
    // A deadline far past pongTimeout: the keepalive must end the wait, not the deadline.
    const receiving = settle(mrecv(rig.ws, now() + 3000));
    const t0 = now();
    await wsDone(rig.ws, 1000, "", now() + 2000);
    const close = await rig.peer.readClose(); // read, never answered
    assert.equal(close.code, 1000);
    assertFailed(await receiving, "ECONNRESET", "the pending mrecv");
    const elapsed = now() - t0;
    assert.ok(elapsed >= 180 && elapsed < 1500, `failed after ${elapsed.toFixed(0)} ms`);
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/pipe: keepalive: a peer that floods pings without reading our pongs, then goes silent, is failed", async () => {
  // The pongs we owe pause our reading: that pause is the peer's doing, not the
  // application's, so the keepalive still judges it.
  const options = { pingInterval: 100, pongTimeout: 150, maxPongBytes: 1024 };
  const rig = await openServer("pipe", { options });
  try {
    const receiving = settle(mrecv(rig.ws, now() + 3000));
    const ping = frame({ opcode: OP.PING, payload: new Uint8Array(125), mask: new Uint8Array(4) });
    // Far more pongs than the pipe holds: ours back up, and our reading pauses.
    await rig.peer.wire.write(concat(...Array.from({ length: 3000 }, () => ping)), now() + 300);
    assertFailed(await receiving, "ECONNRESET", "the pending mrecv");
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: keepalive: wsDone behind a large send to a slow but live reader completes cleanly", async () => {
  // The peer needs about 0.8 s to read its way to our close frame, within pongTimeout:
  // the wait for its answer must not fail it (and no ping goes after our close).
  const rig = await openServer("tcp", { options: { pingInterval: 100, pongTimeout: 2000 } });
  try {
    const size = 1 * MIB;
    const sending = settle(msend(rig.ws, new Uint8Array(size), now() + 5000));
    const done = settle(wsDone(rig.ws, 1000, "", now() + 5000));
    const receiving = settle(mrecv(rig.ws, now() + 5000));
    await rig.peer.wire.readExact(10, now() + 2000); // the frame header (64-bit length)
    for (let left = size; left > 0; left -= 64 * 1024) {
      await rig.peer.wire.readExact(Math.min(left, 64 * 1024), now() + 2000);
      await delay(40);
    }
    const close = await rig.peer.readClose();
    assert.equal(close.code, 1000);
    await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(1000) });
    assertOk(await sending, "msend");
    assertOk(await done, "wsDone");
    assertFailed(await receiving, "EPIPE", "the pending mrecv");
    assert.deepEqual(await wsStatus(rig.ws), { status: 1000, reason: "" });
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/pipe: keepalive on, wsDone behind sends the peer does not read keeps its deadline", async () => {
  const rig = await openServer("pipe", { options: { pingInterval: 60_000 } });
  try {
    const stuck = [1, 2, 3, 4].map(() => settle(msend(rig.ws, new Uint8Array(MIB), -1)));
    const done = settle(wsDone(rig.ws, 1000, "", now() + 300));
    assert.ok(await settlesWithin(done, 2000), "wsDone kept its deadline");
    assertFailed(await done, "ETIMEDOUT", "wsDone");
    await rig.close();
    for (const s of stuck) await s;
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/pipe: keepalive on, a vanished peer fails a wsDone queued behind sends near pongTimeout", async () => {
  const rig = await openServer("pipe", { options: { pingInterval: 200, pongTimeout: 300 } });
  try {
    const stuck = [1, 2, 3, 4].map(() => settle(msend(rig.ws, new Uint8Array(MIB), -1)));
    const started = now();
    // Deadlines far past pongTimeout: the keepalive must end these waits, not the deadlines.
    const done = settle(wsDone(rig.ws, 1000, "", now() + 3000));
    const receiving = settle(mrecv(rig.ws, now() + 3000));
    assertFailed(await done, "ECONNRESET", "wsDone");
    assertFailed(await receiving, "ECONNRESET", "the pending mrecv");
    const took = now() - started;
    assert.ok(took >= 250 && took < 2000, `failed after ${took.toFixed(0)} ms`);
    for (const s of stuck) await s;
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: idleTimeout still closes while the application is behind", async () => {
  const rig = await openServer("tcp", { options: { idleTimeout: 200, maxQueuedMessages: 2 } });
  try {
    for (let i = 0; i < 5; i++) {
      await rig.peer.sendFrame({ opcode: OP.BINARY, payload: new Uint8Array([i]) });
    }
    const close = await rig.peer.readClose(); // the application reads nothing
    assert.equal(close.code, 1001);
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: idleTimeout: no messages → we close with 1001", async () => {
  const t0 = now(); // the idle clock starts when the handshake completes, inside openServer
  const rig = await openServer("tcp", { options: { idleTimeout: 150 } });
  try {
    const receiving = settle(mrecv(rig.ws, now() + 2000));
    const close = await rig.peer.readClose();
    const elapsed = now() - t0;
    assert.equal(close.code, 1001);
    assert.ok(elapsed >= 140 && elapsed < 1000, `closed after ${elapsed.toFixed(0)} ms`);
    await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(1001) });
    assertFailed(await receiving, "EPIPE", "the pending mrecv");
    assert.deepEqual(await wsStatus(rig.ws), { status: 1001, reason: "" });
    await rig.peer.expectEnd();
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/tcp: idleTimeout is pushed back by messages", async () => {
  const rig = await openServer("tcp", { options: { idleTimeout: 200 } });
  try {
    const t0 = now();
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await rig.peer.sendFrame({ opcode: OP.BINARY, payload: new Uint8Array([i]) });
      assert.deepEqual(await mrecv(rig.ws, now() + 2000), new Uint8Array([i]));
    }
    const close = await rig.peer.readClose();
    assert.equal(close.code, 1001);
    assert.ok(now() - t0 >= 550, "closed although messages kept coming");
  } finally {
    await rig.close();
  }
});

Deno.test("ws api/pipe: msend to a peer that does not read blocks, fails ETIMEDOUT at its deadline, then sending is over", async () => {
  const rig = await openServer("pipe");
  try {
    const big = new Uint8Array(1024 * 1024);
    let failure: unknown = null;
    let t0 = 0;
    for (let i = 0; i < 64 && failure === null; i++) {
      t0 = now();
      const outcome = await settle(msend(rig.ws, big, now() + 200));
      if (!outcome.ok) failure = outcome.error;
    }
    assert.ok(failure !== null, "64 MiB went out to a peer that reads nothing");
    assertFailed({ ok: false, error: failure }, "ETIMEDOUT", "the blocked msend");
    const elapsed = now() - t0;
    assert.ok(elapsed >= 190 && elapsed < 1000, `failed after ${elapsed.toFixed(0)} ms`);
    // libdill: after a failed send the socket can no longer send (the frame may be cut).
    await fails(msend(rig.ws, new Uint8Array(1), now() + 2000), "ECONNRESET", "the next msend");
  } finally {
    await rig.close();
  }
});

for (const transport of ["pipe", "tcp"] as Transport[]) {
  Deno.test(`ws api/${transport}: wsDetach hands over the bytes that follow the peer's close frame`, async () => {
    const rig = await openServer(transport);
    let raw: Handle | null = null;
    try {
      const detaching = settle(wsDetach(rig.ws, 1000, "bye", now() + 2000));
      const ours = await rig.peer.readClose();
      assert.deepEqual([ours.code, ours.reason], [1000, "bye"]);
      await rig.peer.send(concat(
        frame({ opcode: OP.BINARY, payload: new Uint8Array([1]), mask: true }), // dropped
        frame({ opcode: OP.CLOSE, payload: closeBody(1000), mask: true }),
        bytes("raw after close"),
      ));
      raw = assertOk(await detaching, "wsDetach");
      assert.equal(
        dec.decode(await brecv(raw, new Uint8Array(15), now() + 2000)),
        "raw after close",
      );
      await bsend(raw, bytes("raw reply"), now() + 2000);
      assert.equal(dec.decode(await rig.peer.read(9)), "raw reply");
    } finally {
      if (raw) closeQuietly(raw);
      await rig.close();
    }
  });
}

Deno.test("ws api/tcp: wsDetach against a peer that never closes → ETIMEDOUT at the deadline, socket closed", async () => {
  const rig = await openServer("tcp");
  try {
    const t0 = now();
    const detaching = settle(wsDetach(rig.ws, 1000, "", now() + 300));
    assert.equal((await rig.peer.readClose()).code, 1000);
    assertFailed(await detaching, "ETIMEDOUT", "wsDetach");
    const elapsed = now() - t0;
    assert.ok(elapsed >= 280 && elapsed < 1000, `failed after ${elapsed.toFixed(0)} ms`);
    await rig.peer.expectEnd();
    await fails(mrecv(rig.ws, now() + 2000), "EBADF", "the detached handle");
  } finally {
    await rig.close();
  }
});

Deno.test({
  name:
    "ws api/tcp: idleTimeout: a peer that never answers our 1001 close is dropped, not kept forever",
  fn: async () => {
    const rig = await openServer("tcp", { options: { idleTimeout: 100, pongTimeout: 300 } });
    try {
      const receiving = settle(mrecv(rig.ws, now() + 3000));
      assert.equal((await rig.peer.readClose()).code, 1001);
      // The peer stays silent. Our side must give up on the handshake by itself.
      assertFailed(await receiving, "ECONNRESET", "the pending mrecv");
      assert.deepEqual(await wsStatus(rig.ws), { status: 1006, reason: "" });
      await rig.peer.expectEnd();
    } finally {
      await rig.close();
    }
  },
});

// ---- deadline 0 means "if it can be done without waiting" -------------------------------

Deno.test("ws api/pipe: wsAttachServer with deadline 0 succeeds when the request already arrived", async () => {
  const [a, b] = ipcPair();
  try {
    await bsend(b, upgradeRequest(), T());
    await new Promise((resolve) => setTimeout(resolve, 50)); // a's stream reads it ahead
    const { handle, resource } = await wsAttachServer(a, 0, 0);
    try {
      assert.equal(resource, "/chat");
      const head = await brecv(b, new Uint8Array(12), T());
      assert.equal(dec.decode(head), "HTTP/1.1 101");
    } finally {
      hclose(handle);
    }
  } finally {
    closeQuietly(b);
  }
});

Deno.test("ws api/pipe: wsAttachServer with deadline 0 and half a request → ETIMEDOUT", async () => {
  const [a, b] = ipcPair();
  try {
    const request = upgradeRequest();
    await bsend(b, request.subarray(0, 40), T());
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fails(wsAttachServer(a, 0, 0), "ETIMEDOUT", "wsAttachServer with half a request");
  } finally {
    closeQuietly(b);
  }
});

Deno.test("ws api/pipe: deadlines other than -1, 0 and finite times → EINVAL (libdill waits forever on any negative)", async () => {
  const p = await wsPair("nohttp");
  try {
    for (const deadline of [-5, -0.5, NaN, Infinity, -Infinity]) {
      await fails(mrecv(p.s, deadline), "EINVAL", `mrecv(${deadline})`);
      await fails(msend(p.s, "x", deadline), "EINVAL", `msend(${deadline})`);
      await fails(wsDone(p.s, 1000, "", deadline), "EINVAL", `wsDone(${deadline})`);
    }
    // None of them broke the socket.
    await msend(p.c, "ok", T());
    assert.equal(dec.decode(await mrecv(p.s, T())), "ok");
  } finally {
    p.close();
  }
  const [a, b] = ipcPair();
  try {
    await fails(wsAttachServer(a, 0, -2), "EINVAL", "wsAttachServer(-2)");
  } finally {
    closeQuietly(a);
    closeQuietly(b);
  }
});

Deno.test("ws api/pipe: the new limits reject values that are not numbers >= 0 (EINVAL)", async () => {
  for (const options of [{ maxPongBytes: -1 }, { failGrace: NaN }, { halfCloseTimeout: -5 }]) {
    const [a, b] = ipcPair();
    try {
      await fails(
        wsAttachServer(a, WS_NOHTTP, T(), options as WsServerOptions),
        "EINVAL",
        JSON.stringify(options),
      );
    } finally {
      closeQuietly(a);
      closeQuietly(b);
    }
  }
});

Deno.test("ws api: no _mem variants: the module exports none (README, Differences from libdill)", async () => {
  const api = await import("../mod.ts");
  assert.deepEqual(Object.keys(api).filter((name) => /_?mem$/i.test(name)), []);
  assert.equal(typeof api.wsAttachServer, "function"); // the call to use instead
});

Deno.test("ws server: once the client's close frame arrived no read is left pending to fail at close", async () => {
  const [a, b] = pipePair();
  let pending = 0;
  let pendingAtClose = -1;
  const counted: StreamTransport = {
    read: (buf) => {
      pending++;
      return a.read(buf).finally(() => pending--);
    },
    write: (buf) => a.write(buf),
    closeWrite: () => a.closeWrite(),
    close: () => {
      pendingAtClose = pending;
      a.close();
    },
  };
  const [{ handle: s }, { handle: c }] = await Promise.all([
    wsAttachServer(streamHandle(counted, "pipe"), WS_NOHTTP, T()),
    wsAttachClient(streamHandle(b, "pipe"), WS_NOHTTP, "", "", T()),
  ]);
  await msend(c, bytes("hi"), T());
  assert.deepEqual(await mrecv(s, T()), bytes("hi"));
  assert.ok(pending > 0, "the server reads while the connection is open");
  await wsDone(c, 1000, "bye", T());
  await assert.rejects(mrecv(s, T()), (e: { code?: string }) => e.code === "EPIPE");
  assert.deepEqual(wsStatus(s), { status: 1000, reason: "bye" });
  hclose(s);
  assert.equal(pendingAtClose, 0, "a read was still pending when the server closed");
  hclose(c);
});
