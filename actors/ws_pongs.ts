/**
 * The pongs one WebSocket connection owes its peer, counted in bytes. Every ping is
 * answered, in order; while the pongs handed to the bytestream and not yet written use
 * up the budget (option `maxPongBytes`), the WS actor stops parsing and reading, so a
 * peer that floods pings and never reads cannot make us buffer more than the budget.
 * A plain object owned by the WS actor.
 *
 * @module
 */

import { encodeFrame, Opcode } from "../protocol/frame.ts";

/** A pong ready to send: its frame and the bytes it counts against the budget. */
export interface Pong {
  /** The frame, as chunks for the bytestream. */
  readonly chunks: Uint8Array[];
  /** Its size in bytes; report it back with {@link PongBudget.written}. */
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
 * const pong = pongs.answer(new Uint8Array(125));
 * console.log(pong.size, pongs.exhausted); // 127 false
 * pongs.written(pong.size);
 * ```
 */
export class PongBudget {
  readonly #limit: number;
  readonly #masked: boolean;
  #owed = 0;

  /**
   * @param limit bytes of pongs that may be owed at once (one pong is always allowed)
   * @param masked whether our frames are masked (client side)
   */
  constructor(limit: number, masked: boolean) {
    this.#limit = limit;
    this.#masked = masked;
  }

  /** Frames the pong for a ping's payload; its bytes are owed until {@link written}. */
  answer(ping: Uint8Array): Pong {
    const chunks = encodeFrame(Opcode.PONG, ping, { masked: this.#masked });
    let size = 0;
    for (const chunk of chunks) size += chunk.length;
    this.#owed += size;
    return { chunks, size };
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
