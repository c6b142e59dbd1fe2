/**
 * lingerThenClose (actors/transport.ts): what a stream closed mid-write still owes the
 * transport — the write in flight, then the bytes a protocol sent on its own — is written
 * before the transport closes, within the stream's `closeLinger`.
 */

import assert from "node:assert/strict";
import { lingerThenClose, type Transport } from "../actors/transport.ts";

const LINGER_MS = 1000;

/** A transport that records writes and closes; `write` answers through `answer`. */
function recorder(answer: (buf: Uint8Array) => Promise<number>) {
  const log: string[] = [];
  const transport: Transport = {
    read: () => Promise.resolve(null),
    write: (buf) => {
      log.push(`write ${buf.length}`);
      return answer(buf);
    },
    closeWrite: () => Promise.resolve(),
    close: () => void log.push("close"),
  };
  return { log, transport };
}

Deno.test("linger: the write in flight ends first, then the transport closes", async () => {
  const { log, transport } = recorder((b) => Promise.resolve(b.length));
  let finish!: () => void;
  const inflight = new Promise<void>((resolve) => finish = resolve);
  const lingering = lingerThenClose(transport, inflight, [], LINGER_MS);
  await Promise.resolve();
  assert.deepEqual(log, [], "closed before the write in flight ended");
  finish();
  assert.equal(await lingering, true);
  assert.deepEqual(log, ["close"]);
});

Deno.test("linger: the rest is written after the write in flight, in pieces as taken", async () => {
  const { log, transport } = recorder((b) => Promise.resolve(Math.min(b.length, 3)));
  const rest = [new Uint8Array(4), new Uint8Array(3)];
  assert.equal(await lingerThenClose(transport, Promise.resolve(), rest, LINGER_MS), true);
  assert.deepEqual(log, ["write 7", "write 4", "write 1", "close"]);
});

for (const lingerMs of [LINGER_MS, 150]) {
  Deno.test(`linger: a write that never ends is given up after the linger (${lingerMs} ms)`, async () => {
    const { log, transport } = recorder(() => new Promise<number>(() => {}));
    const start = performance.now();
    assert.equal(await lingerThenClose(transport, null, [new Uint8Array(2)], lingerMs), false);
    const took = performance.now() - start;
    assert.ok(took >= lingerMs - 50, `closed after ${took} ms`);
    assert.ok(took < lingerMs + 500, `closed only after ${took} ms`);
    assert.deepEqual(log, ["write 2", "close"]);
  });
}

Deno.test("linger: 0 closes the transport at once, writing nothing owed", async () => {
  const { log, transport } = recorder((b) => Promise.resolve(b.length));
  let finish!: () => void;
  const inflight = new Promise<void>((resolve) => finish = resolve);
  assert.equal(await lingerThenClose(transport, inflight, [new Uint8Array(2)], 0), false);
  assert.deepEqual(log, ["close"]);
  finish();
});
