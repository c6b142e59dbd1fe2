/**
 * The pongs one WebSocket connection owes its peer, counted in bytes. Every ping is
 * answered, in order; while the pongs handed to the bytestream and not yet written use
 * up the budget (option `maxPongBytes`), the WS actor stops parsing and reading, so a
 * peer that floods pings and never reads cannot make us buffer more than the budget.
 * Pongs answered in one pass over received frames are written into one buffer and go
 * to the bytestream as one batch (one allocation, one message, one completion to
 * track), so a burst or a flood of pings does not cost an allocation per pong, which
 * made memory (RSS) climb under a flood. A plain object owned by the WS actor.
 *
 * @module
 */

import { frameHeaderLength, MAX_CONTROL_PAYLOAD, Opcode } from "../protocol/frame.ts";
import { applyMask, MASK_LENGTH, writeRandomMask } from "../protocol/mask.ts";

/** First size of a batch buffer; it doubles as a burst of pings needs. */
const FIRST_BATCH_BYTES = 256;

/** Pongs ready to send: their frames and the bytes they count against the budget. */
export interface PongBatch {
  /** The frames, in order, as chunks for the bytestream. */
  readonly chunks: Uint8Array[];
  /** Their size in bytes; report it back with {@link PongBudget.written}. */
  readonly size: number;
}

/**
 * Byte accounting of the pongs owed to the peer.
 *
 * @example
 * ```ts
 * import { PongBudget } from "./ws_pongs.ts";
 *
 * const pongs = new PongBudget(64 * 1024, false);
 * pongs.answer(new Uint8Array(125));
 * pongs.answer(new Uint8Array(0));
 * const batch = pongs.take()!;
 * console.log(batch.size, pongs.exhausted); // 129 false
 * pongs.written(batch.size);
 * ```
 */
export class PongBudget {
  readonly #limit: number;
  readonly #masked: boolean;
  #owed = 0;
  #batch: Uint8Array | null = null;
  #batchSize = 0;

  /**
   * @param limit bytes of pongs that may be owed at once (one pong is always allowed)
   * @param masked whether our frames are masked (client side)
   */
  constructor(limit: number, masked: boolean) {
    this.#limit = limit;
    this.#masked = masked;
  }

  /**
   * Frames the pong for a ping's payload into the current batch; its bytes are owed
   * from now until {@link written}.
   */
  answer(ping: Uint8Array): void {
    // A control frame's payload is at most 125 bytes (the receiver enforces it), so its
    // header is two bytes, plus the masking key on the client side (RFC 6455 5.2, 5.5).
    const length = Math.min(ping.length, MAX_CONTROL_PAYLOAD);
    const size = frameHeaderLength(length, this.#masked) + length;
    const buf = this.#room(size);
    let at = this.#batchSize;
    buf[at++] = 0x80 | Opcode.PONG;
    buf[at++] = this.#masked ? 0x80 | length : length;
    if (this.#masked) {
      writeRandomMask(buf, at);
      const key = buf.subarray(at, at + MASK_LENGTH);
      at += MASK_LENGTH;
      buf.set(ping.subarray(0, length), at);
      applyMask(buf.subarray(at, at + length), key, 0);
    } else {
      buf.set(ping.subarray(0, length), at);
    }
    this.#batchSize += size;
    this.#owed += size;
  }

  /** The pongs answered since the last call, to send now; `null` when there are none. */
  take(): PongBatch | null {
    if (this.#batchSize === 0) return null;
    const batch = { chunks: [this.#batch!.subarray(0, this.#batchSize)], size: this.#batchSize };
    this.#batch = null; // the stream may keep it until written: the next batch is new
    this.#batchSize = 0;
    return batch;
  }

  /** The batch buffer, with room for `size` more bytes. */
  #room(size: number): Uint8Array {
    const needed = this.#batchSize + size;
    if (this.#batch && needed <= this.#batch.length) return this.#batch;
    let capacity = this.#batch ? this.#batch.length * 2 : FIRST_BATCH_BYTES;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    if (this.#batch) grown.set(this.#batch.subarray(0, this.#batchSize));
    this.#batch = grown;
    return grown;
  }

  /** A pong's bytes were written (or failed): they are no longer owed. */
  written(size: number): void {
    this.#owed -= size;
  }

  /** Whether the owed pongs use up the budget: parsing and reading must wait. */
  get exhausted(): boolean {
    return this.#owed > 0 && this.#owed >= this.#limit;
  }
}
