/**
 * Bytestream semantics (actors/bytestream.ts, actors/stream.ts) over the in-memory
 * pipe, TCP loopback and a Unix socket: exact lengths in every split, clean end
 * (EPIPE) versus broken connection (ECONNRESET), the libdill rule that a failed
 * direction stays failed, close while pending, and bad arguments.
 */

import assert from "node:assert/strict";
import {
  brecv,
  brecvl,
  bsend,
  bsendl,
  type Handle,
  hclose,
  ipcClose,
  now,
  tcpClose,
} from "../mod.ts";
import {
  assertPattern,
  delay,
  isSettled,
  type Kind,
  KINDS,
  patternBytes,
  rejectsWith,
  rejectsWithOneOf,
  withPair,
} from "./helpers/transports.ts";

const T = 5000; // generous deadline for steps that should succeed quickly

/** The clean close of the kind under test. */
function cleanClose(kind: Kind, h: Handle, deadline: number): Promise<void> {
  return kind === "tcp" ? tcpClose(h, deadline) : ipcClose(h, deadline);
}

/** Receives `total` bytes with brecv sizes taken in turn from `sizes`; checks the pattern. */
async function recvInPieces(h: Handle, total: number, sizes: number[]): Promise<number> {
  let got = 0;
  let calls = 0;
  for (let i = 0; got < total; i++) {
    const size = Math.min(sizes[i % sizes.length], total - got);
    const buf = await brecv(h, new Uint8Array(size), now() + T);
    assertPattern(buf, got, `brecv #${i}`);
    got += size;
    calls++;
  }
  return calls;
}

for (const kind of KINDS) {
  Deno.test(`bytestream/${kind}: one big bsend arrives intact through many small brecvs`, async () => {
    await withPair(kind, async (a, b) => {
      const total = 300_007;
      const sending = bsend(a, patternBytes(0, total), now() + T);
      const calls = await recvInPieces(b, total, [1, 7, 0, 4096, 3, 65_536, 1000]);
      await sending;
      assert.ok(calls > 20);
      // Nothing more than what was sent: a one-byte receive cannot complete at once.
      await rejectsWith(brecv(b, new Uint8Array(1), 0), "ETIMEDOUT");
    });
  });

  Deno.test(`bytestream/${kind}: many small bsends arrive intact in one big brecv`, async () => {
    await withPair(kind, async (a, b) => {
      const sizes = [1, 2, 0, 13, 5, 0, 100, 1, 4095, 17];
      let offset = 0;
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 400; i++) {
        const n = sizes[i % sizes.length];
        sends.push(bsend(a, patternBytes(offset, n), now() + T));
        offset += n;
      }
      const buf = await brecv(b, new Uint8Array(offset), now() + T);
      await Promise.all(sends);
      assertPattern(buf, 0, "one big brecv");
    });
  });

  Deno.test(`bytestream/${kind}: bsendl and brecvl move exact lengths with empty buffers anywhere`, async () => {
    await withPair(kind, async (a, b) => {
      const sendSizes = [0, 5, 0, 70_000, 3, 0, 16_384, 1];
      const recvSizes = [2, 0, 0, 69_000, 1006, 16_384, 0, 1];
      const total = sendSizes.reduce((x, y) => x + y);
      assert.equal(recvSizes.reduce((x, y) => x + y), total);
      let offset = 0;
      const out = sendSizes.map((n) => {
        const chunk = patternBytes(offset, n);
        offset += n;
        return chunk;
      });
      const ins = recvSizes.map((n) => new Uint8Array(n));
      await Promise.all([bsendl(a, out, now() + T), brecvl(b, ins, now() + T)]);
      offset = 0;
      for (const [i, buf] of ins.entries()) {
        assertPattern(buf, offset, `brecvl buffer ${i}`);
        offset += buf.length;
      }
    });
  });

  Deno.test(`bytestream/${kind}: empty buffers complete at once, even with nothing to read`, async () => {
    await withPair(kind, async (a, b) => {
      await bsend(a, new Uint8Array(0), 0);
      await bsendl(a, [], 0);
      await brecv(b, new Uint8Array(0), 0);
      await brecvl(b, [new Uint8Array(0), new Uint8Array(0)], 0);
      await brecvl(b, [], 0);
      // And they did not disturb the stream.
      await bsend(a, patternBytes(0, 3), now() + T);
      assertPattern(await brecv(b, new Uint8Array(3), now() + T), 0);
    });
  });

  Deno.test(`bytestream/${kind}: receives queue in call order`, async () => {
    await withPair(kind, async (a, b) => {
      const first = brecv(b, new Uint8Array(3), now() + T);
      const second = brecvl(b, [new Uint8Array(2), new Uint8Array(4)], now() + T);
      const third = brecv(b, new Uint8Array(1), now() + T);
      await bsend(a, patternBytes(0, 10), now() + T);
      assertPattern(await first, 0);
      await second;
      assertPattern(await third, 9);
    });
  });

  Deno.test(`bytestream/${kind}: after the peer's clean close, data arrives first, then EPIPE`, async () => {
    await withPair(kind, async (a, b) => {
      const total = 200_000;
      await bsend(a, patternBytes(0, total), now() + T);
      const closing = cleanClose(kind, a, now() + T);
      await recvInPieces(b, total, [50_000]);
      await rejectsWith(brecv(b, new Uint8Array(1), now() + T), "EPIPE");
      // The failure sticks, and even a zero-length receive reports it now.
      await rejectsWith(brecv(b, new Uint8Array(0), now() + T), "EPIPE");
      await cleanClose(kind, b, now() + T);
      await closing;
    });
  });

  Deno.test(`bytestream/${kind}: a receive asking more than what is left before the close fails EPIPE`, async () => {
    await withPair(kind, async (a, b) => {
      await bsend(a, patternBytes(0, 10), now() + T);
      hclose(a); // nothing unread on a's side: a clean end for b
      await rejectsWith(brecv(b, new Uint8Array(11), now() + T), "EPIPE");
    });
  });

  Deno.test(`bytestream/${kind}: closing with unread input resets the peer: ECONNRESET`, async () => {
    // b reads ahead little, so most of what a sends stays unread under b's handle.
    await withPair(kind, async (a, b) => {
      const sending = bsend(a, patternBytes(0, 4 << 20), -1);
      sending.catch(() => {}); // checked below, after the close
      assertPattern(await brecv(b, new Uint8Array(1), now() + T), 0);
      await delay(20); // let the sent bytes reach b's side of the connection
      hclose(b);
      await rejectsWith(sending, "ECONNRESET");
      await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "ECONNRESET");
      // Deno's TcpConn.read() reports a received RST as end of stream (null), so on TCP
      // only the send side can tell a reset from a clean close.
      const expected = kind === "tcp" ? ["ECONNRESET", "EPIPE"] as const : ["ECONNRESET"] as const;
      await rejectsWithOneOf(brecv(a, new Uint8Array(1), now() + T), expected);
    }, { b: { readHighWater: 1024 }, pipeCapacity: 16 * 1024 });
  });

  for (
    const [how, deadline] of [["timed out", () => now() + 20], [
      "failed with deadline 0",
      () => 0,
    ]] as const
  ) {
    Deno.test(`bytestream/${kind}: after a receive ${how}, later receives fail`, async () => {
      await withPair(kind, async (a, b) => {
        await rejectsWith(brecv(b, new Uint8Array(4), deadline()), "ETIMEDOUT");
        await bsend(a, patternBytes(0, 8), now() + T);
        await delay(20);
        await rejectsWith(brecv(b, new Uint8Array(4), now() + T), "ECONNRESET");
        await rejectsWith(brecvl(b, [new Uint8Array(0)], now() + T), "ECONNRESET");
        // The other direction is unaffected.
        await bsend(b, patternBytes(0, 5), now() + T);
        assertPattern(await brecv(a, new Uint8Array(5), now() + T), 0);
      });
    });
  }

  Deno.test(`bytestream/${kind}: after a send timed out, later sends fail`, async () => {
    await withPair(kind, async (a, b) => {
      // 64 MiB cannot be absorbed by any buffer while b reads nothing.
      const big = bsend(a, new Uint8Array(64 << 20), now() + 200);
      await rejectsWith(big, "ETIMEDOUT");
      await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "ECONNRESET");
      await rejectsWith(bsendl(a, [new Uint8Array(0)], now() + T), "ECONNRESET");
      // The other direction is unaffected.
      await bsend(b, patternBytes(0, 5), now() + T);
      assertPattern(await brecv(a, new Uint8Array(5), now() + T), 0);
    });
  });

  Deno.test(`bytestream/${kind}: after a send failed with deadline 0, later sends fail`, async () => {
    await withPair(kind, async (a, b) => {
      const clog = bsend(a, new Uint8Array(64 << 20), -1); // makes the next send wait
      clog.catch(() => {});
      await rejectsWith(bsend(a, new Uint8Array(1), 0), "ETIMEDOUT");
      await rejectsWith(bsend(a, new Uint8Array(1), now() + T), "ECONNRESET");
      await bsend(b, patternBytes(0, 5), now() + T);
      assertPattern(await brecv(a, new Uint8Array(5), now() + T), 0);
      hclose(a);
      await rejectsWith(clog, "ECANCELED");
    });
  });

  Deno.test(`bytestream/${kind}: hclose while a brecv is pending fails it ECANCELED`, async () => {
    await withPair(kind, async (_a, b) => {
      const pending = brecv(b, new Uint8Array(1), -1);
      const pendingTimed = brecv(b, new Uint8Array(1), now() + 60_000);
      assert.equal(await isSettled(pending), false);
      hclose(b);
      await rejectsWith(pending, "ECANCELED");
      await rejectsWith(pendingTimed, "ECANCELED");
    });
  });

  Deno.test(`bytestream/${kind}: bad arguments fail EINVAL and leave the socket usable`, async () => {
    await withPair(kind, async (a, b) => {
      const u8 = new Uint8Array(1);
      const bad: [string, () => Promise<unknown>][] = [
        ["bsend string", () => bsend(a, "abc" as never, -1)],
        ["bsend number[]", () => bsend(a, [1, 2] as never, -1)],
        ["bsend ArrayBuffer", () => bsend(a, new ArrayBuffer(2) as never, -1)],
        ["bsend DataView", () => bsend(a, new DataView(new ArrayBuffer(2)) as never, -1)],
        ["brecv null", () => brecv(b, null as never, -1)],
        ["brecv Uint16Array", () => brecv(b, new Uint16Array(2) as never, -1)],
        ["bsendl not an array", () => bsendl(a, u8 as never, -1)],
        ["bsendl bad element", () => bsendl(a, [u8, "x"] as never, -1)],
        ["brecvl undefined", () => brecvl(b, undefined as never, -1)],
        ["brecvl bad element", () => brecvl(b, [u8, null] as never, -1)],
      ];
      for (const deadline of [NaN, -5, Infinity, -Infinity, -0.5, "100", undefined, null]) {
        const d = deadline as number;
        bad.push([`bsend deadline ${deadline}`, () => bsend(a, u8, d)]);
        bad.push([`brecv deadline ${deadline}`, () => brecv(b, u8, d)]);
        bad.push([`bsendl deadline ${deadline}`, () => bsendl(a, [u8], d)]);
        bad.push([`brecvl deadline ${deadline}`, () => brecvl(b, [u8], d)]);
      }
      for (const [what, run] of bad) {
        let p: Promise<unknown>;
        try {
          p = run();
        } catch (e) {
          assert.fail(`${what}: threw synchronously instead of rejecting: ${e}`);
        }
        const err = await rejectsWith(p, "EINVAL");
        assert.ok(err.message.length > 10, `${what}: unhelpful message`);
      }
      // Nothing was sent or broken by the rejected calls.
      await bsend(a, patternBytes(0, 4), now() + T);
      assertPattern(await brecv(b, new Uint8Array(4), now() + T), 0);
      await rejectsWith(brecv(b, new Uint8Array(1), 0), "ETIMEDOUT");
    });
  });
}
