/**
 * Edge values of documented inputs: options and arguments at and beyond their edges
 * (0, negative, NaN, huge, out-of-range) must either work as documented or fail with a
 * clear `EINVAL` before anything is taken over, never hang, fire at once, leak or fail
 * with an unrelated error code.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  deadlineAfter,
  deadlineSignal,
  type Handle,
  hclose,
  ipcConnect,
  ipcListen,
  ipcPair,
  mrecv,
  msend,
  now,
  tcpConnect,
  tcpListen,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  type WsClientOptions,
  type WsServerOptions,
  wsStatus,
  wsStream,
} from "../mod.ts";
import { isDillError } from "../protocol/errors.ts";
import { closeQuietly, nohttpWsPair, rejectsWith, throwsWith } from "./helpers/transports.ts";

const DAY_MS = 24 * 3600 * 1000;

Deno.test("edge values: deadlineSignal for a deadline 40 days away does not abort at once", async () => {
  const signal = deadlineSignal(now() + 40 * DAY_MS);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(signal.aborted, false, "a deadline 40 days away aborted within 30 ms");
});

Deno.test("edge values: deadlineAfter with a negative ms other than -1 is EINVAL, not forever", () => {
  // A budget that went negative by arithmetic must not turn into "wait forever".
  for (const ms of [-5, -0.5, -Infinity]) {
    throwsWith(() => deadlineAfter(ms), "EINVAL");
  }
  assert.equal(deadlineAfter(-1).deadline, -1);
});

for (const name of ["maxQueuedMessages", "maxBufferedBytes"] as const) {
  Deno.test(`edge values: ${name} 0 still delivers messages (no read-ahead, no hang)`, async () => {
    const [s, c] = await nohttpWsPair({ [name]: 0 });
    try {
      for (let i = 1; i <= 3; i++) await msend(c, new Uint8Array([i]), now() + 1000);
      for (let i = 1; i <= 3; i++) {
        assert.deepEqual(await mrecv(s, now() + 1000), new Uint8Array([i]));
      }
    } finally {
      hclose(s);
      hclose(c);
    }
  });
}

Deno.test("edge values: WebSocket maxWaitingCalls below 1 or fractional is EINVAL (0 made every waiting receive EBUSY)", async () => {
  for (const value of [0, 0.5, 1.5]) {
    const [a, b] = ipcPair();
    try {
      await rejectsWith(
        wsAttachServer(a, WS_NOHTTP, now() + 1000, { maxWaitingCalls: value }),
        "EINVAL",
      );
    } finally {
      closeQuietly(a);
      hclose(b);
    }
  }
});

Deno.test("edge values: ipcPair pipeCapacity below 1, fractional or NaN is EINVAL (0 made every send hang)", () => {
  for (const pipeCapacity of [0, -1, NaN, 0.5, Infinity]) {
    throwsWith(() => ipcPair({ pipeCapacity }), "EINVAL");
  }
});

/**
 * Runs `attach` on one end of a fresh pair and asserts it fails with `EINVAL` (its
 * message matching `names`, when given) without taking the handle over: the handle, not
 * leaked open, still carries bytes.
 */
async function refusedBeforeTakeover(
  attach: (h: Handle) => Promise<unknown>,
  names: RegExp | null,
  what: string,
): Promise<void> {
  const [a, b] = ipcPair();
  try {
    const e = await rejectsWith(attach(a), "EINVAL");
    if (names) assert.match(e.message, names, what);
    await bsend(a, new Uint8Array([7]), now() + 1000);
    assert.deepEqual(await brecv(b, new Uint8Array(1), now() + 1000), new Uint8Array([7]));
  } finally {
    closeQuietly(a);
    hclose(b);
  }
}

Deno.test("edge values: an invalid httpLimits is EINVAL before the bytestream is taken over", async () => {
  const bad = [{ maxHeadBytes: 0 }, { maxHeadBytes: NaN }, { maxHeaders: -1 }];
  for (const httpLimits of bad) {
    const what = JSON.stringify(httpLimits);
    await refusedBeforeTakeover(
      (a) => wsAttachServer(a, 0, now() + 1000, { httpLimits }),
      null,
      what,
    );
    await refusedBeforeTakeover(
      (a) => wsAttachClient(a, 0, "/", "localhost", now() + 1000, { httpLimits }),
      null,
      what,
    );
  }
});

/** Server options that can never work, each with the word its EINVAL must name. */
const BAD_SERVER_OPTIONS: [WsServerOptions, RegExp][] = [
  [{ protocols: "chat" as unknown as string[] }, /protocols/],
  [{ protocols: ["chat", "chat"] }, /unique/],
  [{ protocols: ["a b"] }, /protocols/],
  [{ responseHeaders: [["X-Only-Name"]] as unknown as [string, string][] }, /pair/],
  [{ responseHeaders: [["X-Ok", "line\r\nInjected: 1"]] }, /printable ASCII/],
  [{ responseHeaders: [["Sec-WebSocket-Accept", "x"]] }, /handshake owns/],
  [{ checkOrigin: "https://example.com" as unknown as () => boolean }, /checkOrigin/],
  [{ maxResourceLength: 0 }, /maxResourceLength/],
  [{ maxHostLength: 1.5 }, /maxHostLength/],
];

Deno.test("edge values: server handshake options that can never work are EINVAL before the bytestream is taken over", async () => {
  // Before, the handle was taken over and every client was reset.
  for (const [options, names] of BAD_SERVER_OPTIONS) {
    await refusedBeforeTakeover(
      (a) => wsAttachServer(a, 0, now() + 1000, options),
      names,
      JSON.stringify(options),
    );
  }
});

Deno.test("edge values: client handshake options of the wrong type are EINVAL, not a TypeError", async () => {
  const bad: [WsClientOptions, RegExp][] = [
    [{ protocols: "chat" as unknown as string[] }, /protocols/],
    [{ protocols: [7 as unknown as string] }, /protocols/],
    [{ headers: "Authorization: x" as unknown as [string, string][] }, /headers/],
    [{ headers: [["Authorization"]] as unknown as [string, string][] }, /pair/],
    [{ origin: 7 as unknown as string }, /origin/],
  ];
  for (const [options, names] of bad) {
    await refusedBeforeTakeover(
      (a) => wsAttachClient(a, 0, "/", "localhost", now() + 1000, options),
      names,
      JSON.stringify(options),
    );
  }
});

Deno.test("edge values: wsStream close() with a reason that cannot be sent throws EINVAL at once", async () => {
  const [s, c] = await nohttpWsPair();
  const server = wsStream(s, { closeTimeout: 1000 }), client = wsStream(c, { closeTimeout: 1000 });
  try {
    for (const reason of ["x".repeat(124), "\ud800", 5 as unknown as string]) {
      throwsWith(() => server.close({ closeCode: 1000, reason }), "EINVAL");
    }
    // The refused close started nothing: a valid one still closes cleanly.
    server.close({ closeCode: 1000, reason: "bye" });
    assert.deepEqual(await client.closed, { closeCode: 1000, reason: "bye" });
    assert.deepEqual(await server.closed, { closeCode: 1000, reason: "" });
  } finally {
    server.close();
    client.close();
    await Promise.allSettled([server.closed, client.closed]);
  }
});

Deno.test("edge values: an invalid address is EINVAL, not ECONNRESET", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await rejectsWith(tcpConnect({ hostname: "127.0.0.1", port: 0 }, now() + 1000), "EINVAL");
    await rejectsWith(tcpConnect({ hostname: "a".repeat(300), port: 80 }, now() + 1000), "EINVAL");
    throwsWith(() => tcpListen({ hostname: "a".repeat(300), port: 0 }), "EINVAL");
    const tooLong = `${dir}/${"a".repeat(200)}`;
    await rejectsWith(ipcConnect(tooLong, now() + 1000), "EINVAL");
    throwsWith(() => ipcListen(tooLong), "EINVAL");
    throwsWith(() => ipcListen(`${dir}/a\0b`), "EINVAL");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("edge values: tcpListen/ipcListen backlog is a whole number >= 1, as tlsListen's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const backlog of [0, -1, NaN, 1.5, "5" as unknown as number]) {
      throwsWith(() => tcpListen({ hostname: "127.0.0.1", port: 0 }, backlog), "EINVAL");
      throwsWith(() => ipcListen(`${dir}/s`, backlog), "EINVAL");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("edge values: pongTimeout 0 does not fail a peer that answers a ping within milliseconds", async () => {
  // A peer whose pong takes 5 ms (any real network) must survive pingInterval with
  // pongTimeout 0: either 0 is refused as a pong timeout, or it does not mean "at once".
  const [a, b] = ipcPair();
  let s;
  try {
    s = (await wsAttachServer(a, WS_NOHTTP, now() + 1000, { pingInterval: 20, pongTimeout: 0 }))
      .handle;
  } catch (e) {
    hclose(b);
    if (isDillError(e) && e.code === "EINVAL") return;
    hclose(a);
    throw e;
  }
  try {
    // The raw client: read the keepalive ping (empty), answer after 5 ms with a masked pong.
    assert.deepEqual(await brecv(b, new Uint8Array(2), now() + 1000), Uint8Array.of(0x89, 0));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await bsend(b, Uint8Array.of(0x8a, 0x80, 1, 2, 3, 4), now() + 1000);
    // Then a masked binary message [9]: the server still takes it.
    await bsend(b, Uint8Array.of(0x82, 0x81, 0, 0, 0, 0, 9), now() + 1000);
    assert.deepEqual(await mrecv(s, now() + 1000), Uint8Array.of(9));
    assert.throws(() => wsStatus(s), (e) => isDillError(e) && e.code === "EAGAIN");
  } finally {
    hclose(s);
    hclose(b);
  }
});

Deno.test("edge values: ipcListen in a folder that does not exist is ENOENT, not ECONNREFUSED", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const e = throwsWith(() => ipcListen(`${dir}/missing/sock`), "ENOENT");
    assert.match(e.message, /does not exist/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
