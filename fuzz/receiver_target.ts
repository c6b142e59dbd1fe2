/**
 * Fuzz target for the frame receiver (`protocol/receiver.ts`), configured with no
 * extension: every input is fed whole and in random pieces, and both runs must produce
 * exactly the events of the reference decoder (`ref_frames.ts`), the same close code,
 * and after a close the same leftover bytes.
 *
 * @module
 */

import { Receiver, type ReceiverEvent } from "../protocol/receiver.ts";
import { type FrameCase, genFrameCase } from "./gen_frames.ts";
import type { FuzzTarget } from "./harness.ts";
import { hex, type Rng } from "./prng.ts";
import { concatBytes as concat } from "../protocol/bytes.ts";
import { referenceFrames, type RefEvent } from "./ref_frames.ts";

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** The receiver's event in the reference's form; checks what the form leaves out. */
function normalize(e: ReceiverEvent): RefEvent {
  switch (e.type) {
    case "message":
      if (e.binary) {
        if (e.text !== undefined) throw new Error("binary message carries text");
      } else if (e.text !== decoder.decode(e.data)) {
        throw new Error("text message's text is not its data decoded");
      }
      return { type: "message", binary: e.binary, data: hex(e.data) };
    case "ping":
    case "pong":
      return { type: e.type, data: hex(e.data) };
    case "close":
      return { type: "close", code: e.code, reason: e.reason };
    case "error":
      return { type: "error", code: e.code };
  }
}

interface Outcome {
  events: RefEvent[];
  /** After a close: the bytes not consumed, in hex. */
  leftover: string | null;
}

/** Feeds `pieces` (owned by the receiver from then on), draining events after each. */
function run(c: FrameCase, pieces: Uint8Array[]): Outcome {
  const receiver = new Receiver({ role: c.role, maxMessageSize: c.maxMessageSize });
  const events: RefEvent[] = [];
  for (let i = 0; i < pieces.length; i++) {
    receiver.feed(pieces[i]);
    for (let e = receiver.next(); e !== undefined; e = receiver.next()) {
      events.push(normalize(e));
      if (e.type === "close" || e.type === "error") {
        if (receiver.next() !== undefined) throw new Error("event after the final event");
        const rest = e.type === "close"
          ? concat([...receiver.leftover(), ...pieces.slice(i + 1)])
          : null;
        return { events, leftover: rest && hex(rest) };
      }
    }
  }
  return { events, leftover: null };
}

function same(what: string, got: Outcome, want: Outcome): void {
  const a = JSON.stringify(got);
  const b = JSON.stringify(want);
  if (a !== b) throw new Error(`${what}\n  got:  ${a.slice(0, 2000)}\n  want: ${b.slice(0, 2000)}`);
}

/** The receiver fuzz target. */
export const receiverTarget: FuzzTarget<FrameCase> = {
  name: "receiver",
  generate: genFrameCase,
  check(c: FrameCase, rng: Rng): void {
    const ref = referenceFrames(c.input, c.role, c.maxMessageSize);
    const want: Outcome = {
      events: ref.events,
      leftover: ref.closeEnd === null ? null : hex(c.input.subarray(ref.closeEnd)),
    };
    same("fed whole: differs from the reference", run(c, [c.input.slice()]), want);
    same("fed in pieces: differs from the reference", run(c, rng.split(c.input)), want);
  },
  describe(c: FrameCase): string {
    return `role=${c.role} maxMessageSize=${c.maxMessageSize} bytes=${hex(c.input)}`;
  },
};
