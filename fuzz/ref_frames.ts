/**
 * Reference WebSocket frame decoder for the receiver fuzzer: it sees the whole input at
 * once and walks it frame by frame, computing the events RFC 6455 asks for and the close
 * code of the first violation. It shares no code with `protocol/receiver.ts`. Lengths
 * are BigInt so 64-bit lengths are exact.
 *
 * When the input stops mid-frame, only violations already visible in the bytes present
 * count (the receiver reports them without waiting): a bad first byte, a bad length
 * form, an oversized message, invalid UTF-8 in the text or close reason received so far.
 *
 * @module
 */

import { hex } from "./prng.ts";
import { concatBytes as concat } from "../protocol/bytes.ts";
import { utf8Verdict } from "./ref_utf8.ts";

/**
 * An expected event, in the comparable form the fuzzer also puts the receiver's in: by
 * default payloads in hex (`D` is `string`); {@link referenceFrameBytes} gives them as
 * bytes (`D` is `Uint8Array`).
 */
export type RefEvent<D = string> =
  | { type: "message"; binary: boolean; data: D }
  | { type: "ping"; data: D }
  | { type: "pong"; data: D }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; code: number };

/** The expected events, and for a close where the bytes after the close frame start. */
export interface RefResult<D = string> {
  events: RefEvent<D>[];
  closeEnd: number | null;
}

const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;
const MESSAGE_TOO_BIG = 1009;

/** Close codes a peer may send: RFC 6455 section 7.4 and the IANA registry. */
function closeCodeAllowed(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014].includes(code);
}

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The events a receiver for `role` with `maxMessageSize` must produce for `input`.
 */
export function referenceFrames(
  input: Uint8Array,
  role: "server" | "client",
  maxMessageSize: number,
): RefResult {
  const { events, closeEnd } = decode(input, role, maxMessageSize, hex);
  return { events, closeEnd };
}

/** {@link RefResult} with where in the input each event's last frame ends. */
export interface RefResultWithEnds<D> extends RefResult<D> {
  /** For each event, the offset in the input just past its (last) frame. */
  ends: number[];
}

/**
 * {@link referenceFrames} with the payloads as bytes (new arrays, not views of `input`)
 * and where each event's frame ends: comparing messages of hundreds of KiB in hex costs
 * more than the rest of a run, and the in-place fuzzer checks where read targets end.
 */
export function referenceFrameBytes(
  input: Uint8Array,
  role: "server" | "client",
  maxMessageSize: number,
): RefResultWithEnds<Uint8Array> {
  return decode(input, role, maxMessageSize, (bytes) => bytes);
}

/** The reference decoder, with payloads put in the form `form` gives them. */
function decode<D>(
  input: Uint8Array,
  role: "server" | "client",
  maxMessageSize: number,
  form: (bytes: Uint8Array) => D,
): RefResultWithEnds<D> {
  const events: RefEvent<D>[] = [];
  const ends: number[] = [];
  const emit = (event: RefEvent<D>) => {
    events.push(event);
    ends.push(pos);
  };
  const limit = BigInt(Math.min(maxMessageSize, Number.MAX_SAFE_INTEGER));
  const n = input.length;
  const fail = (code: number): RefResultWithEnds<D> => {
    emit({ type: "error", code });
    return { events, closeEnd: null, ends };
  };
  const incomplete = (): RefResultWithEnds<D> => ({ events, closeEnd: null, ends });

  let pos = 0;
  let inMessage = false;
  let binary = false;
  let message: Uint8Array[] = [];
  let declared = 0n;

  while (pos < n) {
    const b0 = input[pos];
    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >> 4) & 7;
    const opcode = b0 & 0x0f;
    const control = opcode >= 8;
    if (rsv !== 0) return fail(PROTOCOL_ERROR);
    if (control) {
      if (opcode > 10 || !fin) return fail(PROTOCOL_ERROR);
    } else if (opcode === 0) {
      if (!inMessage) return fail(PROTOCOL_ERROR);
    } else if (opcode === 1 || opcode === 2) {
      if (inMessage) return fail(PROTOCOL_ERROR);
    } else {
      return fail(PROTOCOL_ERROR);
    }

    if (pos + 2 > n) return incomplete();
    const b1 = input[pos + 1];
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    if (masked !== (role === "server")) return fail(PROTOCOL_ERROR);
    if (control && (len7 > 125 || (opcode === 8 && len7 === 1))) return fail(PROTOCOL_ERROR);

    let headerLength = 2;
    let length = BigInt(len7);
    if (len7 === 126) {
      if (pos + 4 > n) return incomplete();
      length = BigInt(input[pos + 2] * 256 + input[pos + 3]);
      if (length < 126n) return fail(PROTOCOL_ERROR);
      headerLength = 4;
    } else if (len7 === 127) {
      if (pos + 3 <= n && input[pos + 2] >= 0x80) return fail(PROTOCOL_ERROR);
      if (pos + 10 > n) return incomplete();
      length = 0n;
      for (let i = 2; i < 10; i++) length = length * 256n + BigInt(input[pos + i]);
      if (length <= 0xffffn) return fail(PROTOCOL_ERROR);
      headerLength = 10;
    }
    if (!control) {
      const before = opcode === 0 ? declared : 0n;
      if (before + length > limit) return fail(MESSAGE_TOO_BIG);
    }
    const key = [0, 0, 0, 0];
    if (masked) {
      if (pos + headerLength + 4 > n) return incomplete();
      for (let i = 0; i < 4; i++) key[i] = input[pos + headerLength + i];
      headerLength += 4;
    }
    pos += headerLength;

    const available = Number(length < BigInt(n - pos) ? length : BigInt(n - pos));
    const payload = new Uint8Array(available);
    for (let i = 0; i < available; i++) payload[i] = input[pos + i] ^ key[i % 4];
    pos += available;
    const whole = BigInt(available) === length;

    if (control) {
      if (opcode !== 8) {
        if (!whole) return incomplete();
        emit({ type: opcode === 9 ? "ping" : "pong", data: form(payload) });
        continue;
      }
      const code = available >= 2 ? payload[0] * 256 + payload[1] : -1;
      if (available >= 2 && !closeCodeAllowed(code)) return fail(PROTOCOL_ERROR);
      const reason = payload.subarray(Math.min(2, available));
      const verdict = utf8Verdict(reason);
      if (verdict === "invalid") return fail(INVALID_PAYLOAD);
      if (!whole) return incomplete();
      if (available === 0) {
        emit({ type: "close", code: 1005, reason: "" });
      } else {
        if (verdict !== "valid") return fail(INVALID_PAYLOAD);
        emit({ type: "close", code, reason: decoder.decode(reason) });
      }
      return { events, closeEnd: pos, ends };
    }

    if (opcode !== 0) {
      inMessage = true;
      binary = opcode === 2;
      message = [];
      declared = 0n;
    }
    declared += length;
    message.push(payload);
    const data = message.length === 1 ? payload : concat(message);
    const verdict = binary ? "valid" : utf8Verdict(data);
    if (verdict === "invalid") return fail(INVALID_PAYLOAD);
    if (!whole) return incomplete();
    if (fin) {
      if (verdict === "incomplete") return fail(INVALID_PAYLOAD);
      emit({ type: "message", binary, data: form(data) });
      inMessage = false;
      message = [];
      declared = 0n;
    }
  }
  return incomplete();
}
