/**
 * The framing rules of RFC 6455 section 5 that both our client and our server enforce,
 * as data: what a raw peer sends that breaks one, and how our side must answer (close
 * code, error of the pending receive); and the check that runs one rule on a rig.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mrecv, msend, now, type WsOptions, wsStatus } from "../../../mod.ts";
import { assertQuick } from "../assert_quick.ts";
import { assertFailed, settle } from "../outcome.ts";
import { closeBody, OP } from "./frames.ts";
import type { RawPeer } from "./peer.ts";
import { type OurSide, rigTests } from "./our_side.ts";
import { type Rig, TRANSPORTS } from "./rig.ts";

/**
 * A framing violation: what the peer sends and what our side must answer.
 *
 * @example
 * ```ts
 * import type { FrameRule } from "./frame_rules.ts";
 * import { OP } from "./frames.ts";
 *
 * const rule: FrameRule = {
 *   name: "RSV2 set on a ping",
 *   send: (p) => [p.frame({ opcode: OP.PING, rsv: 2 })],
 *   code: 1002,
 *   error: "EPROTO",
 * };
 * ```
 */
export interface FrameRule {
  /** What is wrong, for the test name. */
  name: string;
  /** The bytes the raw peer sends, one write each. */
  send: (p: RawPeer) => Uint8Array[];
  /** The close code our side must send. */
  code: 1002 | 1007 | 1009;
  /** The error our pending mrecv must fail with. */
  error: "EPROTO" | "EMSGSIZE";
  /** Options for our side. */
  options?: WsOptions;
  /** The outcome as the test name states it, when it says more than `code, error`. */
  outcome?: string;
}

const RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15];
const INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
const u8 = (...b: number[]) => new Uint8Array(b);

/**
 * Every framing rule of RFC 6455 section 5 that both sides enforce (masking aside).
 *
 * @example
 * ```ts
 * import { checkFrameRule, FRAME_RULES } from "./frame_rules.ts";
 * import { openServer } from "./rig.ts";
 *
 * const rig = await openServer("pipe", { options: FRAME_RULES[0].options });
 * try {
 *   await checkFrameRule(rig, FRAME_RULES[0]);
 * } finally {
 *   await rig.close();
 * }
 * ```
 */
export const FRAME_RULES: readonly FrameRule[] = [
  ...RESERVED_OPCODES.map((opcode): FrameRule => ({
    name: `reserved opcode ${opcode}`,
    send: (p) => [p.frame({ opcode, payload: "x" })],
    code: 1002,
    error: "EPROTO",
  })),
  ...([[4, "RSV1"], [2, "RSV2"], [1, "RSV3"]] as const).map(([rsv, bit]): FrameRule => ({
    name: `${bit} set on a text frame`,
    send: (p) => [p.frame({ opcode: OP.TEXT, rsv, payload: "hi" })],
    code: 1002,
    error: "EPROTO",
  })),
  {
    name: "RSV1 set on a ping",
    send: (p) => [p.frame({ opcode: OP.PING, rsv: 4, payload: "p" })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "non-minimal 16-bit length (5 bytes)",
    send: (p) => [p.frame({ opcode: OP.TEXT, payload: "hello", lengthForm: 16 })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "non-minimal 16-bit length (125 bytes)",
    send: (p) => [p.frame({ opcode: OP.BINARY, payload: new Uint8Array(125), lengthForm: 16 })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "non-minimal 64-bit length (5 bytes)",
    send: (p) => [p.frame({ opcode: OP.TEXT, payload: "hello", lengthForm: 64 })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "non-minimal 64-bit length (65535 bytes)",
    send: (p) => [p.frame({ opcode: OP.BINARY, payload: new Uint8Array(65535), lengthForm: 64 })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "64-bit length with its most significant bit set (header only)",
    send: (p) => [p.frame({ opcode: OP.BINARY, announced: (1n << 63n) + 5n, lengthForm: 64 })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "64-bit length 2^64-1 (header only)",
    send: (p) => [p.frame({ opcode: OP.BINARY, announced: (1n << 64n) - 1n, lengthForm: 64 })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "continuation frame without a start (FIN=1)",
    send: (p) => [p.frame({ opcode: OP.CONT, payload: "x" })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "continuation frame without a start (FIN=0)",
    send: (p) => [p.frame({ opcode: OP.CONT, fin: false, payload: "x" })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "new text frame inside a fragmented text message",
    send: (p) => [
      p.frame({ opcode: OP.TEXT, fin: false, payload: "a" }),
      p.frame({ opcode: OP.TEXT, payload: "b" }),
    ],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "new binary frame inside a fragmented binary message",
    send: (p) => [
      p.frame({ opcode: OP.BINARY, fin: false, payload: u8(1) }),
      p.frame({ opcode: OP.BINARY, payload: u8(2) }),
    ],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "new text frame inside a fragmented binary message (after a continuation)",
    send: (p) => [
      p.frame({ opcode: OP.BINARY, fin: false, payload: u8(1) }),
      p.frame({ opcode: OP.CONT, fin: false, payload: u8(2) }),
      p.frame({ opcode: OP.TEXT, payload: "c" }),
    ],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "fragmented ping (FIN=0)",
    send: (p) => [p.frame({ opcode: OP.PING, fin: false, payload: "p" })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "fragmented pong (FIN=0)",
    send: (p) => [p.frame({ opcode: OP.PONG, fin: false, payload: "p" })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "fragmented close (FIN=0)",
    send: (p) => [p.frame({ opcode: OP.CLOSE, fin: false, payload: closeBody(1000) })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "ping with a 126-byte payload",
    send: (p) => [p.frame({ opcode: OP.PING, payload: new Uint8Array(126) })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "close with a 126-byte payload",
    send: (p) => [p.frame({ opcode: OP.CLOSE, payload: closeBody(1000, "r".repeat(124)) })],
    code: 1002,
    error: "EPROTO",
  },
  {
    name: "pong with a 126-byte payload",
    send: (p) => [p.frame({ opcode: OP.PONG, payload: new Uint8Array(126) })],
    code: 1002,
    error: "EPROTO",
  },
  ...([
    ["0xff", u8(0x61, 0xff, 0x62)],
    ["an overlong '/'", u8(0xc0, 0xaf)],
    ["a UTF-16 surrogate", u8(0xed, 0xa0, 0x80)],
    ["a code point above U+10FFFF", u8(0xf4, 0x90, 0x80, 0x80)],
    ["a lone continuation byte", u8(0x61, 0x80)],
  ] as const).map(([what, payload]): FrameRule => ({
    name: `invalid UTF-8 in a single text frame: ${what}`,
    send: (p) => [p.frame({ opcode: OP.TEXT, payload })],
    code: 1007,
    error: "EPROTO",
  })),
  {
    name: "invalid UTF-8 split across fragments, final fragment never sent (fail fast)",
    send: (p) => [
      p.frame({ opcode: OP.TEXT, fin: false, payload: u8(0x61, 0xf0, 0x90) }),
      p.frame({ opcode: OP.CONT, fin: false, payload: u8(0x28, 0x61) }),
    ],
    code: 1007,
    error: "EPROTO",
  },
  {
    name: "invalid UTF-8 early in a frame whose payload is never finished (fail fast)",
    send: (p) => [p.frame({ opcode: OP.TEXT, announced: 1000, payload: u8(0x61, 0x62, 0xff) })],
    code: 1007,
    error: "EPROTO",
  },
  {
    name: "text message ending in the middle of a code point (one frame)",
    send: (p) => [p.frame({ opcode: OP.TEXT, payload: u8(0x61, 0xe2, 0x82) })],
    code: 1007,
    error: "EPROTO",
  },
  {
    name: "text message ending in the middle of a code point (fragmented)",
    send: (p) => [
      p.frame({ opcode: OP.TEXT, fin: false, payload: "a" }),
      p.frame({ opcode: OP.CONT, payload: u8(0xe2, 0x82) }),
    ],
    code: 1007,
    error: "EPROTO",
  },
  {
    name: "close frame with a 1-byte payload",
    send: (p) => [p.frame({ opcode: OP.CLOSE, payload: u8(0x03) })],
    code: 1002,
    error: "EPROTO",
  },
  ...INVALID_CLOSE_CODES.map((code): FrameRule => ({
    name: `close code ${code}`,
    send: (p) => [p.frame({ opcode: OP.CLOSE, payload: closeBody(code, "x") })],
    code: 1002,
    error: "EPROTO",
  })),
  {
    name: "close reason with invalid UTF-8",
    send: (p) => [p.frame({ opcode: OP.CLOSE, payload: closeBody(1000, u8(0x6f, 0x6b, 0xff)) })],
    code: 1007,
    error: "EPROTO",
  },
  {
    name: "message over maxMessageSize announced in one header (payload never sent)",
    send: (p) => [p.frame({ opcode: OP.BINARY, announced: 1001 })],
    code: 1009,
    error: "EMSGSIZE",
    options: { maxMessageSize: 1000 },
  },
  {
    name: "fragmented message growing over maxMessageSize",
    send: (p) => [
      p.frame({ opcode: OP.TEXT, fin: false, payload: "a".repeat(600) }),
      p.frame({ opcode: OP.CONT, announced: 401 }),
    ],
    code: 1009,
    error: "EMSGSIZE",
    options: { maxMessageSize: 1000 },
  },
  {
    name: "2^40-byte message announced with the default maxMessageSize (no allocation)",
    send: (p) => [p.frame({ opcode: OP.BINARY, announced: 1n << 40n })],
    code: 1009,
    error: "EMSGSIZE",
  },
];

/**
 * Runs one framing rule on a rig: the peer sends the bytes while our app waits in
 * `mrecv`; checks our close frame, the error, that our side ended the stream, that
 * later sends fail with EPIPE, that wsStatus says 1006, and that all of it was quick.
 *
 * @example
 * ```ts
 * import { checkFrameRule } from "./frame_rules.ts";
 * import { OP } from "./frames.ts";
 * import { openClient } from "./rig.ts";
 *
 * const rig = await openClient("tcp");
 * try {
 *   const send = (p: typeof rig.peer) => [p.frame({ opcode: 3 })];
 *   await checkFrameRule(rig, { send, code: 1002, error: "EPROTO" });
 * } finally {
 *   await rig.close();
 * }
 * ```
 */
export async function checkFrameRule(
  rig: Rig,
  rule: Pick<FrameRule, "send" | "code" | "error">,
): Promise<void> {
  const t0 = now();
  const receiving = settle(mrecv(rig.ws, now() + 2000));
  for (const chunk of rule.send(rig.peer)) await rig.peer.send(chunk);
  const close = await rig.peer.readClose();
  assert.equal(close.code, rule.code, `our close frame: ${close.code} ${close.reason}`);
  assertFailed(await receiving, rule.error, "the pending mrecv");
  await rig.peer.expectEnd();
  assertQuick(t0, "the violation was answered");
  assertFailed(await settle(msend(rig.ws, "late", now() + 2000)), "EPIPE", "msend afterwards");
  assert.deepEqual(await wsStatus(rig.ws), { status: 1006, reason: "" });
}

/**
 * Registers a test per transport and rule for `side`: first the rules only that side
 * enforces (masking is opposite for client and server), then every rule of
 * {@link FRAME_RULES}. Each test is named `ws <side>/<transport>: <rule> → <outcome>`
 * and runs {@link checkFrameRule} on a rig opened with the rule's options.
 *
 * @example
 * ```ts
 * import { testFrameRules } from "./frame_rules.ts";
 * import { OP } from "./frames.ts";
 * import { OUR_CLIENT } from "./our_side.ts";
 *
 * testFrameRules(OUR_CLIENT, [{
 *   name: "masked server frame",
 *   send: (p) => [p.frame({ opcode: OP.TEXT, payload: "hi", mask: true })],
 *   code: 1002,
 *   error: "EPROTO",
 * }]);
 * ```
 */
export function testFrameRules(
  side: OurSide<{ options?: WsOptions }>,
  sideRules: readonly FrameRule[],
): void {
  for (const transport of TRANSPORTS) {
    const test = rigTests(side, transport);
    for (const rule of [...sideRules, ...FRAME_RULES]) {
      const outcome = rule.outcome ?? `${rule.code}, ${rule.error}`;
      test(
        `${rule.name} → ${outcome}`,
        { options: rule.options },
        (rig) => checkFrameRule(rig, rule),
      );
    }
  }
}
