/**
 * The in-place read fuzzer's free-hand stream: it plays the bytestream's reads for an
 * {@link ActorReader} with every choice the receiver's contract allows. Once a read
 * target is out, most reads go into it at their place (whole, short, or filling more
 * than is fed at once) and the very view is fed; the others are read elsewhere (bytes
 * already on their way, maybe running past the target's end) for the receiver to copy
 * into place. Elsewhere is a new buffer, a view inside a larger one, a slice of a shared
 * slab, or the last chunk given back (its buffer reused).
 *
 * @module
 */

import type { ActorReader } from "./actor_reader.ts";
import { type LargeFrameCase, ReadLengths } from "./gen_large_frames.ts";
import type { Rng } from "./prng.ts";

const SLAB_SIZE = 8192;

/**
 * Feeds all of `c.input` to `reader`, then drains it.
 *
 * @example
 * ```ts
 * import { ActorReader } from "./actor_reader.ts";
 * import { feedDirect } from "./feed_direct.ts";
 * import { genLargeFrameCase } from "./gen_large_frames.ts";
 * import { Rng } from "./prng.ts";
 * import { referenceFrameBytes } from "./ref_frames.ts";
 *
 * const rng = new Rng(1, 0);
 * const c = genLargeFrameCase(rng);
 * const ref = referenceFrameBytes(c.input, c.role, c.maxMessageSize);
 * const reader = new ActorReader(c, ref, rng);
 * feedDirect(c, reader, rng);
 * reader.finish();
 * ```
 */
export function feedDirect(c: LargeFrameCase, reader: ActorReader, rng: Rng): void {
  const input = c.input;
  const lengths = new ReadLengths(rng, c.cuts);
  let pos = 0;
  let target: Uint8Array | null = null;
  /** Stream offset of `target[0]`. */
  let targetAt = 0;
  let spare: Uint8Array | null = null;
  let slab = new Uint8Array(0);
  let slabUsed = 0;
  while (pos < input.length && !reader.finished) {
    let chunk: Uint8Array;
    const inTarget = target !== null && pos >= targetAt && pos < targetAt + target.length;
    if (inTarget && rng.chance(0.75)) {
      const into = target!.subarray(pos - targetAt);
      const n = lengths.next(pos, input.length, into.length);
      // A read may get more than goes up now: the rest is already in place for later.
      const got = rng.chance(0.2) ? Math.min(into.length, input.length - pos, n * 2) : n;
      into.set(input.subarray(pos, pos + got));
      chunk = into.subarray(0, n);
    } else {
      const n = lengths.next(pos, input.length, 1 << 20);
      const kind = rng.int(4);
      if (kind === 0 && spare !== null && spare.length >= n) {
        chunk = spare.subarray(0, n);
        spare = null;
      } else if (kind === 1 && n <= SLAB_SIZE / 2) {
        if (slab.length - slabUsed < n) {
          slab = new Uint8Array(SLAB_SIZE);
          slabUsed = 0;
        }
        chunk = slab.subarray(slabUsed, slabUsed + n);
        slabUsed += n;
      } else if (kind === 2) {
        const before = rng.int(64);
        chunk = new Uint8Array(before + n + rng.int(64)).subarray(before, before + n);
      } else {
        chunk = new Uint8Array(n);
      }
      chunk.set(input.subarray(pos, pos + n));
    }
    pos += chunk.length;
    const { target: given, released } = reader.take(chunk, rng.chance(0.8) ? Infinity : rng.int(3));
    // The stream may not take the target up (it already read past it): then all is copied.
    if (given !== null && rng.chance(0.9)) {
      target = given;
      targetAt = reader.fedBytes;
    }
    if (released !== null) spare = released;
  }
  reader.drain();
}
