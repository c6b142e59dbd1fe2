/**
 * lingerThenClose (actors/transport.ts): what a stream closed mid-write still owes the
 * transport — the write in flight, then the bytes a protocol sent on its own — is written
 * before the transport closes, within CLOSE_LINGER_MS.
 */

import assert from "node:assert/strict";
import { CLOSE_LINGER_MS, lingerThenClose, type Transport } from "../actors/transport.ts";

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
  const lingering = lingerThenClose(transport, inflight, []);
  await Promise.resolve();
  assert.deepEqual(log, [], "closed before the write in flight ended");
  finish();
  assert.equal(await lingering, true);
  assert.deepEqual(log, ["close"]);
});

Deno.test("linger: the rest is written after the write in flight, in pieces as taken", async () => {
  const { log, transport } = recorder((b) => Promise.resolve(Math.min(b.length, 3)));
  const rest = [new Uint8Array(4), new Uint8Array(3)];
  assert.equal(await lingerThenClose(transport, Promise.resolve(), rest), true);
  assert.deepEqual(log, ["write 7", "write 4", "write 1", "close"]);
});

Deno.test("linger: a write that never ends is given up after CLOSE_LINGER_MS", async () => {
  const { log, transport } = recorder(() => new Promise<number>(() => {}));
  const start = performance.now();
  assert.equal(await lingerThenClose(transport, null, [new Uint8Array(2)]), false);
  assert.ok(performance.now() - start >= CLOSE_LINGER_MS - 50);
  assert.deepEqual(log, ["write 2", "close"]);
});
