/**
 * WebSocket close status codes (RFC 6455 section 7.4 and the IANA registry) and the
 * close frame body: a 2-byte big-endian code followed by a UTF-8 reason.
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { isValidUtf8 } from "./utf8.ts";

/**
 * The registered close status codes.
 *
 * `NO_STATUS` (1005) and `ABNORMAL` (1006) are never sent: they stand for "the close frame
 * had no body" and "the connection ended without a close frame".
 *
 * @example
 * ```ts
 * import { CloseCode } from "./close_codes.ts";
 *
 * console.log(CloseCode.GOING_AWAY); // 1001
 * ```
 */
export const CloseCode = {
  /** The purpose of the connection has been fulfilled. */
  NORMAL: 1000,
  /** The endpoint is going away (server shutting down, page navigated away). */
  GOING_AWAY: 1001,
  /** The peer broke the protocol. */
  PROTOCOL_ERROR: 1002,
  /** The endpoint cannot accept this type of data (e.g. text when it only takes binary). */
  UNSUPPORTED_DATA: 1003,
  /** Stands for "the close frame had no status code"; never sent. */
  NO_STATUS: 1005,
  /** Stands for "the connection ended without a close frame"; never sent. */
  ABNORMAL: 1006,
  /** A text message or close reason was not valid UTF-8. */
  INVALID_PAYLOAD: 1007,
  /** A message broke the endpoint's policy (generic refusal). */
  POLICY_VIOLATION: 1008,
  /** A message was larger than the endpoint accepts. */
  MESSAGE_TOO_BIG: 1009,
  /** The client needed an extension the server did not negotiate. */
  MANDATORY_EXTENSION: 1010,
  /** The server hit an unexpected condition. */
  INTERNAL_ERROR: 1011,
  /** The server is restarting. */
  SERVICE_RESTART: 1012,
  /** The server is overloaded; try again later. */
  TRY_AGAIN_LATER: 1013,
  /** A gateway or proxy got an invalid answer from upstream. */
  BAD_GATEWAY: 1014,
} as const;

/** One of the registered {@link CloseCode} values. */
export type CloseCode = typeof CloseCode[keyof typeof CloseCode];

/** Longest close reason in UTF-8 bytes: a control frame body is at most 125 bytes. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Tells whether `code` may appear in a close frame received from the peer: 1000–1003,
 * 1007–1014 (registered and sendable), 3000–4999 (libraries, frameworks, applications).
 * Everything else (0–999, 1004–1006, 1015–2999, 5000 and up) is a protocol error.
 *
 * @example
 * ```ts
 * import { isValidReceivedCloseCode } from "./close_codes.ts";
 *
 * console.log(isValidReceivedCloseCode(1000)); // true
 * console.log(isValidReceivedCloseCode(1005)); // false: reserved, never on the wire
 * console.log(isValidReceivedCloseCode(4000)); // true
 * ```
 */
export function isValidReceivedCloseCode(code: number): boolean {
  return Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999));
}

/**
 * Tells whether an application may send `code` in a close frame: the same set as
 * {@link isValidReceivedCloseCode}. (Sending no code at all is spelled `0` in
 * {@link encodeClosePayload}.)
 *
 * @example
 * ```ts
 * import { isSendableCloseCode } from "./close_codes.ts";
 *
 * console.log(isSendableCloseCode(1001)); // true
 * console.log(isSendableCloseCode(1006)); // false
 * ```
 */
export function isSendableCloseCode(code: number): boolean {
  return isValidReceivedCloseCode(code);
}

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in a reason instead of silently dropping it.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Builds the body of a close frame.
 *
 * @param code the status code, or `0` to send no status (an empty body)
 * @param reason the reason; must be empty when `code` is `0`
 * @returns the 2-byte big-endian code followed by the UTF-8 reason (empty for code 0)
 * @throws {DillError} `EINVAL` when `code` is neither `0` nor sendable, when a reason is
 * given with code `0`, when `reason` has a lone UTF-16 surrogate (it has no UTF-8 form),
 * or when it is longer than 123 bytes in UTF-8
 *
 * @example
 * ```ts
 * import { encodeClosePayload } from "./close_codes.ts";
 *
 * console.log(encodeClosePayload(1000, "bye")); // Uint8Array(5) [ 3, 232, 98, 121, 101 ]
 * console.log(encodeClosePayload(0, "").length); // 0
 * ```
 */
export function encodeClosePayload(code: number, reason: string): Uint8Array {
  if (code === 0) {
    if (reason !== "") {
      throw new DillError("EINVAL", "a close reason needs a status code; status 0 sends none");
    }
    return new Uint8Array(0);
  }
  if (!isSendableCloseCode(code)) {
    throw new DillError(
      "EINVAL",
      `close status ${code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999 (0 for none)`,
    );
  }
  // A status alone (every echo of a peer's close): no encoder call.
  if (reason === "") return Uint8Array.of(code >>> 8, code & 0xff);
  if (!reason.isWellFormed()) {
    throw new DillError("EINVAL", "close reason contains a lone UTF-16 surrogate");
  }
  // Every UTF-16 code unit takes at least one UTF-8 byte, so a longer string cannot fit.
  if (reason.length > MAX_CLOSE_REASON_BYTES) throw reasonTooLong();
  // ...and at most three, which bounds the buffer to encode into.
  const payload = new Uint8Array(2 + reason.length * 3);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  const { written } = encoder.encodeInto(reason, payload.subarray(2));
  if (written > MAX_CLOSE_REASON_BYTES) throw reasonTooLong();
  return payload.subarray(0, 2 + written);
}

function reasonTooLong(): DillError {
  return new DillError(
    "EINVAL",
    `close reason is longer than ${MAX_CLOSE_REASON_BYTES} bytes of UTF-8`,
  );
}

/**
 * The result of {@link parseClosePayload}: the peer's status and reason, or the close code
 * to answer a malformed close frame with.
 */
export type ParsedClosePayload =
  | { code: number; reason: string }
  | { error: number; message: string };

/**
 * Reads the body of a received close frame.
 *
 * @param payload the (unmasked) close frame body
 * @returns `{ code, reason }`: code `1005` with reason `""` for an empty body; or
 * `{ error, message }` with `error` `1002` for a 1-byte body or a code that may not be
 * sent, `1007` for a reason that is not valid UTF-8
 *
 * @example
 * ```ts
 * import { parseClosePayload } from "./close_codes.ts";
 *
 * console.log(parseClosePayload(new Uint8Array([0x03, 0xe8, 0x6f, 0x6b]))); // { code: 1000, reason: "ok" }
 * console.log(parseClosePayload(new Uint8Array(0))); // { code: 1005, reason: "" }
 * console.log(parseClosePayload(new Uint8Array([0x03, 0xed]))); // { error: 1002, ... }: 1005 sent
 * ```
 */
export function parseClosePayload(payload: Uint8Array): ParsedClosePayload {
  if (payload.length === 0) return { code: CloseCode.NO_STATUS, reason: "" };
  if (payload.length === 1) {
    return {
      error: CloseCode.PROTOCOL_ERROR,
      message: "close frame body is 1 byte: too short for a status code",
    };
  }
  const code = (payload[0] << 8) | payload[1];
  if (!isValidReceivedCloseCode(code)) {
    return {
      error: CloseCode.PROTOCOL_ERROR,
      message: `close frame carries status ${code}, which may not be sent`,
    };
  }
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) {
    return { error: CloseCode.INVALID_PAYLOAD, message: "close reason is not valid UTF-8" };
  }
  return { code, reason: decoder.decode(reasonBytes) };
}
