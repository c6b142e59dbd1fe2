/**
 * The demo's rooms (examples/chat_rooms.ts) without a network: members are dill-ws
 * WebSocket pairs over in-memory pipes, and "processes" are several `ChatRooms` on one
 * in-process hub. Origin filtering (exactly once), who is online across processes, a
 * crashed process taken off the list, and the bounded outbox of a member that stops reading.
 */

import assert from "node:assert/strict";
import {
  type Handle,
  hclose,
  ipcPair,
  mrecvText,
  msend,
  now,
  WS_BINARY,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsRecv,
  wsStatus,
} from "../mod.ts";
import { ChatRooms } from "../examples/chat_rooms.ts";
import { type Hub, type HubStatus, type HubSubscription, LocalHub } from "../examples/hub.ts";
import { within } from "./helpers/transports.ts";

const T = 3000;
// deno-lint-ignore no-explicit-any
type Event = Record<string, any>;

/** One process's view of a shared hub; `close` cuts only this view, as a crash would. */
class HubView implements Hub {
  readonly kind = "view";
  readonly #hub: Hub;
  readonly #subs = new Set<HubSubscription>();
  #cut = false;

  constructor(hub: Hub) {
    this.#hub = hub;
  }

  publish(topic: string, message: string): void {
    if (!this.#cut) this.#hub.publish(topic, message);
  }

  subscribe(topic: string, deliver: (message: string) => void): HubSubscription {
    const sub = this.#hub.subscribe(topic, (m) => this.#cut || deliver(m));
    this.#subs.add(sub);
    return {
      ready: sub.ready,
      unsubscribe: () => {
        sub.unsubscribe();
        this.#subs.delete(sub);
      },
    };
  }

  watch(_listener: (status: HubStatus) => void): void {}

  close(): Promise<void> {
    this.#cut = true;
    for (const sub of this.#subs) sub.unsubscribe();
    return Promise.resolve();
  }
}

/** A chat member: the client end of a WebSocket pair whose server end `rooms` serves. */
class Member {
  readonly events: Event[] = [];
  readonly served: Promise<void>;
  readonly #client: Handle;
  readonly #reading: Promise<void> | null;

  private constructor(client: Handle, served: Promise<void>, read: boolean, readEveryMs: number) {
    this.#client = client;
    this.served = served;
    this.#reading = read ? this.#read(readEveryMs) : null;
  }

  /** A member of `room`; it reads unless `read` is false, one message per `readEveryMs`. */
  static async join(
    rooms: ChatRooms,
    room: string,
    read = true,
    readEveryMs = 0,
  ): Promise<Member> {
    const [s, c] = ipcPair({ pipeCapacity: 4096, readHighWater: 4096, writeHighWater: 4096 });
    // A client that stops reading stops taking messages soon: small limits on its side.
    const clientLimits = { maxQueuedMessages: 4, maxBufferedBytes: 16 * 1024, readHighWater: 4096 };
    const [server, client] = await Promise.all([
      wsAttachServer(s, WS_TEXT, now() + T),
      wsAttachClient(c, WS_TEXT, "/ws", "chat", now() + T, clientLimits),
    ]);
    const served = rooms.serve({
      handle: server.handle,
      room,
      peer: "pipe",
      close: () => Promise.resolve(closeQuietly(server.handle)),
    });
    const member = new Member(client.handle, served, read, readEveryMs);
    if (read) await member.next((e) => e.kind === "welcome");
    return member;
  }

  get name(): string {
    return this.events[0].name;
  }

  async #read(everyMs: number): Promise<void> {
    try {
      for (;;) {
        this.events.push(JSON.parse(await mrecvText(this.#client, -1)));
        if (everyMs > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    } catch {
      // Closed: the member left or was dropped.
    }
  }

  async next(match: (e: Event) => boolean): Promise<Event> {
    const deadline = Date.now() + T;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no match in ${JSON.stringify(this.events)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  count(match: (e: Event) => boolean): number {
    return this.events.filter(match).length;
  }

  say(text: string): Promise<void> {
    return msend(this.#client, text, now() + T);
  }

  /** Hangs up without a closing handshake and waits until the rooms are done with it. */
  async hangUp(): Promise<void> {
    closeQuietly(this.#client);
    await within(this.served, T, "the session ends");
    await this.#reading;
  }
}

function closeQuietly(h: Handle): void {
  try {
    hclose(h);
  } catch {
    // Already closed (a dropped member's handle is).
  }
}

const chat = (from: string, text: string) => (e: Event) =>
  e.kind === "chat" && e.from === from && e.text === text;

Deno.test("rooms: two processes on one hub: each message once, everywhere", async () => {
  const hub = new LocalHub();
  const p1 = new ChatRooms({ hub: new HubView(hub), node: "p1" });
  const p2 = new ChatRooms({ hub: new HubView(hub), node: "p2" });
  const a = await Member.join(p1, "lobby");
  const b = await Member.join(p2, "lobby");
  const c = await Member.join(p1, "lobby");
  try {
    assert.equal(a.name, "guest-1@p1");
    assert.equal(b.name, "guest-1@p2");
    // b's process learnt about a from the answer to its "who": in b's welcome when it came
    // first (the room waits for its subscription before welcoming), else as a join.
    await b.next((e) =>
      (e.kind === "welcome" && e.online.includes(a.name)) ||
      (e.kind === "join" && e.name === a.name)
    );
    for (const text of ["x", "y"]) await a.say(text);
    await b.say("z");
    for (const m of [a, b, c]) {
      await m.next(chat(b.name, "z"));
      for (const text of ["x", "y"]) await m.next(chat(a.name, text));
    }
    await a.say("last"); // the hub keeps order: any echo of x or y would have come by now
    for (const m of [a, b, c]) await m.next(chat(a.name, "last"));
    for (const m of [a, b, c]) {
      const said: [string, string][] = [[a.name, "x"], [a.name, "y"], [b.name, "z"]];
      for (const [from, text] of said) {
        assert.equal(m.count(chat(from, text)), 1, `${m.name} got ${text} once`);
      }
    }
  } finally {
    for (const m of [a, b, c]) await m.hangUp();
    await p1.close();
    await p2.close();
  }
});

Deno.test("rooms: a process that goes silent is taken off the list, its members gone", async () => {
  const hub = new LocalHub();
  const p1 = new ChatRooms({ hub: new HubView(hub), node: "p1", rosterIntervalMs: 50 });
  const p2View = new HubView(hub);
  const p2 = new ChatRooms({ hub: p2View, node: "p2", rosterIntervalMs: 50 });
  const a = await Member.join(p1, "lobby");
  const b = await Member.join(p2, "lobby");
  try {
    await a.next((e) => e.kind === "join" && e.name === b.name);
    await p2View.close(); // p2 "crashes": not another word from it, not even b's leave
    const leave = await a.next((e) => e.kind === "leave" && e.name === b.name);
    assert.deepEqual(leave, { kind: "leave", name: b.name });
  } finally {
    await a.hangUp();
    await b.hangUp();
    await p1.close();
    await p2.close();
  }
});

Deno.test("rooms: a room that already has hundreds of people elsewhere is told in one notice, not an event per name", async () => {
  const hub = new LocalHub();
  const log: string[] = [];
  const rooms = new ChatRooms({ hub: new HubView(hub), node: "p1", log: (l) => log.push(l) });
  const a = await Member.join(rooms, "lobby");
  try {
    // Another process says who it has: 300 people, more than a member's outbox holds
    // (256 events), which used to drop every member of the room here at once.
    const names = Array.from({ length: 300 }, (_, i) => `guest-${i}@p2`);
    hub.publish("lobby", JSON.stringify({ origin: "p2", event: { kind: "here", names } }));
    const notice = await a.next((e) => e.kind === "notice" && /On other servers/.test(e.text));
    assert.match(notice.text, /300 joined: guest-0@p2, .*guest-9@p2 and 290 more/);
    assert.equal(a.count((e) => e.kind === "join"), 0);
    // Still a member: a chat message comes back.
    await a.say("still here");
    await a.next(chat(a.name, "still here"));
    assert.doesNotMatch(log.join("\n"), /dropped/);
    // A few changes are still told name by name.
    const fewer = names.slice(0, 297);
    hub.publish("lobby", JSON.stringify({ origin: "p2", event: { kind: "here", names: fewer } }));
    await a.next((e) => e.kind === "leave" && e.name === "guest-299@p2");
  } finally {
    await a.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: a welcome larger than the outbox's character bound still goes out: only a backlog is bounded", async () => {
  const hub = new LocalHub();
  const log: string[] = [];
  const rooms = new ChatRooms({ hub: new HubView(hub), node: "p1", log: (l) => log.push(l) });
  const a = await Member.join(rooms, "lobby");
  let b: Member | null = null;
  try {
    // Another process has 10,000 people with long names: a welcome's roster alone is
    // some 480,000 characters, past the 256 Ki bound.
    const names = Array.from({ length: 10_000 }, (_, i) => `guest-${i}-${"x".repeat(30)}@p2`);
    hub.publish("lobby", JSON.stringify({ origin: "p2", event: { kind: "here", names } }));
    await a.next((e) => e.kind === "notice" && /On other servers/.test(e.text));
    b = await Member.join(rooms, "lobby");
    const welcome = await b.next((e) => e.kind === "welcome");
    assert.equal(welcome.online.length, 10_002);
    await b.say("in");
    await b.next(chat(b.name, "in"));
    assert.doesNotMatch(log.join("\n"), /dropped/);
  } finally {
    await b?.hangUp();
    await a.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: a flood of 'who' gets a bounded number of roster answers, not one each", async () => {
  const hub = new LocalHub();
  const rooms = new ChatRooms({ hub: new HubView(hub), node: "p1" });
  const a = await Member.join(rooms, "lobby");
  const answers: string[] = [];
  const sub = hub.subscribe("lobby", (m) => {
    const { origin, event } = JSON.parse(m);
    if (origin !== "p2" && event.kind === "here") answers.push(m);
  });
  try {
    for (let i = 0; i < 200; i++) {
      hub.publish("lobby", JSON.stringify({ origin: "p2", event: { kind: "who" } }));
    }
    // A burst of 8 is answered at once (processes opening the room together), the rest
    // share one answer once the rate (one per 250 ms) allows it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(answers.length, 8, `${answers.length} answers to 200 'who'`);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(answers.length, 9, `${answers.length} answers once the rate allowed one more`);
  } finally {
    sub.unsubscribe();
    await a.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: a member that stops reading is dropped at its outbox bound", async () => {
  const log: string[] = [];
  const rooms = new ChatRooms({ maxOutbox: 8, log: (line) => log.push(line) });
  const fast = await Member.join(rooms, "lobby");
  const slow = await Member.join(rooms, "lobby", false);
  try {
    // One message at a time, each waited for by its sender: only the slow one falls behind
    // (its side of the pipe holds some 30 KB before the server's sends wait).
    // Fresh random letters each time: compression (negotiated by default, with context
    // takeover) must not shrink the messages to back-references to the previous one.
    const randomText = () =>
      String.fromCharCode(...crypto.getRandomValues(new Uint8Array(1000)).map((b) => 97 + b % 26));
    for (let i = 0; i < 100; i++) {
      const text = `${i} ${randomText()}`;
      await fast.say(text);
      await fast.next(chat(fast.name, text));
    }
    await within(slow.served, T, "the slow member is dropped");
    assert.match(log.join("\n"), /guest-2 dropped: 8 events behind/);
    // The room went on for the one that reads: it got every one of its messages.
    assert.equal(fast.count((e) => e.kind === "chat"), 100);
    await fast.next((e) => e.kind === "leave" && e.name === "guest-2");
  } finally {
    await fast.hangUp();
    await slow.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: control characters, six times their size in JSON, meet the outbox's byte bound", async () => {
  const log: string[] = [];
  // The demo's defaults, but no sending rate to speak of: the bound is what is tested.
  const rooms = new ChatRooms({ sendRate: 1 << 30, log: (line) => log.push(line) });
  const fast = await Member.join(rooms, "lobby");
  const slow = await Member.join(rooms, "lobby", false);
  try {
    // The attack an external review found: 4,096 bytes of U+0001 per message, each about
    // 24.6 KB once queued as JSON. Random lengths keep compression from sharing them.
    const controlText = (i: number) => "\x01".repeat(3000 + (i * 97) % 1000);
    let dropped = false;
    slow.served.then(() => dropped = true);
    let sent = 0;
    while (!dropped && sent < 200) {
      const text = controlText(sent++);
      await fast.say(text);
      await fast.next(chat(fast.name, text));
    }
    await within(slow.served, T, "the slow member is dropped");
    assert.match(log.join("\n"), /guest-2 dropped: 262144 characters behind/);
    // Far fewer than 256 events: characters, not events, were the bound.
    assert.ok(sent < 60, `dropped after ${sent} messages`);
  } finally {
    await fast.hangUp();
    await slow.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: a burst from one member is held back by TCP, and members that keep up stay", async () => {
  // Found by an attack: 15 messages of control characters sent at once (about 24.6 K
  // characters each in JSON) filled every member's outbox faster than the network drained
  // it, and the rooms dropped every reader. Here 20 messages of about 3 K characters each
  // (55 K) against outboxes of 16 K, at 32 K a second (0.7 s in all; about 30 K are on their
  // way to each reader at any time, in the pipe and the client), and readers that take a
  // message every 5 ms (550 KB/s, a network's pace, not a slow reader's).
  const log: string[] = [];
  const rooms = new ChatRooms({
    maxOutboxChars: 16 * 1024,
    sendRate: 32 * 1024,
    log: (line) => log.push(line),
  });
  const readers = [
    await Member.join(rooms, "lobby", true, 5),
    await Member.join(rooms, "lobby", true, 5),
    await Member.join(rooms, "lobby", true, 5),
  ];
  const sender = await Member.join(rooms, "lobby");
  const burst = 20;
  try {
    // Random control characters: six times their size in JSON, and compression (on by
    // default, both ways) cannot shrink them much.
    const controls = () =>
      String.fromCharCode(...crypto.getRandomValues(new Uint8Array(500)).map((b) => 1 + b % 31));
    const texts = Array.from({ length: burst }, (_, i) => `${i} ${controls()}`);
    await Promise.all(texts.map((text) => sender.say(text))); // all at once
    for (const reader of readers) {
      await reader.next(chat(sender.name, texts[burst - 1]));
      assert.equal(reader.count((e) => e.kind === "chat"), burst);
    }
    assert.doesNotMatch(log.join("\n"), /dropped/);
  } finally {
    for (const m of [...readers, sender]) await m.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: a member waiting for its send credit leaves at once when the server goes away", async () => {
  // Found by review: the wait was a plain timer, so stopping the server waited it out.
  const rooms = new ChatRooms({ sendRate: 2000 }); // one big message: about 12 s of credit
  const member = await Member.join(rooms, "lobby");
  try {
    const text = "\x01".repeat(4000);
    await member.say(text);
    await member.next(chat(member.name, text)); // broadcast: its sender now waits
    const t0 = Date.now();
    rooms.goAway();
    await within(member.served, T, "the session ends");
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  } finally {
    await member.hangUp();
    await rooms.close();
  }
});

Deno.test("rooms: a binary message closes its sender's connection with 1003", async () => {
  const rooms = new ChatRooms();
  const [s, c] = ipcPair();
  const [server, client] = await Promise.all([
    wsAttachServer(s, WS_TEXT, now() + T),
    wsAttachClient(c, WS_BINARY, "/ws", "chat", now() + T),
  ]);
  const served = rooms.serve({
    handle: server.handle,
    room: "lobby",
    peer: "pipe",
    close: () => Promise.resolve(closeQuietly(server.handle)),
  });
  try {
    await wsRecv(client.handle, now() + T); // the welcome
    await msend(client.handle, new Uint8Array([1, 2, 3]), now() + T);
    for (;;) {
      const ended = await wsRecv(client.handle, now() + T).then(() => null, (e) => e);
      if (ended) break; // events before the close are skipped
    }
    assert.deepEqual(wsStatus(client.handle), { status: 1003, reason: "text messages only" });
    await within(served, T, "the session ends");
  } finally {
    closeQuietly(client.handle);
    await rooms.close();
  }
});

Deno.test("rooms: a limit that is not a positive integer is a RangeError", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => new ChatRooms({ maxOutbox: bad }), RangeError);
    assert.throws(() => new ChatRooms({ maxOutboxChars: bad }), RangeError);
    assert.throws(() => new ChatRooms({ rosterIntervalMs: bad }), RangeError);
  }
});
