import assert from "node:assert/strict";
import { Receiver, type ReceiverEvent, type ReceiverOptions } from "../protocol/receiver.ts";
import { encodeFrame, Opcode } from "../protocol/frame.ts";
import { isDillError } from "../protocol/errors.ts";

// ---------------------------------------------------------------------------------------
// Helpers: an independent, bytewise frame builder (so the receiver is not tested against
// the encoder alone), chunked feeding, and a seeded PRNG.

type Role = "server" | "client";

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

const encoder = new TextEncoder();
const b = (...values: number[]) => new Uint8Array(values);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const KEY = b(0x12, 0x34, 0x56, 0x78);

interface FrameOptions {
  fin?: boolean;
  rsv?: number; // 3 bits: RSV1 = 4, RSV2 = 2, RSV3 = 1
  key?: Uint8Array | null; // masking key; null for unmasked
  form?: 7 | 16 | 64; // length encoding; default: minimal
}

/** A frame's bytes, built byte by byte from the RFC's layout. */
function rawFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: FrameOptions = {},
): Uint8Array {
  const data = typeof payload === "string" ? encoder.encode(payload) : payload;
  return concat(rawHeader(opcode, data.length, options), masked(data, options.key ?? null));
}

/** Just a frame header announcing `length` bytes. */
function rawHeader(opcode: number, length: number, options: FrameOptions = {}): Uint8Array {
  const fin = options.fin ?? true;
  const key = options.key ?? null;
  const form = options.form ?? (length < 126 ? 7 : length < 65536 ? 16 : 64);
  const out: number[] = [(fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode];
  const maskBit = key !== null ? 0x80 : 0;
  if (form === 7) {
    out.push(maskBit | length);
  } else if (form === 16) {
    out.push(maskBit | 126, (length >> 8) & 0xff, length & 0xff);
  } else {
    out.push(maskBit | 127);
    for (let shift = 7; shift >= 0; shift--) out.push(Math.floor(length / 2 ** (8 * shift)) & 0xff);
  }
  if (key !== null) out.push(...key);
  return new Uint8Array(out);
}

function masked(data: Uint8Array, key: Uint8Array | null): Uint8Array {
  return key === null ? data.slice() : data.map((x, i) => x ^ key[i % 4]);
}

/** The key a frame sent to this role carries: servers receive masked frames. */
const keyFor = (role: Role) => role === "server" ? KEY : null;

/** A frame as a peer of `role` would send it. */
function frameTo(
  role: Role,
  opcode: number,
  payload: Uint8Array | string,
  options: Omit<FrameOptions, "key"> = {},
): Uint8Array {
  return rawFrame(opcode, payload, { ...options, key: keyFor(role) });
}

/** A frame cut after the payload bytes `head`: the prefix proves what `head` proves. */
function splitFrame(
  role: Role,
  opcode: number,
  head: Uint8Array,
  tail: Uint8Array,
  options: Omit<FrameOptions, "key"> = {},
): { prefix: Uint8Array; rest: Uint8Array } {
  const frame = frameTo(role, opcode, concat(head, tail), options);
  const cut = frame.length - tail.length;
  return { prefix: frame.subarray(0, cut), rest: frame.subarray(cut) };
}

function options(role: Role, maxMessageSize = 1 << 24): ReceiverOptions {
  return { role, maxMessageSize };
}

function drain(receiver: Receiver, into: ReceiverEvent[]): void {
  for (let event = receiver.next(); event !== undefined; event = receiver.next()) {
    into.push(event);
  }
}

/** Events from feeding a fresh copy of `stream` cut at `cuts`, draining after each feed. */
function runCuts(stream: Uint8Array, cuts: number[], receiverOptions: ReceiverOptions) {
  const receiver = new Receiver(receiverOptions);
  const copy = stream.slice(); // the receiver unmasks in place
  const events: ReceiverEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, copy.length]) {
    receiver.feed(copy.subarray(at, cut));
    at = cut;
    drain(receiver, events);
  }
  drain(receiver, events);
  assert.equal(receiver.next(), undefined);
  return events;
}

/** The same stream in many chunkings: whole, byte by byte, and seeded random splits. */
function chunkings(length: number, seed = 1): number[][] {
  const all: number[][] = [[]];
  const bytewise: number[] = [];
  for (let i = 1; i < length; i++) bytewise.push(i);
  all.push(bytewise);
  const random = prng(seed);
  for (let trial = 0; trial < 12; trial++) {
    const cuts: number[] = [];
    const maxStep = [2, 3, 7, 15, 64, 1000][trial % 6];
    for (let at = 0;;) {
      at += 1 + Math.floor(random() * maxStep);
      if (at >= length) break;
      cuts.push(at);
    }
    all.push(cuts);
  }
  return all;
}

/** Feeds `stream` in every chunking, asserts all give the same events, and returns them. */
function eventsInEveryChunking(
  stream: Uint8Array,
  receiverOptions: ReceiverOptions,
): ReceiverEvent[] {
  const reference = runCuts(stream, [], receiverOptions);
  for (const cuts of chunkings(stream.length)) {
    assert.deepEqual(runCuts(stream, cuts, receiverOptions), reference, `cuts ${cuts}`);
  }
  // Feeding everything in pieces before parsing anything must not change the result.
  const receiver = new Receiver(receiverOptions);
  const copy = stream.slice();
  for (let i = 0; i < copy.length; i += 3) receiver.feed(copy.subarray(i, i + 3));
  const batched: ReceiverEvent[] = [];
  drain(receiver, batched);
  assert.deepEqual(batched, reference, "all fed in 3-byte chunks, then parsed");
  return reference;
}

function message(binary: boolean, data: Uint8Array | string): ReceiverEvent {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  if (binary) return { type: "message", binary, data: bytes };
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  return { type: "message", binary, data: bytes, text };
}

function assertError(events: ReceiverEvent[], code: number, label: string): void {
  const last = events.at(-1);
  assert.ok(last !== undefined && last.type === "error", `${label}: expected an error event`);
  assert.equal(last.code, code, `${label}: ${last.message}`);
}

const ROLES: Role[] = ["server", "client"];

// ---------------------------------------------------------------------------------------
// Valid traffic.

Deno.test("receiver: a single text frame, both roles, in every chunking", () => {
  for (const role of ROLES) {
    const events = eventsInEveryChunking(frameTo(role, Opcode.TEXT, "Hello"), options(role));
    assert.deepEqual(events, [message(false, "Hello")]);
  }
});

Deno.test("receiver: text with a real U+FFFD or a leading BOM is valid and kept as sent", () => {
  for (const role of ROLES) {
    for (const text of ["a\uFFFDb", "\uFFFD", "\uFEFFstarts with a BOM", "\uFEFF"]) {
      const events = eventsInEveryChunking(frameTo(role, Opcode.TEXT, text), options(role));
      assert.deepEqual(events, [message(false, text)]);
      const [event] = events;
      assert.ok(event.type === "message" && event.text === text, JSON.stringify(text));
    }
  }
});

Deno.test("receiver: invalid bytes next to a real U+FFFD are still caught in one frame", () => {
  for (const role of ROLES) {
    // EF BF BD is a genuine U+FFFD; the C0 after it is never valid.
    const payload = concat(encoder.encode("ok \uFFFD"), b(0xc0, 0x80));
    const events = eventsInEveryChunking(frameTo(role, Opcode.TEXT, payload), options(role));
    assertError(events, 1007, role);
  }
});

Deno.test("receiver: RFC 6455 section 5.7 examples", () => {
  const client = options("client");
  assert.deepEqual(runCuts(b(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), [], client), [
    message(false, "Hello"),
  ]);
  const server = options("server");
  const maskedHello = b(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
  assert.deepEqual(runCuts(maskedHello, [], server), [message(false, "Hello")]);
  const fragmented = b(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f);
  assert.deepEqual(runCuts(fragmented, [], client), [message(false, "Hello")]);
  const ping = b(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f);
  assert.deepEqual(runCuts(ping, [], client), [{ type: "ping", data: encoder.encode("Hello") }]);
  const pong = b(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
  assert.deepEqual(runCuts(pong, [], server), [{ type: "pong", data: encoder.encode("Hello") }]);
  const big = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(runCuts(concat(b(0x82, 0x7e, 0x01, 0x00), big), [], client), [
    message(true, big),
  ]);
  const huge = new Uint8Array(65536).map((_, i) => i * 31);
  assert.deepEqual(
    runCuts(concat(b(0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0), huge), [], client),
    [message(true, huge)],
  );
});

Deno.test("receiver: payload lengths around every length-form boundary", () => {
  for (const role of ROLES) {
    for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70001]) {
      const data = new Uint8Array(length).map((_, i) => (i * 7) ^ (i >> 8));
      const events = runCuts(frameTo(role, Opcode.BINARY, data), [], options(role));
      assert.deepEqual(events, [message(true, data)], `${role} ${length}`);
      // And split in two anywhere near the header/payload boundary.
      for (let cut = 1; cut < 20; cut++) {
        const stream = frameTo(role, Opcode.BINARY, data);
        if (cut >= stream.length) break;
        assert.deepEqual(runCuts(stream, [cut], options(role)), [message(true, data)]);
      }
    }
  }
});

Deno.test("receiver: empty messages, empty fragments, empty control frames", () => {
  for (const role of ROLES) {
    const stream = concat(
      frameTo(role, Opcode.TEXT, ""),
      frameTo(role, Opcode.BINARY, ""),
      frameTo(role, Opcode.TEXT, "", { fin: false }),
      frameTo(role, Opcode.CONTINUATION, "", { fin: false }),
      frameTo(role, Opcode.CONTINUATION, "ab", { fin: false }),
      frameTo(role, Opcode.CONTINUATION, ""),
      frameTo(role, Opcode.BINARY, "", { fin: false }),
      frameTo(role, Opcode.CONTINUATION, ""),
      frameTo(role, Opcode.PING, ""),
      frameTo(role, Opcode.PONG, ""),
      frameTo(role, Opcode.CLOSE, ""),
    );
    assert.deepEqual(eventsInEveryChunking(stream, options(role)), [
      message(false, ""),
      message(true, ""),
      message(false, "ab"),
      message(true, ""),
      { type: "ping", data: b() },
      { type: "pong", data: b() },
      { type: "close", code: 1005, reason: "" },
    ]);
  }
});

Deno.test("receiver: fragmented messages with control frames between fragments, in order", () => {
  for (const role of ROLES) {
    const stream = concat(
      frameTo(role, Opcode.TEXT, "Hel", { fin: false }),
      frameTo(role, Opcode.PING, "p1"),
      frameTo(role, Opcode.CONTINUATION, "lo, ", { fin: false }),
      frameTo(role, Opcode.PONG, "p2"),
      frameTo(role, Opcode.PING, ""),
      frameTo(role, Opcode.CONTINUATION, "world"),
      frameTo(role, Opcode.BINARY, b(1, 2), { fin: false }),
      frameTo(role, Opcode.CONTINUATION, b(3)),
      frameTo(role, Opcode.CLOSE, concat(b(0x03, 0xe8), encoder.encode("done"))),
    );
    assert.deepEqual(eventsInEveryChunking(stream, options(role)), [
      { type: "ping", data: encoder.encode("p1") },
      { type: "pong", data: encoder.encode("p2") },
      { type: "ping", data: b() },
      message(false, "Hello, world"),
      message(true, b(1, 2, 3)),
      { type: "close", code: 1000, reason: "done" },
    ]);
  }
});

Deno.test("receiver: a code point split across fragments, with a ping in between, is valid", () => {
  for (const role of ROLES) {
    const euro = encoder.encode("€"); // e2 82 ac
    const stream = concat(
      frameTo(role, Opcode.TEXT, euro.subarray(0, 1), { fin: false }),
      frameTo(role, Opcode.CONTINUATION, euro.subarray(1, 2), { fin: false }),
      frameTo(role, Opcode.PING, "x"),
      frameTo(role, Opcode.CONTINUATION, euro.subarray(2)),
    );
    assert.deepEqual(eventsInEveryChunking(stream, options(role)), [
      { type: "ping", data: encoder.encode("x") },
      message(false, "€"),
    ]);
  }
});

Deno.test("receiver: binary messages are not checked as UTF-8", () => {
  const data = b(0xff, 0xfe, 0xc0, 0xed, 0xa0, 0x80, 0xe2);
  for (const role of ROLES) {
    assert.deepEqual(
      eventsInEveryChunking(frameTo(role, Opcode.BINARY, data), options(role)),
      [message(true, data)],
    );
  }
});

Deno.test("receiver: close frames: status, reason, no status", () => {
  for (const role of ROLES) {
    const cases: [Uint8Array, number, string][] = [
      [b(), 1005, ""],
      [b(0x03, 0xe8), 1000, ""],
      [concat(b(0x03, 0xe9), encoder.encode("going ✈")), 1001, "going ✈"],
      [concat(b(0x0f, 0xa0), encoder.encode("x".repeat(123))), 4000, "x".repeat(123)],
      [b(0x0b, 0xb8, 0xef, 0xbb, 0xbf), 3000, "\ufeff"],
    ];
    for (const [payload, code, reason] of cases) {
      assert.deepEqual(
        eventsInEveryChunking(frameTo(role, Opcode.CLOSE, payload), options(role)),
        [{ type: "close", code, reason }],
      );
    }
  }
});

Deno.test("receiver: round trip with encodeFrame (client -> server masked, server -> client)", () => {
  const random = prng(5);
  for (const role of ROLES) {
    const chunks: Uint8Array[] = [];
    const expected: ReceiverEvent[] = [];
    for (const length of [0, 3, 125, 126, 1000, 65535, 65536, 100000]) {
      const data = new Uint8Array(length).map(() => Math.floor(random() * 256));
      chunks.push(...encodeFrame(Opcode.BINARY, data, { masked: role === "server" }));
      expected.push(message(true, data));
    }
    const text = encoder.encode("fragmented ünïcödé text ".repeat(50));
    chunks.push(
      ...encodeFrame(Opcode.TEXT, text.subarray(0, 333), {
        masked: role === "server",
        fin: false,
      }),
      ...encodeFrame(Opcode.PING, b(9), { masked: role === "server" }),
      ...encodeFrame(Opcode.CONTINUATION, text.subarray(333), { masked: role === "server" }),
    );
    expected.push({ type: "ping", data: b(9) }, message(false, text));
    const stream = concat(...chunks);
    for (const cuts of chunkings(stream.length, 9).filter((c) => c.length < 5000)) {
      assert.deepEqual(runCuts(stream, cuts, options(role)), expected);
    }
  }
});

/** Random valid traffic: fragmented text and binary, control frames in between. */
function randomTraffic(random: () => number, role: Role) {
  const frames: Uint8Array[] = [];
  const expected: ReceiverEvent[] = [];
  const sizes = [0, 1, 2, 5, 17, 125, 126, 300, 4000, 65535, 65536, 70000];
  const control = () => {
    const opcode = random() < 0.5 ? Opcode.PING : Opcode.PONG;
    const data = new Uint8Array(Math.floor(random() * 126)).map(() => random() * 256);
    frames.push(frameTo(role, opcode, data));
    expected.push({ type: opcode === Opcode.PING ? "ping" : "pong", data });
  };
  for (let m = 0; m < 25; m++) {
    if (random() < 0.25) control();
    const binary = random() < 0.5;
    const size = sizes[Math.floor(random() * (random() < 0.8 ? 9 : sizes.length))];
    let data: Uint8Array;
    if (binary) {
      data = new Uint8Array(size).map(() => random() * 256);
    } else {
      const pieces: string[] = [];
      const alphabet = ["a", "Z", " ", "é", "€", "𝄞", "\u{10ffff}", "\u0000"];
      for (let bytes = 0; bytes < size;) {
        const piece = alphabet[Math.floor(random() * alphabet.length)];
        pieces.push(piece);
        bytes += encoder.encode(piece).length;
      }
      const text = pieces.join("");
      data = encoder.encode(text);
    }
    const fragmentCount = random() < 0.5 ? 1 : 1 + Math.floor(random() * 5);
    const cuts = Array.from({ length: fragmentCount - 1 }, () => Math.floor(random() * data.length))
      .sort((x, y) => x - y);
    let at = 0;
    [...cuts, data.length].forEach((cut, i) => {
      const opcode = i > 0 ? Opcode.CONTINUATION : binary ? Opcode.BINARY : Opcode.TEXT;
      frames.push(frameTo(role, opcode, data.subarray(at, cut), { fin: i === cuts.length }));
      at = cut;
      if (i < cuts.length && random() < 0.3) control();
    });
    expected.push(message(binary, data));
  }
  frames.push(frameTo(role, Opcode.CLOSE, concat(b(0x03, 0xe8), encoder.encode("bye"))));
  expected.push({ type: "close", code: 1000, reason: "bye" });
  return { stream: concat(...frames), expected };
}

Deno.test("receiver: random traffic gives the expected events in every chunking", () => {
  for (const role of ROLES) {
    for (let seed = 1; seed <= 4; seed++) {
      const { stream, expected } = randomTraffic(
        prng(seed * 100 + (role === "server" ? 1 : 2)),
        role,
      );
      assert.deepEqual(eventsInEveryChunking(stream, options(role)), expected, `seed ${seed}`);
    }
  }
});

// ---------------------------------------------------------------------------------------
// Copying behaviour and memory.

Deno.test("receiver: a single-frame message inside one chunk is a zero-copy view", () => {
  for (const role of ROLES) {
    for (const length of [0, 5, 200, 70000]) {
      const data = new Uint8Array(length).map((_, i) => i);
      const frame = frameTo(role, Opcode.BINARY, data);
      // Put it after another frame, inside a larger buffer, at an odd offset.
      const buffer = new Uint8Array(frame.length + 20);
      const ping = frameTo(role, Opcode.PING, "p");
      buffer.set(ping, 3);
      buffer.set(frame, 3 + ping.length);
      const receiver = new Receiver(options(role));
      const chunk = buffer.subarray(3, 3 + ping.length + frame.length);
      receiver.feed(chunk);
      const pingEvent = receiver.next();
      assert.ok(pingEvent?.type === "ping");
      assert.equal(pingEvent.data.buffer, buffer.buffer, "control payload is a view too");
      const event = receiver.next();
      assert.ok(event?.type === "message");
      assert.deepEqual(event.data, data);
      if (length > 0) {
        assert.equal(event.data.buffer, buffer.buffer, `${role} ${length}: same buffer`);
        assert.equal(event.data.byteOffset, 3 + frame.length - length + ping.length);
      }
      assert.equal(receiver.next(), undefined);
    }
  }
});

Deno.test("receiver: a message spanning chunks or fragments is one exact-size buffer", () => {
  for (const role of ROLES) {
    const data = new Uint8Array(300000).map((_, i) => i * 13);
    const streams = [
      frameTo(role, Opcode.BINARY, data),
      concat(
        frameTo(role, Opcode.BINARY, data.subarray(0, 100000), { fin: false }),
        frameTo(role, Opcode.CONTINUATION, data.subarray(100000, 100001), { fin: false }),
        frameTo(role, Opcode.CONTINUATION, data.subarray(100001)),
      ),
    ];
    for (const stream of streams) {
      for (const chunkSize of [1000, 65536, stream.length]) {
        const receiver = new Receiver(options(role));
        const fed = new Set<ArrayBufferLike>();
        for (let at = 0; at < stream.length; at += chunkSize) {
          const chunk = stream.slice(at, at + chunkSize);
          fed.add(chunk.buffer);
          receiver.feed(chunk);
        }
        const event = receiver.next();
        assert.ok(event?.type === "message");
        assert.deepEqual(event.data, data);
        if (stream.length !== chunkSize || streams.indexOf(stream) === 1) {
          assert.ok(!fed.has(event.data.buffer), "assembled into a new buffer");
          assert.equal(event.data.buffer.byteLength, data.length, "allocated exactly once");
        }
      }
    }
  }
});

Deno.test("receiver: many tiny fragments, each pinning a big read buffer, reassemble correctly", () => {
  for (const role of ROLES) {
    const data = new Uint8Array(3000).map((_, i) => i * 7);
    const receiver = new Receiver(options(role));
    let events: ReceiverEvent[] = [];
    for (let i = 0; i < data.length; i += 3) {
      const opcode = i === 0 ? Opcode.BINARY : Opcode.CONTINUATION;
      const frame = frameTo(role, opcode, data.subarray(i, i + 3), { fin: i + 3 >= data.length });
      // Like a reader that allocates 64 KiB per read and gets one small frame each time.
      const readBuffer = new Uint8Array(65536);
      readBuffer.set(frame);
      receiver.feed(readBuffer.subarray(0, frame.length));
      drain(receiver, events);
      if (i + 3 < data.length) {
        assert.equal(events.length, 0);
        assert.equal(receiver.bufferedBytes, i + 3, "buffered payload so far");
      }
    }
    assert.deepEqual(events, [message(true, data)]);
    events = [];
  }
});

Deno.test("receiver: a huge announced length does not allocate it up front", () => {
  for (const role of ROLES) {
    const receiver = new Receiver({ role, maxMessageSize: Infinity });
    // 2^40 bytes announced (1 TiB): allocating that would throw.
    receiver.feed(rawHeader(Opcode.BINARY, 2 ** 40, { key: keyFor(role) }));
    assert.equal(receiver.next(), undefined);
    let fed = 0;
    for (let i = 0; i < 40; i++) {
      receiver.feed(new Uint8Array(65536).fill(i));
      fed += 65536;
      assert.equal(receiver.next(), undefined);
    }
    assert.equal(receiver.bufferedBytes, fed);
  }
});

Deno.test("receiver: bufferedBytes counts unparsed and partial-message bytes", () => {
  const receiver = new Receiver(options("client"));
  assert.equal(receiver.bufferedBytes, 0);
  receiver.feed(b(0x02, 0x04, 1, 2)); // non-final fragment, 2 of 4 bytes
  assert.equal(receiver.bufferedBytes, 4);
  assert.equal(receiver.next(), undefined);
  assert.equal(receiver.bufferedBytes, 2, "header consumed, 2 payload bytes held");
  receiver.feed(b(3, 4, 0x89, 0x02, 9)); // rest of fragment + partial ping
  assert.equal(receiver.next(), undefined);
  assert.equal(receiver.bufferedBytes, 5, "4 message bytes + 1 ping byte");
  receiver.feed(b(9, 0x80, 0x01, 5));
  assert.deepEqual(receiver.next(), { type: "ping", data: b(9, 9) });
  assert.equal(receiver.bufferedBytes, 4 + 3);
  assert.deepEqual(receiver.next(), message(true, b(1, 2, 3, 4, 5)));
  assert.equal(receiver.bufferedBytes, 0);
  assert.equal(receiver.next(), undefined);
});

// ---------------------------------------------------------------------------------------
// Protocol violations: each gives an error event with the close code to send, in every
// chunking, as early as the offending byte.

interface Violation {
  name: string;
  role: Role;
  /** Bytes up to and including the first one that proves the violation. */
  prefix: Uint8Array;
  /** Valid-looking bytes that would follow (never needed to detect the error). */
  rest?: Uint8Array;
  code: number;
  maxMessageSize?: number;
}

function violations(): Violation[] {
  const list: Violation[] = [];
  for (const role of ROLES) {
    const key = keyFor(role);
    const maskBit = role === "server" ? 0x80 : 0;
    const headerRest = (h: Uint8Array) => key === null ? h : concat(h, key);
    for (const [rsv, name] of [[4, "RSV1"], [2, "RSV2"], [1, "RSV3"], [7, "all RSV"]] as const) {
      list.push({
        name: `${name} on a text frame`,
        role,
        prefix: b(0x81 | (rsv << 4)),
        rest: concat(b(maskBit | 1), key ?? b(), b(0x41)),
        code: 1002,
      });
      list.push({
        name: `${name} on a ping`,
        role,
        prefix: b(0x89 | (rsv << 4)),
        rest: b(maskBit),
        code: 1002,
      });
    }
    for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
      list.push({
        name: `reserved opcode ${opcode}`,
        role,
        prefix: b(0x80 | opcode),
        rest: headerRest(b(maskBit)),
        code: 1002,
      });
    }
    for (const opcode of [Opcode.CLOSE, Opcode.PING, Opcode.PONG]) {
      list.push({
        name: `fragmented control frame ${opcode}`,
        role,
        prefix: b(opcode),
        rest: headerRest(b(maskBit)),
        code: 1002,
      });
      list.push({
        name: `control frame ${opcode} with 16-bit length`,
        role,
        prefix: b(0x80 | opcode, maskBit | 126),
        rest: b(0, 126),
        code: 1002,
      });
      list.push({
        name: `control frame ${opcode} with 64-bit length`,
        role,
        prefix: b(0x80 | opcode, maskBit | 127),
        rest: b(0, 0, 0, 0, 0, 1, 0, 0),
        code: 1002,
      });
    }
    list.push({
      name: "continuation with no message in progress",
      role,
      prefix: b(0x80),
      rest: concat(b(maskBit | 1), key ?? b(), b(0x41)),
      code: 1002,
    });
    list.push({
      name: "continuation after a completed message",
      role,
      prefix: concat(frameTo(role, Opcode.TEXT, "a"), b(0x00)),
      rest: headerRest(b(maskBit)),
      code: 1002,
    });
    list.push({
      name: "continuation after a completed fragmented message",
      role,
      prefix: concat(
        frameTo(role, Opcode.TEXT, "a", { fin: false }),
        frameTo(role, Opcode.CONTINUATION, "b"),
        b(0x80),
      ),
      rest: headerRest(b(maskBit)),
      code: 1002,
    });
    for (const [first, second] of [[1, 1], [1, 2], [2, 2], [2, 1]]) {
      list.push({
        name: `opcode ${second} while a fragmented ${first} message is in progress`,
        role,
        prefix: concat(frameTo(role, first, "a", { fin: false }), b(0x80 | second)),
        rest: headerRest(b(maskBit)),
        code: 1002,
      });
    }
    list.push({
      name: "a data frame after a control frame inside a fragmented message",
      role,
      prefix: concat(
        frameTo(role, Opcode.BINARY, "a", { fin: false }),
        frameTo(role, Opcode.PING, ""),
        b(0x82),
      ),
      rest: headerRest(b(maskBit)),
      code: 1002,
    });
    list.push({
      name: role === "server" ? "unmasked frame sent to a server" : "masked frame sent to a client",
      role,
      prefix: b(0x81, role === "server" ? 0x05 : 0x85),
      rest: role === "server" ? encoder.encode("Hello") : concat(KEY, b(1, 2, 3, 4, 5)),
      code: 1002,
    });
    list.push({
      name: role === "server" ? "unmasked ping sent to a server" : "masked ping sent to a client",
      role,
      prefix: b(0x89, role === "server" ? 0x00 : 0x80),
      code: 1002,
    });
    for (const length of [0, 1, 125]) {
      list.push({
        name: `16-bit form for length ${length}`,
        role,
        prefix: b(0x82, maskBit | 126, 0, length),
        rest: headerRest(b()),
        code: 1002,
      });
    }
    for (const length of [0, 125, 126, 65535]) {
      list.push({
        name: `64-bit form for length ${length}`,
        role,
        prefix: b(0x82, maskBit | 127, 0, 0, 0, 0, 0, 0, length >> 8, length & 0xff),
        rest: headerRest(b()),
        code: 1002,
      });
    }
    for (const top of [0x80, 0xff]) {
      list.push({
        name: `64-bit length with its top bit set (0x${top.toString(16)})`,
        role,
        prefix: b(0x82, maskBit | 127, top),
        rest: b(0, 0, 0, 0, 0, 0, 1),
        code: 1002,
        maxMessageSize: Infinity,
      });
    }
    list.push({
      name: "64-bit length beyond 2^53 with no size limit",
      role,
      prefix: b(0x82, maskBit | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      code: 1009,
      maxMessageSize: Infinity,
    });
    list.push({
      name: "single frame over maxMessageSize (header only)",
      role,
      prefix: b(0x82, maskBit | 11),
      rest: concat(key ?? b(), new Uint8Array(11)),
      code: 1009,
      maxMessageSize: 10,
    });
    list.push({
      name: "64-bit length over maxMessageSize (header only)",
      role,
      prefix: b(0x82, maskBit | 127, 0, 0, 0, 0, 0x40, 0, 0, 0),
      code: 1009,
      maxMessageSize: 1 << 20,
    });
    list.push({
      name: "fragments adding up to more than maxMessageSize",
      role,
      prefix: concat(
        frameTo(role, Opcode.TEXT, "123456", { fin: false }),
        frameTo(role, Opcode.PING, "control frames do not count"),
        b(0x80, maskBit | 5),
      ),
      rest: concat(key ?? b(), new Uint8Array(5)),
      code: 1009,
      maxMessageSize: 10,
    });
    const filler = new Uint8Array(20).fill(0x61);
    list.push({
      name: "invalid UTF-8 in a text frame, before the frame is complete",
      role,
      ...splitFrame(role, Opcode.TEXT, b(0x61, 0x62, 0xff), new Uint8Array(97).fill(0x61)),
      code: 1007,
    });
    list.push({
      name: "overlong encoding detected at its second byte",
      role,
      ...splitFrame(role, Opcode.TEXT, b(0xe0, 0x80), filler),
      code: 1007,
    });
    list.push({
      name: "surrogate detected at its second byte",
      role,
      ...splitFrame(role, Opcode.TEXT, b(0x41, 0xed, 0xa0), filler),
      code: 1007,
    });
    list.push({
      name: "code point above U+10FFFF detected at its second byte",
      role,
      ...splitFrame(role, Opcode.TEXT, b(0xf4, 0x90), filler),
      code: 1007,
    });
    const afterBoundary = splitFrame(role, Opcode.CONTINUATION, b(0x41), filler);
    list.push({
      name: "invalid UTF-8 across a fragment boundary",
      role,
      prefix: concat(
        frameTo(role, Opcode.TEXT, b(0x61, 0xe2, 0x82), { fin: false }),
        afterBoundary.prefix,
      ),
      rest: afterBoundary.rest,
      code: 1007,
    });
    list.push({
      name: "invalid UTF-8 in a later non-final fragment",
      role,
      prefix: concat(
        frameTo(role, Opcode.TEXT, "ok", { fin: false }),
        frameTo(role, Opcode.PONG, "between"),
        frameTo(role, Opcode.CONTINUATION, b(0x61, 0xc0), { fin: false }),
      ),
      code: 1007,
    });
    list.push({
      name: "text message whose final fragment ends mid code point",
      role,
      prefix: concat(
        frameTo(role, Opcode.TEXT, "a", { fin: false }),
        frameTo(role, Opcode.CONTINUATION, b(0xf0, 0x9f, 0x98)),
      ),
      code: 1007,
    });
    list.push({
      name: "single text frame ending mid code point",
      role,
      prefix: frameTo(role, Opcode.TEXT, b(0x61, 0xc3)),
      code: 1007,
    });
    list.push({
      name: "close frame with a 1-byte body (header only)",
      role,
      prefix: b(0x88, maskBit | 1),
      rest: concat(key ?? b(), b(0x03)),
      code: 1002,
    });
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      list.push({
        name: `close status ${code}, detected before the reason arrives`,
        role,
        ...splitFrame(role, Opcode.CLOSE, b(code >> 8, code & 0xff), filler),
        code: 1002,
      });
      list.push({
        name: `close status ${code} with no reason`,
        role,
        prefix: frameTo(role, Opcode.CLOSE, b(code >> 8, code & 0xff)),
        code: 1002,
      });
    }
    list.push({
      name: "close reason not UTF-8, detected before the frame is complete",
      role,
      ...splitFrame(role, Opcode.CLOSE, b(0x03, 0xe8, 0x61, 0xff), filler),
      code: 1007,
    });
    list.push({
      name: "close status split from its reason, invalid reason byte",
      role,
      ...splitFrame(role, Opcode.CLOSE, b(0x03, 0xe8, 0xc3, 0x28), filler),
      code: 1007,
    });
    list.push({
      name: "close reason ending mid code point",
      role,
      prefix: frameTo(role, Opcode.CLOSE, b(0x03, 0xe8, 0xe2, 0x82)),
      code: 1007,
    });
    const surrogateClose = splitFrame(role, Opcode.CLOSE, b(0x03, 0xe8, 0xed, 0xa0), b(0x80));
    list.push({
      name: "close reason with a surrogate, between fragments of a valid text message",
      role,
      prefix: concat(frameTo(role, Opcode.TEXT, "a", { fin: false }), surrogateClose.prefix),
      rest: surrogateClose.rest,
      code: 1007,
    });
  }
  return list;
}

Deno.test("receiver: every violation gives its close code, in every chunking", () => {
  for (const v of violations()) {
    const stream = concat(v.prefix, v.rest ?? b());
    const receiverOptions = { role: v.role, maxMessageSize: v.maxMessageSize ?? 1 << 20 };
    const events = eventsInEveryChunking(stream, receiverOptions);
    assertError(events, v.code, `${v.role}: ${v.name}`);
    assert.equal(events.filter((e) => e.type === "error").length, 1);
  }
});

Deno.test("receiver: every violation is reported as soon as its first offending byte is fed", () => {
  for (const v of violations()) {
    const label = `${v.role}: ${v.name}`;
    const receiverOptions = { role: v.role, maxMessageSize: v.maxMessageSize ?? 1 << 20 };
    // Everything but the last byte of the prefix: no error yet.
    const receiver = new Receiver(receiverOptions);
    const prefix = v.prefix.slice();
    const events: ReceiverEvent[] = [];
    for (let i = 0; i < prefix.length - 1; i++) {
      receiver.feed(prefix.subarray(i, i + 1));
      drain(receiver, events);
    }
    assert.ok(events.every((e) => e.type !== "error"), `${label}: error too early`);
    // The last byte of the prefix proves the violation.
    receiver.feed(prefix.subarray(prefix.length - 1));
    drain(receiver, events);
    assertError(events, v.code, label);
  }
});

// ---------------------------------------------------------------------------------------
// After the end.

Deno.test("receiver: after close, nothing more is parsed and leftover hands over the rest", () => {
  for (const role of ROLES) {
    const receiver = new Receiver(options(role));
    const close = frameTo(role, Opcode.CLOSE, b(0x03, 0xe8));
    const following = frameTo(role, Opcode.TEXT, "after");
    receiver.feed(concat(frameTo(role, Opcode.TEXT, "before"), close, following.subarray(0, 3)));
    const tail = following.slice(3);
    receiver.feed(tail);
    assert.deepEqual(receiver.next(), message(false, "before"));
    assert.equal(receiver.bufferedBytes, close.length + following.length);
    assert.deepEqual(receiver.leftover(), [], "no leftover before the close event");
    assert.deepEqual(receiver.next(), { type: "close", code: 1000, reason: "" });
    assert.equal(receiver.next(), undefined);
    receiver.feed(frameTo(role, Opcode.PING, "ignored"));
    assert.equal(receiver.next(), undefined);
    const rest = receiver.leftover();
    assert.deepEqual(concat(...rest), following, "the unparsed bytes, still masked as sent");
    assert.equal(rest[1], tail, "whole chunks are handed over as they are");
    assert.deepEqual(receiver.leftover(), []);
    assert.equal(receiver.bufferedBytes, 0);
  }
});

Deno.test("receiver: leftover is empty when the close frame ends the input", () => {
  const receiver = new Receiver(options("client"));
  receiver.feed(b(0x88, 0x00));
  assert.deepEqual(receiver.next(), { type: "close", code: 1005, reason: "" });
  assert.deepEqual(receiver.leftover(), []);
});

Deno.test("receiver: after an error, nothing more is parsed and nothing is left over", () => {
  const receiver = new Receiver(options("client"));
  receiver.feed(concat(b(0x83, 0x00), frameTo("client", Opcode.TEXT, "x")));
  const event = receiver.next();
  assert.ok(event?.type === "error");
  assert.equal(event.code, 1002);
  assert.equal(receiver.next(), undefined);
  receiver.feed(frameTo("client", Opcode.TEXT, "y"));
  assert.equal(receiver.next(), undefined);
  assert.deepEqual(receiver.leftover(), []);
  assert.equal(receiver.bufferedBytes, 0);
});

Deno.test("receiver: a close frame between fragments ends the partial message", () => {
  for (const role of ROLES) {
    const stream = concat(
      frameTo(role, Opcode.TEXT, "part", { fin: false }),
      frameTo(role, Opcode.CLOSE, b(0x03, 0xe9)),
      frameTo(role, Opcode.CONTINUATION, "ignored"),
    );
    const events = eventsInEveryChunking(stream, options(role));
    assert.deepEqual(events, [{ type: "close", code: 1001, reason: "" }]);
  }
});

Deno.test("receiver: messages exactly at maxMessageSize are accepted", () => {
  for (const role of ROLES) {
    const stream = concat(
      frameTo(role, Opcode.BINARY, new Uint8Array(10)),
      frameTo(role, Opcode.TEXT, "12345", { fin: false }),
      frameTo(role, Opcode.PING, "x".repeat(125)),
      frameTo(role, Opcode.CONTINUATION, "67890"),
      frameTo(role, Opcode.TEXT, ""),
    );
    assert.deepEqual(eventsInEveryChunking(stream, options(role, 10)), [
      message(true, new Uint8Array(10)),
      { type: "ping", data: encoder.encode("x".repeat(125)) },
      message(false, "1234567890"),
      message(false, ""),
    ]);
    const zero = eventsInEveryChunking(
      concat(frameTo(role, Opcode.TEXT, ""), frameTo(role, Opcode.TEXT, "a")),
      options(role, 0),
    );
    assert.deepEqual(zero[0], message(false, ""));
    assertError(zero, 1009, "1 byte over a 0 limit");
  }
});

Deno.test("receiver: invalid options are EINVAL", () => {
  const bad: unknown[] = [
    { role: "peer", maxMessageSize: 10 },
    { role: "server", maxMessageSize: -1 },
    { role: "client", maxMessageSize: NaN },
    { role: "client", maxMessageSize: "10" },
  ];
  for (const receiverOptions of bad) {
    assert.throws(
      () => new Receiver(receiverOptions as ReceiverOptions),
      (e: unknown) => isDillError(e, "EINVAL"),
      JSON.stringify(receiverOptions),
    );
  }
});
