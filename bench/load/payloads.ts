/**
 * Message payloads of the workloads.
 *
 * @module
 */

/** `size` bytes of a fixed pseudo-random pattern (not compressible, not all zeros). */
export function binaryPayload(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = 0x2545f491;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const MIXED = "héllo wörld ✓ naïve café 日本語のテキスト 🙂🚀 Ωμέγα Привет ";

/**
 * Exactly `size` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte characters
 * (padded with ASCII so no character is cut).
 */
export function textPayload(size: number): Uint8Array {
  const encoder = new TextEncoder();
  let text = "";
  for (const ch of MIXED.repeat(Math.ceil(size / MIXED.length) + 1)) {
    if (encoder.encode(text + ch).length > size) break;
    text += ch;
  }
  const bytes = encoder.encode(text.padEnd(text.length + size - encoder.encode(text).length, "."));
  if (bytes.length !== size) {
    throw new Error(`textPayload: built ${bytes.length} bytes, not ${size}`);
  }
  return bytes;
}
