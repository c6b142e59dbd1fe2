/**
 * Micro-benchmark of payload unmasking (protocol/mask.ts): `applyMask` against two
 * simpler ways to do the same work, at the payload sizes of the echo workloads and
 * at aligned and unaligned starts (a payload rarely starts on an 8-byte boundary in
 * a read buffer).
 *
 * - `applyMask`: the module's version (64-bit words from 1 KiB, else 32-bit);
 * - `32-bit words`: XOR through a `Uint32Array` view only (the previous version);
 * - `bytewise`: the definition, one byte at a time.
 *
 * Run: `deno bench --no-lock bench/mask_bench.ts` (or `deno task bench:mask`).
 * Each size is one group, `applyMask` its baseline.
 *
 * @module
 */

import { applyMask } from "../protocol/mask.ts";

/** XOR through a 32-bit word view of the aligned middle, bytewise at the ends. */
function mask32(data: Uint8Array, mask: Uint8Array, maskOffset: number): void {
  const length = data.length;
  let i = 0;
  if (length >= 16) {
    const head = (4 - (data.byteOffset & 3)) & 3;
    for (; i < head; i++) data[i] ^= mask[(maskOffset + i) & 3];
    const wordCount = (length - head) >>> 2;
    const k = (maskOffset + head) & 3;
    // Little-endian order (the benchmark machines); the result is not checked here.
    const word = (mask[k] | (mask[(k + 1) & 3] << 8) | (mask[(k + 2) & 3] << 16) |
      (mask[(k + 3) & 3] << 24)) >>> 0;
    const words = new Uint32Array(data.buffer, data.byteOffset + head, wordCount);
    for (let w = 0; w < wordCount; w++) words[w] ^= word;
    i = head + (wordCount << 2);
  }
  for (; i < length; i++) data[i] ^= mask[(maskOffset + i) & 3];
}

/** The definition: one byte at a time. */
function bytewise(data: Uint8Array, mask: Uint8Array, maskOffset: number): void {
  for (let i = 0; i < data.length; i++) data[i] ^= mask[(maskOffset + i) & 3];
}

const KEY = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
const SIZES = [64, 125, 256, 512, 1024, 16 * 1024, 1024 * 1024];

for (const size of SIZES) {
  // Offset 3 from an 8-aligned start: the unaligned case both word paths must handle.
  for (const offset of [0, 3]) {
    const buffer = new Uint8Array(size + 8);
    crypto.getRandomValues(buffer.subarray(0, Math.min(buffer.length, 65536)));
    const data = buffer.subarray(offset, offset + size);
    const group = `${size} B at offset ${offset}`;
    Deno.bench(`applyMask, ${group}`, { group, baseline: true }, () => applyMask(data, KEY, 1));
    Deno.bench(`32-bit words, ${group}`, { group }, () => mask32(data, KEY, 1));
    if (size <= 16 * 1024) {
      Deno.bench(`bytewise, ${group}`, { group }, () => bytewise(data, KEY, 1));
    }
  }
}
