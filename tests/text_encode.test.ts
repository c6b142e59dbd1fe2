/**
 * protocol/text_encode.ts: strings encoded into a shared slab give exactly the bytes
 * `TextEncoder` gives, and one encoded string is never overwritten by the next.
 */

import assert from "node:assert/strict";
import { encodeText } from "../protocol/text_encode.ts";

const reference = new TextEncoder();

Deno.test("encodeText: the same bytes as TextEncoder, short and long, lone surrogates included", () => {
  const samples = [
    "",
    "a",
    "héllo €𝄞",
    "\ud800", // lone high surrogate: U+FFFD
    "x\udc00y", // lone low surrogate
    "𝄞".repeat(682), // at the slab limit (1,364 code units)
    "€".repeat(1365),
    "€".repeat(1366), // past it: its own buffer
    "a".repeat(100_000),
  ];
  for (const s of samples) {
    assert.deepEqual([...encodeText(s)], [...reference.encode(s)], `for a string of ${s.length}`);
  }
});

Deno.test("encodeText: earlier results stay intact while later strings fill and renew the slab", () => {
  const kept: { text: string; bytes: Uint8Array }[] = [];
  for (let i = 0; i < 500; i++) {
    const text = `${i}:` + "é€𝄞a".repeat(i % 97);
    kept.push({ text, bytes: encodeText(text) });
  }
  for (const { text, bytes } of kept) assert.deepEqual([...bytes], [...reference.encode(text)]);
});
