/**
 * WebSocket frames as the raw peer builds and reads them (RFC 6455 section 5): any
 * opcode, FIN and RSV bits, masking and length encoding, on purpose wrong where a test
 * wants it; close bodies built and parsed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bytes, concat } from "./bytes.ts";

/**
 * Opcodes, spelled out so that tests read like RFC 6455.
 *
 * @example
 * ```ts
 * import { frame, OP } from "./frames.ts";
 *
 * const ping = frame({ opcode: OP.PING, payload: "are you there?" });
 * ```
 */
export const OP = {
  CONT: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/**
 * How to build one frame. Every field can be wrong on purpose.
 *
 * @example
 * ```ts
 * import { type FrameSpec, OP } from "./frames.ts";
 *
 * // A 5-byte text frame with a needless 16-bit length and RSV2 set.
 * const spec: FrameSpec = { opcode: OP.TEXT, payload: "hello", lengthForm: 16, rsv: 2 };
 * ```
 */
export interface FrameSpec {
  /** Opcode, 0-15. */
  opcode: number;
  /** Payload (unmasked). Default empty. */
  payload?: Uint8Array | string;
  /** FIN bit. Default true. */
  fin?: boolean;
  /** RSV bits as a 3-bit number: 4 = RSV1, 2 = RSV2, 1 = RSV3. Default 0. */
  rsv?: number;
  /** Mask key, or `true` for a random one, `false` for none. Default false. */
  mask?: boolean | Uint8Array;
  /** Length encoding: 7-bit, 16-bit or 64-bit. Default: the minimal one. */
  lengthForm?: 7 | 16 | 64;
  /**
   * Length written in the header, if not the payload's (to announce bytes never sent).
   * A bigint reaches all 64 bits.
   */
  announced?: number | bigint;
}

/**
 * Builds one frame exactly as specified.
 *
 * @example
 * ```ts
 * import { frame, OP } from "./frames.ts";
 *
 * // Announces 1000 bytes and sends 3: the receiver waits for the rest.
 * const partial = frame({ opcode: OP.BINARY, announced: 1000, payload: "abc", mask: true });
 * ```
 */
export function frame(spec: FrameSpec): Uint8Array {
  const payload = bytes(spec.payload ?? new Uint8Array(0));
  const announced = BigInt(spec.announced ?? payload.length);
  const form = spec.lengthForm ?? (announced < 126n ? 7 : announced < 65536n ? 16 : 64);
  const key = spec.mask === true
    ? crypto.getRandomValues(new Uint8Array(4))
    : spec.mask instanceof Uint8Array
    ? spec.mask
    : null;
  const header: number[] = [
    ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f),
  ];
  const maskBit = key ? 0x80 : 0;
  if (form === 7) {
    header.push(maskBit | Number(announced));
  } else if (form === 16) {
    header.push(maskBit | 126, Number(announced >> 8n) & 0xff, Number(announced) & 0xff);
  } else {
    header.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) {
      header.push(Number((announced >> shift) & 0xffn));
    }
  }
  if (key) header.push(...key);
  const out = new Uint8Array(header.length + payload.length);
  out.set(header, 0);
  out.set(payload, header.length);
  if (key) {
    for (let i = 0; i < payload.length; i++) out[header.length + i] ^= key[i & 3];
  }
  return out;
}

/**
 * The body of a close frame: a big-endian code, then the reason's bytes.
 *
 * @example
 * ```ts
 * import { closeBody, frame, OP } from "./frames.ts";
 *
 * const goingAway = frame({ opcode: OP.CLOSE, payload: closeBody(1001, "bye") });
 * ```
 */
export function closeBody(code: number, reason: Uint8Array | string = ""): Uint8Array {
  return concat(new Uint8Array([code >> 8, code & 0xff]), bytes(reason));
}

/**
 * One frame our side sent, unmasked.
 *
 * @example
 * ```ts
 * import { OP, type ParsedFrame } from "./frames.ts";
 *
 * const isFinalPong = (f: ParsedFrame) => f.fin && f.opcode === OP.PONG;
 * ```
 */
export interface ParsedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/**
 * A close frame our side sent: `code` is 1005 for an empty body.
 *
 * @example
 * ```ts
 * import { type ParsedClose, parseClose } from "./frames.ts";
 *
 * const close: ParsedClose = parseClose(new Uint8Array(0)); // code 1005, reason ""
 * ```
 */
export interface ParsedClose {
  code: number;
  reason: string;
  /** The raw body. */
  body: Uint8Array;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses a close body; its reason must be valid UTF-8 of at most 123 bytes.
 *
 * @example
 * ```ts
 * import { closeBody, parseClose } from "./frames.ts";
 *
 * console.log(parseClose(closeBody(1000, "done"))); // code 1000, reason "done"
 * ```
 */
export function parseClose(body: Uint8Array): ParsedClose {
  if (body.length === 0) return { code: 1005, reason: "", body };
  assert.ok(body.length >= 2, "our side sent a 1-byte close body");
  assert.ok(body.length <= 125, "our side sent a close body over 125 bytes");
  const reason = strictDecoder.decode(body.subarray(2));
  return { code: (body[0] << 8) | body[1], reason, body };
}
