import assert from "node:assert/strict";
import {
  CloseCode,
  encodeClosePayload,
  isSendableCloseCode,
  isValidReceivedCloseCode,
  MAX_CLOSE_REASON_BYTES,
  parseClosePayload,
} from "../protocol/close_codes.ts";
import { isDillError } from "../protocol/errors.ts";

const b = (...values: number[]) => new Uint8Array(values);

function assertEinval(fn: () => unknown, label: string): void {
  assert.throws(fn, (e: unknown) => isDillError(e, "EINVAL"), label);
}

Deno.test("CloseCode: registered values", () => {
  assert.deepEqual({ ...CloseCode }, {
    NORMAL: 1000,
    GOING_AWAY: 1001,
    PROTOCOL_ERROR: 1002,
    UNSUPPORTED_DATA: 1003,
    NO_STATUS: 1005,
    ABNORMAL: 1006,
    INVALID_PAYLOAD: 1007,
    POLICY_VIOLATION: 1008,
    MESSAGE_TOO_BIG: 1009,
    MANDATORY_EXTENSION: 1010,
    INTERNAL_ERROR: 1011,
    SERVICE_RESTART: 1012,
    TRY_AGAIN_LATER: 1013,
    BAD_GATEWAY: 1014,
  });
});

Deno.test("isValidReceivedCloseCode / isSendableCloseCode: exactly 1000-1003, 1007-1014, 3000-4999", () => {
  for (let code = 0; code <= 70000; code++) {
    const expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999);
    assert.equal(isValidReceivedCloseCode(code), expected, `${code}`);
    assert.equal(isSendableCloseCode(code), expected, `${code}`);
  }
  for (const code of [-1, 1000.5, NaN, Infinity, -1000]) {
    assert.equal(isValidReceivedCloseCode(code), false, `${code}`);
    assert.equal(isSendableCloseCode(code), false, `${code}`);
  }
});

Deno.test("encodeClosePayload: code and reason, big-endian", () => {
  assert.deepEqual(encodeClosePayload(1000, ""), b(0x03, 0xe8));
  assert.deepEqual(encodeClosePayload(1001, "bye"), b(0x03, 0xe9, 0x62, 0x79, 0x65));
  assert.deepEqual(encodeClosePayload(4999, "é"), b(0x13, 0x87, 0xc3, 0xa9));
  assert.deepEqual(encodeClosePayload(3000, "\u{1f600}"), b(0x0b, 0xb8, 0xf0, 0x9f, 0x98, 0x80));
  // A leading BOM is kept as content.
  assert.deepEqual(encodeClosePayload(1000, "\ufeffx"), b(0x03, 0xe8, 0xef, 0xbb, 0xbf, 0x78));
});

Deno.test("encodeClosePayload: code 0 sends no status", () => {
  assert.deepEqual(encodeClosePayload(0, ""), b());
  assertEinval(() => encodeClosePayload(0, "reason"), "reason without a code");
});

Deno.test("encodeClosePayload: codes that may not be sent are EINVAL", () => {
  for (const code of [-1, 1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 1000.5, NaN]) {
    assertEinval(() => encodeClosePayload(code, ""), `code ${code}`);
  }
  for (const code of [1000, 1003, 1007, 1014, 3000, 4999]) {
    assert.equal(encodeClosePayload(code, "").length, 2, `code ${code}`);
  }
});

Deno.test("encodeClosePayload: the reason may be up to 123 bytes of UTF-8", () => {
  assert.equal(MAX_CLOSE_REASON_BYTES, 123);
  assert.equal(encodeClosePayload(1000, "a".repeat(123)).length, 125);
  assertEinval(() => encodeClosePayload(1000, "a".repeat(124)), "124 ASCII bytes");
  assert.equal(encodeClosePayload(1000, "€".repeat(41)).length, 125); // 123 bytes
  assertEinval(() => encodeClosePayload(1000, "é".repeat(62)), "62 x 2 = 124 bytes");
  assertEinval(() => encodeClosePayload(1000, "€".repeat(41) + "a"), "124 bytes");
  // 30 four-byte characters (60 UTF-16 units) = 120 bytes, +4 = 124.
  assert.equal(encodeClosePayload(1000, "😀".repeat(30) + "abc").length, 125);
  assertEinval(() => encodeClosePayload(1000, "😀".repeat(31)), "31 x 4 = 124 bytes");
  assertEinval(() => encodeClosePayload(1000, "x".repeat(1_000_000)), "huge reason");
});

Deno.test("encodeClosePayload: a lone surrogate in the reason is EINVAL", () => {
  assertEinval(() => encodeClosePayload(1000, "a\ud800b"), "lone high surrogate");
  assertEinval(() => encodeClosePayload(1000, "\udc00"), "lone low surrogate");
});

Deno.test("parseClosePayload: empty body is 1005 with no reason", () => {
  assert.deepEqual(parseClosePayload(b()), { code: 1005, reason: "" });
});

Deno.test("parseClosePayload: a 1-byte body is a protocol error", () => {
  const result = parseClosePayload(b(0x03));
  assert.ok("error" in result);
  assert.equal(result.error, 1002);
});

Deno.test("parseClosePayload: codes that may not be received are 1002", () => {
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]) {
    const result = parseClosePayload(b(code >>> 8, code & 0xff, 0x61));
    assert.ok("error" in result, `${code}`);
    assert.equal(result.error, 1002, `${code}`);
  }
});

Deno.test("parseClosePayload: valid codes and reasons", () => {
  assert.deepEqual(parseClosePayload(b(0x03, 0xe8)), { code: 1000, reason: "" });
  assert.deepEqual(parseClosePayload(b(0x0f, 0xa0, 0x6f, 0x6b)), { code: 4000, reason: "ok" });
  assert.deepEqual(parseClosePayload(b(0x03, 0xf6, 0xe2, 0x82, 0xac)), {
    code: 1014,
    reason: "€",
  });
  // A leading BOM is part of the reason, not stripped.
  assert.deepEqual(parseClosePayload(b(0x03, 0xe8, 0xef, 0xbb, 0xbf)), {
    code: 1000,
    reason: "\ufeff",
  });
});

Deno.test("parseClosePayload: a reason that is not UTF-8 is 1007", () => {
  for (const reason of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x61, 0x80]]) {
    const result = parseClosePayload(b(0x03, 0xe8, ...reason));
    assert.ok("error" in result, `${reason}`);
    assert.equal(result.error, 1007, `${reason}`);
  }
  // An invalid code wins over an invalid reason.
  const both = parseClosePayload(b(0x03, 0xed, 0xff));
  assert.ok("error" in both);
  assert.equal(both.error, 1002);
});

Deno.test("encodeClosePayload and parseClosePayload round-trip", () => {
  for (const [code, reason] of [[1000, ""], [1011, "oops"], [3999, "ünïcödé €"], [4999, "x"]]) {
    assert.deepEqual(
      parseClosePayload(encodeClosePayload(code as number, reason as string)),
      { code, reason },
    );
  }
});
