/**
 * The in-place read fuzz target (`fuzz/in_place_target.ts`; its slice runs with the
 * others in `fuzz.test.ts`): its inputs reach read targets and chunks given back under
 * both of its streams, and it fails on a receiver that gives back a chunk still in use or
 * hands out a read target at the wrong place.
 */
import assert from "node:assert/strict";
import { Receiver } from "../protocol/receiver.ts";
import { ActorReader } from "../fuzz/actor_reader.ts";
import { feedDirect } from "../fuzz/feed_direct.ts";
import { feedThroughReadAhead } from "../fuzz/feed_read_ahead.ts";
import { genLargeFrameCase } from "../fuzz/gen_large_frames.ts";
import { FuzzFailure, runTarget } from "../fuzz/harness.ts";
import { inPlaceTarget } from "../fuzz/in_place_target.ts";
import { hex, Rng, unhex } from "../fuzz/prng.ts";
import { referenceFrameBytes, referenceFrames } from "../fuzz/ref_frames.ts";

const SEED = 20261201;

Deno.test("fuzz in-place: the byte reference has the hex reference's events and their frames' ends", () => {
  // A fragmented "Hello" (frames of 5 and 4 bytes), a ping "Hello" (7), a close (4), a ping.
  const input = unhex("010348656c80026c6f890548656c6c6f880203e8890100");
  const bytes = referenceFrameBytes(input, "client", Infinity);
  assert.deepEqual(bytes.ends, [9, 16, 20]);
  assert.equal(bytes.closeEnd, 20);
  const inHex = bytes.events.map((e) => "data" in e ? { ...e, data: hex(e.data) } : e);
  assert.deepEqual(inHex, referenceFrames(input, "client", Infinity).events);
  assert.deepEqual(referenceFrameBytes(unhex("8102c328"), "client", Infinity).events, [
    { type: "error", code: 1007 },
  ]);
});

Deno.test("fuzz in-place: inputs get read targets and give chunks back under both streams", () => {
  const inputs = 400;
  const feeds = { direct: feedDirect, readAhead: feedThroughReadAhead };
  const withTarget = { direct: 0, readAhead: 0 };
  const released = { direct: 0, readAhead: 0 };
  for (let i = 0; i < inputs; i++) {
    const rng = new Rng(SEED, i);
    const c = genLargeFrameCase(rng);
    const ref = referenceFrameBytes(c.input, c.role, c.maxMessageSize);
    for (const [name, feed] of Object.entries(feeds) as [keyof typeof feeds, typeof feedDirect][]) {
      const reader = new ActorReader(c, ref, rng);
      feed(c, reader, rng);
      reader.finish();
      if (reader.targets > 0) withTarget[name]++;
      released[name] += reader.releases;
    }
  }
  const stats = JSON.stringify({ inputs, withTarget, released });
  assert.ok(withTarget.direct > inputs / 5, `inputs with a read target: ${stats}`);
  assert.ok(withTarget.readAhead > inputs / 5, `inputs with a read target: ${stats}`);
  assert.ok(released.direct > inputs, `chunks given back: ${stats}`);
  assert.ok(released.readAhead > inputs, `chunks given back: ${stats}`);
});

type Patchable = "feed" | "next" | "releasable" | "readTarget";

/** Runs the target with some `Receiver` methods replaced, and returns how it failed. */
function failureWith(patch: Partial<Pick<Receiver, Patchable>> & ThisType<Receiver>): FuzzFailure {
  const proto = Receiver.prototype;
  const names = Object.keys(patch) as Patchable[];
  const originals = names.map((name) => proto[name]);
  Object.assign(proto, patch);
  try {
    runTarget(inPlaceTarget, SEED, 200);
  } catch (e) {
    if (e instanceof FuzzFailure) return e;
    throw e;
  } finally {
    names.forEach((name, i) => Object.assign(proto, { [name]: originals[i] }));
  }
  assert.fail(`200 inputs passed with a broken ${names.join(", ")}`);
}

Deno.test("fuzz in-place: a receiver that gives back a chunk still in use fails", () => {
  const { feed, next, releasable } = Receiver.prototype;
  const fed = new WeakMap<Receiver, Uint8Array>();
  const done = new WeakSet<Receiver>();
  const failure = failureWith({
    feed(chunk) {
      if (chunk.length > 0) fed.set(this, chunk);
      feed.call(this, chunk);
    },
    next() {
      const event = next.call(this);
      if (event?.type === "close" || event?.type === "error") done.add(this);
      return event;
    },
    // Until the final event, the last chunk fed goes back whatever still views it.
    releasable() {
      const chunk = releasable.call(this) ?? (done.has(this) ? null : fed.get(this) ?? null);
      fed.delete(this);
      return chunk;
    },
  });
  assert.ok(failure.index < 20, `caught only at input ${failure.index}`);
  assert.match(failure.message, /changed after delivery|differs from the reference/);
});

Deno.test("fuzz in-place: a read target one byte off fails", () => {
  const { readTarget } = Receiver.prototype;
  for (const shift of [1, -1]) {
    const failure = failureWith({
      readTarget() {
        const target = readTarget.call(this);
        if (target === null) return null;
        // The view one byte later (shorter) or earlier (into bytes already held).
        const at = target.byteOffset + shift;
        return new Uint8Array(target.buffer, at, target.length - Math.max(shift, 0));
      },
    });
    assert.ok(failure.index < 20, `shift ${shift}: caught only at input ${failure.index}`);
    assert.match(failure.message, /read target|differs from the reference|changed after delivery/);
  }
});
