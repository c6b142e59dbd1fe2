/**
 * The send side of a wsUpgrade socket (DenoSends) over a stand-in for Deno's WebSocket
 * whose `bufferedAmount` the test controls: how soon a send waiting for Deno to write
 * resolves, and what a peer that stopped reading costs in looks at `bufferedAmount`.
 */

import assert from "node:assert/strict";
import { DenoSends, DRAIN_POLL_MAX_MS } from "../actors/ws_upgrade_sends.ts";
import { Request } from "../actors/request.ts";
import { DillError } from "../protocol/errors.ts";

/** Deno's WebSocket as DenoSends sees it; `drains` says whether written bytes ever leave. */
class FakeSocket {
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  constructor(readonly drains: boolean) {}
  send(data: Uint8Array | string): void {
    const n = typeof data === "string" ? data.length : data.length;
    this.bufferedAmount += n;
    // Deno lowers bufferedAmount once its write op completed: a turn of the loop later.
    if (this.drains) setImmediate(() => this.bufferedAmount -= n);
  }
}

function sendsOver(socket: FakeSocket, highWater: number) {
  let looks = 0;
  const sends: DenoSends = new DenoSends(socket as unknown as WebSocket, highWater, 16, {
    park: () => true,
    wake: () => {
      looks++;
      sends.poll();
    },
  });
  sends.opened();
  return { sends, looks: () => looks };
}

/** Counts turns of the event loop until stopped. */
function turnCounter(): { turns: () => number; stop: () => void } {
  let turns = 0;
  let handle: ReturnType<typeof setImmediate> | undefined;
  const tick = () => {
    turns++;
    handle = setImmediate(tick);
  };
  handle = setImmediate(tick);
  return { turns: () => turns, stop: () => clearImmediate(handle) };
}

Deno.test("DenoSends: a send above the mark resolves within turns of Deno's write, not after a timer", async () => {
  const socket = new FakeSocket(true);
  const { sends } = sendsOver(socket, 0);
  for (let i = 0; i < 20; i++) {
    const counter = turnCounter();
    const req = new Request<void>("msend", -1);
    sends.send(new Uint8Array(16 * 1024), req);
    await req.promise;
    counter.stop();
    // A 1 ms timer alone would take many turns of an otherwise idle loop.
    assert.ok(counter.turns() <= 4, `send ${i} resolved after ${counter.turns()} turns`);
  }
  assert.equal(socket.bufferedAmount, 0);
  sends.stop();
});

Deno.test("DenoSends: a peer that stopped reading is looked at less and less often", async () => {
  const socket = new FakeSocket(false);
  const { sends, looks } = sendsOver(socket, 0);
  const req = new Request<void>("msend", -1);
  sends.send(new Uint8Array(100), req);
  const failed = req.promise.catch((e) => e);
  await new Promise((r) => setTimeout(r, 300));
  // Two looks on the next turns, then pauses of 1, 2, 4... ms up to the cap: about a
  // dozen looks in 300 ms, where looking every turn would make thousands.
  const expected = 2 + Math.log2(DRAIN_POLL_MAX_MS) + 300 / DRAIN_POLL_MAX_MS;
  assert.ok(looks() >= 4, `still looking: ${looks()} looks`);
  assert.ok(looks() <= 2 * expected, `${looks()} looks in 300 ms`);
  sends.cancel(new DillError("ECANCELED", "test over"));
  assert.equal((await failed).code, "ECANCELED");
});

Deno.test("DenoSends: a new send after a long pause is looked at on the next turns again", async () => {
  const socket = new FakeSocket(false);
  const { sends, looks } = sendsOver(socket, 1 << 20);
  sends.send(new Uint8Array(100), new Request<void>("msend", -1)); // below the mark: resolved
  await new Promise((r) => setTimeout(r, 200)); // backed off to the longest pause
  const before = looks();
  const counter = turnCounter();
  // The stalled bytes leave, and a new send goes: its bytes are looked at on the next turns.
  socket.bufferedAmount = 0;
  const req = new Request<void>("msend", -1);
  sends.send(new Uint8Array(100), req);
  await req.promise;
  while (looks() === before) await new Promise((r) => setImmediate(r));
  counter.stop();
  assert.ok(counter.turns() <= 4, `looked again after ${counter.turns()} turns`);
  sends.stop();
});
