/**
 * Many senders on one WebSocket handle while the peer does not read, some of them
 * cancelled (deadline, AbortSignal) while they wait for room: a raw peer that parses
 * frames then reads the wire. The sends that complete must arrive whole and in order;
 * a cancelled one appears whole or not at all, never a partial frame; every call ends.
 * Over TCP and over an in-memory pipe, by default and with a `sendBuffer`.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  ipcPair,
  msend,
  now,
  type StreamOptions,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  WS_NOHTTP,
  wsAttachServer,
} from "../mod.ts";
import { isDillError } from "../protocol/errors.ts";
import { ConnWire } from "./helpers/raw_peer/conn_wire.ts";
import { OP } from "./helpers/raw_peer/frames.ts";
import { HandleWire } from "./helpers/raw_peer/handle_wire.ts";
import { RawPeer } from "./helpers/raw_peer/peer.ts";
import { type Outcome, settle } from "./helpers/outcome.ts";
import { delay, within } from "./helpers/transports.ts";

const KIB = 1024;
const SENDERS = 12;

/** Our WebSocket server handle, and a raw client peer that reads only when asked. */
interface Conn {
  readonly ws: Handle;
  /** Bytes per message: a few of them fill every buffer between us and the peer. */
  readonly size: number;
  /** Starts reading (TCP: a read loop from now on; pipe: reads on demand). */
  peer(): RawPeer;
  close(): Promise<void>;
}

async function overTcp(options: StreamOptions): Promise<Conn> {
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  let conn: Deno.Conn;
  let tcp: Handle;
  try {
    [{ handle: tcp }, conn] = await Promise.all([
      tcpAccept(ls, now() + 2000, options),
      Deno.connect({ hostname: "127.0.0.1", port: tcpLocalAddr(ls).port }),
    ]);
  } finally {
    hclose(ls);
  }
  const { handle: ws } = await wsAttachServer(tcp, WS_NOHTTP, now() + 2000);
  let peer: RawPeer | null = null;
  return {
    ws,
    size: 2048 * KIB, // the kernel's socket buffers take a few MiB
    peer: () => peer ??= new RawPeer(new ConnWire(conn), "client"),
    close: async () => {
      closeQuietly(ws);
      if (peer) await peer.close();
      else conn.close();
    },
  };
}

async function overPipe(options: StreamOptions): Promise<Conn> {
  const [ours, theirs] = ipcPair({ ...options, pipeCapacity: 64 * KIB });
  const { handle: ws } = await wsAttachServer(ours, WS_NOHTTP, now() + 2000);
  const peer = new RawPeer(new HandleWire(theirs), "client");
  return {
    ws,
    size: 300 * KIB,
    peer: () => peer,
    close: async () => {
      closeQuietly(ws);
      await peer.close();
    },
  };
}

function closeQuietly(h: Handle): void {
  try {
    hclose(h);
  } catch (e) {
    if (!isDillError(e, "EBADF")) throw e;
  }
}

const codeOf = (o: Outcome<unknown>) =>
  o.ok ? "ok" : isDillError(o.error) ? o.error.code : String(o.error);

/**
 * Sender `i` sends message `i` (every byte `i`); those with `i % 4 === 1` have a short
 * deadline, `i % 4 === 3` an AbortSignal that fires early, the rest are patient.
 */
async function concurrentSenders(open: () => Promise<Conn>): Promise<void> {
  const c = await open();
  const abort = new AbortController();
  try {
    const patient = now() + 4000;
    const sends = Array.from({ length: SENDERS }, (_, i) => {
      const deadline = i % 4 === 1
        ? now() + 150
        : i % 4 === 3
        ? { deadline: patient, signal: abort.signal }
        : patient;
      return settle(msend(c.ws, new Uint8Array(c.size).fill(i), deadline));
    });
    setTimeout(() => abort.abort(), 100);
    await delay(300); // the peer reads nothing meanwhile: the cancellations happen now
    const peer = c.peer();
    const arrived: number[] = [];
    const reading = (async () => {
      for (;;) {
        const f = await peer.readFrame(now() + 1000).catch(() => null);
        if (f === null) return;
        // A partial frame would show as a bad opcode, length or content here.
        assert.equal(f.opcode, OP.BINARY, `frame after message ${arrived.at(-1)}`);
        assert.ok(f.fin);
        assert.equal(f.payload.length, c.size, "a whole message");
        const i = f.payload[0];
        assert.ok(f.payload.every((b) => b === i), `message ${i} is whole and unmixed`);
        arrived.push(i);
      }
    })();
    // Every send ends, well before the patient deadline: none waits behind a cancelled one.
    const outcomes = await within(Promise.all(sends), 2000, "the sends");
    await reading;
    const codes = outcomes.map(codeOf);
    for (let k = 1; k < arrived.length; k++) {
      assert.ok(arrived[k] > arrived[k - 1], `order: ${arrived.join()}`);
    }
    for (const [i, code] of codes.entries()) {
      if (code === "ok") assert.ok(arrived.includes(i), `send ${i} resolved but never arrived`);
      else assert.ok(["ETIMEDOUT", "ECANCELED", "ECONNRESET"].includes(code), `${i}: ${code}`);
    }
    assert.ok(codes.some((code) => code !== "ok"), `some sends were cancelled: ${codes.join()}`);
  } finally {
    abort.abort();
    await c.close();
  }
}

for (const [transport, open] of [["tcp", overTcp], ["pipe", overPipe]] as const) {
  for (const [mode, options] of [["default", {}], ["sendBuffer", { sendBuffer: 64 * KIB }]]) {
    Deno.test(
      `concurrent sends (${transport}, ${mode}): cancelled senders waiting for room leave whole frames in order, and no send waits behind them`,
      () => concurrentSenders(() => open(options as StreamOptions)),
    );
  }
}

const FIRST = 64 * KIB;

Deno.test("concurrent sends (pipe, bytestream): a sender cancelled while waiting for room fails those behind it; the one ahead still goes", async () => {
  // Little room anywhere: the pipe, the peer's read-ahead and our write queue.
  const [ours, theirs] = ipcPair({ pipeCapacity: 1024, readHighWater: 1024, writeHighWater: 1024 });
  try {
    const first = bsend(ours, new Uint8Array(FIRST).fill(1), now() + 3000); // fills everything
    const ahead = settle(bsend(ours, new Uint8Array(100).fill(2), now() + 3000)); // waits
    const cancelled = settle(bsend(ours, new Uint8Array(100).fill(3), now() + 100)); // waits
    const behind = settle(bsend(ours, new Uint8Array(100).fill(4), now() + 3000)); // waits
    assert.equal(codeOf(await within(cancelled, 1000, "the cancelled send")), "ETIMEDOUT");
    // The one behind fails at once (an earlier send failed), not at its own deadline.
    assert.equal(codeOf(await within(behind, 1000, "the send behind")), "ECONNRESET");
    // The peer reads: the first send and the one ahead arrive, whole and in order.
    const got = await brecv(theirs, new Uint8Array(FIRST + 100), now() + 2000);
    await first;
    assert.equal(codeOf(await within(ahead, 1000, "the send ahead")), "ok");
    assert.ok(got.subarray(0, FIRST).every((b) => b === 1));
    assert.ok(got.subarray(FIRST).every((b) => b === 2));
  } finally {
    hclose(ours);
    hclose(theirs);
  }
});
