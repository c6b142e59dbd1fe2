/**
 * The process-wide deadline scheduler (actors/deadline_scheduler.ts): entries fire in
 * deadline order, never before their deadline; a cancelled one never fires; and once
 * nothing is watched its timer no longer holds the process; a deadline beyond what a
 * timer can wait (about 24.8 days) does not make the timer spin; after the event loop
 * was held past a deadline, it waits a moment for the reads the stall held up (with real
 * sockets: tests/deadline_stall.test.ts).
 */

import assert from "node:assert/strict";
import { atDeadline, cancelDeadline, deadlineWatch } from "../actors/deadline_scheduler.ts";
import { now } from "../actors/time.ts";

Deno.test("deadline scheduler: entries fire in deadline order, not before their deadline", async () => {
  const fired: { name: string; late: number }[] = [];
  const all = Promise.withResolvers<void>();
  const start = now();
  for (const [name, ms] of [["c", 45], ["a", 15], ["b", 30], ["b2", 30]] as const) {
    const at = start + ms;
    atDeadline(at, () => {
      fired.push({ name, late: now() - at });
      if (fired.length === 4) all.resolve();
    });
  }
  assert.deepEqual(deadlineWatch(), { watched: 4, holding: true });
  await all.promise;
  assert.deepEqual(fired.map((f) => f.name), ["a", "b", "b2", "c"]);
  for (const f of fired) assert.ok(f.late >= 0, `${f.name} fired ${-f.late} ms early`);
  assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
});

Deno.test("deadline scheduler: a cancelled entry never fires, the others still do", async () => {
  const fired: string[] = [];
  const done = Promise.withResolvers<void>();
  const first = atDeadline(now() + 10, () => fired.push("first"));
  const middle = atDeadline(now() + 20, () => fired.push("middle"));
  atDeadline(now() + 40, () => {
    fired.push("last");
    done.resolve();
  });
  cancelDeadline(first); // the earliest: the armed timer is now early, and must re-arm
  cancelDeadline(middle);
  cancelDeadline(middle); // twice is harmless
  await done.promise;
  assert.deepEqual(fired, ["last"]);
  assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
});

Deno.test("deadline scheduler: 10,000 entries cancelled out of order leave nothing behind", () => {
  const entries = Array.from(
    { length: 10_000 },
    (_, i) =>
      atDeadline(now() + 60_000 + (i * 7919) % 10_000, () => {
        throw new Error("a cancelled entry fired");
      }),
  );
  assert.equal(deadlineWatch().watched, 10_000);
  for (let i = 0; i < entries.length; i += 2) cancelDeadline(entries[i]);
  for (let i = entries.length - 1; i > 0; i -= 2) cancelDeadline(entries[i]);
  assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
});

Deno.test("deadline scheduler: a deadline weeks away arms one timer of the longest delay, not a 1 ms loop", async () => {
  const delays: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  // Records the delays the scheduler asks for (a plain function: the spy must not change
  // what the timer does).
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return realSetTimeout(fn, ms);
  }) as typeof setTimeout;
  let fired = false;
  let entry;
  try {
    entry = atDeadline(now() + 40 * 24 * 3600 * 1000, () => fired = true); // 40 days
    // An entry due soon fires first; the timer is then armed for the far one.
    const near = Promise.withResolvers<void>();
    atDeadline(now() + 5, () => near.resolve());
    await near.promise;
    await new Promise((resolve) => realSetTimeout(resolve, 100));
  } finally {
    globalThis.setTimeout = realSetTimeout;
    if (entry) cancelDeadline(entry);
  }
  assert.equal(fired, false);
  // A few armings (before the fix: 2^31 - 1 overflowed to 1 ms, about 100 armings here).
  assert.ok(delays.length <= 4, `the timer was armed ${delays.length} times in 100 ms`);
  assert.ok(delays.every((ms) => ms <= 2 ** 31 - 1), `delays asked: ${delays.slice(0, 3)}`);
});

Deno.test("deadline scheduler: a deadline the event loop was held past fires a moment after the stall, not at once", async () => {
  const fired = Promise.withResolvers<number>();
  const cancelled = atDeadline(now() + 10, () => {
    throw new Error("a cancelled entry fired");
  });
  atDeadline(now() + 10, () => fired.resolve(now()));
  const end = performance.now() + 60;
  while (performance.now() < end) {
    // the application holds the event loop past both deadlines
  }
  const stallEnd = now();
  // A read in that moment would complete its call and cancel its deadline.
  setTimeout(() => cancelDeadline(cancelled), 0);
  const at = await fired.promise;
  assert.ok(at - stallEnd >= 4, `fired ${at - stallEnd} ms after the stall`);
  assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
});

Deno.test("deadline scheduler: a wait after a stall that is held up too waits again", async () => {
  const fired = Promise.withResolvers<number>();
  atDeadline(now() + 10, () => fired.resolve(now()));
  let secondStallEnd = 0;
  // Application work due right after the deadline runs in the same batch of timers as the
  // late deadline timer, and holds the loop again before the runtime polls for I/O.
  setTimeout(() => {
    hold(40);
    secondStallEnd = now();
  }, 12);
  hold(60);
  const at = await fired.promise;
  assert.ok(secondStallEnd > 0, "the application timer ran first");
  assert.ok(at - secondStallEnd >= 4, `fired ${at - secondStallEnd} ms after the second stall`);
  assert.deepEqual(deadlineWatch(), { watched: 0, holding: false });
});

/** Holds the event loop for `ms`. */
function hold(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the application computes
  }
}
