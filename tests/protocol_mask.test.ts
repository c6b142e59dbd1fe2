import assert from "node:assert/strict";
import { applyMask, MASK_LENGTH, randomMask, writeRandomMask } from "../protocol/mask.ts";

/** Deterministic PRNG (mulberry32) so failures reproduce. */
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

function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** The definition, byte by byte. */
function referenceMask(data: Uint8Array, mask: Uint8Array, maskOffset: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ mask[(maskOffset + i) % 4];
  return out;
}

Deno.test("applyMask: RFC 6455 section 5.7 example", () => {
  const data = new TextEncoder().encode("Hello");
  applyMask(data, new Uint8Array([0x37, 0xfa, 0x21, 0x3d]), 0);
  assert.deepEqual(data, new Uint8Array([0x7f, 0x9f, 0x4d, 0x51, 0x58]));
});

Deno.test("applyMask: matches the bytewise reference at every alignment, offset and length 0..70", () => {
  const random = prng(1);
  for (let alignment = 0; alignment < 8; alignment++) {
    for (let maskOffset = 0; maskOffset < 8; maskOffset++) {
      for (let length = 0; length <= 70; length++) {
        const mask = randomBytes(random, 4);
        const original = randomBytes(random, length);
        // Guard bytes on both sides catch writes outside the view.
        const buffer = randomBytes(random, alignment + length + 8);
        const guard = buffer.slice();
        buffer.set(original, alignment);
        guard.set(original, alignment);
        const view = buffer.subarray(alignment, alignment + length);
        applyMask(view, mask, maskOffset);
        const label = `alignment ${alignment}, offset ${maskOffset}, length ${length}`;
        assert.deepEqual(view, referenceMask(original, mask, maskOffset), label);
        assert.deepEqual(buffer.subarray(0, alignment), guard.subarray(0, alignment), label);
        assert.deepEqual(
          buffer.subarray(alignment + length),
          guard.subarray(alignment + length),
          label,
        );
        applyMask(view, mask, maskOffset);
        assert.deepEqual(view, original, `round trip, ${label}`);
      }
    }
  }
});

Deno.test("applyMask: large payloads at every alignment", () => {
  const random = prng(2);
  for (const length of [1000, 4099, 65536, 65539]) {
    for (let alignment = 0; alignment < 4; alignment++) {
      for (let maskOffset = 0; maskOffset < 4; maskOffset++) {
        const mask = randomBytes(random, 4);
        const original = randomBytes(random, length);
        const buffer = new Uint8Array(alignment + length);
        buffer.set(original, alignment);
        const view = buffer.subarray(alignment);
        applyMask(view, mask, maskOffset);
        assert.deepEqual(view, referenceMask(original, mask, maskOffset));
      }
    }
  }
});

/** Masks a view at `alignment` in a guarded buffer and checks it against the reference. */
function checkGuarded(
  random: () => number,
  alignment: number,
  length: number,
  maskOffset: number,
): void {
  const mask = randomBytes(random, 4);
  const original = randomBytes(random, length);
  const buffer = randomBytes(random, alignment + length + 9);
  const guard = buffer.slice();
  buffer.set(original, alignment);
  const view = buffer.subarray(alignment, alignment + length);
  applyMask(view, mask, maskOffset);
  const label = `alignment ${alignment}, offset ${maskOffset}, length ${length}`;
  assert.deepEqual(view, referenceMask(original, mask, maskOffset), label);
  assert.deepEqual(buffer.subarray(0, alignment), guard.subarray(0, alignment), label);
  assert.deepEqual(
    buffer.subarray(alignment + length),
    guard.subarray(alignment + length),
    label,
  );
  applyMask(view, mask, maskOffset);
  assert.deepEqual(view, original, `round trip, ${label}`);
}

Deno.test("applyMask: lengths around the 64-bit path's threshold (1 KiB), every 8-byte alignment", () => {
  const random = prng(5);
  for (let alignment = 0; alignment < 8; alignment++) {
    for (let maskOffset = 0; maskOffset < 4; maskOffset++) {
      for (let length = 1010; length <= 1040; length++) {
        checkGuarded(random, alignment, length, maskOffset);
      }
    }
  }
});

Deno.test("applyMask: 1 MiB and odd lengths near it, every 8-byte alignment and key offset", () => {
  const random = prng(6);
  const MiB = 1 << 20;
  for (const length of [MiB, MiB + 1, MiB + 3, MiB - 5, 65_537, 16_383]) {
    for (let alignment = 0; alignment < 8; alignment++) {
      checkGuarded(random, alignment, length, (alignment * 3 + length) & 7);
    }
  }
});

Deno.test("applyMask: a 1 MiB payload unmasked in odd-sized pieces equals one whole", () => {
  const random = prng(7);
  const mask = randomBytes(random, 4);
  const original = randomBytes(random, (1 << 20) + 3);
  const whole = original.slice();
  applyMask(whole, mask, 0);
  for (let trial = 0; trial < 3; trial++) {
    // Pieces as reads deliver them: any size, any offset in the payload.
    const pieces = original.slice();
    let at = 0;
    while (at < pieces.length) {
      const end = Math.min(pieces.length, at + 1 + Math.floor(random() * 70_000));
      applyMask(pieces.subarray(at, end), mask, at);
      at = end;
    }
    assert.deepEqual(pieces, whole);
  }
});

Deno.test("applyMask: only maskOffset & 3 matters, on every path", () => {
  const random = prng(8);
  for (const length of [5, 40, 600, 5000]) {
    const mask = randomBytes(random, 4);
    const original = randomBytes(random, length);
    for (let maskOffset = 0; maskOffset < 4; maskOffset++) {
      const a = original.slice();
      const b = original.slice();
      applyMask(a, mask, maskOffset);
      applyMask(b, mask, maskOffset + 4 * 1_000_003);
      assert.deepEqual(a, b, `length ${length}, offset ${maskOffset}`);
      assert.deepEqual(a, referenceMask(original, mask, maskOffset));
    }
  }
});

Deno.test("applyMask: a payload unmasked in pieces equals one unmasked whole", () => {
  const random = prng(3);
  const mask = randomBytes(random, 4);
  const original = randomBytes(random, 1000);
  const whole = original.slice();
  applyMask(whole, mask, 0);
  for (let trial = 0; trial < 50; trial++) {
    const pieces = original.slice();
    let at = 0;
    while (at < pieces.length) {
      const end = Math.min(pieces.length, at + Math.floor(random() * 80));
      applyMask(pieces.subarray(at, end), mask, at);
      at = end;
    }
    assert.deepEqual(pieces, whole);
  }
});

Deno.test("applyMask: the key may be a view at any offset, even next to the data", () => {
  const random = prng(4);
  for (let keyAt = 0; keyAt < 4; keyAt++) {
    const frame = randomBytes(random, keyAt + 4 + 50);
    const key = frame.subarray(keyAt, keyAt + 4);
    const expectedKey = key.slice();
    const payload = frame.subarray(keyAt + 4);
    const original = payload.slice();
    applyMask(payload, key, 0);
    assert.deepEqual(payload, referenceMask(original, expectedKey, 0));
    assert.deepEqual(key, expectedKey);
  }
});

Deno.test("applyMask: works on a SharedArrayBuffer view", () => {
  for (const size of [64, 4096]) {
    const shared = new Uint8Array(new SharedArrayBuffer(size));
    for (let i = 0; i < size; i++) shared[i] = i & 0xff;
    const original = shared.slice(3, size - 4);
    const mask = new Uint8Array([1, 2, 4, 8]);
    applyMask(shared.subarray(3, size - 4), mask, 1);
    assert.deepEqual(shared.slice(3, size - 4), referenceMask(original, mask, 1), `size ${size}`);
  }
});

Deno.test("randomMask: 4 fresh bytes per call, distinct keys across pool refills", () => {
  const seen = new Set<number>();
  const draws = 5000; // more than one 4 KiB pool (1024 keys)
  for (let i = 0; i < draws; i++) {
    const key = randomMask();
    assert.equal(key.length, MASK_LENGTH);
    assert.equal(key.byteOffset, 0);
    assert.equal(key.buffer.byteLength, 4);
    seen.add(new DataView(key.buffer).getUint32(0));
  }
  // 5000 draws from 2^32 values: a collision is possible but needing more than 5 is not.
  assert.ok(seen.size >= draws - 5, `only ${seen.size} distinct keys`);
});

Deno.test("randomMask: an earlier key is not changed by later draws", () => {
  const first = randomMask();
  const copy = first.slice();
  for (let i = 0; i < 3000; i++) randomMask();
  assert.deepEqual(first, copy);
});

Deno.test("writeRandomMask: writes exactly 4 bytes at the offset", () => {
  for (let offset = 0; offset < 8; offset++) {
    let differs = false;
    for (let trial = 0; trial < 4 && !differs; trial++) {
      const target = new Uint8Array(16).fill(0xaa);
      writeRandomMask(target, offset);
      for (let i = 0; i < 16; i++) {
        if (i < offset || i >= offset + 4) assert.equal(target[i], 0xaa, `byte ${i}`);
      }
      differs = target.subarray(offset, offset + 4).some((b) => b !== 0xaa);
    }
    assert.ok(differs, "the key bytes were written");
  }
});
