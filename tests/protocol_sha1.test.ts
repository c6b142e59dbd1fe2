/** SHA-1 for Sec-WebSocket-Accept, checked against node:crypto on many inputs. */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha1Base64 } from "../protocol/sha1.ts";
import { wsResponseKey } from "../protocol/handshake_keys.ts";
import { isDillError } from "../protocol/errors.ts";

function reference(text: string): string {
  return createHash("sha1").update(Buffer.from(text, "latin1")).digest("base64");
}

Deno.test("sha1: every length from 0 to 300 bytes (one to six blocks, every padding case) matches node:crypto", () => {
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let length = 0; length <= 300; length++) {
    for (let round = 0; round < 3; round++) {
      let text = "";
      for (let i = 0; i < length; i++) text += String.fromCharCode(next() & 0xff);
      assert.equal(sha1Base64(text), reference(text), `length ${length}`);
    }
  }
});

Deno.test("sha1: known vectors (FIPS 180 'abc', empty, RFC 6455's accept)", () => {
  assert.equal(sha1Base64(""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
  assert.equal(sha1Base64("abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  assert.equal(wsResponseKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("sha1: a key of random bytes gives node:crypto's accept value", () => {
  for (let i = 0; i < 500; i++) {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    assert.equal(
      wsResponseKey(key),
      createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64"),
    );
  }
});

Deno.test("sha1: text that is not bytes is refused with EINVAL", () => {
  assert.throws(() => sha1Base64("\u0100"), (e) => isDillError(e, "EINVAL"));
});
