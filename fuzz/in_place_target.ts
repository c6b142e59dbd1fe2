/**
 * Fuzz target for the receiver's in-place reads (`Receiver.readTarget`) and its giving
 * back of read buffers (`Receiver.releasable`), driven the way the WS actor drives them
 * (`actors/ws_reading.ts`): every input (`gen_large_frames.ts`: large final frames,
 * fragments, control frames between them) is fed twice, once by a free-hand stream that
 * reads into a target or elsewhere as it likes (`feed_direct.ts`), once through the
 * stream's real `ReadAhead` with the stream and the actor interleaved
 * (`feed_read_ahead.ts`). Chunks given back are scribbled over; the events must be the
 * reference's (`ref_frames.ts`), every message must keep its bytes after delivery, and a
 * message whose rest had a read target must end in it.
 *
 * @module
 */

import { ActorReader } from "./actor_reader.ts";
import { feedDirect } from "./feed_direct.ts";
import { feedThroughReadAhead } from "./feed_read_ahead.ts";
import { genLargeFrameCase, type LargeFrameCase } from "./gen_large_frames.ts";
import type { FuzzTarget } from "./harness.ts";
import { hex, type Rng } from "./prng.ts";
import { referenceFrameBytes } from "./ref_frames.ts";

/** Inputs longer than this are described by their first bytes (the seed replays them). */
const DESCRIBED_BYTES = 4096;

/** The in-place read fuzz target. */
export const inPlaceTarget: FuzzTarget<LargeFrameCase> = {
  name: "in-place",
  // Most inputs carry a message of 64 KiB or more: 2 * 10^5 of them take about as long as
  // the other targets' 10^6 (about 3 minutes on one core).
  defaultRuns: 200_000,
  generate: genLargeFrameCase,
  check(c: LargeFrameCase, rng: Rng): void {
    const ref = referenceFrameBytes(c.input, c.role, c.maxMessageSize);
    for (const feed of [feedDirect, feedThroughReadAhead]) {
      const reader = new ActorReader(c, ref, rng);
      try {
        feed(c, reader, rng);
        reader.finish();
      } catch (e) {
        const how = feed === feedDirect ? "fed directly" : "fed through the ReadAhead";
        throw new Error(`${how}: ${e instanceof Error ? e.message : e}`, { cause: e });
      }
    }
  },
  describe(c: LargeFrameCase): string {
    const bytes = c.input.length <= DESCRIBED_BYTES
      ? hex(c.input)
      : `${hex(c.input.subarray(0, 256))}... (${c.input.length} bytes)`;
    return `role=${c.role} maxMessageSize=${c.maxMessageSize} cuts=${c.cuts.join(",")} ` +
      `bytes=${bytes}`;
  },
};
