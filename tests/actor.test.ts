/**
 * The actor runtime (actors/actor.ts, actors/request.ts): mailbox order, no
 * re-entrancy, calls and their deadline timers, crashes, owned chains and the
 * mailbox limit.
 */

import assert from "node:assert/strict";
import { Actor, call, cast, type Message } from "../actors/actor.ts";
import type { PendingCall, Request } from "../actors/request.ts";
import { DillError, isDillError } from "../protocol/errors.ts";
import { now } from "../actors/time.ts";
import { delay, isSettled, pastDeadline, rejectsWith, within } from "./helpers/transports.ts";
import { withTimerSpy } from "./helpers/timers.ts";
import { deadlineWatch } from "../actors/deadline_scheduler.ts";

// ---- a small test actor -------------------------------------------------------------

/** What the probe actor understands: a kind, an optional call, an optional number. */
interface ProbeMsg extends Message {
  readonly kind: string;
  readonly req?: Request<unknown>;
  readonly n?: number;
}

type Handler = (self: Probe, msg: ProbeMsg) => void;

/**
 * A test actor: `handler` decides what each message does; it can park calls
 * (`hold`), answer them later (`answerAll`), and own other probes (`own`).
 */
class Probe extends Actor<ProbeMsg> {
  readonly held: PendingCall[] = [];
  readonly terminations: DillError[] = [];
  readonly expiries: PendingCall[] = [];

  constructor(name: string, readonly handler: Handler = () => {}, mailboxLimit?: number) {
    super(name, mailboxLimit);
  }

  protected receive(msg: ProbeMsg): void {
    this.handler(this, msg);
  }

  protected expired(req: PendingCall): void {
    this.expiries.push(req);
    const i = this.held.indexOf(req);
    if (i >= 0) this.held.splice(i, 1);
    req.timeOut();
  }

  protected terminate(reason: DillError): void {
    this.terminations.push(reason);
    for (const req of this.held.splice(0)) req.reject(reason);
  }

  /** Parks `req` until `answerAll`; false (and ETIMEDOUT) if its deadline allows no wait. */
  hold(req: PendingCall): boolean {
    this.held.push(req);
    if (this.park(req)) return true;
    this.held.pop();
    return false;
  }

  answerAll(value: unknown): void {
    for (const req of this.held.splice(0)) (req as Request<unknown>).resolve(value);
  }

  own(child: Actor<Message>): void {
    this.adopt(child);
  }

  disown(child: Actor<Message>): void {
    this.release(child);
  }
}

/** A call of `kind` to `actor`. */
function ask<T = unknown>(actor: Probe, kind: string, deadline = -1, n?: number): Promise<T> {
  return call<T, ProbeMsg>(actor, kind, deadline, (req) => ({ kind, req, n }) as ProbeMsg);
}

/** A probe that parks every "wait" call, answers "echo" at once and opens on "open". */
function gate(name = "gate"): Probe {
  return new Probe(name, (self, msg) => {
    if (msg.kind === "wait") self.hold(msg.req!);
    else if (msg.kind === "echo") msg.req!.resolve(msg.n);
    else if (msg.kind === "open") self.answerAll("opened");
  });
}

const closing = () => new DillError("ECANCELED", "closed by the test");

// ---- order and re-entrancy ---------------------------------------------------------------

Deno.test("actor: messages queued while busy are handled in FIFO order", () => {
  const log: string[] = [];
  const probe = new Probe("fifo", (self, msg) => {
    log.push(`${msg.kind}:${msg.n ?? ""}`);
    if (msg.kind === "start") {
      for (let i = 1; i <= 50; i++) cast(self, { kind: "item", n: i });
      log.push("start:end");
    }
  });
  cast(probe, { kind: "start" });
  cast(probe, { kind: "after", n: 0 });
  const expected = ["start:", "start:end"];
  for (let i = 1; i <= 50; i++) expected.push(`item:${i}`);
  expected.push("after:0");
  assert.deepEqual(log, expected);
});

Deno.test("actor: a handler that sends to itself is not re-entered", async () => {
  let depth = 0;
  let maxDepth = 0;
  let handled = 0;
  const probe = new Probe("self-sender", (self, msg) => {
    depth++;
    maxDepth = Math.max(maxDepth, depth);
    handled++;
    if (msg.kind === "ping" && msg.n! > 0) {
      cast(self, { kind: "ping", n: msg.n! - 1 });
      // A call to itself is queued too, and answered after this handler returns.
      ask(self, "echo", -1, msg.n).catch(() => {});
    }
    if (msg.kind === "echo") msg.req!.resolve(msg.n);
    depth--;
  });
  cast(probe, { kind: "ping", n: 3 });
  assert.equal(maxDepth, 1, "a handler ran inside another handler");
  assert.equal(handled, 7, "3 pings + 3 self-calls + the first ping");
  assert.equal(await ask(probe, "echo", -1, 9), 9);
});

Deno.test("actor: two actors messaging each other each handle one message at a time", () => {
  const trace: string[] = [];
  const depth = { a: 0, b: 0 };
  let maxDepth = 0;
  const actors: Record<"a" | "b", Probe> = {} as Record<"a" | "b", Probe>;
  for (const [me, other] of [["a", "b"], ["b", "a"]] as const) {
    actors[me] = new Probe(me, (_self, msg) => {
      maxDepth = Math.max(maxDepth, ++depth[me]);
      trace.push(`${me}${msg.n}`);
      if (msg.n! < 6) cast(actors[other], { kind: "x", n: msg.n! + 1 });
      depth[me]--;
    });
  }
  cast(actors.a, { kind: "x", n: 0 });
  assert.equal(maxDepth, 1, "an actor handled a message inside its own handler");
  assert.deepEqual(trace, ["a0", "b1", "a2", "b3", "a4", "b5", "a6"]);
});

// ---- calls ---------------------------------------------------------------------------------

Deno.test("actor: call resolves with the answer, at once or later", async () => {
  const g = gate();
  assert.equal(await ask(g, "echo", -1, 42), 42);
  const later = ask<string>(g, "wait", -1);
  assert.equal(await isSettled(later), false, "a parked call resolved before it was answered");
  cast(g, { kind: "open" });
  assert.equal(await later, "opened");
});

Deno.test("actor: a call with deadline -1 creates no timer, even when parked", async () => {
  await withTimerSpy(async (spy) => {
    const g = gate();
    const parked = ask(g, "wait", -1);
    assert.equal(await isSettled(parked), false);
    cast(g, { kind: "open" });
    await parked;
    assert.equal(spy.created.length, 0, "a timer was created for deadline -1");
  });
});

Deno.test("actor: a call answered at once creates no timer, whatever its deadline", async () => {
  await withTimerSpy(async (spy) => {
    const g = gate();
    assert.equal(await ask(g, "echo", now() + 60_000, 1), 1);
    assert.equal(await ask(g, "echo", 0, 2), 2);
    assert.equal(await ask(g, "echo", -1, 3), 3);
    assert.equal(spy.created.length, 0, "a call answered at once armed a timer");
  });
});

Deno.test("actor: a parked call with a finite deadline is watched until answered, then holds no timer", async () => {
  await withTimerSpy(async (spy) => {
    const g = gate();
    const parked = ask(g, "wait", now() + 60_000);
    assert.ok(spy.created.length <= 1, "more than one timer for the parked call");
    assert.deepEqual(deadlineWatch(), { watched: 1, holding: true });
    cast(g, { kind: "open" });
    assert.equal(await parked, "opened");
    assert.deepEqual(
      deadlineWatch(),
      { watched: 0, holding: false },
      "the deadline outlived the call",
    );
    assert.equal(g.expiries.length, 0);
  });
});

Deno.test("actor: calls parked one after another reuse one timer", async () => {
  await withTimerSpy(async (spy) => {
    const g = gate();
    for (let i = 0; i < 50; i++) {
      const parked = ask(g, "wait", now() + 60_000 + i);
      cast(g, { kind: "open" });
      assert.equal(await parked, "opened");
    }
    assert.ok(spy.created.length <= 1, `${spy.created.length} timers for 50 parked calls`);
    assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
  });
});

Deno.test("actor: a parked call that is rejected (actor closed) leaves no deadline or timer behind", async () => {
  await withTimerSpy(async (spy) => {
    const g = gate();
    const parked = ask(g, "wait", now() + 60_000);
    g.close(closing());
    await rejectsWith(parked, "ECANCELED");
    assert.ok(spy.created.length <= 1);
    assert.deepEqual(
      deadlineWatch(),
      { watched: 0, holding: false },
      "the deadline outlived the actor",
    );
  });
});

Deno.test("actor: a parked call fails ETIMEDOUT when its deadline passes", async () => {
  const g = gate();
  const start = now();
  const parked = ask(g, "wait", now() + 40);
  await rejectsWith(parked, "ETIMEDOUT");
  const waited = now() - start;
  assert.ok(waited >= 39, `timed out too early (${waited} ms)`);
  assert.ok(waited < 2000, `timed out too late (${waited} ms)`);
  assert.equal(g.expiries.length, 1, "expired() ran as a message");
  // The actor still works after a call of it timed out.
  assert.equal(await ask(g, "echo", -1, 5), 5);
});

Deno.test("actor: deadline 0 or past on a call that must wait fails ETIMEDOUT at once", async () => {
  await withTimerSpy(async (spy) => {
    const g = gate();
    for (const deadline of [0, pastDeadline()]) {
      const p = ask(g, "wait", deadline);
      assert.equal(await isSettled(p), true, `deadline ${deadline} waited`);
      await rejectsWith(p, "ETIMEDOUT");
    }
    assert.equal(g.held.length, 0, "a timed-out call stayed parked");
    assert.equal(spy.created.length, 0, "deadline 0 armed a timer");
  });
});

// ---- crashes, closing and ownership -------------------------------------------------------

/**
 * A probe that throws on "boom", parks "wait", answers "echo". On "queue-then-boom" it
 * first makes two calls to itself (they queue, since it is busy) and pushes them to
 * `queued`, then throws.
 */
function fragile(name: string, queued: Promise<unknown>[] = []): Probe {
  return new Probe(name, (self, msg) => {
    if (msg.kind === "wait") self.hold(msg.req!);
    else if (msg.kind === "echo") msg.req!.resolve(msg.n);
    else if (msg.kind === "boom") throw new Error("kaboom");
    else if (msg.kind === "queue-then-boom") {
      queued.push(ask(self, "echo", -1, 1), ask(self, "wait", now() + 60_000));
      throw new Error("kaboom");
    }
  });
}

Deno.test("actor: a throwing handler fails parked and queued calls and closes what it owns", async () => {
  const queued: Promise<unknown>[] = [];
  const parent = fragile("parent", queued);
  const child = gate("child");
  const grandchild = gate("grandchild");
  parent.own(child);
  child.own(grandchild);
  const parked = ask(parent, "wait", -1);
  const childParked = ask(child, "wait", -1);
  const deepParked = ask(grandchild, "wait", now() + 60_000);

  cast(parent, { kind: "queue-then-boom" });

  assert.equal(queued.length, 2);
  const [queuedEcho, queuedWait] = queued;
  for (const p of [parked, queuedEcho, queuedWait, childParked, deepParked]) {
    const err = await within(rejectsWith(p, "ECONNRESET"), 1000, "a call of a crashed actor");
    assert.match(err.message, /kaboom/);
  }
  for (const a of [parent, child, grandchild]) {
    assert.ok(a.closedReason, `${a.name} is still open`);
    assert.equal(a.terminations.length, 1, `${a.name} terminated ${a.terminations.length} times`);
  }
  // Later calls fail with the same reason instead of hanging.
  await rejectsWith(ask(parent, "echo", -1, 1), "ECONNRESET");
  await rejectsWith(ask(grandchild, "echo", -1, 1), "ECONNRESET");
});

Deno.test({
  name: "actor: a throwing handler fails the call it was handling",
  fn: async () => {
    const probe = fragile("thrower");
    const err = await within(rejectsWith(ask(probe, "boom"), "ECONNRESET"), 1000, "the call");
    assert.match(err.message, /kaboom/);
  },
});

Deno.test("actor: closing the top of an owned chain closes every actor under it", async () => {
  const chain = [gate("top"), gate("middle"), gate("bottom")];
  const side = gate("side");
  chain[0].own(chain[1]);
  chain[1].own(chain[2]);
  chain[0].own(side);
  const pending = chain.map((a) => ask(a, "wait", now() + 60_000));
  const reason = closing();
  chain[0].close(reason);
  for (const p of pending) {
    assert.equal(await within(rejectsWith(p, "ECANCELED"), 1000, "a call under the top"), reason);
  }
  for (const a of [...chain, side]) {
    assert.equal(a.closedReason, reason, `${a.name} was not closed with the top's reason`);
    assert.equal(a.terminations.length, 1);
  }
  // Closing again is a no-op: no second terminate.
  chain[0].close(closing());
  chain[2].close(closing());
  assert.equal(chain[2].terminations.length, 1);
});

Deno.test("actor: a child that closes on its own closes its owners (link), not its siblings' owner twice", async () => {
  const top = gate("top");
  const mid = gate("mid");
  const leaf = gate("leaf");
  top.own(mid);
  mid.own(leaf);
  const topCall = ask(top, "wait", -1);
  const failure = new DillError("ECONNRESET", "leaf broke");
  leaf.close(failure);
  await within(rejectsWith(topCall, "ECONNRESET"), 1000, "the owner's call");
  assert.equal(mid.closedReason, failure);
  assert.equal(top.closedReason, failure);
  assert.equal(top.terminations.length, 1);
});

Deno.test("actor: a released child no longer closes with its former owner", async () => {
  const owner = gate("owner");
  const child = gate("child");
  owner.own(child);
  owner.disown(child);
  owner.close(closing());
  assert.equal(child.closedReason, null, "a released child was closed");
  assert.equal(await ask(child, "echo", -1, 7), 7);
  child.close(closing());
  assert.equal(owner.terminations.length, 1, "the child's close reached its former owner");
});

Deno.test("actor: calls to a closed actor fail with its close reason", async () => {
  const g = gate();
  const reason = closing();
  g.close(reason);
  assert.equal(await rejectsWith(ask(g, "echo", -1, 1), "ECANCELED"), reason);
  assert.equal(await rejectsWith(ask(g, "wait", now() + 1000), "ECANCELED"), reason);
});

// ---- mailbox limit ---------------------------------------------------------------------------

Deno.test("actor: calls beyond the mailbox limit fail EBUSY; the queued ones are answered", async () => {
  const calls: Promise<unknown>[] = [];
  const probe = new Probe("small-box", (self, msg) => {
    if (msg.kind === "flood") { for (let i = 0; i < 5; i++) calls.push(ask(self, "echo", -1, i)); }
    else if (msg.kind === "echo") msg.req!.resolve(msg.n);
  }, 3);
  cast(probe, { kind: "flood" });
  assert.equal(calls.length, 5);
  const results = await Promise.allSettled(calls);
  assert.deepEqual(results.slice(0, 3), [0, 1, 2].map((value) => ({ status: "fulfilled", value })));
  for (const r of results.slice(3)) {
    assert.equal(r.status, "rejected");
    assert.ok(isDillError((r as PromiseRejectedResult).reason, "EBUSY"));
  }
  // Once the backlog is handled, the actor accepts calls again.
  assert.equal(await ask(probe, "echo", -1, 9), 9);
});

Deno.test("actor: reports (messages without a request) beyond the mailbox limit are all handled, in order", () => {
  // A TLS engine fed one read of many small records reports each record's data while its
  // actor is busy: dropping any of them would lose data silently.
  const seen: number[] = [];
  const probe = new Probe("reports", (self, msg) => {
    if (msg.kind === "feed") { for (let i = 0; i < 10; i++) cast(self, { kind: "data", n: i }); }
    else seen.push(msg.n!);
  }, 3);
  cast(probe, { kind: "feed" });
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test({
  name: "actor: the mailbox limit counts only waiting messages, not ones already handled",
  fn: () => {
    const seen: number[] = [];
    const probe = new Probe("countdown", (self, msg) => {
      seen.push(msg.n!);
      // Only one message ever waits: the next step of the countdown.
      if (msg.n! > 0) cast(self, { kind: "count", n: msg.n! - 1 });
    }, 4);
    cast(probe, { kind: "count", n: 10 });
    assert.deepEqual(seen, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  },
});

Deno.test("actor: a timer armed by a parked call does not keep the test alive after close", async () => {
  // Sanitizers fail this test if the parked call's timer survives the close.
  const g = gate();
  const p = ask(g, "wait", now() + 60_000);
  await delay(5);
  g.close(closing());
  await rejectsWith(p, "ECANCELED");
});
