import assert from "node:assert/strict";
import { isValidUtf8, Utf8Validator } from "../protocol/utf8.ts";

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

/** The reference: WHATWG's fatal decoder (which also rejects at the earliest byte). */
function referenceValid(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * The index of the first byte after which the input can no longer be the start of valid
 * UTF-8, by the reference streaming decoder; -1 if every prefix is a valid start.
 */
function referenceFirstBadByte(bytes: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      decoder.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  return -1;
}

/** The index at which a validator fed byte by byte first returns false; -1 if never. */
function firstBadByte(bytes: Uint8Array): number {
  const validator = new Utf8Validator();
  for (let i = 0; i < bytes.length; i++) {
    if (!validator.push(bytes.subarray(i, i + 1))) return i;
  }
  return -1;
}

/** Validity when pushed in the given pieces. */
function validInPieces(bytes: Uint8Array, cuts: number[]): boolean {
  const validator = new Utf8Validator();
  let at = 0;
  let ok = true;
  for (const cut of [...cuts, bytes.length]) {
    ok = validator.push(bytes.subarray(at, cut)) && ok;
    at = cut;
  }
  return ok && validator.finish();
}

const b = (...values: number[]) => new Uint8Array(values);

Deno.test("utf8: boundary code points are valid", () => {
  const cases: [string, Uint8Array][] = [
    ["empty", b()],
    ["U+0000", b(0x00)],
    ["U+007F", b(0x7f)],
    ["U+0080", b(0xc2, 0x80)],
    ["U+07FF", b(0xdf, 0xbf)],
    ["U+0800", b(0xe0, 0xa0, 0x80)],
    ["U+D7FF", b(0xed, 0x9f, 0xbf)],
    ["U+E000", b(0xee, 0x80, 0x80)],
    ["U+FEFF (BOM)", b(0xef, 0xbb, 0xbf)],
    ["U+FFFD", b(0xef, 0xbf, 0xbd)],
    ["U+FFFF", b(0xef, 0xbf, 0xbf)],
    ["U+10000", b(0xf0, 0x90, 0x80, 0x80)],
    ["U+10FFFF (max)", b(0xf4, 0x8f, 0xbf, 0xbf)],
    ["mixed", new TextEncoder().encode("κόσμε ascii € 𝄞 \u{10ffff}")],
  ];
  for (const [name, bytes] of cases) {
    assert.equal(isValidUtf8(bytes), true, name);
    assert.equal(firstBadByte(bytes), -1, name);
  }
});

Deno.test("utf8: invalid input is rejected at the first byte that proves it", () => {
  const cases: [string, Uint8Array, number][] = [
    ["lone continuation 0x80", b(0x80), 0],
    ["lone continuation 0xBF", b(0x41, 0xbf), 1],
    ["C0 (overlong lead)", b(0xc0, 0xaf), 0],
    ["C1 (overlong lead)", b(0xc1, 0xbf), 0],
    ["F5 (beyond U+10FFFF)", b(0xf5, 0x80, 0x80, 0x80), 0],
    ["FE", b(0xfe), 0],
    ["FF", b(0xff), 0],
    ["E0 80: overlong 3-byte", b(0xe0, 0x80, 0x80), 1],
    ["E0 9F: overlong 3-byte (U+07FF)", b(0xe0, 0x9f, 0xbf), 1],
    ["ED A0: surrogate U+D800", b(0xed, 0xa0, 0x80), 1],
    ["ED BF: surrogate U+DFFF", b(0xed, 0xbf, 0xbf), 1],
    ["F0 80: overlong 4-byte", b(0xf0, 0x80, 0x80, 0x80), 1],
    ["F0 8F: overlong 4-byte (U+FFFF)", b(0xf0, 0x8f, 0xbf, 0xbf), 1],
    ["F4 90: beyond U+10FFFF", b(0xf4, 0x90, 0x80, 0x80), 1],
    ["C2 then ASCII", b(0xc2, 0x41), 1],
    ["E2 82 then ASCII", b(0xe2, 0x82, 0x41), 2],
    ["F0 9F 98 then lead", b(0xf0, 0x9f, 0x98, 0xf0), 3],
    ["CESU-8 surrogate pair", b(0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80), 1],
  ];
  for (const [name, bytes, at] of cases) {
    assert.equal(isValidUtf8(bytes), false, name);
    assert.equal(firstBadByte(bytes), at, name);
    assert.equal(referenceFirstBadByte(bytes), at, `reference agrees: ${name}`);
  }
});

Deno.test("utf8: truncated sequences pass push but fail finish", () => {
  for (const bytes of [b(0xc2), b(0xe2, 0x82), b(0xe0, 0xa0), b(0xf0, 0x9f, 0x98), b(0xf4)]) {
    const validator = new Utf8Validator();
    assert.equal(validator.push(bytes), true);
    assert.equal(validator.finish(), false);
    assert.equal(isValidUtf8(bytes), false);
  }
});

Deno.test("utf8: a code point split across pushes at every point is valid", () => {
  const bytes = new TextEncoder().encode("a€𝄞é\u{10ffff}z");
  for (let cut1 = 0; cut1 <= bytes.length; cut1++) {
    for (let cut2 = cut1; cut2 <= bytes.length; cut2++) {
      assert.equal(validInPieces(bytes, [cut1, cut2]), true, `cuts ${cut1}, ${cut2}`);
    }
  }
});

Deno.test("utf8: invalid second byte is caught across a push boundary", () => {
  for (const bytes of [b(0xf4, 0x90), b(0xed, 0xa0), b(0xe0, 0x80), b(0xf0, 0x8f)]) {
    const validator = new Utf8Validator();
    assert.equal(validator.push(bytes.subarray(0, 1)), true);
    assert.equal(validator.push(bytes.subarray(1)), false);
  }
});

Deno.test("utf8: after a failure push and finish stay false until reset", () => {
  const validator = new Utf8Validator();
  assert.equal(validator.push(b(0xff)), false);
  assert.equal(validator.push(b(0x41)), false);
  assert.equal(validator.finish(), false);
  validator.reset();
  assert.equal(validator.push(b(0x41)), true);
  assert.equal(validator.finish(), true);
  // reset also forgets an unfinished code point
  assert.equal(validator.push(b(0xe2)), true);
  validator.reset();
  assert.equal(validator.push(b(0x41)), true);
  assert.equal(validator.finish(), true);
});

Deno.test("utf8: finish does not end the stream", () => {
  const validator = new Utf8Validator();
  assert.equal(validator.push(b(0xe2)), true);
  assert.equal(validator.finish(), false);
  assert.equal(validator.push(b(0x82, 0xac)), true);
  assert.equal(validator.finish(), true);
});

Deno.test("utf8: all 1- and 2-byte sequences agree with TextDecoder", () => {
  for (let x = 0; x < 256; x++) {
    assert.equal(isValidUtf8(b(x)), referenceValid(b(x)), `${x}`);
    for (let y = 0; y < 256; y++) {
      const bytes = b(x, y);
      assert.equal(isValidUtf8(bytes), referenceValid(bytes), `${x} ${y}`);
    }
  }
});

Deno.test("utf8: 3- and 4-byte sequences over boundary values agree with TextDecoder", () => {
  const edges = [0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0];
  const leads: number[] = [];
  for (let x = 0xc0; x < 0x100; x++) leads.push(x);
  for (const x of leads) {
    for (const y of edges) {
      for (const z of edges) {
        const three = b(x, y, z);
        assert.equal(isValidUtf8(three), referenceValid(three), `${x} ${y} ${z}`);
        assert.equal(firstBadByte(three), referenceFirstBadByte(three), `${x} ${y} ${z}`);
        for (const w of edges) {
          const four = b(x, y, z, w);
          assert.equal(isValidUtf8(four), referenceValid(four), `${x} ${y} ${z} ${w}`);
        }
      }
    }
  }
});

/** Random text-like bytes: mostly valid encoded code points, with random damage. */
function generate(random: () => number): Uint8Array {
  const out: number[] = [];
  const count = Math.floor(random() * 60);
  for (let i = 0; i < count; i++) {
    const kind = random();
    let codePoint: number;
    if (kind < 0.5) codePoint = Math.floor(random() * 0x80);
    else if (kind < 0.7) codePoint = 0x80 + Math.floor(random() * 0x780);
    else if (kind < 0.85) codePoint = 0x800 + Math.floor(random() * 0xf800);
    else codePoint = 0x10000 + Math.floor(random() * 0x100000);
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0x41;
    out.push(...new TextEncoder().encode(String.fromCodePoint(codePoint)));
  }
  const damage = random();
  if (damage < 0.3 && out.length > 0) {
    out[Math.floor(random() * out.length)] = Math.floor(random() * 256);
  } else if (damage < 0.45) {
    out.splice(Math.floor(random() * (out.length + 1)), 0, 0x80 + Math.floor(random() * 0x80));
  } else if (damage < 0.6 && out.length > 0) {
    out.length = Math.floor(random() * out.length);
  } else if (damage < 0.7) {
    // raw surrogate or overlong or out-of-range forms
    const bad = [[0xed, 0xa0, 0x80], [0xc0, 0x80], [0xe0, 0x80, 0xaf], [0xf4, 0x90, 0x80, 0x80]];
    out.splice(Math.floor(random() * (out.length + 1)), 0, ...bad[Math.floor(random() * 4)]);
  }
  return new Uint8Array(out);
}

Deno.test("utf8: generated sequences agree with TextDecoder, whole and in random pieces", () => {
  const random = prng(7);
  let invalid = 0;
  for (let trial = 0; trial < 20000; trial++) {
    const bytes = generate(random);
    const expected = referenceValid(bytes);
    if (!expected) invalid++;
    assert.equal(isValidUtf8(bytes), expected, `bytes ${bytes}`);
    const cuts: number[] = [];
    let at = 0;
    while (at < bytes.length && random() < 0.8) {
      at += Math.floor(random() * 6);
      if (at < bytes.length) cuts.push(at);
    }
    assert.equal(validInPieces(bytes, cuts), expected, `bytes ${bytes} cuts ${cuts}`);
    if (trial % 10 === 0) {
      assert.equal(firstBadByte(bytes), referenceFirstBadByte(bytes), `bytes ${bytes}`);
    }
  }
  assert.ok(invalid > 4000 && invalid < 16000, `mix of valid and invalid: ${invalid} invalid`);
});

Deno.test("utf8: word-at-a-time ASCII scan, any alignment, non-ASCII anywhere", () => {
  const text = new TextEncoder().encode("x".repeat(100));
  for (let alignment = 0; alignment < 8; alignment++) {
    for (let at = 0; at < 100; at++) {
      const buffer = new Uint8Array(alignment + 100);
      buffer.set(text, alignment);
      const view = buffer.subarray(alignment);
      assert.equal(isValidUtf8(view), true);
      // An invalid byte anywhere in a long ASCII run.
      view[at] = 0xff;
      assert.equal(isValidUtf8(view), false, `0xFF at ${at}, alignment ${alignment}`);
      // A valid 2-byte code point anywhere, then ASCII again.
      if (at < 99) {
        view[at] = 0xc3;
        view[at + 1] = 0xa9;
        assert.equal(isValidUtf8(view), true, `é at ${at}, alignment ${alignment}`);
        // Truncated by a following ASCII byte.
        view[at + 1] = 0x78;
        assert.equal(isValidUtf8(view), false, `cut é at ${at}, alignment ${alignment}`);
      }
      // A lead byte at the very end.
      view.set(text);
      view[99] = 0xe2;
      assert.equal(isValidUtf8(view), false);
    }
  }
});

Deno.test("utf8: long mixed text with random damage agrees with TextDecoder", () => {
  const random = prng(11);
  const base = new TextEncoder().encode(
    ("The quick brown fox jumps over the lazy dog. Ünïcödé €uro 𝄞 " +
      "plain ascii runs long enough for the word path ").repeat(40),
  );
  for (let trial = 0; trial < 300; trial++) {
    const bytes = base.slice(Math.floor(random() * 8));
    if (trial % 2 === 1) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    assert.equal(isValidUtf8(bytes), referenceValid(bytes), `trial ${trial}`);
    assert.equal(firstBadByte(bytes), referenceFirstBadByte(bytes), `trial ${trial}`);
  }
});
