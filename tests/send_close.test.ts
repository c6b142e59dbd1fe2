/**
 * A send that resolved is never lost by a close that follows (issue 8, item 3):
 * `await bsend(h, ...); hclose(h)` and `await msend(ws, ...); hclose(ws)` deliver on
 * every stack (in-memory pair, TCP, Unix socket; TLS over each; WebSocket over all of
 * them), with the peer reading on its own stack. Also: a send that cannot be written
 * fails itself, instead of a later call.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  bsendl,
  type Handle,
  hclose,
  ipcPair,
  mrecv,
  msend,
  msendl,
  now,
  tlsAttachClient,
  tlsAttachServer,
  WS_BINARY,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  wsDone,
  wsSend,
  wsStatus,
} from "../mod.ts";
import {
  closeQuietly,
  delay,
  type Kind,
  KINDS,
  openPair,
  patternBytes,
  rejectsWith,
  rejectsWithOneOf,
  within,
} from "./helpers/transports.ts";
import { closeBody, frame } from "./helpers/raw_peer/frames.ts";
import { connectRaw } from "./helpers/raw_peer/rig.ts";
import { CLIENT, SERVER } from "./helpers/tls_fixtures.ts";

const soon = (ms = 5000) => now() + ms;

type Layers = "plain" | "tls";

/** Two ends of a connection; `cleanup` closes what is still open and removes the pair's files. */
interface Ends {
  s: Handle;
  c: Handle;
  cleanup(): Promise<void>;
}

/** `s` and `c` on top of `below`: cleaning up closes them if still open, then `below`. */
function endsOver(below: () => Promise<void>, s: Handle, c: Handle): Ends {
  return {
    s,
    c,
    cleanup: () => {
      closeQuietly(s);
      closeQuietly(c);
      return below();
    },
  };
}

/** A connected pair over `kind`, with TLS on top when asked; `s` is the server side. */
async function stack(kind: Kind, layers: Layers): Promise<Ends> {
  const pair = await openPair(kind);
  if (layers === "plain") return endsOver(pair.cleanup, pair.b, pair.a);
  try {
    const [s, c] = await Promise.all([
      tlsAttachServer(pair.b, SERVER, soon()),
      tlsAttachClient(pair.a, CLIENT, soon()),
    ]);
    return endsOver(pair.cleanup, s, c);
  } catch (e) {
    await pair.cleanup();
    throw e;
  }
}

async function wsStack(kind: Kind, layers: Layers): Promise<Ends> {
  const below = await stack(kind, layers);
  try {
    const [server, client] = await Promise.all([
      wsAttachServer(below.s, WS_BINARY, soon()),
      wsAttachClient(below.c, WS_BINARY, "/", "localhost", soon()),
    ]);
    return endsOver(below.cleanup, server.handle, client.handle);
  } catch (e) {
    await below.cleanup();
    throw e;
  }
}

const SIZES = [64, 16 * 1024, 100_000];

for (const kind of KINDS) {
  for (const layers of ["plain", "tls"] as const) {
    const name = layers === "plain" ? kind : `tls over ${kind}`;

    Deno.test(`send-close/${name}: bsend then hclose delivers every byte`, async () => {
      for (const size of SIZES) {
        const { s, c, cleanup } = await stack(kind, layers);
        try {
          const data = patternBytes(0, size);
          await bsend(s, data, soon());
          hclose(s);
          const got = await within(brecv(c, new Uint8Array(size), soon()), 10_000, "brecv");
          assert.deepEqual(got, data, `${size} bytes`);
        } finally {
          await cleanup();
        }
      }
    });

    Deno.test(`send-close/${name}: sends of one turn, then hclose, deliver in order`, async () => {
      const { s, c, cleanup } = await stack(kind, layers);
      try {
        const parts = [patternBytes(0, 10), patternBytes(10, 70_000), patternBytes(70_010, 5)];
        await Promise.all([
          bsend(s, parts[0], soon()),
          bsendl(s, [parts[1], parts[2]], soon()),
        ]);
        hclose(s);
        const got = await within(brecv(c, new Uint8Array(70_015), soon()), 10_000, "brecv");
        assert.deepEqual(got, patternBytes(0, 70_015));
      } finally {
        await cleanup();
      }
    });

    Deno.test(`send-close/ws over ${name}: msend then hclose delivers the message`, async () => {
      for (const size of SIZES) {
        const { s, c, cleanup } = await wsStack(kind, layers);
        try {
          const data = patternBytes(size, size);
          await msend(s, data, soon());
          hclose(s);
          const got = await within(mrecv(c, soon()), 10_000, "mrecv");
          assert.deepEqual(got, data, `${size} bytes`);
        } finally {
          await cleanup();
        }
      }
    });

    Deno.test(`send-close/ws over ${name}: the client's msendl then hclose delivers`, async () => {
      const { s, c, cleanup } = await wsStack(kind, layers);
      try {
        await msendl(c, [patternBytes(0, 3), patternBytes(3, 4)], soon());
        hclose(c);
        assert.deepEqual(await within(mrecv(s, soon()), 10_000, "mrecv"), patternBytes(0, 7));
      } finally {
        await cleanup();
      }
    });
  }
}

for (const kind of KINDS) {
  for (const layers of ["plain", "tls"] as const) {
    const name = layers === "plain" ? kind : `tls over ${kind}`;
    Deno.test(`send-close/ws over ${name}: hclose during a write finishes it, then answers the close`, async () => {
      const { s, c, cleanup } = await wsStack(kind, layers);
      try {
        const data = patternBytes(0, 4 << 20);
        const sending = msend(s, data, soon()); // a write that takes a while
        sending.catch(() => {});
        await wsDone(c, 1000, "bye", soon());
        await rejectsWith(mrecv(s, soon()), "EPIPE"); // the server got the close frame
        // The 4 MiB write is in progress and the echo of the close frame is queued
        // behind it: both still go out, as a kernel socket delivers what it took.
        hclose(s);
        assert.deepEqual(await within(mrecv(c, soon()), 10_000, "mrecv"), data);
        await rejectsWith(mrecv(c, soon()), "EPIPE");
        assert.deepEqual(await wsStatus(c), { status: 1000, reason: "" });
      } finally {
        await cleanup();
      }
    });
  }
}

Deno.test("send-close/tcp: a send that cannot be written fails itself", async () => {
  const { s, c, cleanup } = await stack("tcp", "plain");
  try {
    hclose(c);
    await rejectsWithOneOf(brecv(s, new Uint8Array(1), soon()), ["EPIPE", "ECONNRESET"]);
    // The kernel takes these bytes; the closed peer answers them with a reset.
    await bsend(s, new Uint8Array(1000), soon());
    await delay(50);
    // Writing now fails, and it is this send that reports it (it used to resolve at
    // once, and only a later call learned that the bytes were lost).
    await rejectsWithOneOf(bsend(s, new Uint8Array(1000), soon()), ["ECONNRESET"]);
  } finally {
    await cleanup();
  }
});

/**
 * A server WebSocket (no HTTP) over a small pipe, and the raw bytestream end the peer
 * holds: with little read-ahead, a large send stays in progress until the peer reads.
 */
async function rawPeerPair(): Promise<{ ws: Handle; peer: Handle }> {
  const [a, b] = ipcPair({ pipeCapacity: 1024, readHighWater: 1024 });
  const { handle: ws } = await wsAttachServer(a, WS_BINARY | WS_NOHTTP, soon());
  return { ws, peer: b };
}

/** Reads exactly `n` bytes, then checks that the stream ends there. */
async function readAllThenEnd(peer: Handle, n: number): Promise<Uint8Array> {
  const got = await brecv(peer, new Uint8Array(n), soon());
  await rejectsWith(brecv(peer, new Uint8Array(1), soon()), "EPIPE");
  return got;
}

Deno.test("send-close/ws: on hclose, a pong queued before the close echo goes out with it", async () => {
  const { ws, peer } = await rawPeerPair();
  try {
    // A send larger than the pipe is being written when the peer pings, then closes.
    const big = msend(ws, new Uint8Array(20_000), soon()).catch(() => "cut");
    await bsend(peer, frame({ opcode: 9, payload: "hi", mask: true }), soon());
    await bsend(peer, frame({ opcode: 8, payload: closeBody(1000), mask: true }), soon());
    await rejectsWith(mrecv(ws, soon()), "EPIPE");
    hclose(ws);
    // The write in progress, then the pong, then the echo of the close: nothing cut.
    const got = await readAllThenEnd(peer, 4 + 20_000 + 4 + 4);
    assert.deepEqual([...got.subarray(-8)], [0x8a, 2, 0x68, 0x69, 0x88, 2, 0x03, 0xe8]);
    await big;
  } finally {
    hclose(peer);
  }
});

Deno.test("send-close/ws: hclose never writes the header of a large send queued behind the write in progress", async () => {
  const { ws, peer } = await rawPeerPair();
  try {
    const first = msend(ws, new Uint8Array(20_000), soon()).catch(() => "cut");
    const second = msend(ws, new Uint8Array(30_000), soon()).catch(() => "cut");
    await delay(20); // the first is being written; the second waits behind it
    hclose(ws);
    // Only the frame in progress arrives, whole: not the second one's header alone.
    const got = await readAllThenEnd(peer, 4 + 20_000);
    assert.deepEqual([...got.subarray(0, 4)], [0x82, 126, 20_000 >> 8, 20_000 & 0xff]);
    assert.equal(await second, "cut");
    await first;
  } finally {
    hclose(peer);
  }
});

for (const hops of [1, 2, 4]) {
  Deno.test(`send-close/ws over tcp: hclose while only a large send's header is being written finishes that frame (after ${hops} microtasks)`, async () => {
    const { ours, peer } = await connectRaw("tcp", "client");
    try {
      const { handle: ws } = await wsAttachServer(ours, WS_NOHTTP, soon());
      // The frame's header is small (copied into the write queue's coalescing buffer),
      // its payload large (queued as it is): two writes. The first one starts once the
      // running code has finished; hclose comes while it is in progress.
      const big = wsSend(ws, WS_BINARY, new Uint8Array(100_000).fill(5), soon());
      big.catch(() => {});
      for (let i = 0; i < hops; i++) await Promise.resolve();
      hclose(ws);
      await rejectsWith(big, "ECANCELED"); // a call pending at hclose fails...
      // ...but the frame it had started is finished, not cut after its header.
      const f = await peer.readFrame();
      assert.equal(f.payload.length, 100_000);
      assert.ok(f.payload.every((b) => b === 5));
      await peer.expectEnd();
    } finally {
      await peer.close();
    }
  });
}
