/**
 * WebSocket payload masking (RFC 6455 section 5.3): every payload byte is XORed with one
 * byte of a 4-byte key, cycling through the key. Clients mask every frame they send;
 * servers unmask every frame they receive.
 *
 * @module
 */

/** Length in bytes of a masking key. */
export const MASK_LENGTH = 4;

/** Whether this platform stores the low byte of a word first; decides how a key fills a word. */
const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Below this many bytes, building a word view costs more than it saves; such short
 * payloads (typical control frames) are masked bytewise.
 */
const WORD_PATH_MIN_LENGTH = 16;

/**
 * From this many bytes on, the aligned middle is XORed 8 bytes at a time through a
 * `BigUint64Array` view: V8 compiles 64-bit XOR on such a view without allocating, and
 * the loop runs half as many times (bench/mask_bench.ts: 1.3–1.9× as fast as 32-bit
 * words at 16 KiB, about 2× at 1 MiB, even at 1 KiB). Below it, building the 64-bit key
 * costs about what it saves.
 */
const WIDE_PATH_MIN_LENGTH = 1024;

/**
 * XORs `data` in place with the 4-byte masking key `mask`: byte `i` of `data` is XORed
 * with `mask[(maskOffset + i) & 3]`. Masking twice with the same key and offset restores
 * the original bytes. `maskOffset` is the position of `data[0]` within the frame's
 * payload, so a payload can be unmasked piece by piece as it arrives.
 *
 * The aligned middle of `data` is processed one 64-bit word (large payloads) or one
 * 32-bit word at a time.
 *
 * @param data the bytes to mask or unmask, modified in place
 * @param mask the 4-byte masking key (only its first 4 bytes are read)
 * @param maskOffset how many payload bytes come before `data[0]` (only `& 3` matters)
 *
 * @example
 * ```ts
 * import { applyMask } from "./mask.ts";
 *
 * const key = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
 * const payload = new TextEncoder().encode("Hello");
 * applyMask(payload, key, 0); // masked: 7f 9f 4d 51 58
 * applyMask(payload.subarray(0, 2), key, 0); // unmask in two pieces...
 * applyMask(payload.subarray(2), key, 2); // ...continuing at key offset 2
 * console.log(new TextDecoder().decode(payload)); // "Hello"
 * ```
 */
export function applyMask(data: Uint8Array, mask: Uint8Array, maskOffset: number): void {
  const length = data.length;
  let i = 0;
  if (length >= WORD_PATH_MIN_LENGTH) {
    // Bytewise until data[i] sits on a word boundary of the underlying buffer, because a
    // word view must start there.
    const wordSize = length >= WIDE_PATH_MIN_LENGTH ? 8 : 4;
    const head = (wordSize - (data.byteOffset & (wordSize - 1))) & (wordSize - 1);
    for (; i < head; i++) data[i] ^= mask[(maskOffset + i) & 3];
    // The key rotated so that its first byte lines up with data[head].
    const k = (maskOffset + head) & 3;
    const m0 = mask[k], m1 = mask[(k + 1) & 3], m2 = mask[(k + 2) & 3], m3 = mask[(k + 3) & 3];
    const maskWord = LITTLE_ENDIAN
      ? (m0 | (m1 << 8) | (m2 << 16) | (m3 << 24)) >>> 0
      : ((m0 << 24) | (m1 << 16) | (m2 << 8) | m3) >>> 0;
    const start = data.byteOffset + head;
    if (wordSize === 8) {
      const wordCount = (length - head) >>> 3;
      // The 4 key bytes twice over: the same 64-bit key in either byte order.
      const half = BigInt(maskWord);
      const wideMask = (half << 32n) | half;
      const words = new BigUint64Array(data.buffer, start, wordCount);
      for (let w = 0; w < wordCount; w++) words[w] ^= wideMask;
      i = head + wordCount * 8;
    } else {
      const wordCount = (length - head) >>> 2;
      const words = new Uint32Array(data.buffer, start, wordCount);
      for (let w = 0; w < wordCount; w++) words[w] ^= maskWord;
      i = head + (wordCount << 2);
    }
  }
  for (; i < length; i++) data[i] ^= mask[(maskOffset + i) & 3];
}

/** Random bytes drawn in bulk, so that framing does not make one system call per frame. */
const RANDOM_POOL_SIZE = 4096;
const randomPool = new Uint8Array(RANDOM_POOL_SIZE);
let randomPoolPosition = RANDOM_POOL_SIZE; // "empty": the first draw fills the pool

/**
 * Writes a fresh random 4-byte masking key into `target` at `offset`. Keys come from a
 * pool filled by `crypto.getRandomValues` 4 KiB at a time; no key is handed out twice.
 *
 * @param target where to write the key
 * @param offset index in `target` of the key's first byte; `target` needs 4 bytes from there
 *
 * @example
 * ```ts
 * import { writeRandomMask } from "./mask.ts";
 *
 * const header = new Uint8Array(6);
 * header[0] = 0x81; // FIN + text
 * header[1] = 0x80; // masked, empty payload
 * writeRandomMask(header, 2);
 * ```
 */
export function writeRandomMask(target: Uint8Array, offset: number): void {
  if (randomPoolPosition + MASK_LENGTH > RANDOM_POOL_SIZE) {
    crypto.getRandomValues(randomPool);
    randomPoolPosition = 0;
  }
  const p = randomPoolPosition;
  target[offset] = randomPool[p];
  target[offset + 1] = randomPool[p + 1];
  target[offset + 2] = randomPool[p + 2];
  target[offset + 3] = randomPool[p + 3];
  randomPoolPosition = p + MASK_LENGTH;
}

/**
 * A fresh random 4-byte masking key, in its own buffer (see {@link writeRandomMask}).
 *
 * @example
 * ```ts
 * import { applyMask, randomMask } from "./mask.ts";
 *
 * const key = randomMask();
 * const payload = new Uint8Array([1, 2, 3]);
 * applyMask(payload, key, 0);
 * applyMask(payload, key, 0);
 * console.log(payload); // Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export function randomMask(): Uint8Array {
  const key = new Uint8Array(MASK_LENGTH);
  writeRandomMask(key, 0);
  return key;
}
