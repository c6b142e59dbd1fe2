/**
 * Structure-aware generation for the in-place read fuzzer: frame streams around large
 * messages (final frames of 64 KiB and more, whole or after fragments, with control
 * frames between the fragments) and small fragmented messages (whose pieces the receiver
 * copies out of read buffers before giving them back), with the stream offsets where a
 * read is worth ending: frame and payload boundaries, where exactly 64 KiB of a final
 * frame remain (the least the receiver hands out a read target for), and where an eighth
 * of a message has arrived (the least it needs to).
 *
 * @module
 */

import { concatBytes as concat } from "../protocol/bytes.ts";
import { READ_TARGET_MIN } from "../protocol/message_assembly.ts";
import {
  encodeModelFrame,
  type FrameCase,
  genBrokenText,
  genControl,
  genText,
  type ModelFrame,
  mutateFrame,
} from "./gen_frames.ts";
import type { Rng } from "./prng.ts";

/** One input of the in-place read fuzzer: a receiver input and where to end reads. */
export interface LargeFrameCase extends FrameCase {
  /** Stream offsets worth ending a read at, ascending, each within the input. */
  cuts: number[];
}

/** A frame and the offsets in its payload worth ending a read at. */
interface PlannedFrame {
  frame: ModelFrame;
  payloadCuts: number[];
}

/** The size of a large message's final frame: mostly past 64 KiB, often at a threshold. */
function genFinalSize(rng: Rng): number {
  const r = rng.int(20);
  if (r < 9) return rng.range(READ_TARGET_MIN, 110_000);
  // Just enough to have 64 KiB left after the header, and the eighth of a single frame.
  if (r < 12) return READ_TARGET_MIN + rng.range(-2, 2);
  if (r < 15) return Math.ceil(READ_TARGET_MIN * 8 / 7) + rng.range(-3, 3);
  if (r < 19) return rng.range(1, READ_TARGET_MIN - 1);
  return rng.range(110_000, 300_000);
}

/** The size of a fragment before a large message's final one. */
function genFragmentSize(rng: Rng): number {
  const r = rng.int(6);
  if (r < 2) return rng.size(40);
  if (r < 4) return rng.range(1, 20_000);
  if (r < 5) return rng.range(20_000, 60_000);
  return 0;
}

/** Valid text of at least `size` bytes, from a few distinct blocks so no stretch repeats far. */
function genLargeText(rng: Rng, size: number): Uint8Array {
  const blocks = Array.from({ length: 4 }, () => genText(rng, rng.range(200, 400), 0));
  const parts: Uint8Array[] = [];
  let length = 0;
  while (length < size) {
    const block = rng.pick(blocks);
    parts.push(block);
    length += block.length;
  }
  return concat(parts);
}

/** A large data message: fragments, control frames between them, a large final frame. */
function genLargeMessage(rng: Rng, mask: () => Uint8Array | null): PlannedFrame[] {
  const text = rng.chance(0.4);
  const sizes = Array.from({ length: rng.pick([0, 0, 0, 1, 1, 2, 3]) }, () => genFragmentSize(rng));
  const before = sizes.reduce((a, b) => a + b, 0);
  const wanted = before + genFinalSize(rng);
  let payload = text ? genLargeText(rng, wanted) : rng.bytes(wanted);
  if (text && rng.chance(0.15)) {
    // Invalid UTF-8 anywhere, most likely in bytes read straight into the message.
    const at = rng.int(payload.length + 1);
    payload = concat([payload.subarray(0, at), genBrokenText(rng), payload.subarray(at)]);
  }
  sizes.push(payload.length - before);
  const total = payload.length;
  const eighth = Math.ceil(total / 8);
  const planned: PlannedFrame[] = [];
  let start = 0;
  for (let i = 0; i < sizes.length; i++) {
    const size = sizes[i];
    const last = i === sizes.length - 1;
    const cuts = [0, size, eighth - start, eighth - start - 1, rng.int(size + 1)];
    if (last) {
      cuts.push(size - READ_TARGET_MIN - 1, size - READ_TARGET_MIN, size - READ_TARGET_MIN + 1);
    }
    planned.push({
      frame: {
        fin: last,
        rsv: 0,
        opcode: i === 0 ? (text ? 1 : 2) : 0,
        mask: mask(),
        payload: payload.subarray(start, start + size),
      },
      payloadCuts: cuts.filter((j) => j >= 0 && j <= size),
    });
    start += size;
    if (!last && rng.chance(0.3)) planned.push({ frame: genPing(rng, mask), payloadCuts: [] });
  }
  return planned;
}

/** A ping or pong (never a close: the stream goes on). */
function genPing(rng: Rng, mask: () => Uint8Array | null): ModelFrame {
  const frame = genControl(rng, mask);
  if (frame.opcode === 8) frame.opcode = 9;
  return frame;
}

/** A small data message, fragmented now and then, with control frames between fragments. */
function genSmallMessage(rng: Rng, mask: () => Uint8Array | null): PlannedFrame[] {
  const text = rng.chance(0.5);
  const size = rng.chance(0.8) ? rng.size(60) : rng.range(60, 5000);
  // Rarely invalid: a violation ends the stream, before the large message most likely.
  const payload = text ? genText(rng, Math.ceil(size / 2), 0.03) : rng.bytes(size);
  const pieces = rng.chance(0.5) ? rng.range(2, 5) : 1;
  const ends = Array.from({ length: pieces - 1 }, () => rng.int(payload.length + 1))
    .sort((a, b) => a - b);
  ends.push(payload.length);
  const planned: PlannedFrame[] = [];
  let start = 0;
  for (let p = 0; p < pieces; p++) {
    planned.push({
      frame: {
        fin: p === pieces - 1,
        rsv: 0,
        opcode: p === 0 ? (text ? 1 : 2) : 0,
        mask: mask(),
        payload: payload.subarray(start, ends[p]),
      },
      payloadCuts: [],
    });
    start = ends[p];
    if (p < pieces - 1 && rng.chance(0.3)) {
      planned.push({ frame: genPing(rng, mask), payloadCuts: [] });
    }
  }
  return planned;
}

/**
 * Generates one input of the in-place read fuzzer: mostly a large message among small
 * ones and control frames, sometimes only small ones; now and then a close at the end, a
 * message size limit at a large message's size, a mutated frame, a flipped bit, or the
 * stream cut short (inside the large message, most likely).
 *
 * @example
 * ```ts
 * import { genLargeFrameCase } from "./gen_large_frames.ts";
 * import { Rng } from "./prng.ts";
 *
 * const c = genLargeFrameCase(new Rng(1, 0));
 * console.log(c.role, c.input.length, c.cuts.length);
 * ```
 */
export function genLargeFrameCase(rng: Rng): LargeFrameCase {
  const role = rng.chance(0.5) ? "server" : "client";
  // The peer of a server is a client, which masks.
  const mask = () => role === "server" ? rng.bytes(4) : null;
  const planned: PlannedFrame[] = [];
  const large = rng.chance(0.7);
  const small = large ? rng.int(3) : rng.range(1, 6);
  const largeAt = rng.int(small + 1);
  let largest = 0;
  for (let i = 0; i <= small; i++) {
    if (i === largeAt && large) {
      const message = genLargeMessage(rng, mask);
      largest = message.reduce((n, p) => n + (p.frame.opcode < 8 ? p.frame.payload.length : 0), 0);
      planned.push(...message);
    }
    if (i === small) break;
    if (rng.chance(0.25)) planned.push({ frame: genPing(rng, mask), payloadCuts: [] });
    else planned.push(...genSmallMessage(rng, mask));
  }
  if (rng.chance(0.3)) {
    const close = genControl(rng, mask);
    close.opcode = 8;
    if (close.payload.length === 1) close.payload = new Uint8Array(0);
    planned.push({ frame: close, payloadCuts: [] });
    if (rng.chance(0.3)) planned.push({ frame: genPing(rng, mask), payloadCuts: [] });
  }
  if (rng.chance(0.1)) mutateFrame(rng, rng.pick(planned).frame);

  let maxMessageSize = Infinity;
  if (largest > 0 && rng.chance(0.15)) maxMessageSize = largest + rng.range(-1, 0);

  const encoded: Uint8Array[] = [];
  const cuts: number[] = [];
  let at = 0;
  for (const { frame, payloadCuts } of planned) {
    const bytes = encodeModelFrame(frame);
    const payloadAt = at + bytes.length - frame.payload.length;
    cuts.push(at, payloadAt);
    for (const j of payloadCuts) cuts.push(payloadAt + j);
    encoded.push(bytes);
    at += bytes.length;
  }
  let input = concat(encoded);
  if (rng.chance(0.1)) {
    input = input.slice();
    input[rng.int(input.length)] ^= 1 << rng.int(8);
  }
  if (rng.chance(0.1)) input = input.subarray(0, Math.max(0, rng.pick(cuts) + rng.range(-2, 2)));
  const within = cuts.filter((c) => c > 0 && c < input.length).sort((a, b) => a - b);
  return { role, maxMessageSize, input, cuts: [...new Set(within)] };
}

/**
 * How many bytes each read of a stream gets, in one of three styles chosen per stream:
 * mostly up to the next cut (so that reads end where the receiver decides something),
 * mixed (the next cut, one to a few bytes, small reads, large ones), or mostly large.
 *
 * @example
 * ```ts
 * import { ReadLengths } from "./gen_large_frames.ts";
 * import { Rng } from "./prng.ts";
 *
 * const lengths = new ReadLengths(new Rng(1), [10, 70]);
 * const n = lengths.next(3, 100, 4096); // between 1 and 97
 * ```
 */
export class ReadLengths {
  readonly #rng: Rng;
  readonly #cuts: readonly number[];
  /** Chances (in tenths) of: the next cut, one to three bytes, a small read; else a large one. */
  readonly #odds: readonly [number, number, number];

  /**
   * @param rng chooses the style now and the lengths later
   * @param cuts the stream offsets worth ending a read at, ascending
   */
  constructor(rng: Rng, cuts: readonly number[]) {
    this.#rng = rng;
    this.#cuts = cuts;
    const style = rng.int(20);
    this.#odds = style < 10 ? [8, 9, 10] : style < 17 ? [5, 6, 8] : [2, 2, 4];
  }

  /**
   * The length of the read at stream offset `pos`: at least 1 (unless nothing is left), at
   * most `room` (the buffer's free space), never past `end`.
   */
  next(pos: number, end: number, room: number): number {
    const rng = this.#rng;
    const most = Math.min(room, end - pos);
    if (most <= 1) return most;
    const r = rng.int(10);
    const [toCut, tiny, small] = this.#odds;
    let n: number;
    if (r < toCut) {
      n = this.#toNextCut(pos) ?? most;
    } else if (r < tiny) {
      n = rng.range(1, 3);
    } else if (r < small) {
      n = rng.range(1, 1500);
    } else {
      n = rng.range(1, 70_000);
    }
    return Math.max(1, Math.min(n, most));
  }

  /** Bytes to the first cut after `pos` (now and then the one after it), or `null`. */
  #toNextCut(pos: number): number | null {
    const cuts = this.#cuts;
    let lo = 0;
    let hi = cuts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cuts[mid] <= pos) lo = mid + 1;
      else hi = mid;
    }
    if (lo < cuts.length - 1 && this.#rng.chance(0.2)) lo++;
    return lo < cuts.length ? cuts[lo] - pos : null;
  }
}
