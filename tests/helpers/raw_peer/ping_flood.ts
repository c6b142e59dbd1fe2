/**
 * A ping flood from a peer that reads nothing: our side must not queue a pong per ping
 * without bound. It owes pongs up to maxPongBytes, then stops parsing and reading until
 * they drain, so the flood's write cannot finish while the peer does not read; once it
 * reads, every ping has its pong, in order.
 *
 * @module
 */

import assert from "node:assert/strict";
import { retainedExternal } from "../memory.ts";
import { assertOk, settle } from "../outcome.ts";
import { frame, OP } from "./frames.ts";
import { expectNumberedPongs, numbered } from "./numbered_pongs.ts";
import type { RawPeer } from "./peer.ts";

const FLOOD_BYTES = 16 * 1024 * 1024;
const PAYLOAD_BYTES = 125;

/**
 * Floods our side with 16 MiB of 125-byte numbered pings in one write (a raw client masks
 * them with an all-zero key, a raw server does not mask), reads nothing for 300 ms and
 * checks that our memory stayed bounded and the write is still blocked; then reads and
 * checks every pong, in order. Needs `--v8-flags=--expose-gc`.
 *
 * @example
 * ```ts
 * import { checkPingFlood } from "./ping_flood.ts";
 * import { openServer } from "./rig.ts";
 *
 * const rig = await openServer("pipe");
 * try {
 *   await checkPingFlood(rig.peer);
 * } finally {
 *   await rig.close();
 * }
 * ```
 */
export async function checkPingFlood(peer: RawPeer): Promise<void> {
  const mask = peer.role === "client" ? new Uint8Array(4) : false;
  const ping = (i: number) => frame({ opcode: OP.PING, payload: numbered(i, PAYLOAD_BYTES), mask });
  const size = ping(0).length;
  const count = Math.floor(FLOOD_BYTES / size);
  const flood = new Uint8Array(size * count);
  for (let i = 0; i < count; i++) flood.set(ping(i), i * size);
  const before = retainedExternal();
  let written = false;
  // Settled in any case (the wire fails when the test ends early): never left dangling.
  const writing = settle(peer.wire.write(flood, -1).then(() => written = true));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const grown = retainedExternal() - before;
  // Buffers of a few hundred KiB each (reads, writes, the pong budget) on both ends
  // of the pipe: far from the 16 MiB of pongs an unbounded queue would hold.
  assert.ok(grown < 6 * 1024 * 1024, `memory grew by ${grown} bytes`);
  assert.equal(written, false, "the whole flood was read while no pong could drain");
  // Now the peer reads: every ping gets its pong, in order.
  await expectNumberedPongs(peer, count, PAYLOAD_BYTES);
  assertOk(await writing, "the flood's write");
}
