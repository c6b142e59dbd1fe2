import assert from "node:assert/strict";
import {
  encodeFrame,
  encodeFrameHeader,
  frameHeaderLength,
  isControlOpcode,
  MAX_CONTROL_PAYLOAD,
  MAX_FRAME_HEADER_LENGTH,
  Opcode,
} from "../protocol/frame.ts";
import { isDillError } from "../protocol/errors.ts";

const b = (...values: number[]) => new Uint8Array(values);

function assertEinval(fn: () => unknown, label: string): void {
  assert.throws(fn, (e: unknown) => isDillError(e, "EINVAL"), label);
}

function unmask(bytes: Uint8Array, key: Uint8Array): Uint8Array {
  return bytes.map((byte, i) => byte ^ key[i % 4]);
}

Deno.test("Opcode: RFC 6455 values", () => {
  assert.deepEqual({ ...Opcode }, {
    CONTINUATION: 0,
    TEXT: 1,
    BINARY: 2,
    CLOSE: 8,
    PING: 9,
    PONG: 10,
  });
  assert.equal(MAX_CONTROL_PAYLOAD, 125);
  assert.equal(MAX_FRAME_HEADER_LENGTH, 14);
});

Deno.test("isControlOpcode: opcodes 8-15", () => {
  for (let opcode = 0; opcode < 16; opcode++) {
    assert.equal(isControlOpcode(opcode), opcode >= 8, `${opcode}`);
  }
});

Deno.test("frameHeaderLength: shortest length form, plus 4 for a key", () => {
  const cases: [number, number][] = [
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [2 ** 53 - 1, 10],
  ];
  for (const [length, expected] of cases) {
    assert.equal(frameHeaderLength(length, false), expected, `${length}`);
    assert.equal(frameHeaderLength(length, true), expected + 4, `${length} masked`);
  }
});

Deno.test("encodeFrameHeader: the three length forms, exact bytes", () => {
  assert.deepEqual(encodeFrameHeader(Opcode.TEXT, 0, true, null), b(0x81, 0x00));
  assert.deepEqual(encodeFrameHeader(Opcode.TEXT, 5, true, null), b(0x81, 0x05));
  assert.deepEqual(encodeFrameHeader(Opcode.BINARY, 125, true, null), b(0x82, 125));
  assert.deepEqual(encodeFrameHeader(Opcode.BINARY, 126, true, null), b(0x82, 126, 0, 126));
  assert.deepEqual(encodeFrameHeader(Opcode.BINARY, 300, false, null), b(0x02, 126, 1, 44));
  assert.deepEqual(
    encodeFrameHeader(Opcode.BINARY, 65535, true, null),
    b(0x82, 126, 0xff, 0xff),
  );
  assert.deepEqual(
    encodeFrameHeader(Opcode.BINARY, 65536, true, null),
    b(0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0),
  );
  assert.deepEqual(
    encodeFrameHeader(Opcode.CONTINUATION, 2 ** 32, false, null),
    b(0x00, 127, 0, 0, 0, 1, 0, 0, 0, 0),
  );
  assert.deepEqual(
    encodeFrameHeader(Opcode.BINARY, 2 ** 53 - 1, true, null),
    b(0x82, 127, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
  );
  assert.deepEqual(
    encodeFrameHeader(Opcode.BINARY, 0x1234_5678_9a, true, null),
    b(0x82, 127, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a),
  );
});

Deno.test("encodeFrameHeader: FIN bit, control opcodes and masking key", () => {
  const key = b(0xa1, 0xb2, 0xc3, 0xd4);
  assert.deepEqual(encodeFrameHeader(Opcode.TEXT, 3, false, null), b(0x01, 0x03));
  assert.deepEqual(encodeFrameHeader(Opcode.CLOSE, 2, true, null), b(0x88, 0x02));
  assert.deepEqual(encodeFrameHeader(Opcode.PING, 125, true, null), b(0x89, 125));
  assert.deepEqual(encodeFrameHeader(Opcode.PONG, 0, true, null), b(0x8a, 0x00));
  assert.deepEqual(
    encodeFrameHeader(Opcode.TEXT, 5, true, key),
    b(0x81, 0x85, 0xa1, 0xb2, 0xc3, 0xd4),
  );
  assert.deepEqual(
    encodeFrameHeader(Opcode.BINARY, 256, true, key),
    b(0x82, 0xfe, 0x01, 0x00, 0xa1, 0xb2, 0xc3, 0xd4),
  );
  assert.deepEqual(
    encodeFrameHeader(Opcode.BINARY, 65536, true, key),
    b(0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4),
  );
});

Deno.test("encodeFrameHeader: invalid fields are EINVAL", () => {
  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, -1, 1.5]) {
    assertEinval(() => encodeFrameHeader(opcode, 0, true, null), `opcode ${opcode}`);
  }
  for (const length of [-1, 1.5, NaN, 2 ** 53, Infinity]) {
    assertEinval(() => encodeFrameHeader(Opcode.BINARY, length, true, null), `length ${length}`);
  }
  for (const opcode of [Opcode.CLOSE, Opcode.PING, Opcode.PONG]) {
    assertEinval(() => encodeFrameHeader(opcode, 126, true, null), `control ${opcode} 126`);
    assertEinval(() => encodeFrameHeader(opcode, 0, false, null), `control ${opcode} !fin`);
  }
  assertEinval(() => encodeFrameHeader(Opcode.TEXT, 0, true, b(1, 2, 3)), "3-byte key");
  assertEinval(() => encodeFrameHeader(Opcode.TEXT, 0, true, b(1, 2, 3, 4, 5)), "5-byte key");
});

Deno.test("encodeFrame: unmasked is [header, payload] with the payload itself", () => {
  const payload = new TextEncoder().encode("Hello");
  const chunks = encodeFrame(Opcode.TEXT, payload, { masked: false });
  assert.equal(chunks.length, 2);
  assert.deepEqual(chunks[0], b(0x81, 0x05));
  assert.equal(chunks[1], payload);
  const [header] = encodeFrame(Opcode.BINARY, payload, { masked: false, fin: false });
  assert.deepEqual(header, b(0x02, 0x05));
  const empty = encodeFrame(Opcode.PING, new Uint8Array(0), { masked: false });
  assert.deepEqual(empty[0], b(0x89, 0x00));
  assert.equal(empty[1].length, 0);
});

Deno.test("encodeFrame: masked is one buffer, payload masked with the key in the header", () => {
  for (const length of [0, 1, 5, 125, 126, 1000, 65535, 65536, 70000]) {
    const payload = new Uint8Array(length);
    for (let i = 0; i < length; i++) payload[i] = (i * 7 + 3) & 0xff;
    const original = payload.slice();
    for (const fin of [true, false]) {
      const chunks = encodeFrame(Opcode.BINARY, payload, { masked: true, fin });
      assert.equal(chunks.length, 1);
      const [frame] = chunks;
      const headerLength = frameHeaderLength(length, true);
      assert.equal(frame.length, headerLength + length);
      const key = frame.subarray(headerLength - 4, headerLength);
      const expectedHeader = encodeFrameHeader(Opcode.BINARY, length, fin, key);
      assert.deepEqual(frame.subarray(0, headerLength), expectedHeader, `length ${length}`);
      assert.deepEqual(unmask(frame.subarray(headerLength), key), original, `length ${length}`);
      // The payload part sits on a 4-byte boundary, so it is masked a word at a time.
      assert.equal((frame.byteOffset + headerLength) % 4, 0);
      assert.deepEqual(payload, original, "payload untouched");
    }
  }
});

Deno.test("encodeFrame: each masked frame gets a fresh key", () => {
  const keys = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const [frame] = encodeFrame(Opcode.TEXT, b(0x41), { masked: true });
    keys.add(frame.subarray(2, 6).join(","));
  }
  assert.ok(keys.size >= 195, `${keys.size} distinct keys in 200 frames`);
});

Deno.test("encodeFrame: the payload is left untouched when it is a view of a larger buffer", () => {
  const buffer = new Uint8Array(40).fill(0x55);
  const payload = buffer.subarray(3, 33);
  const [frame] = encodeFrame(Opcode.BINARY, payload, { masked: true });
  assert.ok(buffer.every((x) => x === 0x55));
  assert.deepEqual(unmask(frame.subarray(6), frame.subarray(2, 6)), payload);
});

Deno.test("encodeFrame: control frame payload over 125 bytes or fragmented is EINVAL", () => {
  for (const opcode of [Opcode.CLOSE, Opcode.PING, Opcode.PONG]) {
    for (const masked of [true, false]) {
      assertEinval(
        () => encodeFrame(opcode, new Uint8Array(126), { masked }),
        `opcode ${opcode} masked ${masked}`,
      );
      assertEinval(
        () => encodeFrame(opcode, new Uint8Array(1), { masked, fin: false }),
        `opcode ${opcode} masked ${masked} fin false`,
      );
      assert.equal(
        encodeFrame(opcode, new Uint8Array(125), { masked }).reduce((n, c) => n + c.length, 0),
        (masked ? 6 : 2) + 125,
      );
    }
  }
  assertEinval(() => encodeFrame(3, new Uint8Array(1), { masked: true }), "reserved opcode");
});
