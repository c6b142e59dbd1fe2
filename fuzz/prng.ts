/**
 * A small seeded pseudo-random generator for the fuzzers (sfc32, seeded through
 * splitmix32), so every run is reproducible from its seed and input index.
 *
 * @module
 */

/** One step of splitmix32: spreads a 32-bit seed into a well-mixed 32-bit value. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A reproducible source of random numbers and choices. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** A generator for input `index` of the run seeded with `seed`. */
  constructor(seed: number, index = 0) {
    const state = { s: (seed ^ Math.imul(index, 0x27d4eb2d)) | 0 };
    splitmix32(state);
    state.s = (state.s + index) | 0;
    this.#a = splitmix32(state);
    this.#b = splitmix32(state);
    this.#c = splitmix32(state);
    this.#d = splitmix32(state) | 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A uniform integer in `[0, n)`; `n` at most 2^32. */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** A uniform integer in `[lo, hi]`. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A small size, biased to 0..8 but sometimes up to `max`. */
  size(max: number): number {
    const r = this.int(16);
    if (r < 10) return Math.min(max, this.int(9));
    if (r < 14) return Math.min(max, this.int(64));
    return this.int(max + 1);
  }

  /** `n` uniform random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const r = this.u32();
      out[i] = r;
      if (i + 1 < n) out[i + 1] = r >>> 8;
      if (i + 2 < n) out[i + 2] = r >>> 16;
      if (i + 3 < n) out[i + 3] = r >>> 24;
    }
    return out;
  }

  /** Cuts `data` into random pieces (copies), with one-byte and empty pieces now and then. */
  split(data: Uint8Array): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    // Large inputs get about 64 pieces, some tiny: cutting 64 KiB into bytes costs more
    // than it finds, as every byte boundary is already tried on small inputs.
    const style = data.length > 2048 ? 3 : this.int(4);
    const coarse = Math.ceil(data.length / 32);
    let at = 0;
    while (at < data.length) {
      const n = style === 0
        ? 1
        : style === 1
        ? this.range(0, 3)
        : style === 2
        ? this.size(data.length)
        : this.chance(0.2)
        ? this.int(4)
        : this.int(coarse);
      pieces.push(data.slice(at, at + n));
      at += n;
    }
    if (this.chance(0.2)) pieces.splice(this.int(pieces.length + 1), 0, new Uint8Array(0));
    return pieces;
  }
}

/** Lower-case hex of `bytes`, for printing an input so it can be replayed. */
export function hex(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += HEX[bytes[i]];
  return text;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Bytes from {@link hex} output. */
export function unhex(text: string): Uint8Array {
  const out = new Uint8Array(text.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
