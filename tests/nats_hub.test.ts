/**
 * The NATS hub (examples/nats_hub.ts) against the real `nats-server`, whose monitoring
 * endpoints count what really reached it: publications reach every subscriber of every
 * hub; one NATS subscription per topic however many local subscribers; while the broker is
 * gone publications wait in a bounded queue (the `maxQueue` limit), the overflow is
 * counted and reported when the link is back, and the queue reaches the broker then.
 */

import assert from "node:assert/strict";
import { NatsServer } from "../examples/demo_cluster.ts";
import type { HubStatus } from "../examples/hub.ts";
import { NatsHub } from "../examples/nats_hub.ts";
import { TcpRelay } from "./helpers/tcp_relay.ts";
import { eventually } from "./helpers/transports.ts";

Deno.test("NatsHub: a publication reaches the subscribers of every hub, in order", async () => {
  const nats = await NatsServer.start();
  const a = new NatsHub({ servers: nats.url });
  const b = new NatsHub({ servers: nats.url });
  try {
    await eventually("both hubs up", () => a.up && b.up || undefined);
    const gotA: string[] = [];
    const gotB: string[] = [];
    const subs = [
      a.subscribe("lobby", (m) => gotA.push(m)),
      b.subscribe("lobby", (m) => gotB.push(m)),
      b.subscribe("elsewhere", (m) => gotB.push(`elsewhere: ${m}`)),
    ];
    await Promise.all(subs.map((sub) => sub.ready)); // the server has them all
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const m of sent) a.publish("lobby", m);
    await eventually("all delivered", () => gotA.length >= 20 && gotB.length >= 20 || undefined);
    assert.deepEqual(gotA, sent, "the publisher's own subscriber too (the rooms drop those)");
    assert.deepEqual(gotB, sent);
  } finally {
    await a.close();
    await b.close();
    await nats.stop();
  }
});

Deno.test("NatsHub: once a subscription is ready, what another process publishes reaches it", async () => {
  const nats = await NatsServer.start();
  // Everything the slow hub sends (its SUB too) reaches the server 300 ms late.
  const relay = new TcpRelay(nats.port);
  const slow = new NatsHub({ servers: relay.url });
  const fast = new NatsHub({ servers: nats.url });
  try {
    await eventually("both hubs up", () => slow.up && fast.up || undefined);
    relay.clientDelayMs = 300;
    const got: string[] = [];
    const sub = slow.subscribe("lobby", (m) => got.push(m));
    const t0 = Date.now();
    await sub.ready;
    // Before the fix `ready` did not exist: published at once, this reached the server ahead
    // of the SUB and nobody got it (the demo's first member on a process could miss it).
    assert.ok(Date.now() - t0 >= 250, `ready after ${Date.now() - t0} ms, before the SUB arrived`);
    fast.publish("lobby", "right after");
    await eventually("delivered", () => got.length > 0 || undefined);
    assert.deepEqual(got, ["right after"]);
    // A second subscriber of the same topic shares the confirmed subscription.
    const again = slow.subscribe("lobby", () => {});
    const t1 = Date.now();
    await again.ready;
    assert.ok(Date.now() - t1 < 100, "already confirmed");
  } finally {
    relay.clientDelayMs = 0;
    await slow.close();
    await fast.close();
    await relay.close();
    await nats.stop();
  }
});

Deno.test("NatsHub: one NATS subscription per topic, gone with the last subscriber", async () => {
  const nats = await NatsServer.start({ monitor: true });
  const hub = new NatsHub({ servers: nats.url });
  // The subjects our one client connection is subscribed to, as the server lists them.
  const subscriptions = async () => {
    const connz = await nats.monitoring("connz?subs=1");
    const conns = connz.connections as { subscriptions_list?: string[] }[];
    assert.equal(conns.length, 1);
    return (conns[0].subscriptions_list ?? []).length;
  };
  try {
    await eventually("hub up", () => hub.up || undefined);
    const got: string[][] = [[], [], []];
    const subs = got.map((list) => hub.subscribe("lobby", (m) => list.push(m)));
    await eventually("one subscription", async () => await subscriptions() === 1 || undefined);
    subs[0].unsubscribe();
    subs[0].unsubscribe(); // idempotent
    subs[1].unsubscribe();
    // Still subscribed at the server: an UNSUB would have gone ahead of this PUB.
    hub.publish("lobby", "still here?");
    await eventually("delivered", () => got[2].length === 1 || undefined);
    assert.deepEqual(got, [[], [], ["still here?"]]);
    assert.equal(await subscriptions(), 1);
    subs[2].unsubscribe();
    await eventually("no subscription", async () => await subscriptions() === 0 || undefined);
  } finally {
    await hub.close();
    await nats.stop();
  }
});

Deno.test("NatsHub: a broker outage: bounded queue, the overflow reported, the rest sent", async () => {
  const nats = await NatsServer.start({ monitor: true });
  const statuses: HubStatus[] = [];
  const hub = new NatsHub({ servers: nats.url, maxQueue: 5 });
  hub.watch((s) => statuses.push(s));
  try {
    await eventually("hub up", () => hub.up || undefined);
    assert.deepEqual(statuses.map((s) => s.state), ["down", "up"], "connecting, then up");

    await nats.stop();
    await eventually("hub down", () => statuses.at(-1)?.state === "down" || undefined);
    for (let i = 0; i < 8; i++) hub.publish("lobby", `while down ${i}`);

    await nats.restart(); // a new server process: its counters start at zero
    const up = await eventually("hub up again", () => {
      const last = statuses.at(-1);
      return last?.state === "up" ? last : undefined;
    });
    assert.equal(up.dropped, 3, "8 published, 5 fit the queue");
    assert.ok(up.downMs > 0);
    const received = async () => (await nats.monitoring("varz")).in_msgs;
    await eventually(
      "the queued 5 reach the broker",
      async () => await received() === 5 || undefined,
    );
    await hub.close();
    assert.equal(await received(), 5, "and nothing more");
    hub.publish("lobby", "after close"); // dropped quietly
  } finally {
    await hub.close();
    await nats.stop();
  }
});

Deno.test("NatsHub: a bad topic or limit is a RangeError", async () => {
  assert.throws(() => new NatsHub({ servers: "nats://127.0.0.1:1", maxQueue: 0 }), RangeError);
  const hub = new NatsHub({ servers: "nats://127.0.0.1:1" });
  try {
    assert.throws(() => hub.publish("a.b", "x"), RangeError);
    assert.throws(() => hub.subscribe("", () => {}), RangeError);
    assert.throws(() => hub.subscribe("*", () => {}), RangeError);
  } finally {
    await hub.close();
  }
});
