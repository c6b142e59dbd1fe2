/**
 * Structure-aware generation of WebSocket frame streams for the receiver fuzzer: valid
 * conversations (messages, fragments, interleaved control frames, a close) built from a
 * frame model, then mutated in the model (RSV bits, opcodes, FIN, masks, length forms,
 * declared lengths up to 2^64 - 1) and in the bytes (bit flips, cuts, insertions), so
 * most inputs get past the first header check.
 *
 * @module
 */

import { type Rng } from "./prng.ts";
import { concatBytes as concat } from "../protocol/bytes.ts";

/** One frame as the model sees it, before encoding. */
export interface ModelFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  /** The masking key, or `null` for an unmasked frame. */
  mask: Uint8Array | null;
  payload: Uint8Array;
  /** Length form to use: 7, 16 or 64 bits; the shortest when absent. */
  form?: 7 | 16 | 64;
  /** A length to write instead of the payload's (lying about it). */
  declared?: bigint;
}

/** Encodes a model frame, honouring forced length forms and declared lengths. */
export function encodeModelFrame(f: ModelFrame): Uint8Array {
  const length = f.declared ?? BigInt(f.payload.length);
  const form = f.form ?? (length < 126n ? 7 : length < 65536n ? 16 : 64);
  const header: number[] = [
    (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f),
  ];
  const maskBit = f.mask ? 0x80 : 0;
  if (form === 7) {
    header.push(maskBit | Number(length & 0x7fn));
  } else if (form === 16) {
    header.push(maskBit | 126, Number((length >> 8n) & 0xffn), Number(length & 0xffn));
  } else {
    header.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) header.push(Number((length >> shift) & 0xffn));
  }
  const mask = f.mask;
  if (mask === null) return concat([Uint8Array.from(header), f.payload]);
  const body = new Uint8Array(f.payload.length);
  for (let i = 0; i < body.length; i++) body[i] = f.payload[i] ^ mask[i % 4];
  return concat([Uint8Array.from(header), mask, body]);
}

const encoder = new TextEncoder();

/** UTF-8 pieces: boundaries of every sequence length, U+FFFD, a BOM, and broken forms. */
const VALID_TEXT = [
  "a",
  "hello ",
  "\u007f",
  "\u0080",
  "é",
  "\u07ff",
  "\u0800",
  "€",
  "\ud7ff",
  "\ue000",
  "\ufeff",
  "\ufffd",
  "\uffff",
  "\u{10000}",
  "😀",
  "\u{10ffff}",
].map((s) => encoder.encode(s));
const BROKEN_TEXT = [
  [0x80], // stray continuation
  [0xbf],
  [0xc0, 0x80], // overlong
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80], // overlong three-byte
  [0xe0, 0x9f, 0xbf],
  [0xed, 0xa0, 0x80], // surrogate
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x80, 0x80, 0x80], // overlong four-byte
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf5, 0x80, 0x80, 0x80],
  [0xff],
  [0xe2, 0x82], // truncated
  [0xf0, 0x9f, 0x98],
  [0xc3],
].map((b) => Uint8Array.from(b));

/**
 * A text payload of `pieces` characters: mostly valid, with one broken sequence somewhere
 * with probability `broken`.
 *
 * @example
 * ```ts
 * import { genText } from "./gen_frames.ts";
 * import { Rng } from "./prng.ts";
 *
 * const valid = genText(new Rng(1), 20, 0); // 20 characters of 1 to 4 bytes, valid UTF-8
 * ```
 */
export function genText(rng: Rng, pieces: number, broken = 0.15): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < pieces; i++) parts.push(rng.pick(VALID_TEXT));
  if (rng.chance(broken)) parts.splice(rng.int(parts.length + 1), 0, rng.pick(BROKEN_TEXT));
  return concat(parts);
}

/**
 * One of the broken UTF-8 sequences (stray, overlong, surrogate, too high, truncated).
 *
 * @example
 * ```ts
 * import { genBrokenText } from "./gen_frames.ts";
 * import { Rng } from "./prng.ts";
 *
 * const broken = genBrokenText(new Rng(1)); // e.g. Uint8Array [ 0xc0, 0x80 ]
 * ```
 */
export function genBrokenText(rng: Rng): Uint8Array {
  return rng.pick(BROKEN_TEXT);
}

/** A payload size: mostly small, sometimes at the 7/16/64-bit length boundaries. */
function genSize(rng: Rng): number {
  if (rng.chance(0.97)) return rng.size(40);
  if (rng.chance(0.8)) return rng.pick([125, 126, 127]);
  return rng.pick([65535, 65536, 70000]);
}

function genPayload(rng: Rng, text: boolean): Uint8Array {
  const size = genSize(rng);
  if (!text) return rng.bytes(size);
  if (size > 1024) {
    // Large text: a random kilobyte repeated (generating each piece costs too much).
    const block = genText(rng, 400);
    return concat(Array.from({ length: Math.ceil(size / block.length) }, () => block));
  }
  // Roughly `size` bytes of text (pieces are 1 to 4 bytes).
  return genText(rng, Math.max(0, Math.ceil(size / 2)));
}

const CLOSE_CODES = [
  1000,
  1001,
  1002,
  1003,
  1004,
  1005,
  1006,
  1007,
  1011,
  1012,
  1014,
  1015,
  1016,
  2999,
  3000,
  4999,
  5000,
  0,
  999,
  65535,
];

/**
 * A control frame (close, ping or pong) with a payload of any allowed size; a close's
 * payload may be empty, one byte (invalid), or a code (allowed or not) and a reason.
 *
 * @example
 * ```ts
 * import { genControl } from "./gen_frames.ts";
 * import { Rng } from "./prng.ts";
 *
 * const rng = new Rng(1);
 * const frame = genControl(rng, () => rng.bytes(4)); // masked, as a client sends it
 * ```
 */
export function genControl(rng: Rng, mask: () => Uint8Array | null): ModelFrame {
  const opcode = rng.pick([8, 9, 10, 9, 10]);
  let payload: Uint8Array;
  if (opcode === 8) {
    const kind = rng.int(6);
    if (kind === 0) payload = new Uint8Array(0);
    else if (kind === 1) payload = rng.bytes(1);
    else {
      const code = rng.chance(0.7) ? rng.pick(CLOSE_CODES) : rng.int(65536);
      const reason = genText(rng, rng.size(40)).subarray(0, 123);
      payload = concat([Uint8Array.of(code >> 8, code & 0xff), reason]);
    }
  } else {
    payload = rng.bytes(rng.chance(0.1) ? 125 : rng.size(125));
  }
  return { fin: true, rsv: 0, opcode, mask: mask(), payload };
}

/** A conversation: the frames a correct peer in the other role would send. */
export function genConversation(rng: Rng, role: "server" | "client"): ModelFrame[] {
  // The peer of a server is a client, which masks.
  const mask = () => role === "server" ? rng.bytes(4) : null;
  const frames: ModelFrame[] = [];
  const items = rng.range(1, 5);
  for (let i = 0; i < items; i++) {
    if (rng.chance(0.3)) {
      frames.push(genControl(rng, mask));
      continue;
    }
    const text = rng.chance(0.6);
    const payload = genPayload(rng, text);
    const pieces = rng.chance(0.35) ? rng.range(2, 5) : 1;
    // Cut anywhere, even inside a UTF-8 sequence: fragments need not be valid alone.
    const cuts = Array.from({ length: pieces - 1 }, () => rng.int(payload.length + 1))
      .sort((a, b) => a - b);
    let start = 0;
    for (let p = 0; p < pieces; p++) {
      const end = p === pieces - 1 ? payload.length : cuts[p];
      frames.push({
        fin: p === pieces - 1,
        rsv: 0,
        opcode: p === 0 ? (text ? 1 : 2) : 0,
        mask: mask(),
        payload: payload.subarray(start, end),
      });
      start = end;
      if (p < pieces - 1 && rng.chance(0.3)) frames.push(genControl(rng, mask));
    }
  }
  if (rng.chance(0.5)) {
    const close = genControl(rng, mask);
    close.opcode = 8;
    if (close.payload.length === 1) close.payload = new Uint8Array(0);
    frames.push(close);
    // Bytes after the close are left over for the layer beneath.
    if (rng.chance(0.3)) frames.push(genControl(rng, mask));
  }
  return frames;
}

const HUGE_LENGTHS = [
  0n,
  1n,
  125n,
  126n,
  127n,
  0xffffn,
  0x10000n,
  2n ** 31n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

/**
 * Mutates one frame of the model in place: its RSV bits, opcode, FIN, mask, length form,
 * declared length (up to 2^64 - 1, or a few off the payload's), or its payload.
 *
 * @example
 * ```ts
 * import { genControl, mutateFrame } from "./gen_frames.ts";
 * import { Rng } from "./prng.ts";
 *
 * const rng = new Rng(1);
 * const frame = genControl(rng, () => null);
 * mutateFrame(rng, frame); // now likely to break a rule
 * ```
 */
export function mutateFrame(rng: Rng, f: ModelFrame): void {
  switch (rng.int(8)) {
    case 0:
      f.rsv = rng.range(1, 7);
      break;
    case 1:
      f.opcode = rng.int(16);
      break;
    case 2:
      f.fin = !f.fin;
      break;
    case 3:
      f.mask = f.mask ? null : rng.bytes(4);
      break;
    case 4:
      f.form = rng.pick([7, 16, 64] as const);
      if (f.form === 7 && f.payload.length > 125) f.form = 64;
      break;
    case 5:
      f.declared = rng.pick(HUGE_LENGTHS);
      if (f.declared > 125n && !f.form) f.form = 64;
      break;
    case 6: {
      const delta = BigInt(rng.range(-3, 3));
      const length = BigInt(f.payload.length) + delta;
      f.declared = length < 0n ? 0n : length;
      break;
    }
    case 7:
      f.payload = f.opcode === 1 || f.opcode === 0
        ? genText(rng, rng.size(20))
        : rng.bytes(rng.size(200));
      break;
  }
}

/** Mutates the encoded bytes. */
function mutateBytes(rng: Rng, bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0) return rng.bytes(rng.size(20));
  const at = rng.int(bytes.length);
  switch (rng.int(6)) {
    case 0: {
      const out = bytes.slice();
      out[at] ^= 1 << rng.int(8);
      return out;
    }
    case 1:
      return bytes.slice(0, at);
    case 2:
      return concat([bytes.subarray(0, at), rng.bytes(rng.range(1, 4)), bytes.subarray(at)]);
    case 3:
      return concat([bytes.subarray(0, at), bytes.subarray(at + rng.range(1, 4))]);
    case 4: {
      const out = bytes.slice();
      out[at] = rng.pick([0x00, 0x7e, 0x7f, 0x80, 0xfe, 0xff]);
      return out;
    }
    default: {
      const end = Math.min(bytes.length, at + rng.range(1, 16));
      return concat([bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end)]);
    }
  }
}

/** One fuzz input for the receiver: role, size limit and the bytes to feed. */
export interface FrameCase {
  role: "server" | "client";
  maxMessageSize: number;
  input: Uint8Array;
}

/** Generates one receiver input. */
export function genFrameCase(rng: Rng): FrameCase {
  const role = rng.chance(0.5) ? "server" : "client";
  const maxMessageSize = rng.chance(0.5)
    ? Infinity
    : rng.pick([0, 1, 10, 125, 126, 1000, 65535, 65536, rng.int(200)]);
  let input: Uint8Array;
  if (rng.chance(0.03)) {
    input = rng.bytes(rng.size(64));
  } else {
    const frames = genConversation(rng, role);
    if (rng.chance(0.5)) {
      const mutations = rng.range(1, 3);
      for (let i = 0; i < mutations; i++) mutateFrame(rng, rng.pick(frames));
    }
    input = concat(frames.map(encodeModelFrame));
    if (rng.chance(0.3)) {
      const mutations = rng.range(1, 3);
      for (let i = 0; i < mutations; i++) input = mutateBytes(rng, input);
    }
  }
  return { role, maxMessageSize, input };
}
