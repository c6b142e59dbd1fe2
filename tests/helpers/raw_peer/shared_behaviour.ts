/**
 * What RFC 6455 asks of both ends while the peer breaks no rule, as scenarios a test runs
 * on a rig of either side: pings answered, unsolicited pongs ignored, the closing
 * handshake from either end, EOF without a close frame. What differs by side comes from
 * the raw peer's role: who masks (checked by {@link RawPeer.readFrame}) and who closes
 * TCP first ({@link expectServerEndsTcp}).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  mrecv,
  msend,
  now,
  WS_TEXT,
  wsDone,
  type WsMessage,
  wsRecv,
  wsStatus,
} from "../../../mod.ts";
import { assertQuick } from "../assert_quick.ts";
import { assertFailed, assertOk, settle } from "../outcome.ts";
import { bytes, concat } from "./bytes.ts";
import { closeBody, OP, type ParsedFrame } from "./frames.ts";
import type { RawPeer } from "./peer.ts";
import type { Rig, Transport } from "./rig.ts";
import { WireError } from "./wire.ts";

/**
 * A close frame's code and reason.
 *
 * @example
 * ```ts
 * import type { CloseSpec } from "./shared_behaviour.ts";
 *
 * const goingAway: CloseSpec = { code: 1001, reason: "going" };
 * ```
 */
export interface CloseSpec {
  code: number;
  reason: string;
}

/**
 * Ten ping payloads of growing size (9 to 99 bytes), each one different.
 *
 * @example
 * ```ts
 * import { pongPerPing, TEN_PINGS } from "./shared_behaviour.ts";
 * import { openServer } from "./rig.ts";
 *
 * const rig = await openServer("pipe");
 * await pongPerPing(rig.peer, TEN_PINGS);
 * await rig.close();
 * ```
 */
export const TEN_PINGS: readonly Uint8Array[] = Array.from(
  { length: 10 },
  (_, i) => bytes(`ping ${i} ${"x".repeat(i * 10)}`),
);

/** The one frame that carries `message`, masked as the peer's role requires. */
function messageFrame(peer: RawPeer, message: WsMessage): Uint8Array {
  return peer.frame({ opcode: opcodeOf(message), payload: message.data });
}

function opcodeOf(message: WsMessage): number {
  return message.type === WS_TEXT ? OP.TEXT : OP.BINARY;
}

/**
 * Reads the next frame our side sent: it must be one pong carrying `payload` (and masked
 * as our side's role requires, which {@link RawPeer.readFrame} checks).
 *
 * @example
 * ```ts
 * import { OP } from "./frames.ts";
 * import { openClient } from "./rig.ts";
 * import { expectPong } from "./shared_behaviour.ts";
 *
 * const rig = await openClient("pipe");
 * await rig.peer.sendFrame({ opcode: OP.PING, payload: "hi" });
 * await expectPong(rig.peer, "hi");
 * await rig.close();
 * ```
 */
export async function expectPong(peer: RawPeer, payload: Uint8Array | string): Promise<void> {
  const f = await peer.readFrame();
  assert.equal(f.opcode, OP.PONG, `expected a pong, got opcode ${f.opcode}`);
  assert.ok(f.fin, "a pong is a single frame");
  assert.deepEqual(f.payload, bytes(payload));
}

/**
 * Sends one ping per payload, all in one write, and expects a pong per ping, in order,
 * quickly, although the application never reads.
 *
 * @example
 * ```ts
 * import { openServer } from "./rig.ts";
 * import { pongPerPing } from "./shared_behaviour.ts";
 *
 * const rig = await openServer("tcp");
 * await pongPerPing(rig.peer, [new Uint8Array(0), new Uint8Array(125)]);
 * await rig.close();
 * ```
 */
export async function pongPerPing(peer: RawPeer, payloads: readonly Uint8Array[]): Promise<void> {
  const t0 = now();
  await peer.send(concat(...payloads.map((payload) => peer.frame({ opcode: OP.PING, payload }))));
  for (const payload of payloads) await expectPong(peer, payload);
  assertQuick(t0, "the pongs");
}

/**
 * A pong nobody asked for, then `message`: the application receives the message, and
 * the next frame our side sends is `reply` (sent with msend, so of our socket's type),
 * not a pong or a close.
 *
 * @example
 * ```ts
 * import { WS_TEXT } from "../../../mod.ts";
 * import { openServer } from "./rig.ts";
 * import { unsolicitedPongIsIgnored } from "./shared_behaviour.ts";
 *
 * const rig = await openServer("pipe", { flags: WS_TEXT });
 * await unsolicitedPongIsIgnored(rig, { type: WS_TEXT, data: "a" }, { type: WS_TEXT, data: "b" });
 * await rig.close();
 * ```
 */
export async function unsolicitedPongIsIgnored(
  rig: Rig,
  message: WsMessage,
  reply: WsMessage,
): Promise<void> {
  const p = rig.peer;
  await p.send(concat(p.frame({ opcode: OP.PONG, payload: "unasked" }), messageFrame(p, message)));
  assert.deepEqual(await wsRecv(rig.ws, now() + 2000), message);
  await msend(rig.ws, reply.data, now() + 2000);
  expectMessage(await p.readFrame(), reply);
}

/** `f` is one unfragmented frame carrying `message`. */
function expectMessage(f: ParsedFrame, message: WsMessage): void {
  assert.equal(f.opcode, opcodeOf(message), `expected the message, got opcode ${f.opcode}`);
  assert.ok(f.fin, "an unfragmented message");
  assert.deepEqual(f.payload, bytes(message.data));
}

/**
 * The end of the connection once both close frames have passed. The server closes TCP
 * first (RFC 6455 7.1.1): our server does so on its own; our client does not, it waits
 * for the raw server's EOF and then ends its side too.
 *
 * @example
 * ```ts
 * import { OP } from "./frames.ts";
 * import { openClient } from "./rig.ts";
 * import { expectServerEndsTcp } from "./shared_behaviour.ts";
 *
 * const rig = await openClient("tcp");
 * await rig.peer.sendFrame({ opcode: OP.CLOSE });
 * await rig.peer.readClose();
 * await expectServerEndsTcp(rig.peer, "tcp");
 * await rig.close();
 * ```
 */
export async function expectServerEndsTcp(peer: RawPeer, transport: Transport): Promise<void> {
  if (peer.role === "server") {
    // Our client must not end first. Checked over TCP only: a read that times out breaks
    // the raw end of a pipe (one of our handles), and then any end would look like EOF.
    if (transport === "tcp") {
      await assert.rejects(
        peer.read(1, now() + 100),
        (e) => e instanceof WireError && e.kind === "timeout",
        "our client ended the connection before the server did",
      );
    }
    await peer.wire.closeWrite();
  }
  await peer.expectEnd();
}

/**
 * The closing handshake started by the peer behind `messages`, all in one write, before
 * the application reads anything: our side echoes the close code on its own, the
 * connection ends (see {@link expectServerEndsTcp}), the messages are still delivered,
 * then receiving and sending fail with EPIPE and wsStatus reports the peer's close.
 *
 * @example
 * ```ts
 * import { WS_TEXT } from "../../../mod.ts";
 * import { openServer } from "./rig.ts";
 * import { closingHandshake } from "./shared_behaviour.ts";
 *
 * const rig = await openServer("tcp");
 * await closingHandshake(rig, "tcp", [{ type: WS_TEXT, data: "last" }], { code: 1000, reason: "" });
 * await rig.close();
 * ```
 */
export async function closingHandshake(
  rig: Rig,
  transport: Transport,
  messages: WsMessage[],
  close: CloseSpec,
): Promise<void> {
  const p = rig.peer;
  const t0 = now();
  await p.send(concat(
    ...messages.map((m) => messageFrame(p, m)),
    p.frame({ opcode: OP.CLOSE, payload: closeBody(close.code, close.reason) }),
  ));
  assert.equal((await p.readClose()).code, close.code);
  await expectServerEndsTcp(p, transport);
  assertQuick(t0, "echo and EOF");
  for (const m of messages) assert.deepEqual(await wsRecv(rig.ws, now() + 2000), m);
  assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPIPE", "mrecv after close");
  assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPIPE", "mrecv again");
  assert.deepEqual(wsStatus(rig.ws), { status: close.code, reason: close.reason });
  assertFailed(await settle(msend(rig.ws, "x", now() + 2000)), "EPIPE", "msend after close");
}

/**
 * The peer's close frame while the application waits in mrecv: echoed with the same
 * code, the pending mrecv fails with EPIPE, wsStatus reports code and reason, and the
 * connection ends (see {@link expectServerEndsTcp}).
 *
 * @example
 * ```ts
 * import { openServer } from "./rig.ts";
 * import { closeIsEchoed } from "./shared_behaviour.ts";
 *
 * const rig = await openServer("pipe");
 * await closeIsEchoed(rig, "pipe", { code: 3000, reason: "why not" });
 * await rig.close();
 * ```
 */
export async function closeIsEchoed(
  rig: Rig,
  transport: Transport,
  close: CloseSpec,
): Promise<void> {
  const receiving = settle(mrecv(rig.ws, now() + 2000));
  await rig.peer.sendFrame({ opcode: OP.CLOSE, payload: closeBody(close.code, close.reason) });
  assert.equal((await rig.peer.readClose()).code, close.code);
  assertFailed(await receiving, "EPIPE", "the pending mrecv");
  assert.deepEqual(wsStatus(rig.ws), { status: close.code, reason: close.reason });
  await expectServerEndsTcp(rig.peer, transport);
}

/**
 * Our side closes first (wsDone with `close`); the peer then sends `messages` and its own
 * close with the same code, in one write. The messages still arrive, then mrecv fails
 * with EPIPE, wsStatus reports the peer's code, and our side sends no second close frame
 * before the connection ends (see {@link expectServerEndsTcp}).
 *
 * @example
 * ```ts
 * import { openClient } from "./rig.ts";
 * import { ourCloseFirst } from "./shared_behaviour.ts";
 *
 * const rig = await openClient("pipe");
 * await ourCloseFirst(rig, "pipe", { code: 1000, reason: "" }, []);
 * await rig.close();
 * ```
 */
export async function ourCloseFirst(
  rig: Rig,
  transport: Transport,
  close: CloseSpec,
  messages: WsMessage[],
): Promise<void> {
  const p = rig.peer;
  await wsDone(rig.ws, close.code, close.reason, now() + 2000);
  const ours = await p.readClose();
  assert.deepEqual([ours.code, ours.reason], [close.code, close.reason]);
  await p.send(concat(
    ...messages.map((m) => messageFrame(p, m)),
    p.frame({ opcode: OP.CLOSE, payload: closeBody(close.code) }),
  ));
  for (const m of messages) assert.deepEqual(await wsRecv(rig.ws, now() + 2000), m);
  assertFailed(await settle(mrecv(rig.ws, now() + 2000)), "EPIPE", "mrecv after close");
  assert.deepEqual(wsStatus(rig.ws), { status: close.code, reason: "" });
  await expectServerEndsTcp(p, transport); // no second close frame before the end
}

/**
 * The peer sends binary `messages`, then EOF without a close frame, while the application
 * waits in mrecv: the messages are delivered first, then mrecv fails with ECONNRESET
 * quickly, wsStatus reports 1006 and msend fails with ECONNRESET too.
 *
 * @example
 * ```ts
 * import { openServer } from "./rig.ts";
 * import { eofWithoutClose } from "./shared_behaviour.ts";
 *
 * const rig = await openServer("tcp");
 * await eofWithoutClose(rig, [new Uint8Array([7])]);
 * await rig.close();
 * ```
 */
export async function eofWithoutClose(rig: Rig, messages: Uint8Array[]): Promise<void> {
  const t0 = now();
  let receiving = settle(mrecv(rig.ws, now() + 2000));
  for (const payload of messages) await rig.peer.sendFrame({ opcode: OP.BINARY, payload });
  await rig.peer.wire.closeWrite();
  for (const payload of messages) {
    assert.deepEqual(assertOk(await receiving, "mrecv"), payload);
    receiving = settle(mrecv(rig.ws, now() + 2000));
  }
  assertFailed(await receiving, "ECONNRESET", "mrecv at EOF");
  assertQuick(t0, "ECONNRESET");
  assert.deepEqual(wsStatus(rig.ws), { status: 1006, reason: "" });
  assertFailed(await settle(msend(rig.ws, "x", now() + 2000)), "ECONNRESET", "msend");
}
