/**
 * The in-place read fuzzer's model of the bytestream (`actors/stream.ts`): reads go
 * through a real {@link ReadAhead} (`readBuffer`, `chunkOf`, `redirect`, `setTarget`,
 * `recycle`), and the stream and the actor run in a random interleaving, as their
 * mailboxes allow: a read may be in progress when a read target arrives, chunks may be
 * on their way to the actor when it asks for them in place (the stream then sets the
 * target past them, as `readInto` does), and a chunk given back may become the buffer
 * of the next read. Some reads hand over several chunks at once, as a TLS transport does.
 *
 * @module
 */

import { ReadAhead } from "../actors/read_ahead.ts";
import type { ActorReader } from "./actor_reader.ts";
import { type LargeFrameCase, ReadLengths } from "./gen_large_frames.ts";
import type { Rng } from "./prng.ts";

/** What the actor sent the stream. */
type ToStream =
  | { kind: "readInto"; buf: Uint8Array; at: number }
  | { kind: "recycle"; chunk: Uint8Array };

/**
 * Feeds all of `c.input` to `reader` through a {@link ReadAhead}, then drains it.
 *
 * @example
 * ```ts
 * import { ActorReader } from "./actor_reader.ts";
 * import { feedThroughReadAhead } from "./feed_read_ahead.ts";
 * import { genLargeFrameCase } from "./gen_large_frames.ts";
 * import { Rng } from "./prng.ts";
 * import { referenceFrameBytes } from "./ref_frames.ts";
 *
 * const rng = new Rng(1, 0);
 * const c = genLargeFrameCase(rng);
 * const ref = referenceFrameBytes(c.input, c.role, c.maxMessageSize);
 * const reader = new ActorReader(c, ref, rng);
 * feedThroughReadAhead(c, reader, rng);
 * reader.finish();
 * ```
 */
export function feedThroughReadAhead(c: LargeFrameCase, reader: ActorReader, rng: Rng): void {
  const input = c.input;
  const lengths = new ReadLengths(rng, c.cuts);
  const inbound = new ReadAhead();
  /** Bytes the transport read, and bytes the stream handed to the actor. */
  let read = 0;
  let delivered = 0;
  /** The buffer of the read in progress. */
  let reading: Uint8Array | null = null;
  const toActor: Uint8Array[] = [];
  const toStream: ToStream[] = [];

  // As the stream's #deliver: into the read target first, while there is one.
  const deliver = (chunk: Uint8Array) => {
    for (;;) {
      const part = inbound.redirect(chunk);
      delivered += part.length;
      toActor.push(part);
      if (part.length === chunk.length) return;
      chunk = chunk.subarray(part.length);
    }
  };

  while (!reader.finished) {
    const canRead = read < input.length;
    // Each turn one party acts; the actor is the likeliest, as it is never kept waiting.
    const choices: number[] = [];
    if (toActor.length > 0) choices.push(0, 0, 0);
    if (toStream.length > 0) choices.push(1, 1, 1);
    if (reading === null && canRead) choices.push(2, 2, 3);
    if (reading !== null) choices.push(4, 4);
    if (choices.length === 0) break;
    switch (rng.pick(choices)) {
      case 0: {
        const chunk = toActor.shift()!;
        const { target, released } = reader.take(chunk, rng.chance(0.8) ? Infinity : rng.int(3));
        if (target !== null) toStream.push({ kind: "readInto", buf: target, at: reader.fedBytes });
        if (released !== null) toStream.push({ kind: "recycle", chunk: released });
        break;
      }
      case 1: {
        const msg = toStream.shift()!;
        if (msg.kind === "recycle") {
          inbound.recycle(msg.chunk);
        } else {
          // As the stream's readInto: the bytes sent since `at` were copied by the actor.
          const sent = delivered - msg.at;
          if (sent < msg.buf.length) inbound.setTarget(msg.buf.subarray(sent));
        }
        break;
      }
      case 2:
        reading = inbound.readBuffer();
        break;
      case 3: {
        // A transport that hands over its own chunks (TLS records): never into the target.
        const count = rng.range(1, 4);
        for (let i = 0; i < count && read < input.length; i++) {
          const n = lengths.next(read, input.length, 20_000);
          deliver(input.slice(read, read + n));
          read += n;
        }
        break;
      }
      case 4: {
        const buf = reading!;
        reading = null;
        const n = lengths.next(read, input.length, buf.length);
        buf.set(input.subarray(read, read + n));
        read += n;
        deliver(inbound.chunkOf(buf, n));
        break;
      }
    }
  }
  reader.drain();
}
