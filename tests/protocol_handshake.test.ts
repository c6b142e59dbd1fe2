import assert from "node:assert/strict";
import { listHasToken, tokenList } from "../protocol/header_values.ts";
import { DillError } from "../protocol/errors.ts";
import { HttpHeadReader, type HttpRequestHead, type HttpResponseHead } from "../protocol/http11.ts";
import { writeHttpResponse } from "../protocol/http_write.ts";
import {
  type AcceptedUpgrade,
  acceptUpgrade,
  HandshakeError,
  type ServerHandshakeOptions,
} from "../protocol/handshake.ts";
import { checkUpgradeResponse, writeUpgradeRequest } from "../protocol/handshake_client.ts";
import { wsRequestKey, wsResponseKey } from "../protocol/handshake_keys.ts";

const RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function text(b: Uint8Array): string {
  return String.fromCharCode(...b);
}

function readRequest(head: string | Uint8Array): HttpRequestHead {
  const result = new HttpHeadReader("request").feed(
    typeof head === "string" ? bytes(head) : head,
  );
  assert.ok(result, "request head incomplete");
  return result.head;
}

function readResponse(head: string | Uint8Array): { head: HttpResponseHead; rest: Uint8Array } {
  const result = new HttpHeadReader("response").feed(
    typeof head === "string" ? bytes(head) : head,
  );
  assert.ok(result, "response head incomplete");
  return result;
}

/** A valid request, as `[name, value]` lines, that each rule test breaks in one way. */
function baseLines(): [string, string][] {
  return [
    ["Host", "example.com:8080"],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", RFC_KEY],
    ["Sec-WebSocket-Version", "13"],
  ];
}

function request(
  lines: [string, string][] = baseLines(),
  startLine = "GET /chat HTTP/1.1",
): HttpRequestHead {
  return readRequest(`${startLine}\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`);
}

function without(name: string): [string, string][] {
  return baseLines().filter(([n]) => n.toLowerCase() !== name.toLowerCase());
}

function replaced(name: string, value: string): [string, string][] {
  return [...without(name), [name, value]];
}

function refused(
  req: HttpRequestHead,
  status: number,
  code: string,
  options?: ServerHandshakeOptions,
): HandshakeError {
  try {
    acceptUpgrade(req, options);
  } catch (e) {
    assert.ok(e instanceof HandshakeError, `expected HandshakeError, got ${e}`);
    assert.ok(e instanceof DillError);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    checkErrorAnswer(e);
    return e;
  }
  assert.fail(`expected a ${status} refusal`);
}

/** The error answer is a complete, closing, plain-text HTTP response with that status. */
function checkErrorAnswer(e: HandshakeError): void {
  const { head, rest } = readResponse(e.response);
  assert.equal(head.version, "HTTP/1.1");
  assert.equal(head.status, e.status);
  assert.ok(head.reason.length > 0);
  const connection = head.headers.get("connection")!.toLowerCase().split(/\s*,\s*/);
  assert.ok(connection.includes("close"), "error answers close the connection");
  assert.equal(head.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(Number(head.headers.get("content-length")), rest.length);
  assert.ok(rest.length > 1 && rest.length < 200, "short body");
  assert.ok(!head.headers.has("sec-websocket-accept"));
}

function einval(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DillError && !(e instanceof HandshakeError), `got ${e}`);
    assert.equal(e.code, "EINVAL", e.message);
    return true;
  });
}

function eproto(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DillError, `got ${e}`);
    assert.equal(e.code, "EPROTO", e.message);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("handshake: wsResponseKey gives the RFC 6455 section 1.3 answer", () => {
  assert.equal(wsResponseKey(RFC_KEY), RFC_ACCEPT);
});

Deno.test("handshake: wsResponseKey refuses keys that are not base64 of 16 bytes", () => {
  const bad = [
    "",
    "abc",
    "dGhlIHNhbXBsZSBub25j", // 15 bytes, unpadded
    "dGhlIHNhbXBsZSBub25jZQ", // 16 bytes without padding
    "dGhlIHNhbXBsZSBub25jZQ=", // wrong padding
    "dGhlIHNhbXBsZSBub25jZR==", // non-canonical: unused bits set
    "dGhlIHNhbXBsZSBub25jZWVl", // 18 bytes
    "dGhlIHNhbXBsZSBub25jZWU=", // 17 bytes
    "dGhlIHNhbXBsZSBub25j====",
    " dGhlIHNhbXBsZSBub25jZQ==",
    "dGhlIHNhbXBsZSBub25jZQ== ",
    "dGhlIHNhbXBsZSBub25-_Q==", // base64url alphabet
    "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
  ];
  for (const key of bad) eproto(() => wsResponseKey(key), /base64 encoding of 16 bytes/);
});

Deno.test("handshake: wsRequestKey is a fresh base64 16-byte nonce", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const key = wsRequestKey();
    assert.equal(key.length, 24);
    assert.equal(atob(key).length, 16);
    assert.equal(wsResponseKey(key).length, 28);
    seen.add(key);
  }
  assert.equal(seen.size, 100);
});

/** Request heads of real clients: captured from live clients, or as browsers send them. */
const REAL_CLIENTS: { client: string; head: string; resource: string; protocol?: string }[] = [
  {
    client: "Deno WebSocket (captured)",
    head: "GET /deno?x=1 HTTP/1.1\r\nuser-agent: Deno/2.9.6\r\nsec-websocket-version: 13\r\n" +
      "sec-websocket-protocol: chat, superchat\r\nhost: 127.0.0.1:18777\r\n" +
      "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: O9zWjwJew8Yo0Nu/FIIkjg==\r\n" +
      "\r\n",
    resource: "/deno?x=1",
    protocol: "chat",
  },
  {
    client: "Python websockets 10.4 (captured)",
    head: "GET /py HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nOrigin: http://localhost\r\n" +
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: hbSAgscAp2DOA4YV5SpNvA==\r\n" +
      "Sec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
      "User-Agent: Python/3.11 websockets/10.4\r\n\r\n",
    resource: "/py",
  },
  {
    client: "curl 7.88 (captured)",
    head:
      "GET /curl HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" +
      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
      `Sec-WebSocket-Key: ${RFC_KEY}\r\n\r\n`,
    resource: "/curl",
  },
  {
    client: "npm ws 8 (captured)",
    head: "GET /npm HTTP/1.1\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: JIVsA9OcjVE96Bl7drc0Ng==\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
      "Sec-WebSocket-Protocol: graphql-ws\r\nOrigin: https://app.example\r\n" +
      "Host: 127.0.0.1:18777\r\n\r\n",
    resource: "/npm",
    protocol: "graphql-ws",
  },
  {
    client: "Chrome",
    head: "GET /socket HTTP/1.1\r\nHost: localhost:8000\r\nConnection: Upgrade\r\n" +
      "Pragma: no-cache\r\nCache-Control: no-cache\r\n" +
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " +
      "Chrome/120.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\nOrigin: http://localhost:8000\r\n" +
      "Sec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n" +
      "Accept-Language: en-US,en;q=0.9\r\nCookie: session=abc; theme=dark\r\n" +
      "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n" +
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    resource: "/socket",
  },
  {
    client: "Firefox",
    head: "GET /socket HTTP/1.1\r\nHost: localhost:8000\r\n" +
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n" +
      "Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
      "Sec-WebSocket-Version: 13\r\nOrigin: http://localhost:8000\r\n" +
      "Sec-WebSocket-Protocol: superchat, chat\r\n" +
      "Sec-WebSocket-Extensions: permessage-deflate\r\n" +
      "Sec-WebSocket-Key: zrR5XL9L0FmlXhOR7ZbOOA==\r\nDNT: 1\r\n" +
      "Connection: keep-alive, Upgrade\r\nSec-Fetch-Dest: empty\r\n" +
      "Sec-Fetch-Mode: websocket\r\nSec-Fetch-Site: same-origin\r\nPragma: no-cache\r\n" +
      "Cache-Control: no-cache\r\nUpgrade: websocket\r\n\r\n",
    resource: "/socket",
    protocol: "superchat",
  },
  {
    client: "odd casing and spacing",
    head: "GET /?q=a%20b HTTP/1.1\r\nhOsT:localhost\r\nUPGRADE:\tWebSocket \r\n" +
      "CONNECTION: Keep-Alive ,UPGRADE\r\nsec-WEBSOCKET-key:   " + RFC_KEY + "\r\n" +
      "SEC-WEBSOCKET-VERSION:13\r\nsec-websocket-protocol: ,,chat,\r\n" +
      "Sec-WebSocket-Protocol: other\r\n\r\n",
    resource: "/?q=a%20b",
    protocol: "chat",
  },
  {
    client: "HTTP/1.1 peer with a later minor version",
    head: "GET / HTTP/1.2\r\nHost: [::1]:9000\r\nUpgrade: websocket\r\nConnection: upgrade\r\n" +
      `Sec-WebSocket-Key: ${RFC_KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n`,
    resource: "/",
  },
];

Deno.test("handshake: requests of real clients are accepted", () => {
  const protocols = ["chat", "superchat", "graphql-ws"];
  for (const { client, head, resource, protocol } of REAL_CLIENTS) {
    const req = readRequest(head);
    let up: AcceptedUpgrade;
    try {
      up = acceptUpgrade(req, { protocols });
    } catch (e) {
      assert.fail(`${client}: ${e}`);
    }
    assert.equal(up.resource, resource, client);
    assert.equal(up.host, req.headers.get("host"), client);
    assert.equal(up.key, req.headers.get("sec-websocket-key"), client);
    assert.equal(up.protocol, protocol ?? null, client);
    assert.equal(up.request, req);
    const answer = readResponse(up.response);
    assert.equal(answer.rest.length, 0);
    assert.equal(answer.head.status, 101);
    assert.equal(answer.head.reason, "Switching Protocols");
    assert.equal(answer.head.headers.get("upgrade"), "websocket");
    assert.equal(answer.head.headers.get("connection"), "Upgrade");
    assert.equal(answer.head.headers.get("sec-websocket-accept"), wsResponseKey(up.key));
    assert.equal(answer.head.headers.get("sec-websocket-protocol"), protocol ?? null, client);
    assert.equal(answer.head.headers.has("sec-websocket-extensions"), false, client);
    // The answer satisfies the client-side checks.
    const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(/\s*,\s*/)
      .filter((p) => p !== "");
    assert.deepEqual(checkUpgradeResponse(answer.head, up.key, offered), {
      protocol: protocol ?? null,
    });
  }
});

Deno.test("handshake: the 101 answer is exactly what RFC 6455 asks for", () => {
  const up = acceptUpgrade(request());
  assert.equal(
    text(up.response),
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n\r\n`,
  );
  assert.equal(up.resource, "/chat");
  assert.equal(up.host, "example.com:8080");
  assert.equal(up.protocol, null);
});

Deno.test("handshake: method must be GET (405 with Allow: GET)", () => {
  for (const method of ["POST", "HEAD", "get", "OPTIONS", "CONNECT"]) {
    const e = refused(request(baseLines(), `${method} /chat HTTP/1.1`), 405, "EPROTO");
    const { head } = readResponse(e.response);
    assert.equal(head.headers.get("allow"), "GET");
    assert.match(e.message, /use GET/);
  }
});

Deno.test("handshake: version must be HTTP/1.1 or later", () => {
  const e = refused(request(baseLines(), "GET /chat HTTP/1.0"), 400, "EPROTO");
  assert.match(e.message, /HTTP\/1\.1/);
  // Heads not from HttpHeadReader can carry anything. (A spread copies no getter: the
  // headers are named.)
  const req = request();
  const headers = req.headers;
  refused({ ...req, headers, version: "HTTP/2.0" }, 505, "EPROTO");
  refused({ ...req, headers, version: "HTTP/3" }, 400, "EPROTO");
  refused({ ...req, headers, version: "http/1.1" }, 400, "EPROTO");
});

Deno.test("handshake: Host is required, exactly once, well formed", () => {
  refused(request(without("Host")), 400, "EPROTO");
  const twice = refused(request([...baseLines(), ["Host", "evil.example"]]), 400, "EPROTO");
  assert.match(twice.message, /more than one Host/);
  refused(request(replaced("Host", "")), 400, "EPROTO");
  refused(request(replaced("Host", "a b")), 400, "EPROTO");
  refused(request(replaced("Host", "user@example.com")), 400, "EPROTO");
  refused(request(replaced("Host", "example.com/path")), 400, "EPROTO");
  for (
    const host of [
      "localhost",
      "127.0.0.1:80",
      "[::1]",
      "[2001:db8::1]:443",
      "xn--bcher-kva.example",
    ]
  ) {
    assert.equal(acceptUpgrade(request(replaced("Host", host))).host, host);
  }
});

Deno.test("handshake: Upgrade must list websocket", () => {
  refused(request(without("Upgrade")), 400, "EPROTO");
  refused(request(replaced("Upgrade", "h2c")), 400, "EPROTO");
  refused(request(replaced("Upgrade", "websockets")), 400, "EPROTO");
  refused(request(replaced("Upgrade", "")), 400, "EPROTO");
  assert.ok(acceptUpgrade(request(replaced("Upgrade", "h2c, WEBSOCKET"))));
});

Deno.test("handshake: Connection must list upgrade", () => {
  refused(request(without("Connection")), 400, "EPROTO");
  refused(request(replaced("Connection", "keep-alive")), 400, "EPROTO");
  refused(request(replaced("Connection", "upgraded")), 400, "EPROTO");
  refused(request(replaced("Connection", "close")), 400, "EPROTO");
  assert.ok(acceptUpgrade(request(replaced("Connection", "keep-alive, Upgrade"))));
  assert.ok(acceptUpgrade(request([...without("Connection"), ["Connection", "keep-alive"], [
    "Connection",
    "upgrade",
  ]])));
});

Deno.test("handshake: Sec-WebSocket-Version must be 13, else 426 naming 13", () => {
  for (const lines of [replaced("Sec-WebSocket-Version", "8"), without("Sec-WebSocket-Version")]) {
    const e = refused(request(lines), 426, "EPROTO");
    const { head } = readResponse(e.response);
    assert.equal(head.reason, "Upgrade Required");
    assert.equal(head.headers.get("sec-websocket-version"), "13");
    assert.equal(head.headers.get("upgrade"), "websocket");
    assert.equal(head.headers.get("connection"), "Upgrade, close");
  }
  refused(request(replaced("Sec-WebSocket-Version", "13, 8")), 426, "EPROTO");
  refused(request(replaced("Sec-WebSocket-Version", "013")), 426, "EPROTO");
  // Version is checked before the key, so old-draft clients learn what to speak.
  refused(
    request(without("Sec-WebSocket-Key").concat([["Sec-WebSocket-Version", "8"]])),
    426,
    "EPROTO",
  );
});

Deno.test("handshake: Sec-WebSocket-Key must be one base64 16-byte nonce", () => {
  refused(request(without("Sec-WebSocket-Key")), 400, "EPROTO");
  for (const key of ["abc", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25jZWU="]) {
    const e = refused(request(replaced("Sec-WebSocket-Key", key)), 400, "EPROTO");
    assert.match(e.message, /16 bytes/);
  }
  const twice = refused(
    request([...baseLines(), ["Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="]]),
    400,
    "EPROTO",
  );
  assert.match(twice.message, /more than one/);
});

Deno.test("handshake: target is origin-form or absolute-form", () => {
  const at = (target: string) => request(baseLines(), `GET ${target} HTTP/1.1`);
  assert.equal(acceptUpgrade(at("/")).resource, "/");
  assert.equal(acceptUpgrade(at("/a/b?c=d&e")).resource, "/a/b?c=d&e");
  const absolute = acceptUpgrade(at("ws://other.example:81/live?x=1"));
  assert.equal(absolute.resource, "/live?x=1");
  assert.equal(absolute.host, "other.example:81", "absolute-form authority wins over Host");
  assert.equal(acceptUpgrade(at("WSS://h")).resource, "/");
  assert.equal(acceptUpgrade(at("http://h?q")).resource, "/?q");
  assert.equal(acceptUpgrade(at("https://[::1]:8443/p")).host, "[::1]:8443");
  for (const target of ["*", "chat", "example.com:443", "ftp://h/x", "ws:///x", "/a#frag"]) {
    refused(at(target), 400, "EPROTO");
  }
  refused(at("ws://user:pw@h/x"), 400, "EPROTO");
  // Heads built by hand are checked too.
  const req = request();
  refused({ ...req, headers: req.headers, target: "/a b" }, 400, "EPROTO");
  refused({ ...req, headers: req.headers, target: "" }, 400, "EPROTO");
});

Deno.test("handshake: resource longer than maxResourceLength is 414 EMSGSIZE", () => {
  const at = (target: string) => request(baseLines(), `GET ${target} HTTP/1.1`);
  const fits = "/" + "r".repeat(1023);
  assert.equal(acceptUpgrade(at(fits)).resource, fits);
  const e = refused(at(fits + "r"), 414, "EMSGSIZE");
  assert.match(e.message, /1025 bytes long; the limit is 1024/);
  refused(at("ws://h/" + "r".repeat(1024)), 414, "EMSGSIZE");
  refused(at("/abcdef"), 414, "EMSGSIZE", { maxResourceLength: 6 });
  assert.ok(acceptUpgrade(at("/abcde"), { maxResourceLength: 6 }));
});

Deno.test("handshake: host longer than maxHostLength is 400 EMSGSIZE", () => {
  const fits = "h".repeat(256);
  assert.equal(acceptUpgrade(request(replaced("Host", fits))).host, fits);
  const e = refused(request(replaced("Host", fits + "h")), 400, "EMSGSIZE");
  assert.match(e.message, /257 bytes long; the limit is 256/);
  refused(request(replaced("Host", "abc:8080")), 400, "EMSGSIZE", { maxHostLength: 7 });
  const absolute = request(baseLines(), `GET ws://${"a".repeat(300)}/ HTTP/1.1`);
  refused(absolute, 400, "EMSGSIZE");
});

Deno.test("handshake: an upgrade request carries no body", () => {
  refused(request([...baseLines(), ["Content-Length", "5"]]), 400, "EPROTO");
  refused(request([...baseLines(), ["Transfer-Encoding", "chunked"]]), 400, "EPROTO");
  assert.ok(acceptUpgrade(request([...baseLines(), ["Content-Length", "0"]])));
  // A value that reads like a header name is no such header: whether or not the
  // application looked at `headers` first (the lookup without them once matched values).
  for (const readHeadersFirst of [false, true]) {
    const head = request([...baseLines(), ["X-Note", "transfer-encoding"]]);
    if (readHeadersFirst) assert.equal(head.headers.has("transfer-encoding"), false);
    assert.ok(acceptUpgrade(head), `readHeadersFirst ${readHeadersFirst}`);
  }
});

Deno.test("handshake: checkOrigin sees the Origin and can refuse with 403", () => {
  const seen: (string | null)[] = [];
  const checkOrigin = (origin: string | null, req: HttpRequestHead) => {
    seen.push(origin);
    assert.equal(req.target, "/chat");
    return origin === "https://good.example";
  };
  assert.ok(
    acceptUpgrade(request([...baseLines(), ["Origin", "https://good.example"]]), { checkOrigin }),
  );
  const e = refused(
    request([...baseLines(), ["Origin", "https://evil.example"]]),
    403,
    "EPROTO",
    { checkOrigin },
  );
  assert.equal(readResponse(e.response).head.reason, "Forbidden");
  refused(request(), 403, "EPROTO", { checkOrigin });
  assert.deepEqual(seen, ["https://good.example", "https://evil.example", null]);
  // Without a hook every origin is accepted.
  assert.ok(acceptUpgrade(request([...baseLines(), ["Origin", "https://evil.example"]])));
});

Deno.test("handshake: subprotocol is the client's first offer the server supports", () => {
  const offer = (...values: string[]) =>
    request([
      ...baseLines(),
      ...values.map((v): [string, string] => ["Sec-WebSocket-Protocol", v]),
    ]);
  const protocol = (req: HttpRequestHead, protocols?: string[]) => {
    const up = acceptUpgrade(req, { protocols });
    const header = readResponse(up.response).head.headers.get("sec-websocket-protocol");
    assert.equal(header, up.protocol);
    return up.protocol;
  };
  assert.equal(protocol(offer("a, b, c"), ["c", "b"]), "b");
  assert.equal(protocol(offer("a", "b"), ["b"]), "b", "offers across repeated headers");
  assert.equal(protocol(offer("a, b"), ["x"]), null);
  assert.equal(protocol(offer("a, b")), null, "a server without protocols chooses none");
  assert.equal(protocol(request(), ["a"]), null, "nothing offered, nothing chosen");
  assert.equal(protocol(offer("Chat"), ["chat"]), null, "names are case-sensitive");
  assert.equal(protocol(offer(""), ["chat"]), null);
  refused(offer("a b"), 400, "EPROTO", { protocols: ["a"] });
  refused(offer("a, b/c"), 400, "EPROTO");
});

Deno.test("handshake: extension offers are ignored, never answered", () => {
  const up = acceptUpgrade(
    request([...baseLines(), [
      "Sec-WebSocket-Extensions",
      "permessage-deflate; client_max_window_bits",
    ], ["Sec-WebSocket-Extensions", "x-webkit-deflate-frame"]]),
  );
  assert.equal(readResponse(up.response).head.headers.has("sec-websocket-extensions"), false);
});

Deno.test("handshake: responseHeaders are added to the 101 but cannot override it", () => {
  const up = acceptUpgrade(request(), { responseHeaders: [["Set-Cookie", "id=1"], ["X-A", "b"]] });
  const { headers } = readResponse(up.response).head;
  assert.equal(headers.get("set-cookie"), "id=1");
  assert.equal(headers.get("x-a"), "b");
  for (
    const name of [
      "Upgrade",
      "connection",
      "Sec-WebSocket-Accept",
      "SEC-WEBSOCKET-PROTOCOL",
      "Sec-WebSocket-Extensions",
      "Content-Length",
      "Transfer-Encoding",
    ]
  ) {
    einval(() => acceptUpgrade(request(), { responseHeaders: [[name, "x"]] }));
  }
  einval(() => acceptUpgrade(request(), { responseHeaders: [["X-A", "a\r\nX-Evil: 1"]] }));
  einval(() => acceptUpgrade(request(), { responseHeaders: [["Bad Name", "x"]] }));
});

Deno.test("handshake: invalid server options are EINVAL, even for a bad request", () => {
  const bad = request(baseLines(), "POST / HTTP/1.1");
  einval(() => acceptUpgrade(bad, { protocols: ["a b"] }));
  einval(() => acceptUpgrade(request(), { protocols: [""] }));
  einval(() => acceptUpgrade(request(), { maxResourceLength: 0 }));
  einval(() => acceptUpgrade(request(), { maxHostLength: -1 }));
  einval(() => acceptUpgrade(request(), { maxHostLength: 2.5 }));
});

Deno.test("handshake: HandshakeError response bodies say what was wrong", () => {
  const e = refused(request(without("Sec-WebSocket-Key")), 400, "EPROTO");
  assert.equal(e.name, "HandshakeError");
  assert.equal(e.message, "EPROTO: missing Sec-WebSocket-Key");
  assert.equal(text(readResponse(e.response).rest), "missing Sec-WebSocket-Key\n");
  // Peer-supplied text is quoted and cut short.
  const long = refused(request(baseLines(), `${"X".repeat(500)} / HTTP/1.1`), 405, "EPROTO");
  assert.ok(long.response.length < 400);
});

Deno.test("handshake: writeUpgradeRequest writes the RFC 6455 request", () => {
  const req = writeUpgradeRequest("/chat?x=1", "example.com:8080", RFC_KEY);
  assert.equal(
    text(req),
    "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const full = writeUpgradeRequest("/", "h", RFC_KEY, {
    protocols: ["chat", "superchat"],
    origin: "https://h",
    headers: [["Authorization", "Bearer t"], ["User-Agent", "dill-ws"]],
  });
  assert.equal(
    text(full),
    "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      "Sec-WebSocket-Protocol: chat, superchat\r\nOrigin: https://h\r\n" +
      "Authorization: Bearer t\r\nUser-Agent: dill-ws\r\n\r\n",
  );
  // An Origin may come through headers when the option is not used.
  const viaHeaders = writeUpgradeRequest("/", "h", RFC_KEY, { headers: [["Origin", "https://h"]] });
  assert.equal(readRequest(viaHeaders).headers.get("origin"), "https://h");
});

Deno.test("handshake: writeUpgradeRequest refuses what would break the handshake", () => {
  einval(() => writeUpgradeRequest("chat", "h", RFC_KEY));
  einval(() => writeUpgradeRequest("", "h", RFC_KEY));
  einval(() => writeUpgradeRequest("/a b", "h", RFC_KEY));
  einval(() => writeUpgradeRequest("/a#b", "h", RFC_KEY));
  einval(() => writeUpgradeRequest("/\r\nX: y", "h", RFC_KEY));
  einval(() => writeUpgradeRequest("/", "", RFC_KEY));
  einval(() => writeUpgradeRequest("/", "h\r\nX: y", RFC_KEY));
  einval(() => writeUpgradeRequest("/", "a,b", RFC_KEY));
  einval(() => writeUpgradeRequest("/", "h", "short"));
  einval(() => writeUpgradeRequest("/", "h", RFC_KEY, { protocols: ["a b"] }));
  einval(() => writeUpgradeRequest("/", "h", RFC_KEY, { protocols: ["a", "a"] }));
  einval(() => writeUpgradeRequest("/", "h", RFC_KEY, { origin: "x\r\ny" }));
  einval(() => writeUpgradeRequest("/", "h", RFC_KEY, { headers: [["X-A", "1\r\nX-B: 2"]] }));
  einval(() => writeUpgradeRequest("/", "h", RFC_KEY, { headers: [["Bad Name", "1"]] }));
  for (
    const name of [
      "Host",
      "upgrade",
      "CONNECTION",
      "Sec-WebSocket-Key",
      "Sec-WebSocket-Version",
      "Sec-WebSocket-Protocol",
      "Sec-WebSocket-Extensions",
      "Sec-WebSocket-Accept",
      "Content-Length",
      "Transfer-Encoding",
    ]
  ) {
    einval(() => writeUpgradeRequest("/", "h", RFC_KEY, { headers: [[name, "x"]] }));
  }
  einval(() =>
    writeUpgradeRequest("/", "h", RFC_KEY, { origin: "https://a", headers: [["origin", "b"]] })
  );
});

/** 101 answers captured from real servers for a request with key RFC_KEY offering "chat". */
const REAL_SERVERS: Record<string, string> = {
  "Deno.upgradeWebSocket": "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n" +
    `connection: Upgrade\r\nsec-websocket-accept: ${RFC_ACCEPT}\r\n` +
    "sec-websocket-protocol: chat\r\ndate: Tue, 24 Nov 2026 20:39:01 GMT\r\n\r\n",
  "Python websockets 10.4": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
    `Connection: Upgrade\r\nSec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
    "Sec-WebSocket-Protocol: chat\r\nDate: Tue, 24 Nov 2026 20:39:13 GMT\r\n" +
    "Server: Python/3.11 websockets/10.4\r\n\r\n",
  "npm ws 8": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
};

Deno.test("handshake: 101 answers of real servers are accepted", () => {
  for (const [server, answer] of Object.entries(REAL_SERVERS)) {
    const { head } = readResponse(answer);
    assert.deepEqual(
      checkUpgradeResponse(head, RFC_KEY, ["chat", "x"]),
      { protocol: "chat" },
      server,
    );
  }
});

/** A valid 101 head that each client rule test breaks in one way. */
function answer(change: (h: Headers) => void = () => {}, status = 101): HttpResponseHead {
  const headers = new Headers([
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", RFC_ACCEPT],
  ]);
  change(headers);
  return { version: "HTTP/1.1", status, reason: "Switching Protocols", headers };
}

Deno.test("handshake: checkUpgradeResponse enforces every client rule", () => {
  assert.deepEqual(checkUpgradeResponse(answer(), RFC_KEY, []), { protocol: null });
  assert.deepEqual(checkUpgradeResponse(answer(), RFC_KEY, ["chat"]), { protocol: null });
  assert.deepEqual(
    checkUpgradeResponse(answer((h) => h.set("Upgrade", "WebSocket")), RFC_KEY, []),
    { protocol: null },
  );
  assert.deepEqual(
    checkUpgradeResponse(answer((h) => h.set("Connection", "keep-alive, upgrade")), RFC_KEY, []),
    { protocol: null },
  );
  const forbidden = readResponse(
    "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  ).head;
  eproto(() => checkUpgradeResponse(forbidden, RFC_KEY, []), /status 403 "Forbidden"/);
  eproto(() => checkUpgradeResponse(answer(() => {}, 200), RFC_KEY, []), /status 200/);
  eproto(
    () => checkUpgradeResponse({ ...answer(), version: "HTTP/1.0" }, RFC_KEY, []),
    /HTTP\/1\.0/,
  );
  eproto(
    () => checkUpgradeResponse(answer((h) => h.delete("Upgrade")), RFC_KEY, []),
    /Upgrade: websocket/,
  );
  eproto(
    () => checkUpgradeResponse(answer((h) => h.set("Upgrade", "h2c")), RFC_KEY, []),
    /Upgrade: websocket/,
  );
  eproto(
    () => checkUpgradeResponse(answer((h) => h.delete("Connection")), RFC_KEY, []),
    /Connection: Upgrade/,
  );
  eproto(
    () => checkUpgradeResponse(answer((h) => h.set("Connection", "close")), RFC_KEY, []),
    /Connection: Upgrade/,
  );
  eproto(
    () => checkUpgradeResponse(answer((h) => h.delete("Sec-WebSocket-Accept")), RFC_KEY, []),
    /no Sec-WebSocket-Accept/,
  );
  eproto(
    () => checkUpgradeResponse(answer(), "x3JJHMbDL1EzLkh9GBhXDw==", []),
    /does not match/,
  );
  eproto(
    () =>
      checkUpgradeResponse(
        answer((h) => h.append("Sec-WebSocket-Accept", RFC_ACCEPT)),
        RFC_KEY,
        [],
      ),
    /does not match/,
  );
  eproto(
    () =>
      checkUpgradeResponse(
        answer((h) => h.set("Sec-WebSocket-Extensions", "permessage-deflate")),
        RFC_KEY,
        [],
      ),
    /extension/,
  );
  eproto(
    () => checkUpgradeResponse(answer((h) => h.set("Sec-WebSocket-Protocol", "chat")), RFC_KEY, []),
    /none was offered/,
  );
  eproto(
    () =>
      checkUpgradeResponse(answer((h) => h.set("Sec-WebSocket-Protocol", "x")), RFC_KEY, [
        "chat",
      ]),
    /not offered/,
  );
  eproto(
    () =>
      checkUpgradeResponse(
        answer((h) => h.set("Sec-WebSocket-Protocol", "chat, x")),
        RFC_KEY,
        ["chat", "x"],
      ),
    /more than one subprotocol/,
  );
  assert.deepEqual(
    checkUpgradeResponse(answer((h) => h.set("Sec-WebSocket-Protocol", "x")), RFC_KEY, [
      "chat",
      "x",
    ]),
    { protocol: "x" },
  );
  einval(() => checkUpgradeResponse(answer(), "bad key", []));
});

Deno.test("handshake: client and server complete the handshake through the readers", () => {
  const key = wsRequestKey();
  const frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"; // a masked "Hello"
  const requestBytes = writeUpgradeRequest("/room/1?token=abc", "chat.example", key, {
    protocols: ["v2.chat", "v1.chat"],
    origin: "https://chat.example",
  });
  // The server reads the request byte by byte; the client's first frame follows it.
  const serverIn = new Uint8Array([...requestBytes, ...bytes(frame)]);
  const serverReader = new HttpHeadReader("request");
  let got: { head: HttpRequestHead; rest: Uint8Array } | null = null;
  let i = 0;
  while (got === null) got = serverReader.feed(serverIn.subarray(i, ++i));
  const rest = new Uint8Array([...got.rest, ...serverIn.subarray(i)]);
  assert.equal(text(rest), frame);
  const up = acceptUpgrade(got.head, {
    protocols: ["v1.chat", "v2.chat"],
    checkOrigin: (origin) => origin === "https://chat.example",
  });
  assert.equal(up.resource, "/room/1?token=abc");
  assert.equal(up.host, "chat.example");
  assert.equal(up.protocol, "v2.chat");
  // The client reads the answer in one chunk together with the server's first frame.
  const clientIn = new Uint8Array([...up.response, 0x82, 0x01, 0x2a]);
  const answerRead = new HttpHeadReader("response").feed(clientIn)!;
  assert.deepEqual([...answerRead.rest], [0x82, 0x01, 0x2a]);
  assert.deepEqual(checkUpgradeResponse(answerRead.head, key, ["v2.chat", "v1.chat"]), {
    protocol: "v2.chat",
  });
  // A different key does not match.
  eproto(() => checkUpgradeResponse(answerRead.head, wsRequestKey(), ["v2.chat"]), /match/);
});

Deno.test("header values: listHasToken agrees with tokenList lowercased and searched", () => {
  const values = [
    null,
    "",
    ",",
    "websocket",
    "WebSocket",
    " \twebsocket\t ",
    "keep-alive, Upgrade",
    "keep-alive,upgrade,",
    ",,UPGRADE,,",
    "web socket",
    "websocket2",
    "websocket\xa0", // obs-text is not whitespace
    "\xa0websocket",
    "upgrade;q=1",
    "x, web, socket",
  ];
  for (const value of values) {
    for (const token of ["websocket", "upgrade"]) {
      const expected = tokenList(value).map((t) => t.toLowerCase()).includes(token);
      assert.equal(listHasToken(value, token), expected, `${JSON.stringify(value)} ${token}`);
    }
  }
  assert.equal(listHasToken("keep-alive, Upgrade", "upgrade"), true);
  assert.equal(listHasToken("websocket\xa0", "websocket"), false);
});

Deno.test("handshake: the plain 101 answer is byte for byte what writeHttpResponse writes", () => {
  for (let i = 0; i < 20; i++) {
    const key = wsRequestKey();
    const headers = new Headers({
      host: "h",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": key,
      "sec-websocket-version": "13",
    });
    const up = acceptUpgrade({ method: "GET", target: "/", version: "HTTP/1.1", headers });
    const expected = writeHttpResponse(101, "Switching Protocols", [
      ["Upgrade", "websocket"],
      ["Connection", "Upgrade"],
      ["Sec-WebSocket-Accept", wsResponseKey(key)],
    ]);
    assert.deepEqual(up.response, expected);
  }
});
