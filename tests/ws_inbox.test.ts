/**
 * The WebSocket inbox's waiting receive calls: the oldest waits in a field of its own
 * and the rest in a list made on demand, so these check that many calls waiting at
 * once get messages oldest first, and are all failed when one of them expires or fails
 * to park (receiving is over then, libdill's rule), by the end of input or a cancel.
 */

import assert from "node:assert/strict";
import { DillError } from "../protocol/errors.ts";
import { Inbox, type WsReceived, type WsRecvCall } from "../actors/ws_inbox.ts";
import { Request } from "../actors/request.ts";
import { WS_BINARY } from "../actors/ws_options.ts";

function call(name: string): WsRecvCall {
  const req = new Request<WsReceived>(name, -1);
  return { kind: "recv", typed: false, into: null, req };
}

function message(byte: number) {
  return { type: "message" as const, binary: true, data: new Uint8Array([byte]) };
}

/** What each call ended with: the byte it got, or its error code. */
function outcomes(calls: WsRecvCall[]): Promise<(number | string)[]> {
  return Promise.all(
    calls.map((c) =>
      c.req.promise.then((r) => r.data![0], (e: DillError) => `${c.req.op}:${e.code}`)
    ),
  );
}

const parks = () => true;

Deno.test("ws inbox: calls waiting at once get messages oldest first", async () => {
  const inbox = new Inbox(WS_BINARY, 16);
  const calls = ["a", "b", "c", "d"].map(call);
  for (const c of calls) assert.equal(inbox.recv(c, parks), false);
  for (let i = 1; i <= 4; i++) inbox.push(message(i));
  assert.deepEqual(await outcomes(calls), [1, 2, 3, 4]);
  // None waits now: the next message is queued.
  inbox.push(message(5));
  assert.equal(inbox.length, 1);
});

Deno.test("ws inbox: a waiting call that expires ends receiving: the others fail, later messages are dropped", async () => {
  for (const first of [0, 2]) { // the oldest, or one behind it
    const inbox = new Inbox(WS_BINARY, 16);
    const calls = ["a", "b", "c", "d"].map(call);
    for (const c of calls) inbox.recv(c, parks);
    assert.equal(inbox.expire(calls[first].req), true);
    assert.equal(inbox.expire(calls[3].req), false); // no longer waiting: failed already
    assert.equal(inbox.refusing, true);
    inbox.push(message(1));
    assert.equal(inbox.length, 0); // nobody could take it
    const expected = ["a", "b", "c", "d"].map((n) => `${n}:ECONNRESET`);
    expected[first] = `${"abcd"[first]}:ETIMEDOUT`;
    assert.deepEqual(await outcomes(calls), expected);
  }
});

Deno.test("ws inbox: a call that cannot park is taken back, and the ones before it fail", async () => {
  const inbox = new Inbox(WS_BINARY, 16);
  const a = call("a");
  const b = call("b");
  inbox.recv(a, parks);
  inbox.recv(b, () => false); // taken back: the caller fails it (as the actor does)
  b.req.timeOut();
  inbox.push(message(7));
  assert.deepEqual(await outcomes([a, b]), ["a:ECONNRESET", "b:ETIMEDOUT"]);
  // Receiving is broken after a receive gave up mid-wait.
  const c = call("c");
  inbox.recv(c, parks);
  assert.deepEqual(await outcomes([c]), ["c:ECONNRESET"]);
});

Deno.test("ws inbox: a lone call that cannot park leaves nothing waiting", async () => {
  const inbox = new Inbox(WS_BINARY, 16);
  const a = call("a");
  inbox.recv(a, () => false);
  a.req.timeOut();
  inbox.push(message(1));
  assert.equal(inbox.length, 0); // dropped: no call can take it now
  assert.deepEqual(await outcomes([a]), ["a:ETIMEDOUT"]);
});

Deno.test("ws inbox: the end of input and a cancel fail every waiting call", async () => {
  const ended = new Inbox(WS_BINARY, 16);
  const first = ["a", "b", "c"].map(call);
  for (const c of first) ended.recv(c, parks);
  ended.end(new DillError("EPIPE", "the peer closed"));
  assert.deepEqual(await outcomes(first), ["a:EPIPE", "b:EPIPE", "c:EPIPE"]);

  const cancelled = new Inbox(WS_BINARY, 16);
  const second = ["d", "e"].map(call);
  for (const c of second) cancelled.recv(c, parks);
  cancelled.cancel(new DillError("ECANCELED", "closed"));
  assert.deepEqual(await outcomes(second), ["d:ECANCELED", "e:ECANCELED"]);
  // Nothing waits any more: a message is queued.
  cancelled.push(message(1));
  assert.equal(cancelled.length, 1);
});

Deno.test("ws inbox: no more than maxWaiting calls wait", async () => {
  const inbox = new Inbox(WS_BINARY, 2);
  const calls = ["a", "b", "c"].map(call);
  for (const c of calls) inbox.recv(c, parks);
  inbox.push(message(1));
  inbox.push(message(2));
  assert.deepEqual(await outcomes(calls), [1, 2, "c:EBUSY"]);
});
