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

// ---- what may call off a verdict waiting (found by review: each of these put one off for
// as long as the traffic lasted) ----------------------------------------------------------

/** A keepalive with `timers`, `traffic` run every 2 ms on it for 300 ms; its events. */
async function underTraffic(
  timers: { pingInterval: number; pongTimeout: number; idleTimeout: number },
  traffic: (ka: Keepalive<null>) => void,
  onCloseIdle?: (ka: Keepalive<null>) => void,
): Promise<string[]> {
  const events: string[] = [];
  const ka: Keepalive<null> = new Keepalive(timers, null, {
    wake: () => ka.tick(),
    ping: () => events.push("ping"),
    closeIdle: () => {
      events.push("closeIdle");
      onCloseIdle?.(ka);
    },
    peerDead: (_, why) => {
      events.push(`dead: ${why}`);
      ka.stop();
    },
    readingPaused: () => false,
  });
  ka.start();
  const every = setInterval(() => traffic(ka), 2);
  await delay(300);
  clearInterval(every);
  ka.stop();
  return events;
}

Deno.test("keepalive: our own sends do not put off judging a silent peer", async () => {
  const events = await underTraffic(
    { pingInterval: 20, pongTimeout: 30, idleTimeout: 60_000 },
    (ka) => ka.activity(), // a message we sent
  );
  assert.deepEqual(events, ["ping", "dead: nothing arrived within 30 ms of a ping"]);
});

Deno.test("keepalive: a peer's pings do not put off the idle close", async () => {
  const events = await underTraffic(
    { pingInterval: 10_000, pongTimeout: 30, idleTimeout: 50 },
    (ka) => ka.inbound(), // bytes that are no message
  );
  assert.equal(events[0], "closeIdle");
});

Deno.test("keepalive: a peer that sends messages past our idle close is still judged", async () => {
  let closed = false;
  const events = await underTraffic(
    { pingInterval: 0, pongTimeout: 30, idleTimeout: 50 },
    (ka) => {
      if (!closed) return;
      ka.inbound(); // the peer ignores our close and goes on sending messages
      ka.activity();
    },
    (ka) => {
      closed = true;
      ka.closing(); // as the actor's writeClose does
    },
  );
  assert.deepEqual(events, ["closeIdle", "dead: nothing answered our idle close within 30 ms"]);
});
