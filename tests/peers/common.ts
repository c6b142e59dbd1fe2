/**
 * Shared pieces of the interop tests: the messages exchanged with every real peer
 * (described as small specs so the Python peers build the very same bytes), byte-exact
 * checks, bounded waits, our side of an echo exchange, and a hand-made HTTP upgrade
 * for the `WS_NOHTTP` tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  WS_BINARY,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  type WsClientAttached,
  type WsClientOptions,
  type WsMessage,
  wsRecv,
  wsRequestKey,
  wsResponseKey,
  wsSend,
  type WsServerAttached,
  type WsServerOptions,
} from "../../mod.ts";
import {
  closeQuietly as closeHandleQuietly,
  delay,
  rejectsWith,
  within as withinMs,
} from "../helpers/transports.ts";

export { delay, rejectsWith };

/** Milliseconds any single step may take before the test fails instead of hanging. */
export const STEP_MS = 10_000;

/** A deadline `ms` from now (never -1 in tests). */
export function soon(ms: number = STEP_MS): number {
  return now() + ms;
}

/** Rejects if `promise` does not settle within `ms` (one step by default). */
export function within<T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> {
  return withinMs(promise, ms, what);
}

/** Closes `h` unless it is closed already (or was never opened). */
export function closeQuietly(h: Handle | undefined): void {
  if (h) closeHandleQuietly(h);
}

export const MIB = 1024 * 1024;

/**
 * A message described so both TypeScript and the Python peers can build it: text
 * (`text` repeated `repeat` times) or binary (`size` bytes of {@link pattern} from
 * `seed`). `split` lists the byte lengths of the leading fragments when the peer sends
 * it fragmented; the rest of the bytes form the last fragment.
 */
export type Spec =
  | { kind: "text"; text: string; repeat?: number; split?: number[] }
  | { kind: "binary"; size: number; seed: number; split?: number[] };

/** `size` bytes where byte `i` is `(i + seed) % 251`: no power-of-two period hides a shift. */
export function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i + seed) % 251;
  return out;
}

/** The whole message a spec describes. */
export function build(spec: Spec): WsMessage {
  return spec.kind === "text"
    ? { type: WS_TEXT, data: spec.text.repeat(spec.repeat ?? 1) }
    : { type: WS_BINARY, data: pattern(spec.size, spec.seed) };
}

/** The fragments of a spec's message as bytes (for peers that can send raw fragments). */
export function fragmentsOf(spec: Spec): Uint8Array[] {
  const m = build(spec);
  const bytes = typeof m.data === "string" ? new TextEncoder().encode(m.data) : m.data;
  const parts: Uint8Array[] = [];
  let pos = 0;
  for (const n of spec.split ?? []) {
    parts.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  parts.push(bytes.subarray(pos));
  return parts;
}

/** A short name for a spec in assertion messages. */
export function describe(spec: Spec): string {
  const m = build(spec);
  const size = typeof m.data === "string" ? new TextEncoder().encode(m.data).length : m.data.length;
  const frags = spec.split ? ` in ${spec.split.length + 1} fragments` : "";
  return `${spec.kind} message of ${size} bytes${frags}`;
}

/**
 * What every peer echoes: multibyte UTF-8 text, binary, empty messages of both types,
 * the 7-bit/16-bit/64-bit length boundaries (125, 126, 65535, 65536) and 4 MiB.
 */
export const ECHO_SPECS: Spec[] = [
  { kind: "text", text: "héllo wörld ✓ 🦕 ĳ" },
  { kind: "text", text: "" },
  { kind: "binary", size: 0, seed: 0 },
  { kind: "binary", size: 256, seed: 0 },
  { kind: "binary", size: 125, seed: 1 },
  { kind: "binary", size: 126, seed: 2 },
  { kind: "binary", size: 65535, seed: 3 },
  { kind: "binary", size: 65536, seed: 4 },
  { kind: "text", text: "é", repeat: 63 }, // 126 bytes: the first 16-bit length
  { kind: "text", text: "aé✓🦕", repeat: 7000 }, // 70 000 bytes: a 64-bit length
  { kind: "binary", size: 4 * MIB, seed: 5 },
];

/**
 * Fragmented messages a peer sends, split on code point boundaries (Python can only
 * send text fragments as whole strings): an empty fragment in the middle, fragments at
 * the length boundaries, and 4 MiB in 1 MiB fragments.
 */
export const FRAGMENT_SPECS: Spec[] = [
  { kind: "text", text: "frägmentéd ✓ 🦕", split: [5, 0, 7] },
  { kind: "binary", size: 70_000, seed: 6, split: [1, 0, 125, 126, 65535] },
  { kind: "binary", size: 4 * MIB, seed: 7, split: [MIB, MIB, MIB] },
];

/** Ping payloads the peers send: empty, short text, and the 125-byte maximum. */
export const PING_PAYLOADS: Uint8Array[] = [
  new Uint8Array(0),
  new TextEncoder().encode("are you there?"),
  pattern(125, 9),
];

/** Asserts two byte arrays are equal, naming the first difference (no 4 MiB diffs). */
export function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      assert.fail(`${what}: byte ${i} is ${got[i]}, expected ${want[i]}`);
    }
  }
}

/** Asserts a received message has the expected type and exact content. */
export function assertMessage(got: WsMessage, want: WsMessage, what: string): void {
  assert.equal(got.type, want.type, `${what}: type`);
  if (typeof want.data === "string") {
    assert.equal(typeof got.data, "string", `${what}: text payload`);
    const same = got.data === want.data;
    assert.ok(
      same,
      `${what}: text differs (${String(got.data).length} vs ${want.data.length} chars)`,
    );
  } else {
    assert.ok(got.data instanceof Uint8Array, `${what}: binary payload`);
    assertBytes(got.data, want.data, what);
  }
}

/**
 * Runs both sides of an exchange. When one fails, `abort` runs at once (closing
 * sockets so the other side stops waiting); both are awaited; the first error to happen
 * is thrown (not the other side's error from the abort).
 */
export async function together(tasks: Promise<unknown>[], abort: () => void): Promise<void> {
  let first: { error: unknown } | undefined;
  const guarded = tasks.map((t) =>
    t.catch((error) => {
      if (!first) {
        first = { error };
        abort();
      }
    })
  );
  await Promise.all(guarded);
  if (first) throw first.error;
}

/** A queue of values pushed by event handlers and taken with a bounded wait. */
export class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: { resolve: (v: T) => void; reject: (e: Error) => void }[] = [];
  #end: Error | null = null;

  /** Adds a value (hands it to the oldest waiter, if any). */
  push(value: T): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(value);
    else this.#items.push(value);
  }

  /** No more values will come: waiters (and later calls) fail with `error` once it is empty. */
  end(error: Error): void {
    this.#end ??= error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  /** The next value, waiting at most `ms`. */
  next(what: string, ms = STEP_MS): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    if (this.#end) return Promise.reject(new Error(`${what}: ${this.#end.message}`));
    const waiting = new Promise<T>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    return within(waiting, what, ms);
  }

  /** How many values are waiting to be taken. */
  get size(): number {
    return this.#items.length;
  }
}

// ---- our side --------------------------------------------------------------------

/** Our TCP listener on 127.0.0.1 with a free port. */
export function listenLocal(): { listener: Handle; port: number } {
  const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
  return { listener, port: tcpLocalAddr(listener).port };
}

/** Accepts one connection and attaches our WebSocket server to it. */
export async function acceptWs(
  listener: Handle,
  flags: number,
  options?: WsServerOptions,
): Promise<WsServerAttached> {
  const { handle } = await tcpAccept(listener, soon());
  return await wsAttachServer(handle, flags, soon(), options);
}

/** Connects to 127.0.0.1:`port` and attaches our WebSocket client for `resource`. */
export async function connectWs(
  port: number,
  flags: number,
  resource: string,
  options?: WsClientOptions,
): Promise<WsClientAttached> {
  const tcp = await tcpConnect({ hostname: "127.0.0.1", port }, soon());
  return await wsAttachClient(tcp, flags, resource, `127.0.0.1:${port}`, soon(), options);
}

/** Our server side of an echo: receives each expected message, checks it, sends it back. */
export async function echoBack(h: Handle, specs: Spec[]): Promise<void> {
  for (const spec of specs) {
    const want = build(spec);
    const got = await wsRecv(h, soon());
    assertMessage(got, want, `we received a ${describe(spec)}`);
    await wsSend(h, got.type, got.data, soon());
  }
}

/** Our client side of an echo: sends all messages, then checks every echo in order. */
export async function sendAndCheckEchoes(h: Handle, specs: Spec[]): Promise<void> {
  for (const spec of specs) {
    const m = build(spec);
    await wsSend(h, m.type, m.data, soon());
  }
  for (const spec of specs) {
    assertMessage(await wsRecv(h, soon()), build(spec), `echo of our ${describe(spec)}`);
  }
}

// ---- a hand-made HTTP upgrade, for WS_NOHTTP ---------------------------------------

const CRLFCRLF = [13, 10, 13, 10];

/** Reads an HTTP head one byte at a time (so nothing after it is consumed). */
export async function readHead(s: Handle): Promise<string> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  const deadline = soon();
  while (!CRLFCRLF.every((b, i) => bytes[bytes.length - 4 + i] === b)) {
    assert.ok(bytes.length < 16 * 1024, "HTTP head longer than 16 KiB");
    await brecv(s, one, deadline);
    bytes.push(one[0]);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Splits an HTTP head into its start line and headers. */
export function parseHead(head: string): { startLine: string; headers: Headers } {
  const lines = head.split("\r\n").filter((l) => l.length > 0);
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { startLine: lines[0], headers };
}

/**
 * Our client's upgrade done by hand on a raw TCP handle: writes the request with
 * `bsend`, reads the answer byte by byte and checks the accept key with `wsResponseKey`.
 * Returns the response head; the caller then attaches with `WS_NOHTTP`.
 */
export async function handmadeClientUpgrade(
  tcp: Handle,
  port: number,
  resource: string,
): Promise<{ startLine: string; headers: Headers }> {
  const key = wsRequestKey();
  const request = `GET ${resource} HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${port}\r\n` +
    "Upgrade: websocket\r\n" +
    "Connection: Upgrade\r\n" +
    `Sec-WebSocket-Key: ${key}\r\n` +
    "Sec-WebSocket-Version: 13\r\n\r\n";
  await bsend(tcp, new TextEncoder().encode(request), soon());
  const response = parseHead(await readHead(tcp));
  assert.match(response.startLine, /^HTTP\/1\.1 101 /);
  assert.equal(response.headers.get("upgrade")?.toLowerCase(), "websocket");
  assert.equal(response.headers.get("sec-websocket-accept"), wsResponseKey(key));
  return response;
}

/**
 * Our server's upgrade done by hand on a raw TCP handle: reads the request byte by byte,
 * answers `101` with `wsResponseKey` of its key. Returns the request head; the caller
 * then attaches with `WS_NOHTTP`.
 */
export async function handmadeServerUpgrade(
  tcp: Handle,
): Promise<{ startLine: string; headers: Headers }> {
  const request = parseHead(await readHead(tcp));
  assert.match(request.startLine, /^GET \S+ HTTP\/1\.1$/);
  const key = request.headers.get("sec-websocket-key");
  assert.ok(key, "the peer sent no Sec-WebSocket-Key");
  const response = "HTTP/1.1 101 Switching Protocols\r\n" +
    "Upgrade: websocket\r\n" +
    "Connection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${wsResponseKey(key)}\r\n\r\n`;
  await bsend(tcp, new TextEncoder().encode(response), soon());
  return request;
}
