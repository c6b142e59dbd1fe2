import assert from "node:assert/strict";
import { Fifo } from "../actors/fifo.ts";

Deno.test("fifo: items come out in order, and shift on empty gives undefined", () => {
  const q = new Fifo<string>();
  assert.equal(q.shift(), undefined);
  q.push("a");
  q.push("b");
  assert.equal(q.length, 2);
  assert.equal(q.shift(), "a");
  assert.equal(q.shift(), "b");
  assert.equal(q.shift(), undefined);
  assert.equal(q.length, 0);
});

Deno.test("fifo: order survives the reclaim of a long consumed front, mixed with pushes", () => {
  const q = new Fifo<number>();
  let next = 0;
  let expected = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 997; i++) q.push(next++);
    for (let i = 0; i < 700; i++) assert.equal(q.shift(), expected++);
  }
  assert.equal(q.length, next - expected);
  while (q.length > 0) assert.equal(q.shift(), expected++);
  assert.equal(expected, next);
});

Deno.test("fifo: clear empties the queue", () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 3000; i++) q.push(i);
  q.shift();
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
  q.push(7);
  assert.equal(q.shift(), 7);
});

Deno.test("fifo: peek, replaceFront and drain work past a reclaimed front", () => {
  const q = new Fifo<number>();
  assert.equal(q.peek(), undefined);
  for (let i = 0; i < 3000; i++) q.push(i);
  for (let i = 0; i < 2000; i++) q.shift(); // reclaims the consumed front
  assert.equal(q.peek(), 2000);
  assert.equal(q.length, 1000);
  q.replaceFront(-1);
  assert.equal(q.peek(), -1);
  assert.equal(q.length, 1000);
  const rest = q.drain();
  assert.equal(rest.length, 1000);
  assert.equal(rest[0], -1);
  assert.equal(rest[999], 2999);
  assert.equal(q.length, 0);
  assert.equal(q.peek(), undefined);
  assert.deepEqual(q.drain(), []);
});
