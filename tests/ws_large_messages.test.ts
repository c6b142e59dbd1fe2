/**
 * Large messages through the whole stack (bytestream read target, receiver, both
 * roles): our client sends random messages of random sizes, many past 64 KiB (read
 * straight into their buffers), pipelined, with small ones and fragmented ones in
 * between; our server echoes each; every echo must be byte-exact. Over each transport.
 */

import assert from "node:assert/strict";
import {
  type Handle,
  hclose,
  mrecv,
  msend,
  now,
  WS_BINARY,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  wsDone,
  wsRecv,
  wsSend,
} from "../mod.ts";
import { KINDS, openPair } from "./helpers/transports.ts";
import { ByteStream } from "../actors/stream.ts";
import { openHandle } from "../actors/handle.ts";
import type { Transport } from "../actors/transport.ts";
import { encodeFrame, Opcode } from "../protocol/frame.ts";

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random bytes of random sizes: mostly 64 KiB to 2.5 MiB, some small. */
function messages(seed: number, count: number): Uint8Array[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => {
    const size = random() < 0.25
      ? Math.floor(random() * 70_000)
      : 60_000 + Math.floor(random() * 2_600_000);
    return randomBytes(size);
  });
}

/** `size` random bytes (`getRandomValues` fills at most 64 KiB per call). */
function randomBytes(size: number): Uint8Array {
  const m = new Uint8Array(size);
  for (let off = 0; off < size; off += 65_536) {
    crypto.getRandomValues(m.subarray(off, Math.min(size, off + 65_536)));
  }
  return m;
}

function assertSameBytes(got: Uint8Array, want: Uint8Array, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${label}: byte ${i} is ${got[i]}, not ${want[i]}`);
  }
}

async function echo(server: Handle): Promise<number> {
  let echoed = 0;
  try {
    for (;;) {
      const m = await wsRecv(server, now() + 20_000);
      await wsSend(server, m.type, m.data, now() + 20_000);
      echoed++;
    }
  } catch {
    return echoed; // the client's close ends it
  } finally {
    hclose(server);
  }
}

for (const kind of KINDS) {
  for (const deflate of [false, true]) {
    const how = deflate ? "compressed" : "uncompressed";
    Deno.test(`ws large messages (${kind}, ${how}): random sizes echo byte-exact`, async () => {
      await echoRandom(kind, deflate);
    });
  }
}

/** Our client sends random messages to our server and checks every echo. */
async function echoRandom(kind: typeof KINDS[number], deflate: boolean): Promise<void> {
  const pair = await openPair(kind);
  try {
    const options = { perMessageDeflate: deflate };
    const [s, c] = await Promise.all([
      wsAttachServer(pair.b, WS_BINARY, now() + 5000, options),
      wsAttachClient(pair.a, WS_BINARY, "/", "localhost", now() + 5000, options),
    ]);
    const negotiated = s.headers.get("sec-websocket-extensions") !== null;
    assert.equal(negotiated, deflate, "permessage-deflate as asked");
    const serving = echo(s.handle);
    const client = c.handle;
    const sent = messages(kind.length * 31, 24);
    const sending = (async () => {
      for (const m of sent) await msend(client, m, now() + 20_000);
    })();
    for (let i = 0; i < sent.length; i++) {
      assertSameBytes(await mrecv(client, now() + 20_000), sent[i], `${kind} message ${i}`);
    }
    await sending;
    await wsDone(client, 1000, "", now() + 5000);
    hclose(client);
    assert.equal(await serving, sent.length);
  } finally {
    await pair.cleanup();
  }
}

/**
 * A transport replaying `wire` in random pieces: with `batches`, through `readChunks`,
 * several chunks at a time (as TLS hands over decrypted records), so chunks are still
 * on their way to the WebSocket layer when it asks for a read target; without, through
 * `read`, in random sizes. Writes are swallowed.
 */
function replay(wire: Uint8Array, seed: number, batches: boolean): Transport {
  const random = prng(seed);
  let at = 0;
  const piece = (max: number) => {
    const n = Math.min(wire.length - at, 1 + Math.floor(random() * max));
    const out = wire.slice(at, at + n);
    at += n;
    return out;
  };
  const transport: Transport = {
    read: (buf) => {
      if (at === wire.length) return new Promise<null>(() => {}); // the peer waits
      const n = Math.min(buf.length, piece(buf.length).length);
      buf.set(wire.subarray(at - n, at));
      return Promise.resolve(n);
    },
    write: (buf) => Promise.resolve(buf.length),
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
  if (batches) {
    transport.readChunks = () => {
      if (at === wire.length) return new Promise<null>(() => {});
      const chunks: Uint8Array[] = [];
      for (let k = 1 + Math.floor(random() * 5); k > 0 && at < wire.length; k--) {
        chunks.push(piece(random() < 0.5 ? 300 : 200_000));
      }
      return Promise.resolve(chunks);
    };
  }
  return transport;
}

for (const batches of [true, false]) {
  const how = batches ? "handed over in batches" : "read in random sizes";
  Deno.test(`ws large messages: a peer's frames ${how}, byte-exact at the server`, async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const sent = messages(seed * 101, 12);
      // What a client sends: masked frames, a few of them fragmented.
      const wire: Uint8Array[] = [];
      sent.forEach((m, i) => {
        if (i % 4 === 3 && m.length > 1000) {
          wire.push(
            ...encodeFrame(Opcode.BINARY, m.subarray(0, 700), { masked: true, fin: false }),
          );
          wire.push(...encodeFrame(Opcode.CONTINUATION, m.subarray(700), { masked: true }));
        } else {
          wire.push(...encodeFrame(Opcode.BINARY, m, { masked: true }));
        }
      });
      const bytes = new Uint8Array(wire.reduce((n, w) => n + w.length, 0));
      wire.reduce((at, w) => (bytes.set(w, at), at + w.length), 0);
      const stream = openHandle(new ByteStream("replay", replay(bytes, seed, batches)), "replay");
      const { handle } = await wsAttachServer(stream, WS_NOHTTP | WS_BINARY, now() + 5000);
      try {
        for (let i = 0; i < sent.length; i++) {
          assertSameBytes(await mrecv(handle, now() + 5000), sent[i], `seed ${seed} message ${i}`);
        }
      } finally {
        hclose(handle);
      }
    }
  });
}

/** Random bytes in messages of 1 B to 100 KiB: most of them views of the buffers read into. */
function mediumMessages(seed: number, count: number): Uint8Array[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => {
    return randomBytes(1 + Math.floor(random() * (random() < 0.7 ? 20_000 : 100_000)));
  });
}

/**
 * Every message kept is checked only after all arrived: a read buffer (or its unused
 * rest) read into again while a message handed out still lies in it would show here,
 * not in a check made as each message arrives.
 */
function assertAllKept(got: Uint8Array[], sent: Uint8Array[], label: string): void {
  assert.equal(got.length, sent.length);
  got.forEach((m, i) => assertSameBytes(m, sent[i], `${label} message ${i}, checked at the end`));
}

for (const kind of KINDS) {
  Deno.test(`ws large messages (${kind}): messages the application keeps keep their bytes`, async () => {
    const pair = await openPair(kind);
    try {
      const [s, c] = await Promise.all([
        wsAttachServer(pair.b, WS_BINARY, now() + 5000),
        wsAttachClient(pair.a, WS_BINARY, "/", "localhost", now() + 5000),
      ]);
      const serving = echo(s.handle);
      const sent = mediumMessages(kind.length * 7, 400);
      const sending = (async () => {
        for (const m of sent) await msend(c.handle, m, now() + 20_000);
      })();
      const got: Uint8Array[] = [];
      for (let i = 0; i < sent.length; i++) got.push(await mrecv(c.handle, now() + 20_000));
      await sending;
      assertAllKept(got, sent, kind);
      await wsDone(c.handle, 1000, "", now() + 5000);
      hclose(c.handle);
      assert.equal(await serving, sent.length);
    } finally {
      await pair.cleanup();
    }
  });
}

Deno.test("ws large messages: a peer's frames read in random sizes, kept by the server, keep their bytes", async () => {
  for (let seed = 1; seed <= 3; seed++) {
    const sent = mediumMessages(seed * 13, 300);
    const wire: Uint8Array[] = sent.flatMap((m) => encodeFrame(Opcode.BINARY, m, { masked: true }));
    const bytes = new Uint8Array(wire.reduce((n, w) => n + w.length, 0));
    wire.reduce((at, w) => (bytes.set(w, at), at + w.length), 0);
    const stream = openHandle(new ByteStream("replay", replay(bytes, seed, false)), "replay");
    const { handle } = await wsAttachServer(stream, WS_NOHTTP | WS_BINARY, now() + 5000);
    try {
      const got: Uint8Array[] = [];
      for (let i = 0; i < sent.length; i++) got.push(await mrecv(handle, now() + 5000));
      assertAllKept(got, sent, `seed ${seed}`);
    } finally {
      hclose(handle);
    }
  }
});
