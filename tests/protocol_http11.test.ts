import assert from "node:assert/strict";
import { deferHeaders } from "../protocol/deferred_headers.ts";
import { DillError } from "../protocol/errors.ts";
import {
  headerLookup,
  HttpError,
  HttpHeadReader,
  type HttpLimits,
  type HttpRequestHead,
  type HttpResponseHead,
  isHttpToken,
} from "../protocol/http11.ts";
import {
  httpReasonPhrase,
  writeHttpErrorResponse,
  writeHttpRequest,
  writeHttpResponse,
} from "../protocol/http_write.ts";

/** Bytes of `s`, one byte per character (latin1), so tests can write any byte. */
function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function text(b: Uint8Array): string {
  return String.fromCharCode(...b);
}

/** A small seeded generator (xorshift32), so random splits are reproducible. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/** Cuts `data` into pieces of random lengths, including empty ones. */
function randomSplit(data: Uint8Array, seed: number): Uint8Array[] {
  const next = rng(seed);
  const pieces: Uint8Array[] = [];
  let i = 0;
  while (i < data.length) {
    const len = Math.floor(next() * 12);
    pieces.push(data.slice(i, i + len));
    i += len;
  }
  pieces.push(new Uint8Array(0));
  return pieces;
}

type Result = { head: HttpRequestHead | HttpResponseHead; rest: Uint8Array };

/** Feeds `pieces` in order; returns the result and how many pieces it took. */
function feedAll(
  kind: "request" | "response",
  pieces: Uint8Array[],
  limits?: HttpLimits,
): { result: Result; fed: number; restTail: Uint8Array[] } {
  const reader = new HttpHeadReader(kind, limits);
  for (let i = 0; i < pieces.length; i++) {
    const result = reader.feed(pieces[i]);
    if (result !== null) return { result, fed: i + 1, restTail: pieces.slice(i + 1) };
  }
  throw new Error("head never completed");
}

/** A comparable form of a parse result, with the bytes that follow the head. */
function summary(r: Result, restTail: Uint8Array[] = []): string {
  const { headers, ...fields } = r.head;
  const after = [r.rest, ...restTail].map(text).join("");
  return JSON.stringify({ ...fields, headers: [...headers], after });
}

function assertHttpError(fn: () => unknown, status: number, code: string): HttpError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${e}`);
    assert.ok(e instanceof DillError);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected HttpError ${status} ${code}, nothing thrown`);
}

const SIMPLE = "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing: a b\r\n\r\n";

Deno.test("http11: parses a request head and returns the bytes after it", () => {
  const reader = new HttpHeadReader("request");
  const result = reader.feed(bytes(SIMPLE + "\x81\x85frame"));
  assert.ok(result);
  assert.equal(result.head.method, "GET");
  assert.equal(result.head.target, "/chat?room=1");
  assert.equal(result.head.version, "HTTP/1.1");
  assert.deepEqual([...result.head.headers], [["host", "example.com"], ["x-thing", "a b"]]);
  assert.equal(text(result.rest), "\x81\x85frame");
});

Deno.test("http11: rest is empty when the chunk ends with the head, and is a copy", () => {
  const chunk = bytes(SIMPLE + "tail");
  const result = new HttpHeadReader("request").feed(chunk)!;
  assert.equal(text(result.rest), "tail");
  chunk.fill(0);
  assert.equal(text(result.rest), "tail", "rest must not alias the caller's buffer");
  const exact = new HttpHeadReader("request").feed(bytes(SIMPLE))!;
  assert.equal(exact.rest.length, 0);
});

Deno.test("http11: parses a response head, with or without a reason phrase", () => {
  const full = new HttpHeadReader("response").feed(
    bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
  )!;
  assert.equal(full.head.version, "HTTP/1.1");
  assert.equal(full.head.status, 101);
  assert.equal(full.head.reason, "Switching Protocols");
  assert.equal(full.head.headers.get("upgrade"), "websocket");
  const empty = new HttpHeadReader("response").feed(bytes("HTTP/1.1 200 \r\n\r\n"))!;
  assert.equal(empty.head.status, 200);
  assert.equal(empty.head.reason, "");
  const none = new HttpHeadReader("response").feed(bytes("HTTP/1.0 404\r\n\r\n"))!;
  assert.equal(none.head.status, 404);
  assert.equal(none.head.reason, "");
  assert.equal(none.head.version, "HTTP/1.0");
  const tabs = new HttpHeadReader("response").feed(bytes("HTTP/1.1 500 Oops\tit  broke\r\n\r\n"))!;
  assert.equal(tabs.head.reason, "Oops\tit  broke");
});

Deno.test("http11: header names are case-insensitive, values trimmed, repeats combined", () => {
  const head = "GET / HTTP/1.1\r\n" +
    "HOST:example.com\r\n" +
    "x-list:  a  \r\n" +
    "X-List:\tb\t\r\n" +
    "x-LIST: c, d\r\n" +
    "X-Empty:\r\n" +
    "X-Blank:   \r\n" +
    "X-Inner: one \t two\r\n" +
    "X-Latin: caf\xe9 \x80\xff\r\n" +
    "!#$%&'*+-.^_`|~09azAZ: tchar\r\n\r\n";
  const { headers } = new HttpHeadReader("request").feed(bytes(head))!.head;
  assert.equal(headers.get("host"), "example.com");
  assert.equal(headers.get("Host"), "example.com");
  assert.equal(headers.get("x-list"), "a, b, c, d");
  assert.equal(headers.get("x-empty"), "");
  assert.equal(headers.get("x-blank"), "");
  assert.equal(headers.get("x-inner"), "one \t two");
  assert.equal(headers.get("x-latin"), "caf\xe9 \x80\xff", "obs-text bytes kept as latin1");
  assert.equal(headers.get("!#$%&'*+-.^_`|~09azaz"), "tchar");
});

Deno.test("http11: trailing whitespace is trimmed in every chunking, inner whitespace kept", () => {
  // The value that made a trimming regex backtrack ("a", spaces, "b"), and whitespace
  // runs that end right at a chunk boundary.
  const value = "a" + " ".repeat(3000) + "b \t\t c";
  const input = `GET / HTTP/1.1\r\nX-A: \t${value} \t \r\nX-B:  \t \r\nX-C: d\t \r\n\r\n`;
  const data = bytes(input);
  for (const pieces of [[data], Array.from(data, (b) => Uint8Array.of(b)), randomSplit(data, 7)]) {
    const { headers } = feedAll("request", pieces).result.head;
    assert.equal(headers.get("x-a"), value);
    assert.equal(headers.get("x-b"), "");
    assert.equal(headers.get("x-c"), "d");
  }
});

/** Heads captured from real clients connecting to a plain TCP listener. */
const REAL_REQUESTS: Record<string, string> = {
  "Deno WebSocket": "GET /deno?x=1 HTTP/1.1\r\nuser-agent: Deno/2.9.6\r\n" +
    "sec-websocket-version: 13\r\nsec-websocket-protocol: chat, superchat\r\n" +
    "host: 127.0.0.1:18777\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
    "sec-websocket-key: O9zWjwJew8Yo0Nu/FIIkjg==\r\n\r\n",
  "Python websockets 10.4": "GET /py HTTP/1.1\r\nHost: 127.0.0.1:18777\r\n" +
    "Origin: http://localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: hbSAgscAp2DOA4YV5SpNvA==\r\nSec-WebSocket-Version: 13\r\n" +
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
    "User-Agent: Python/3.11 websockets/10.4\r\n\r\n",
  "curl 7.88": "GET /curl HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\n" +
    "Accept: */*\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  "npm ws 8": "GET /npm HTTP/1.1\r\nSec-WebSocket-Version: 13\r\n" +
    "Sec-WebSocket-Key: JIVsA9OcjVE96Bl7drc0Ng==\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
    "Sec-WebSocket-Protocol: graphql-ws\r\nOrigin: https://app.example\r\n" +
    "Host: 127.0.0.1:18777\r\n\r\n",
};

Deno.test("http11: every chunking of a head gives the same result", () => {
  const cases: ["request" | "response", string][] = [
    ["request", SIMPLE + "\x81\x05hello"],
    ["response", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x82\x00"],
    ...Object.values(REAL_REQUESTS).map((h): ["request", string] => ["request", h + "rest"]),
  ];
  for (const [kind, input] of cases) {
    const data = bytes(input);
    const whole = feedAll(kind, [data]);
    const expected = summary(whole.result);
    // Byte by byte: the head completes exactly on its last byte.
    const single = feedAll(kind, Array.from(data, (b) => Uint8Array.of(b)));
    assert.equal(single.fed, input.indexOf("\r\n\r\n") + 4);
    assert.equal(summary(single.result, single.restTail), expected);
    // Every split into two pieces.
    for (let cut = 0; cut <= data.length; cut++) {
      const two = feedAll(kind, [data.slice(0, cut), data.slice(cut)]);
      assert.equal(summary(two.result, two.restTail), expected, `cut at ${cut}`);
    }
    // Random seeded splits, including empty pieces.
    for (let seed = 1; seed <= 200; seed++) {
      const pieces = randomSplit(data, seed);
      const split = feedAll(kind, pieces);
      assert.equal(summary(split.result, split.restTail), expected, `seed ${seed}`);
    }
  }
});

Deno.test("http11: real client requests parse", () => {
  for (const [client, head] of Object.entries(REAL_REQUESTS)) {
    const result = new HttpHeadReader("request").feed(bytes(head));
    assert.ok(result, client);
    assert.equal(result.head.method, "GET", client);
    assert.equal(result.head.headers.get("upgrade"), "websocket", client);
    assert.equal(result.rest.length, 0, client);
  }
});

/**
 * Malformed heads. `bad` is the text up to and including the first byte that makes the
 * head invalid: the reader must accept every shorter prefix and throw on that byte.
 */
const BAD_HEADS: {
  name: string;
  kind: "request" | "response";
  bad: string;
  status: number;
}[] = [
  { name: "TLS ClientHello on a plain port", kind: "request", bad: "\x16", status: 400 },
  { name: "garbage bytes", kind: "request", bad: "\xff", status: 400 },
  { name: "NUL in the method", kind: "request", bad: "GE\x00", status: 400 },
  { name: "empty line before the request line", kind: "request", bad: "\r", status: 400 },
  { name: "leading space", kind: "request", bad: " ", status: 400 },
  { name: "two spaces after the method", kind: "request", bad: "GET  ", status: 400 },
  { name: "space in the target", kind: "request", bad: "GET /a b", status: 400 },
  { name: "UTF-8 in the target", kind: "request", bad: "GET /\xc3", status: 400 },
  { name: "NUL in the target", kind: "request", bad: "GET /\x00", status: 400 },
  { name: "missing version", kind: "request", bad: "GET /\r", status: 400 },
  { name: "lowercase version", kind: "request", bad: "GET / h", status: 400 },
  { name: "HTTP/2.0", kind: "request", bad: "GET / HTTP/2", status: 505 },
  { name: "HTTP/2 preface", kind: "request", bad: "PRI * HTTP/2", status: 505 },
  { name: "HTTP/0.9", kind: "request", bad: "GET / HTTP/0", status: 505 },
  { name: "two-digit minor version", kind: "request", bad: "GET / HTTP/1.10", status: 400 },
  { name: "version without minor", kind: "request", bad: "GET / HTTP/1\r", status: 400 },
  { name: "trailing space after version", kind: "request", bad: "GET / HTTP/1.1 ", status: 400 },
  { name: "bare LF after request line", kind: "request", bad: "GET / HTTP/1.1\n", status: 400 },
  { name: "bare CR after request line", kind: "request", bad: "GET / HTTP/1.1\rX", status: 400 },
  {
    name: "whitespace before the first header",
    kind: "request",
    bad: "GET / HTTP/1.1\r\n ",
    status: 400,
  },
  {
    name: "obs-fold continuation line",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\r\n\t",
    status: 400,
  },
  {
    name: "space between name and colon",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nHost ",
    status: 400,
  },
  { name: "@ in header name", kind: "request", bad: "GET / HTTP/1.1\r\nX@", status: 400 },
  { name: "non-ASCII header name", kind: "request", bad: "GET / HTTP/1.1\r\nX\xe9", status: 400 },
  { name: "empty header name", kind: "request", bad: "GET / HTTP/1.1\r\n:", status: 400 },
  {
    name: "missing colon",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nHostexample.com\r",
    status: 400,
  },
  {
    name: "NUL in a header value",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\x00",
    status: 400,
  },
  {
    name: "DEL in a header value",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\x7f",
    status: 400,
  },
  {
    name: "bare LF in a header value",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\n",
    status: 400,
  },
  {
    name: "bare CR in a header value",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\rb",
    status: 400,
  },
  {
    name: "bare LF ending the head",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\r\n\n",
    status: 400,
  },
  {
    name: "CR not followed by LF ending the head",
    kind: "request",
    bad: "GET / HTTP/1.1\r\nX-A: a\r\n\rX",
    status: 400,
  },
  { name: "not HTTP at all", kind: "response", bad: "I", status: 400 },
  { name: "response HTTP/2", kind: "response", bad: "HTTP/2", status: 505 },
  { name: "status 099", kind: "response", bad: "HTTP/1.1 0", status: 400 },
  { name: "status 600", kind: "response", bad: "HTTP/1.1 6", status: 400 },
  { name: "four-digit status", kind: "response", bad: "HTTP/1.1 1011", status: 400 },
  { name: "two-digit status", kind: "response", bad: "HTTP/1.1 10 ", status: 400 },
  { name: "letters in the status", kind: "response", bad: "HTTP/1.1 1o", status: 400 },
  { name: "two spaces before the status", kind: "response", bad: "HTTP/1.1  ", status: 400 },
  { name: "NUL in the reason", kind: "response", bad: "HTTP/1.1 101 OK\x00", status: 400 },
  {
    name: "obs-fold in a response",
    kind: "response",
    bad: "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n ",
    status: 400,
  },
];

Deno.test("http11: malformed heads fail at the first bad byte with the right status", () => {
  for (const { name, kind, bad, status } of BAD_HEADS) {
    const data = bytes(bad);
    // Byte by byte: every prefix before the bad byte is still a possible head.
    const reader = new HttpHeadReader(kind);
    for (let i = 0; i < data.length - 1; i++) {
      assert.equal(reader.feed(data.subarray(i, i + 1)), null, `${name}: byte ${i}`);
    }
    const e = assertHttpError(() => reader.feed(data.subarray(data.length - 1)), status, "EPROTO");
    // The error is sticky: the reader refuses to go on.
    assert.equal(assertHttpError(() => reader.feed(bytes("\r\n\r\n")), status, "EPROTO"), e);
    // In one chunk, with more bytes after it, the result is the same.
    assertHttpError(
      () => new HttpHeadReader(kind).feed(bytes(bad + "more\r\n\r\n")),
      status,
      "EPROTO",
    );
  }
});

Deno.test("http11: maxHeadBytes counts the whole head, final CRLF included", () => {
  const head = bytes(SIMPLE);
  const fits = new HttpHeadReader("request", { maxHeadBytes: head.length }).feed(head);
  assert.ok(fits);
  const reader = new HttpHeadReader("request", { maxHeadBytes: head.length - 1 });
  // Byte by byte: the error comes on the last byte allowed, not after more arrive.
  for (let i = 0; i < head.length - 2; i++) {
    assert.equal(reader.feed(head.subarray(i, i + 1)), null);
  }
  const e = assertHttpError(() => reader.feed(head.subarray(head.length - 2)), 431, "EMSGSIZE");
  assert.match(e.message, /larger than/);
});

Deno.test("http11: a head with no blank line fails within the limit, never buffering more", () => {
  // 1 MiB of well-formed header lines in one chunk: the reader stops at 8192 bytes.
  const line = "X-Filler: " + "a".repeat(50) + "\r\n";
  const flood = bytes("GET / HTTP/1.1\r\n" + line.repeat(Math.ceil(2 ** 20 / line.length)));
  assertHttpError(() => new HttpHeadReader("request").feed(flood), 431, "EMSGSIZE");
  // Fed byte by byte it fails exactly at byte 8192.
  const reader = new HttpHeadReader("request", { maxHeaders: 1000 });
  let fed = 0;
  assertHttpError(
    () => {
      for (; fed < flood.length; fed++) reader.feed(flood.subarray(fed, fed + 1));
    },
    431,
    "EMSGSIZE",
  );
  assert.equal(fed + 1, 8192);
});

Deno.test("http11: an overlong request line is 414", () => {
  const long = bytes("GET /" + "a".repeat(9000) + " HTTP/1.1\r\n\r\n");
  const e = assertHttpError(() => new HttpHeadReader("request").feed(long), 414, "EMSGSIZE");
  assert.match(e.message, /request line/);
  const method = bytes("G".repeat(100));
  assertHttpError(
    () => new HttpHeadReader("request", { maxHeadBytes: 50 }).feed(method),
    414,
    "EMSGSIZE",
  );
  // A response head has no request line: always 431.
  const status = bytes("HTTP/1.1 200 " + "x".repeat(100));
  assertHttpError(
    () => new HttpHeadReader("response", { maxHeadBytes: 50 }).feed(status),
    431,
    "EMSGSIZE",
  );
});

Deno.test("http11: maxHeaders is enforced at the first byte of the extra header", () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join("");
  const ok = new HttpHeadReader("request").feed(bytes(`GET / HTTP/1.1\r\n${lines(64)}\r\n`));
  assert.equal([...ok!.head.headers].length, 64);
  const prefix = bytes(`GET / HTTP/1.1\r\n${lines(64)}`);
  const reader = new HttpHeadReader("request");
  assert.equal(reader.feed(prefix), null);
  const e = assertHttpError(() => reader.feed(bytes("X")), 431, "EMSGSIZE");
  assert.match(e.message, /more than 64 header fields/);
  // Repeated names count one per line.
  const repeated = bytes("GET / HTTP/1.1\r\n" + "a:b\r\n".repeat(10_000) + "\r\n");
  assertHttpError(() => new HttpHeadReader("request").feed(repeated), 431, "EMSGSIZE");
  const custom = new HttpHeadReader("response", { maxHeaders: 1 });
  assertHttpError(() => custom.feed(bytes("HTTP/1.1 200 OK\r\na: 1\r\nb")), 431, "EMSGSIZE");
  const none = new HttpHeadReader("request", { maxHeaders: 0 });
  assert.ok(none.feed(bytes("GET / HTTP/1.1\r\n\r\n")));
});

Deno.test("http11: invalid limits and misuse are EINVAL", () => {
  for (const limits of [{ maxHeadBytes: 0 }, { maxHeadBytes: 1.5 }, { maxHeaders: -1 }]) {
    assert.throws(
      () => new HttpHeadReader("request", limits),
      (e: unknown) => e instanceof DillError && e.code === "EINVAL",
    );
  }
  assert.throws(
    () => new HttpHeadReader("nonsense" as "request"),
    (e: unknown) => e instanceof DillError && e.code === "EINVAL",
  );
  const reader = new HttpHeadReader("request");
  assert.ok(reader.feed(bytes(SIMPLE)));
  assert.throws(
    () => reader.feed(bytes("x")),
    (e: unknown) => e instanceof DillError && e.code === "EINVAL",
  );
});

Deno.test("http11: empty chunks are harmless", () => {
  const reader = new HttpHeadReader("request");
  assert.equal(reader.feed(new Uint8Array(0)), null);
  assert.equal(reader.feed(bytes("GET / HTTP/1.1\r\n")), null);
  assert.equal(reader.feed(new Uint8Array(0)), null);
  assert.ok(reader.feed(bytes("\r\n")));
});

Deno.test("http11: writeHttpResponse writes exactly the head and body", () => {
  const head = writeHttpResponse(101, "Switching Protocols", [["Upgrade", "websocket"]]);
  assert.equal(text(head), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  const withBody = new TextDecoder().decode(
    writeHttpResponse(400, "Bad Request", [["Connection", "close"]], "bad h\u00e9ad\n"),
  );
  assert.equal(
    withBody,
    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 10\r\n\r\nbad h\u00e9ad\n",
  );
  const given = writeHttpResponse(200, "OK", [["content-length", "2"]], "ok");
  assert.equal(text(given), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  const emptyBody = writeHttpResponse(204, "", [], "");
  assert.equal(text(emptyBody), "HTTP/1.1 204 \r\nContent-Length: 0\r\n\r\n");
});

Deno.test("http11: writers refuse anything that could inject or corrupt a head", () => {
  const einval = (fn: () => unknown) =>
    assert.throws(fn, (e: unknown) => e instanceof DillError && e.code === "EINVAL");
  einval(() => writeHttpResponse(99, "x", []));
  einval(() => writeHttpResponse(600, "x", []));
  einval(() => writeHttpResponse(200.5, "x", []));
  einval(() => writeHttpResponse(200, "OK\r\nX-Evil: 1", []));
  einval(() => writeHttpResponse(200, "OK", [["X-A", "a\r\nX-Evil: 1"]]));
  einval(() => writeHttpResponse(200, "OK", [["X-A", "a\nb"]]));
  einval(() => writeHttpResponse(200, "OK", [["X-A", "a\x00"]]));
  einval(() => writeHttpResponse(200, "OK", [["X-A", "caf\u00e9"]]));
  einval(() => writeHttpResponse(200, "OK", [["Bad Name", "a"]]));
  einval(() => writeHttpResponse(200, "OK", [["", "a"]]));
  einval(() => writeHttpResponse(200, "OK", [["Content-Length", "5"]], "ok"));
  einval(() => writeHttpRequest("G ET", "/", []));
  einval(() => writeHttpRequest("", "/", []));
  einval(() => writeHttpRequest("GET", "/a b", []));
  einval(() => writeHttpRequest("GET", "", []));
  einval(() => writeHttpRequest("GET", "/\r\nX: y", []));
  einval(() => writeHttpRequest("GET", "/", [["Host", "a\r\n"]]));
});

Deno.test("http11: what the writers write, the reader reads back", () => {
  const request = writeHttpRequest("GET", "/x?y=1", [["Host", "h"], ["X-A", "1"], ["x-a", "2"]]);
  const req = new HttpHeadReader("request").feed(request)!;
  assert.equal(req.head.method, "GET");
  assert.equal(req.head.target, "/x?y=1");
  assert.equal(req.head.headers.get("x-a"), "1, 2");
  assert.equal(req.rest.length, 0);
  const response = writeHttpResponse(404, "Not Found", [["Content-Type", "text/plain"]], "nope");
  const res = new HttpHeadReader("response").feed(response)!;
  assert.equal(res.head.status, 404);
  assert.equal(res.head.reason, "Not Found");
  assert.equal(res.head.headers.get("content-length"), "4");
  assert.equal(text(res.rest), "nope");
});

Deno.test("http11: writeHttpErrorResponse answers with a closing plain-text error", () => {
  const answer = writeHttpErrorResponse(431, "too many header fields", [["X-A", "1"]]);
  const res = new HttpHeadReader("response").feed(answer)!;
  assert.equal(res.head.status, 431);
  assert.equal(res.head.reason, "Request Header Fields Too Large");
  assert.equal(res.head.headers.get("connection"), "close");
  assert.equal(res.head.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(res.head.headers.get("x-a"), "1");
  assert.equal(text(res.rest), "too many header fields\n");
  assert.equal(Number(res.head.headers.get("content-length")), res.rest.length);
  const own = writeHttpErrorResponse(426, "use 13", [["Connection", "Upgrade, close"]]);
  const ownHead = new HttpHeadReader("response").feed(own)!.head;
  assert.equal(ownHead.headers.get("connection"), "Upgrade, close");
});

Deno.test("http11: isHttpToken and httpReasonPhrase", () => {
  assert.equal(isHttpToken("chat.v2"), true);
  assert.equal(isHttpToken("!#$%&'*+-.^_`|~"), true);
  for (const bad of ["", "a b", "a,b", "a/b", "a:b", "caf\u00e9", "a\u0100", "\x00"]) {
    assert.equal(isHttpToken(bad), false, JSON.stringify(bad));
  }
  assert.equal(httpReasonPhrase(101), "Switching Protocols");
  assert.equal(httpReasonPhrase(405), "Method Not Allowed");
  assert.equal(httpReasonPhrase(599), "Error");
});

Deno.test("http11: HttpError carries code, status and a readable message", () => {
  const e = new HttpError("EPROTO", 400, "bad");
  assert.ok(e instanceof DillError);
  assert.equal(e.name, "HttpError");
  assert.equal(e.code, "EPROTO");
  assert.equal(e.status, 400);
  assert.equal(e.message, "EPROTO: bad");
});

Deno.test("http11: lookups in a parsed head agree with its Headers, which are built on first read", () => {
  const text = "GET / HTTP/1.1\r\nHost: a.example\r\nX-Dup: 1\r\nUpgrade: websocket\r\n" +
    "x-dup: 2 \r\nX-DUP:3\r\nEmpty:\r\n\r\n";
  const { head } = new HttpHeadReader("request").feed(new TextEncoder().encode(text))!;
  const fields = headerLookup(head);
  for (const name of ["host", "X-Dup", "UPGRADE", "empty", "missing"]) {
    const viaFields = fields.get(name);
    assert.deepEqual(viaFields, head.headers.get(name), name);
    assert.deepEqual(fields.has(name), head.headers.has(name), name);
  }
  assert.deepEqual(fields.get("x-dup"), "1, 2, 3");
  assert.deepEqual([...head.headers], [
    ["empty", ""],
    ["host", "a.example"],
    ["upgrade", "websocket"],
    ["x-dup", "1, 2, 3"],
  ]);
  // Once built (or replaced), the Headers object is the one looked up in.
  head.headers = new Headers({ host: "b.example" });
  assert.deepEqual(headerLookup(head).get("host"), "b.example");
});

Deno.test("http11: every split of a head into chunks reads the same head", () => {
  const text = "GET /chat?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Obs: v\x80\xff w \r\n" +
    "Empty:  \r\nX-Long: " + "y".repeat(300) + "\r\n\r\nREST";
  const input = bytes(text);
  const whole = new HttpHeadReader("request").feed(input)!;
  const expected = JSON.stringify({ ...whole.head, headers: [...whole.head.headers] });
  assert.deepEqual([...whole.head.headers].find(([n]) => n === "x-obs"), ["x-obs", "v\x80\xff w"]);
  const splits = [...Array(input.length + 1).keys()].map((cut) => [cut]);
  splits.push([...Array(input.length).keys()].slice(1)); // one byte at a time
  for (const cuts of splits) {
    const reader = new HttpHeadReader("request");
    let done = null;
    let rest = "";
    let last = 0;
    for (const cut of [...cuts, input.length]) {
      const chunk = input.subarray(last, cut);
      if (done) rest += String.fromCharCode(...chunk);
      else if ((done = reader.feed(chunk))) rest = String.fromCharCode(...done.rest);
      last = cut;
    }
    assert.ok(done, `cuts ${cuts}`);
    assert.equal(JSON.stringify({ ...done.head, headers: [...done.head.headers] }), expected);
    assert.equal(rest, "REST");
  }
});

Deno.test("http11: deferHeaders keeps the head's text and builds the same Headers later", () => {
  const text =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-A: 1\r\nx-a: \xe9\r\n\r\n";
  const { head } = new HttpHeadReader("response").feed(bytes(text))!;
  const later = deferHeaders(head);
  assert.deepEqual([...later.headers], [...head.headers]);
  assert.equal(later.headers.get("x-a"), "1, \xe9");
  assert.equal(later.headers, later.headers, "built once");
  // A head whose Headers were replaced: those are what is deferred.
  const replaced = new Headers({ a: "b" });
  head.headers = replaced;
  assert.equal(deferHeaders(head).headers, replaced);
  const own = { version: "HTTP/1.1", status: 101, reason: "", headers: new Headers() };
  assert.equal(deferHeaders(own).headers, own.headers);
});
