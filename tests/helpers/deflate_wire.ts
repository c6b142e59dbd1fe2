/**
 * What a `WireTap` saw of permessage-deflate: the server's answer to the offer, and
 * whether each side compressed its data messages.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { WireTap } from "../peers/wire_tap.ts";

/** Checks on the tap that both sides compressed their data messages (RSV1). */
export function assertCompressed(
  tap: WireTap,
  sides: { client: boolean; server: boolean } = { client: true, server: true },
): void {
  for (const from of ["client", "server"] as const) {
    const frames = tap.dataFrames(from);
    assert.ok(frames.length > 0, `no data frames from the ${from}`);
    // RSV1 only on the first frame of a message: continuations never carry it.
    for (const f of frames) if (f.opcode === 0) assert.equal(f.rsv, 0, `${from} continuation`);
    const firsts = frames.filter((f) => f.opcode !== 0);
    const compressed = firsts.filter((f) => f.rsv === 4).length;
    if (sides[from]) {
      assert.equal(compressed, firsts.length, `${from}: ${compressed}/${firsts.length} compressed`);
    } else {
      assert.equal(compressed, 0, `${from} compressed although it may not`);
    }
  }
}

/** The Sec-WebSocket-Extensions line of the server's 101 answer on the tap, or null. */
export function answered(tap: WireTap): string | null {
  const line = tap.head("server").split("\r\n").find((l) =>
    l.toLowerCase().startsWith("sec-websocket-extensions:")
  );
  return line ? line.slice(line.indexOf(":") + 1).trim() : null;
}
