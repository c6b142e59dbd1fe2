/**
 * The WS actor's reading side as the in-place read fuzzer plays it, with the checks on
 * what it gets: a {@link Receiver} fed chunk by chunk, parsed in passes that may stop
 * early (the application behind), and after each pass asked for a read target and for a
 * chunk to give back, as `actors/ws_reading.ts` does. A chunk given back is scribbled
 * over at once (its buffer is reused), every message is compared with the reference when
 * delivered and kept as a copy, and at the end every delivered message must still equal
 * its copy: a message that views a reused buffer, or a target written out of place,
 * shows as changed bytes.
 *
 * @module
 */

import { Receiver, type ReceiverEvent } from "../protocol/receiver.ts";
import type { FrameCase } from "./gen_frames.ts";
import { hex, type Rng } from "./prng.ts";
import type { RefEvent, RefResultWithEnds } from "./ref_frames.ts";

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A delivered payload (message, ping or pong), with its event index and a copy of its bytes then. */
interface Delivered {
  index: number;
  data: Uint8Array;
  copy: Uint8Array;
}

/** What the actor tells the stream after a pass (`readInto` and `recycle`). */
export interface PassResult {
  /** Where the stream's next bytes should go (from stream offset {@link ActorReader.fedBytes}), or `null`. */
  target: Uint8Array | null;
  /** A chunk whose buffer the stream may reuse (already scribbled over), or `null`. */
  released: Uint8Array | null;
}

/**
 * An event, the receiver's or the reference's (they have the same fields), in one line:
 * a message without its data, a control frame with its payload in hex.
 */
function describeEvent(e: ReceiverEvent | RefEvent<Uint8Array> | undefined): string {
  if (e === undefined) return "nothing";
  switch (e.type) {
    case "message":
      return `message binary=${e.binary} length=${e.data.length}`;
    case "ping":
    case "pong":
      return `${e.type} ${hex(e.data)}`;
    case "close":
      return `close ${e.code} ${JSON.stringify(e.reason)}`;
    case "error":
      return `error ${e.code}`;
  }
}

/**
 * Drives a receiver as the actor does and checks every event against the reference.
 *
 * @example
 * ```ts
 * import { ActorReader } from "./actor_reader.ts";
 * import { Rng } from "./prng.ts";
 * import { referenceFrameBytes } from "./ref_frames.ts";
 *
 * const c = { role: "client" as const, maxMessageSize: Infinity, input: Uint8Array.of(0x82, 1, 7) };
 * const reader = new ActorReader(c, referenceFrameBytes(c.input, c.role, Infinity), new Rng(1));
 * reader.take(c.input.slice(), Infinity);
 * reader.drain();
 * reader.finish(); // throws if anything differs from the reference
 * ```
 */
export class ActorReader {
  readonly #receiver: Receiver;
  readonly #ref: readonly RefEvent<Uint8Array>[];
  /** Where each reference event's frame ends in the stream. */
  readonly #ends: readonly number[];
  readonly #rng: Rng;
  #events = 0;
  readonly #delivered: Delivered[] = [];
  /** The read target given out for the message in progress, until it is delivered, and its stream offset. */
  #target: Uint8Array | null = null;
  #targetAt = 0;
  /** The chunk fed last; and the last one given back (a chunk is given back once). */
  #last: Uint8Array | null = null;
  #lastReleased: Uint8Array | null = null;
  /** Bytes fed so far: the stream offset of the next byte fed. */
  fedBytes = 0;
  /** Read targets handed out, for the target's statistics. */
  targets = 0;
  /** Chunks given back. */
  releases = 0;
  /** A close or error event came: nothing more is parsed. */
  finished = false;

  /**
   * @param c the input's role and size limit
   * @param ref the reference's events for the whole input (payloads as bytes) and their ends
   * @param rng chooses the scribbles
   */
  constructor(c: FrameCase, ref: RefResultWithEnds<Uint8Array>, rng: Rng) {
    this.#receiver = new Receiver({ role: c.role, maxMessageSize: c.maxMessageSize });
    this.#ref = ref.events;
    this.#ends = ref.ends;
    this.#rng = rng;
  }

  /**
   * The stream delivered `chunk`: feeds it, parses at most `budget` events, then asks
   * for a read target and a chunk to give back, as the actor does after every pass.
   */
  take(chunk: Uint8Array, budget: number): PassResult {
    this.fedBytes += chunk.length;
    if (this.finished) return { target: null, released: null };
    this.#receiver.feed(chunk);
    if (chunk.length > 0) this.#last = chunk;
    return this.#pass(budget);
  }

  /** The input ended: parses all that is left. */
  drain(): PassResult {
    return this.#pass(Infinity);
  }

  #pass(budget: number): PassResult {
    const receiver = this.#receiver;
    for (let n = 0; n < budget && !this.finished; n++) {
      const e = receiver.next();
      if (e === undefined) break;
      this.#check(e);
    }
    if (this.finished) {
      if (receiver.next() !== undefined) throw new Error("an event after the final event");
      // Nothing is read or reused for a receiver that is done (its leftover is handed on).
      if (receiver.readTarget() !== null) throw new Error("a read target after the final event");
      if (receiver.releasable() !== null) {
        throw new Error("a chunk given back after the final event");
      }
      return { target: null, released: null };
    }
    const target = receiver.readTarget();
    if (target !== null) {
      if (this.#target !== null) {
        throw new Error("a second read target before the message of the first was delivered");
      }
      this.#target = target;
      this.#targetAt = this.fedBytes;
      this.targets++;
    }
    const released = receiver.releasable();
    if (released !== null) {
      if (released !== this.#last) throw new Error("gave back a chunk that was not the last fed");
      if (released === this.#lastReleased) throw new Error("gave back the same chunk twice");
      this.#lastReleased = released;
      this.releases++;
      // The stream reuses the buffer: every byte changes.
      const scribble = this.#rng.range(1, 255);
      for (let i = 0; i < released.length; i++) released[i] ^= scribble;
    }
    return { target, released };
  }

  /** Compares one event with the reference's event at its index. */
  #check(e: ReceiverEvent): void {
    const index = this.#events++;
    const want = this.#ref[index];
    const differs = (why: string) =>
      new Error(
        `event ${index} differs from the reference: ${why}\n` +
          `  got:  ${describeEvent(e)}\n  want: ${describeEvent(want)}`,
      );
    if (want === undefined || want.type !== e.type) throw differs("another event");
    if (e.type === "close" || e.type === "error") this.finished = true;
    switch (e.type) {
      case "message": {
        if (want.type !== "message" || want.binary !== e.binary) throw differs("another kind");
        if (e.binary ? e.text !== undefined : e.text !== decoder.decode(e.data)) {
          throw differs("its text is not its data decoded");
        }
        if (!sameBytes(e.data, want.data)) throw differs("other bytes");
        this.#delivered.push({ index, data: e.data, copy: e.data.slice() });
        const target = this.#target;
        this.#target = null;
        // The target is exactly the rest of the message's final frame, in the buffer the
        // message is delivered in: else bytes read there were copied after all (or worse,
        // written where another byte belonged).
        if (
          target !== null &&
          (target.buffer !== e.data.buffer ||
            target.byteOffset + target.length !== e.data.byteOffset + e.data.length ||
            this.#targetAt + target.length !== this.#ends[index])
        ) {
          throw differs(
            `its read target (${target.length} bytes at ${target.byteOffset}, stream offset ` +
              `${this.#targetAt}) is not the rest of its final frame (ending at stream offset ` +
              `${this.#ends[index]}), at its tail (${e.data.length} bytes at ` +
              `${e.data.byteOffset}, same buffer: ${target.buffer === e.data.buffer})`,
          );
        }
        return;
      }
      case "ping":
      case "pong":
        if (want.type !== e.type || !sameBytes(e.data, want.data)) throw differs("other bytes");
        // A ping's payload may be a view of the chunk too (the pong is written later).
        this.#delivered.push({ index, data: e.data, copy: e.data.slice() });
        return;
      case "close":
        if (want.type !== "close" || want.code !== e.code || want.reason !== e.reason) {
          throw differs("another code or reason");
        }
        return;
      case "error":
        if (want.type !== "error" || want.code !== e.code) throw differs("another code");
        return;
    }
  }

  /**
   * After the input: every reference event was produced, and every message, ping and pong
   * delivered still holds the bytes it had when delivered (no buffer under it was reused).
   */
  finish(): void {
    if (this.#events !== this.#ref.length) {
      throw new Error(
        `${this.#events} events, the reference has ${this.#ref.length}; ` +
          `the next would be ${describeEvent(this.#ref[this.#events])}`,
      );
    }
    for (const { index, data, copy } of this.#delivered) {
      for (let i = 0; i < copy.length; i++) {
        if (data[i] !== copy[i]) {
          throw new Error(
            `event ${index} (${copy.length} bytes) changed after delivery, ` +
              `first at byte ${i}: a buffer under it was reused or written`,
          );
        }
      }
    }
  }
}
