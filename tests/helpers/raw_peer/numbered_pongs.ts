/**
 * Floods of pings answered by pongs, checked quickly: each ping carries its number, and
 * the pongs our side sends back are read many at a time and checked in order.
 *
 * @module
 */

import assert from "node:assert/strict";
import { now } from "../../../mod.ts";
import { OP } from "./frames.ts";
import type { RawPeer } from "./peer.ts";

/**
 * A payload of `size` bytes (at least 4) that starts with the number `i`.
 *
 * @example
 * ```ts
 * import { frame, OP } from "./frames.ts";
 * import { numbered } from "./numbered_pongs.ts";
 *
 * const pings = Array.from({ length: 100 }, (_, i) => frame({ opcode: OP.PING, payload: numbered(i, 8) }));
 * ```
 */
export function numbered(i: number, size: number): Uint8Array {
  const payload = new Uint8Array(size);
  new DataView(payload.buffer).setUint32(0, i);
  return payload;
}

/**
 * The number a {@link numbered} payload starts with.
 *
 * @example
 * ```ts
 * import { numbered, numberOf } from "./numbered_pongs.ts";
 *
 * console.log(numberOf(numbered(42, 16))); // 42
 * ```
 */
export function numberOf(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
}

/**
 * Reads `count` pongs our side sent in answer to {@link numbered} pings of `size` bytes
 * and checks each one: a final pong, masked as our role requires, carrying the payload
 * numbered `0, 1, 2, ...` in order. Reads many frames at a time (they all have the same
 * size), so that checking a flood of pongs takes little time.
 *
 * @example
 * ```ts
 * import { concat } from "./bytes.ts";
 * import { OP } from "./frames.ts";
 * import { expectNumberedPongs, numbered } from "./numbered_pongs.ts";
 * import type { RawPeer } from "./peer.ts";
 *
 * async function pingFlood(peer: RawPeer, count: number): Promise<void> {
 *   const pings = Array.from({ length: count }, (_, i) =>
 *     peer.frame({ opcode: OP.PING, payload: numbered(i, 8) }));
 *   await peer.send(concat(...pings));
 *   await expectNumberedPongs(peer, count, 8);
 * }
 * ```
 */
export async function expectNumberedPongs(
  peer: RawPeer,
  count: number,
  size: number,
  deadline = now() + 5000,
): Promise<void> {
  assert.ok(size >= 4 && size <= 125);
  const masked = peer.role === "server"; // our client masks
  const frameSize = 2 + (masked ? 4 : 0) + size;
  const perRead = 1024;
  for (let first = 0; first < count; first += perRead) {
    const n = Math.min(perRead, count - first);
    const block = await peer.read(n * frameSize, deadline);
    for (let k = 0; k < n; k++) {
      const at = k * frameSize;
      assert.equal(block[at], 0x80 | OP.PONG, `frame ${first + k} is not a final pong`);
      assert.equal(block[at + 1], (masked ? 0x80 : 0) | size, `pong ${first + k}: header`);
      const payload = block.slice(at + frameSize - size, at + frameSize);
      if (masked) {
        const key = block.subarray(at + 2, at + 6);
        for (let j = 0; j < size; j++) payload[j] ^= key[j & 3];
      }
      assert.equal(numberOf(payload), first + k, `pong ${first + k} answers another ping`);
    }
  }
}
