/**
 * The keepalive's verdict when its timer fires late: an application that blocks the
 * event loop makes the timer run before the reads of what arrived meanwhile, the pong
 * among them. The verdict waits `SETTLE_MS`, so those reads come first (found by an attack
 * on the timers: a 500 ms stall right after a ping failed a peer that had answered; with
 * real sockets: tests/deadline_stall.test.ts).
 */

import assert from "node:assert/strict";
import { Keepalive } from "../actors/ws_keepalive.ts";
import { delay } from "./helpers/transports.ts";

function rig() {
  const events: string[] = [];
  const ka: Keepalive<null> = new Keepalive(
    { pingInterval: 20, pongTimeout: 30, idleTimeout: 0 },
    null,
    {
      wake: () => ka.tick(),
      ping: () => events.push("ping"),
      closeIdle: () => events.push("closeIdle"),
      peerDead: (_, why) => {
        events.push(`dead: ${why}`);
        ka.stop(); // as the actor's close does
      },
      readingPaused: () => false,
    },
  );
  return { events, ka };
}

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the application holds the event loop
  }
}

Deno.test("keepalive: a late timer waits a moment, and an answer read in it keeps the peer", async () => {
  const { events, ka } = rig();
  ka.start();
  await delay(30);
  assert.deepEqual(events, ["ping"]);
  block(60); // past pongTimeout, with the answer (in a real socket) unread
  ka.tick(); // the overdue timer runs first
  assert.deepEqual(events, ["ping"], "no verdict before the reads the stall held up");
  ka.inbound(); // the pong, read meanwhile
  await delay(10);
  assert.deepEqual(events, ["ping"]);
  ka.stop();
});

Deno.test("keepalive: a late timer with nothing read in the moment after fails the peer", async () => {
  const { events, ka } = rig();
  ka.start();
  await delay(30);
  block(60);
  ka.tick();
  await delay(10);
  assert.deepEqual(events, ["ping", "dead: nothing arrived within 30 ms of a ping"]);
  ka.stop();
});
