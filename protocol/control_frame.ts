/**
 * Reading the payload of a control frame (RFC 6455 section 5.5): ping, pong and close,
 * at most 125 bytes each, interleaved with the frames of a data message. A close frame's
 * status code and reason are checked as their bytes arrive.
 *
 * @module
 */

import { CloseCode, isValidReceivedCloseCode, parseClosePayload } from "./close_codes.ts";
import type { ByteQueue } from "./byte_queue.ts";
import { type FrameHeaderReader, type FrameViolation, NEED_MORE } from "./frame_header.ts";
import { MAX_CONTROL_PAYLOAD, Opcode } from "./frame.ts";
import { Utf8Validator } from "./utf8.ts";

/**
 * What a whole control frame means to the owner of the receiver.
 *
 * @example
 * ```ts
 * import type { ControlEvent } from "./control_frame.ts";
 *
 * const event: ControlEvent = { type: "ping", data: new Uint8Array(0) };
 * console.log(event.type);
 * ```
 */
export type ControlEvent =
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; code: number; message: string };

/**
 * The event for a complete control frame with this (unmasked) payload: a close frame
 * whose body breaks the rules is an error.
 *
 * @param opcode the frame's opcode: close, ping or pong
 * @param payload the frame's payload
 *
 * @example
 * ```ts
 * import { controlEvent } from "./control_frame.ts";
 *
 * console.log(controlEvent(0x8, new Uint8Array([0x03, 0xe8]))); // { type: "close", code: 1000, reason: "" }
 * ```
 */
export function controlEvent(opcode: number, payload: Uint8Array): ControlEvent {
  if (opcode === Opcode.PING) return { type: "ping", data: payload };
  if (opcode === Opcode.PONG) return { type: "pong", data: payload };
  const close = parseClosePayload(payload);
  if ("error" in close) return { type: "error", code: close.error, message: close.message };
  return { type: "close", code: close.code, reason: close.reason };
}

/**
 * Reads control payloads: a payload inside one chunk is handed out as a view; one split
 * across chunks is gathered in a buffer allocated the first time that happens (rare).
 *
 * @example
 * ```ts
 * import { ByteQueue } from "./byte_queue.ts";
 * import { ControlFrameReader } from "./control_frame.ts";
 * import { FrameHeaderReader, HEADER_READ } from "./frame_header.ts";
 *
 * const queue = new ByteQueue();
 * queue.push(new Uint8Array([0x89, 0x02, 0x6f])); // a ping "ok", split
 * queue.push(new Uint8Array([0x6b]));
 * const header = new FrameHeaderReader(false);
 * const control = new ControlFrameReader();
 * if (header.read(queue, { inMessage: false, tooLong: () => null }) === HEADER_READ) {
 *   control.begin();
 *   console.log(control.read(queue, header)); // Uint8Array(2) [ 111, 107 ]
 * }
 * ```
 */
export class ControlFrameReader {
  /** Allocated the first time a control payload is split across chunks. */
  #buffer: Uint8Array | null = null;
  #length = 0;
  /** Checks a close reason split across chunks; made on the first one. */
  #reasonValidator: Utf8Validator | null = null;

  /** Payload bytes gathered so far of a control frame split across chunks. */
  get bufferedBytes(): number {
    return this.#length;
  }

  /** Starts the payload of a new control frame. */
  begin(): void {
    this.#length = 0;
    this.#reasonValidator?.reset();
  }

  /** Forgets the gathered payload. */
  reset(): void {
    this.#length = 0;
  }

  /**
   * Reads the available payload of the current control frame.
   *
   * @param queue the fed bytes
   * @param frame the header of the control frame
   * @returns the whole unmasked payload, {@link NEED_MORE}, or the rule a close frame breaks
   */
  read(queue: ByteQueue, frame: FrameHeaderReader): Uint8Array | typeof NEED_MORE | FrameViolation {
    if (this.#length === 0) {
      // The common case: the whole payload is in the first chunk, so hand out a view.
      if (frame.remaining === 0) return new Uint8Array(0);
      if (queue.size === 0) return NEED_MORE;
      const chunk = queue.front;
      const start = queue.offset;
      const length = frame.remaining;
      if (chunk.length - start >= length) {
        const payload = chunk.subarray(start, start + length);
        frame.unmask(payload); // from the key's start: the frame's first payload bytes
        queue.skip(length);
        frame.remaining = 0;
        return payload;
      }
    }
    while (frame.remaining > 0) {
      if (queue.size === 0) return NEED_MORE;
      const chunk = queue.front;
      const start = queue.offset;
      const take = Math.min(frame.remaining, chunk.length - start);
      const before = this.#length;
      const after = before + take;
      const buffer = this.#buffer ??= new Uint8Array(MAX_CONTROL_PAYLOAD);
      buffer.set(chunk.subarray(start, start + take), before);
      frame.unmask(buffer.subarray(before, after)); // the key goes on where it stopped
      queue.skip(take);
      frame.remaining -= take;
      this.#length = after;
      if (frame.opcode === Opcode.CLOSE) {
        // Check the status code and reason as their bytes arrive, not when the frame ends.
        if (before < 2 && after >= 2) {
          const code = (buffer[0] << 8) | buffer[1];
          if (!isValidReceivedCloseCode(code)) {
            return {
              code: CloseCode.PROTOCOL_ERROR,
              message: `close frame carries status ${code}, which may not be sent`,
            };
          }
        }
        const reasonStart = Math.max(before, 2);
        if (
          after > reasonStart &&
          !(this.#reasonValidator ??= new Utf8Validator()).push(buffer.subarray(reasonStart, after))
        ) {
          return { code: CloseCode.INVALID_PAYLOAD, message: "close reason is not valid UTF-8" };
        }
      }
    }
    return this.#buffer!.slice(0, this.#length);
  }
}
