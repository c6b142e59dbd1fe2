/**
 * Micro-benchmark of UTF-8 validation (protocol/utf8.ts), which checks text messages
 * that arrive in pieces or are received into a caller's buffer, text sent as bytes, and
 * close reasons:
 *
 * - `isValidUtf8`: the module's version (whole sequences at a time, ASCII words skipped);
 * - `byte states`: the previous version, one byte at a time carrying the expected range
 *   of the next byte (kept here to compare);
 * - `TextDecoder fatal`: Deno's native decoder, which also builds the string.
 *
 * Inputs of 1 KiB and 64 KiB: ASCII, Latin text (mostly ASCII, some 2-byte), Japanese
 * (3-byte), and the mix of 1- to 4-byte characters the echo benchmark sends.
 *
 * Run: `deno bench --no-lock bench/utf8_bench.ts` (or `deno task bench:utf8`). Each input
 * is one group, `isValidUtf8` its baseline.
 *
 * @module
 */

import { isValidUtf8 } from "../protocol/utf8.ts";
import { textPayload } from "./load/payloads.ts";

/**
 * The previous validator: a state machine over single bytes (how many continuation bytes
 * are expected and the range of the next), with the same ASCII word scan.
 */
function byteStates(bytes: Uint8Array): boolean {
  let needed = 0;
  let lower = 0x80;
  let upper = 0xbf;
  const length = bytes.length;
  let words: Uint32Array | null = null;
  let wordStart = 0;
  let wordCount = 0;
  if (length >= 32) {
    wordStart = (4 - (bytes.byteOffset & 3)) & 3;
    wordCount = (length - wordStart) >>> 2;
    words = new Uint32Array(bytes.buffer, bytes.byteOffset + wordStart, wordCount);
  }
  let i = 0;
  while (i < length) {
    if (needed === 0 && words !== null) {
      const fromWordStart = i - wordStart;
      if (fromWordStart >= 0 && (fromWordStart & 3) === 0) {
        let w = fromWordStart >>> 2;
        while (w < wordCount && (words[w] & 0x80808080) === 0) w++;
        i = wordStart + (w << 2);
        if (i >= length) break;
      }
    }
    const byte = bytes[i++];
    if (needed === 0) {
      if (byte < 0x80) continue;
      if (byte >= 0xc2 && byte <= 0xdf) {
        needed = 1;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        if (byte === 0xe0) lower = 0xa0;
        else if (byte === 0xed) upper = 0x9f;
        needed = 2;
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        if (byte === 0xf0) lower = 0x90;
        else if (byte === 0xf4) upper = 0x8f;
        needed = 3;
      } else {
        return false;
      }
    } else {
      if (byte < lower || byte > upper) return false;
      lower = 0x80;
      upper = 0xbf;
      needed--;
    }
  }
  return needed === 0;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
function decodes(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const encoder = new TextEncoder();
/** `unit` repeated and cut to exactly `size` bytes at a character boundary, padded with ".". */
function textOf(unit: string, size: number): Uint8Array {
  const bytes = encoder.encode(unit.repeat(Math.ceil(size / unit.length)));
  let end = size;
  while ((bytes[end] & 0xc0) === 0x80) end--;
  const out = new Uint8Array(size).fill(0x2e);
  out.set(bytes.subarray(0, end));
  return out;
}

const INPUTS: [string, (size: number) => Uint8Array][] = [
  ["ASCII", (size) => textOf("The quick brown fox jumps over the lazy dog. ", size)],
  ["Latin", (size) => textOf("Größere Übungen für naïve Cafés à Zürich. ", size)],
  ["Japanese", (size) => textOf("日本語のテキストを検証する。", size)],
  ["mixed 1-4 bytes (the echo benchmark's)", textPayload],
];

for (const size of [1024, 64 * 1024]) {
  for (const [name, make] of INPUTS) {
    const bytes = make(size);
    if (!isValidUtf8(bytes) || !byteStates(bytes) || !decodes(bytes)) {
      throw new Error(`${name}: the input is not valid UTF-8 to every validator`);
    }
    const group = `${name}, ${size / 1024} KiB`;
    Deno.bench(`isValidUtf8, ${group}`, { group, baseline: true }, () => {
      isValidUtf8(bytes);
    });
    Deno.bench(`byte states, ${group}`, { group }, () => {
      byteStates(bytes);
    });
    Deno.bench(`TextDecoder fatal, ${group}`, { group }, () => {
      decodes(bytes);
    });
  }
}
