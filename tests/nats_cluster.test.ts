/**
 * The chat demo as a cluster with the real NATS server (Debian's `nats-server`, started and
 * stopped here on a free port): three demo processes share one port (`SO_REUSEPORT`),
 * their rooms joined through NATS, and Deno's own WebSocket as the chat clients.
 *
 * - a message said on one process reaches the clients of every process exactly once;
 * - a killed process's clients reconnect (the kernel hands them to a survivor) and go on;
 * - a NATS restart: the processes keep serving their own clients, tell them the link is
 *   gone and back, and nothing said after it came back is lost.
 *
 * Needs `nats-server` (`bash tests/peers/install.sh` as root installs it).
 */

import assert from "node:assert/strict";
import type { DemoMode } from "../examples/demo.ts";
import { DemoProcess, freePort, NatsServer } from "../examples/demo_cluster.ts";
import { ChatClient, type ChatEvent } from "./helpers/chat_client.ts";
import { within } from "./helpers/transports.ts";

const NODES = ["p1", "p2", "p3"];
/** Connections tried to land at least one client on every process (the kernel picks). */
const MAX_CONNECTS = 60;
const STEP_MS = 5_000;

/** NATS and three demo processes on one port, for `fn`; everything is stopped after. */
async function withCluster(
  fn: (cluster: { port: number; nats: NatsServer; processes: DemoProcess[] }) => Promise<void>,
  mode: DemoMode = "tcp",
): Promise<void> {
  const nats = await NatsServer.start({ monitor: true });
  const port = freePort();
  const processes: DemoProcess[] = [];
  try {
    for (const name of NODES) {
      processes.push(await DemoProcess.start(name, port, nats.url, { mode }));
    }
    await fn({ port, nats, processes });
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await nats.stop();
  }
}

/** Which process a client landed on: its name ends with `@<node>`. */
function nodeOf(client: ChatClient): string {
  return client.name.split("@")[1];
}

/** Joins until every process has `perNode` clients; extra clients leave again. */
async function spreadClients(port: number, perNode = 1): Promise<Map<string, ChatClient[]>> {
  const byNode = new Map<string, ChatClient[]>(NODES.map((n) => [n, []]));
  for (let i = 0; i < MAX_CONNECTS; i++) {
    if ([...byNode.values()].every((list) => list.length >= perNode)) return byNode;
    const client = await ChatClient.join(port);
    const list = byNode.get(nodeOf(client));
    assert.ok(list, `unexpected name ${client.name}`);
    if (list.length < perNode) list.push(client);
    else await client.leave();
  }
  await Promise.all([...byNode.values()].flat().map((c) => c.leave()));
  throw new Error(`${MAX_CONNECTS} connections did not reach every process`);
}

/** Who is online as a client sees it: its welcome list, then every join and leave. */
function onlineAsSeenBy(client: ChatClient): string[] {
  const online = new Set<string>(client.events[0].online);
  for (const e of client.events) {
    if (e.kind === "join") online.add(e.name);
    if (e.kind === "leave") online.delete(e.name);
  }
  return [...online].sort();
}

const chatFrom = (from: string, text: string) => (e: ChatEvent) =>
  e.kind === "chat" && e.from === from && e.text === text;

for (const mode of ["tcp", "serve"] as const) {
  Deno.test(`nats cluster (${mode}): a message said on A reaches B and C (and A) exactly once`, async () => {
    await withCluster(async ({ port, nats }) => {
      const byNode = await spreadClients(port, 2);
      const all = [...byNode.values()].flat();
      try {
        const [a1] = byNode.get("p1")!;
        const [b1] = byNode.get("p2")!;
        for (const text of ["one", "two", "three"]) a1.send(text);
        for (const c of all) {
          for (const text of ["one", "two", "three"]) {
            await c.next(chatFrom(a1.name, text), STEP_MS);
          }
        }
        // A duplicate (p1's own publication coming back from NATS) would arrive at p1 before
        // anything published after it by someone else: a message from p2, sent once p2's
        // clients saw "three", comes after the echo of "three" on p1's link.
        b1.send("sync");
        for (const c of all) await c.next(chatFrom(b1.name, "sync"), STEP_MS);
        for (const c of all) {
          for (const text of ["one", "two", "three", "sync"]) {
            const from = text === "sync" ? b1.name : a1.name;
            assert.equal(c.count(chatFrom(from, text)), 1, `${c.name} got "${text}" once`);
          }
        }
        // One NATS subscription per room per process, however many clients it has in the room.
        const connz = await nats.monitoring("connz?subs=1");
        const conns = connz.connections as { name?: string; subscriptions_list?: string[] }[];
        assert.equal(conns.length, NODES.length, "one NATS connection per process");
        for (const c of conns) {
          const lobby = (c.subscriptions_list ?? []).filter((s) => s === "dill-chat.lobby");
          assert.equal(lobby.length, 1, `${c.name}: ${JSON.stringify(c.subscriptions_list)}`);
        }
        // Who is online is global: the welcome list, then the joins and leaves, name everybody.
        const everybody = all.map((c) => c.name).sort();
        for (const c of all) assert.deepEqual(onlineAsSeenBy(c), everybody, `${c.name}'s view`);
      } finally {
        await Promise.all(all.map((c) => c.leave()));
      }
    }, mode);
  });
}

Deno.test("nats cluster: a killed process's clients reconnect to another and go on", async () => {
  await withCluster(async ({ port, processes }) => {
    const byNode = await spreadClients(port, 1);
    const [a, b, c] = NODES.map((n) => byNode.get(n)![0]);
    const survivors = [a, c];
    const rejoined: ChatClient[] = [];
    try {
      a.send("before");
      for (const x of [a, b, c]) await x.next(chatFrom(a.name, "before"), STEP_MS);

      await processes[1].kill();
      const closed = await within(b.closed, STEP_MS, "the killed process's client sees the drop");
      assert.equal(closed.wasClean, false, "no close frame: the process is gone");

      // The client comes back on the same port; a survivor takes it.
      const again = await ChatClient.join(port, undefined, STEP_MS);
      rejoined.push(again);
      assert.notEqual(nodeOf(again), "p2");
      again.send("back again");
      for (const x of [...survivors, again]) {
        await x.next(chatFrom(again.name, "back again"), STEP_MS);
      }
      c.send("welcome back");
      for (const x of [a, again]) await x.next(chatFrom(c.name, "welcome back"), STEP_MS);
      assert.equal(again.count(chatFrom(c.name, "welcome back")), 1);
    } catch (e) {
      // A failure once seen under load (a survivor missed the rejoined client's message): say
      // where everybody was and what each process logged, so that the next one can be traced.
      const where = [a, b, c, ...rejoined].map((x) => x.name).join(", ");
      const logs = processes.map((p) => `--- ${p.name}:\n${p.lines.tail()}`).join("\n");
      throw new Error(`${(e as Error).message}\nclients: ${where}\n${logs}`, { cause: e });
    } finally {
      await Promise.all([...survivors, ...rejoined].map((x) => x.leave()));
    }
  });
});

Deno.test("nats cluster: NATS restarts mid-chat; local chat goes on, nothing after is lost", async () => {
  await withCluster(async ({ port, nats, processes }) => {
    const byNode = await spreadClients(port, 2);
    const all = [...byNode.values()].flat();
    try {
      const [a1, a2] = byNode.get("p1")!;
      const [b1] = byNode.get("p2")!;
      a1.send("before the outage");
      for (const x of all) await x.next(chatFrom(a1.name, "before the outage"), STEP_MS);

      const logged = processes.map((p) => p.lines.count);
      await nats.stop();
      for (const x of all) await x.next((e) => e.kind === "notice" && e.link === "down", STEP_MS);
      // The process still serves its own clients.
      a1.send("during the outage");
      await a2.next(chatFrom(a1.name, "during the outage"), STEP_MS);

      await nats.restart();
      const up = await Promise.all(
        all.map((x) => x.next((e) => e.kind === "notice" && e.link === "up", STEP_MS)),
      );
      assert.match(up[0].text, /back after/);
      assert.match(up[0].text, /did not reach this one/);
      for (const [i, p] of processes.entries()) {
        await p.lines.wait(/hub \(nats\) down: /, STEP_MS, logged[i]);
        await p.lines.wait(
          /hub \(nats\) up after \d+ ms; \d+ publications dropped/,
          STEP_MS,
          logged[i],
        );
      }

      // Every process is back on NATS: all that is said from now on reaches everyone once.
      const said: [ChatClient, string][] = [];
      for (const [node, clients] of byNode) {
        for (let i = 0; i < 3; i++) said.push([clients[0], `after ${node} ${i}`]);
      }
      for (const [who, text] of said) who.send(text);
      for (const x of all) {
        for (const [who, text] of said) await x.next(chatFrom(who.name, text), STEP_MS);
      }
      b1.send("sync");
      for (const x of all) await x.next(chatFrom(b1.name, "sync"), STEP_MS);
      for (const x of all) {
        for (const [who, text] of said) {
          assert.equal(x.count(chatFrom(who.name, text)), 1, `${x.name} got "${text}" once`);
        }
        const once = x.count(chatFrom(a1.name, "during the outage"));
        assert.ok(once <= 1, `${x.name} got "during the outage" ${once} times`);
      }
    } finally {
      await Promise.all(all.map((c) => c.leave()));
    }
  });
});
