/**
 * A raw WebSocket peer for hostile tests: it speaks bytes, not WebSocket. It builds
 * frames by hand (masked or not, any RSV bits, any opcode, any length encoding, an
 * announced length different from the payload), sends raw HTTP, reads raw bytes with
 * deadlines and parses what our side sends back (frames, close frames, HTTP heads).
 *
 * It runs over a raw `Deno.Conn` (TCP, bypassing our stack entirely) or over one of
 * our bytestream handles (an `ipcPair()` end, with `bsend`/`brecv`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  brecv,
  bsend,
  DillError,
  type ErrorCode,
  type Handle,
  hclose,
  ipcClose,
  ipcPair,
  isDillError,
  mrecv,
  msend,
  now,
  type PairOptions,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  WS_NOHTTP,
  wsAttachClient,
  wsAttachServer,
  type WsClientOptions,
  type WsOptions,
  type WsServerOptions,
  wsStatus,
} from "../../mod.ts";

/** Opcodes, spelled out so that tests read like RFC 6455. */
export const OP = {
  CONT: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** Why a raw read or write did not complete. */
export type WireFailure = "eof" | "reset" | "timeout";

/** A raw read or write that did not complete: EOF, a broken connection or a deadline. */
export class WireError extends Error {
  /**
   * @param kind what happened
   * @param message details
   */
  constructor(readonly kind: WireFailure, message: string) {
    super(`${kind}: ${message}`);
    this.name = "WireError";
  }
}

/** A bidirectional byte pipe under the raw peer. Deadlines are `now()`-based ms; -1 = none. */
export interface Wire {
  /** Reads exactly `n` bytes; throws {@link WireError} on EOF, reset or deadline. */
  readExact(n: number, deadline: number): Promise<Uint8Array>;
  /**
   * Writes all of `bytes`. Resolves `true` when written, `false` if the deadline passed
   * first (the write may stay in flight until {@link Wire.close}).
   */
  write(bytes: Uint8Array, deadline: number): Promise<boolean>;
  /** Half-closes: no more bytes from us (FIN). */
  closeWrite(): Promise<void>;
  /** Closes everything and waits for every pending operation to end. Idempotent. */
  close(): Promise<void>;
}

/** A {@link Wire} over a raw `Deno.Conn`: one background read loop fills a queue. */
export class ConnWire implements Wire {
  readonly #conn: Deno.Conn;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended: WireError | null = null;
  #wake: (() => void) | null = null;
  readonly #pump: Promise<void>;
  readonly #writes = new Set<Promise<unknown>>();
  #closed = false;

  /** @param conn the connection; the wire owns it */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#pump = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const buf = new Uint8Array(64 * 1024);
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.#ended = new WireError("eof", "the peer closed its side");
          break;
        }
        this.#chunks.push(buf.subarray(0, n));
        this.#queued += n;
        this.#signal();
      }
    } catch (e) {
      this.#ended = this.#closed
        ? new WireError("eof", "closed locally")
        : new WireError("reset", e instanceof Error ? e.message : String(e));
    }
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Bytes received and not read yet. */
  get queued(): number {
    return this.#queued;
  }

  async readExact(n: number, deadline: number): Promise<Uint8Array> {
    while (this.#queued < n) {
      if (this.#ended) {
        throw new WireError(
          this.#ended.kind,
          `${this.#ended.message} (wanted ${n} bytes, have ${this.#queued})`,
        );
      }
      await this.#waitForData(deadline, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.#chunks[0];
      const take = Math.min(head.length, n - at);
      out.set(head.subarray(0, take), at);
      at += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#queued -= n;
    return out;
  }

  #waitForData(deadline: number, n: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
      if (deadline >= 0) {
        timer = setTimeout(() => {
          this.#wake = null;
          reject(
            new WireError("timeout", `no ${n} bytes before the deadline (have ${this.#queued})`),
          );
        }, Math.max(0, deadline - now()));
      }
    });
  }

  async write(bytes: Uint8Array, deadline: number): Promise<boolean> {
    const writing = (async () => {
      let at = 0;
      while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
    })();
    const tracked = writing.catch((e) => e);
    this.#writes.add(tracked);
    tracked.then(() => this.#writes.delete(tracked));
    if (deadline < 0) {
      await writing.catch(mapWriteError);
      return true;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, deadline - now()));
    });
    const done = writing.then(() => true as const, mapWriteError);
    done.catch(() => {}); // a failure after the deadline is nobody's business
    try {
      return await Promise.race([done, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // already closed
      }
    }
    await this.#pump;
    await Promise.all(this.#writes);
  }
}

function mapWriteError(e: unknown): never {
  throw new WireError("reset", e instanceof Error ? e.message : String(e));
}

/**
 * A {@link Wire} over one of our bytestream handles (such as an `ipcPair()` end). After
 * {@link HandleWire.closeWrite} the handle is shutting down (`ipcClose`): bytes still
 * arriving are dropped and a read only tells whether the other side ended too.
 */
export class HandleWire implements Wire {
  #closed = false;
  #shutdown: Promise<void> | null = null;

  /** @param handle the bytestream handle; the wire owns it */
  constructor(readonly handle: Handle) {}

  async readExact(n: number, deadline: number): Promise<Uint8Array> {
    if (this.#shutdown) {
      try {
        await within(this.#shutdown, deadline);
      } catch (e) {
        throw toWireError(e);
      }
      throw new WireError("eof", "the other side ended after our half-close");
    }
    try {
      return await brecv(this.handle, new Uint8Array(n), deadline);
    } catch (e) {
      throw toWireError(e);
    }
  }

  async write(data: Uint8Array, deadline: number): Promise<boolean> {
    try {
      await bsend(this.handle, data, deadline);
      return true;
    } catch (e) {
      if (isDillError(e, "ETIMEDOUT")) return false;
      throw toWireError(e);
    }
  }

  closeWrite(): Promise<void> {
    if (!this.#shutdown && !this.#closed) {
      this.#closed = true;
      const shutdown = ipcClose(this.handle, now() + 5000);
      shutdown.catch(() => {});
      this.#shutdown = shutdown;
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        hclose(this.handle);
      } catch (e) {
        if (!isDillError(e, "EBADF")) throw e;
      }
    }
    await this.#shutdown?.catch(() => {});
  }
}

/** Waits for `p`, failing with `ETIMEDOUT` at `deadline` (-1: never). */
async function within<T>(p: Promise<T>, deadline: number): Promise<T> {
  if (deadline < 0) return await p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DillError("ETIMEDOUT", "deadline passed")),
      Math.max(0, deadline - now()),
    );
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function toWireError(e: unknown): unknown {
  if (isDillError(e, "EPIPE")) return new WireError("eof", e.message);
  if (isDillError(e, "ETIMEDOUT")) return new WireError("timeout", e.message);
  if (isDillError(e, "ECONNRESET")) return new WireError("reset", e.message);
  return e;
}

// ---- frame building ------------------------------------------------------------------

/** How to build one frame. Every field can be wrong on purpose. */
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

const encoder = new TextEncoder();

/** Bytes of `s` in UTF-8, or `s` itself. */
export function bytes(s: Uint8Array | string): Uint8Array {
  return typeof s === "string" ? encoder.encode(s) : s;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Builds one frame exactly as specified. */
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

/** The body of a close frame: a big-endian code, then the reason's bytes. */
export function closeBody(code: number, reason: Uint8Array | string = ""): Uint8Array {
  return concat(new Uint8Array([code >> 8, code & 0xff]), bytes(reason));
}

/** One frame our side sent, unmasked. */
export interface ParsedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/** A close frame our side sent: `code` is 1005 for an empty body. */
export interface ParsedClose {
  code: number;
  reason: string;
  /** The raw body. */
  body: Uint8Array;
}

/** An HTTP response head our side sent, plus the body announced by Content-Length. */
export interface ParsedResponse {
  version: string;
  status: number;
  reason: string;
  headers: Headers;
  body: string;
  /** The head as text, for messages. */
  raw: string;
}

/** An HTTP request head our side sent. */
export interface ParsedRequest {
  method: string;
  target: string;
  version: string;
  headers: Headers;
  raw: string;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The `Sec-WebSocket-Accept` for `key`, computed independently of our code. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** The RFC 6455 sample key (section 1.3). */
export const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** A raw upgrade request; `lines` replace or extend the default header lines. */
export function upgradeRequest(
  options: {
    method?: string;
    target?: string;
    version?: string;
    /** Header lines; `null` drops the default line of that name. */
    headers?: Record<string, string | null>;
    /** Extra raw lines appended as they are (e.g. repeated headers). */
    extra?: string[];
  } = {},
): Uint8Array {
  const defaults: Record<string, string> = {
    "Host": "example.com",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": SAMPLE_KEY,
    "Sec-WebSocket-Version": "13",
  };
  const lines: string[] = [];
  const given = options.headers ?? {};
  const givenLower = new Map(Object.keys(given).map((k) => [k.toLowerCase(), k]));
  for (const [name, value] of Object.entries(defaults)) {
    const override = givenLower.get(name.toLowerCase());
    if (override === undefined) lines.push(`${name}: ${value}`);
  }
  for (const [name, value] of Object.entries(given)) {
    if (value !== null) lines.push(`${name}: ${value}`);
  }
  lines.push(...(options.extra ?? []));
  const start = `${options.method ?? "GET"} ${options.target ?? "/chat"} ${
    options.version ?? "HTTP/1.1"
  }`;
  return bytes(`${start}\r\n${lines.map((l) => l + "\r\n").join("")}\r\n`);
}

const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A raw peer. `role` says which end it plays: a `"client"` masks its frames by default
 * and expects unmasked frames from us; a `"server"` the reverse.
 */
export class RawPeer {
  /**
   * @param wire the bytes underneath
   * @param role which end this peer plays
   */
  constructor(readonly wire: Wire, readonly role: "client" | "server") {}

  /** Sends raw bytes; fails the test if they cannot be written by `deadline`. */
  async send(data: Uint8Array | string, deadline = now() + 2000): Promise<void> {
    const ok = await this.wire.write(bytes(data), deadline);
    assert.ok(ok, "raw peer: write did not complete before its deadline");
  }

  /** Builds a frame masked as this peer's role requires (unless `spec.mask` says otherwise). */
  frame(spec: FrameSpec): Uint8Array {
    return frame({ mask: this.role === "client", ...spec });
  }

  /** Sends one frame (see {@link RawPeer.frame}). */
  sendFrame(spec: FrameSpec, deadline = now() + 2000): Promise<void> {
    return this.send(this.frame(spec), deadline);
  }

  /** Reads exactly `n` bytes. */
  read(n: number, deadline = now() + 2000): Promise<Uint8Array> {
    return this.wire.readExact(n, deadline);
  }

  /** Reads and unmasks one frame our side sent; checks the masking our role requires. */
  /** Set when permessage-deflate was negotiated: RSV1 is then allowed on data frames. */
  deflate = false;

  async readFrame(deadline = now() + 2000): Promise<ParsedFrame> {
    const h = await this.read(2, deadline);
    const fin = (h[0] & 0x80) !== 0;
    const rsv = (h[0] >> 4) & 7;
    const opcode = h[0] & 0x0f;
    const masked = (h[1] & 0x80) !== 0;
    let length = h[1] & 0x7f;
    if (length === 126) {
      const ext = await this.read(2, deadline);
      length = (ext[0] << 8) | ext[1];
      assert.ok(length >= 126, `our side sent a non-minimal 16-bit length ${length}`);
    } else if (length === 127) {
      const ext = await this.read(8, deadline);
      const big = new DataView(ext.buffer).getBigUint64(0);
      assert.ok(big > 0xffffn && big < 1n << 53n, `our side sent a bad 64-bit length ${big}`);
      length = Number(big);
    }
    const key = masked ? await this.read(4, deadline) : null;
    const payload = length > 0 ? await this.read(length, deadline) : new Uint8Array(0);
    if (key) { for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]; }
    assert.equal(
      masked,
      this.role === "server",
      `our ${this.role === "server" ? "client" : "server"} sent a frame ${
        masked ? "masked" : "unmasked"
      }`,
    );
    // RSV1 marks a compressed message's first frame once permessage-deflate is negotiated.
    const allowed = this.deflate && rsv === 4 && (opcode === 1 || opcode === 2);
    assert.ok(rsv === 0 || allowed, "our side set RSV bits");
    return { fin, rsv, opcode, masked, payload };
  }

  /** Reads the next frame, which must be a close frame; parses its code and reason. */
  async readClose(deadline = now() + 2000): Promise<ParsedClose> {
    const f = await this.readFrame(deadline);
    assert.equal(
      f.opcode,
      OP.CLOSE,
      `expected a close frame, got opcode ${f.opcode} (${f.payload.length} bytes)`,
    );
    return parseClose(f.payload);
  }

  /** Reads frames until a close frame, answering nothing; returns it and what came before. */
  async readUntilClose(
    deadline = now() + 2000,
  ): Promise<{ close: ParsedClose; before: ParsedFrame[] }> {
    const before: ParsedFrame[] = [];
    while (true) {
      const f = await this.readFrame(deadline);
      if (f.opcode === OP.CLOSE) return { close: parseClose(f.payload), before };
      before.push(f);
    }
  }

  /**
   * Expects the end of the stream: no more bytes, then EOF (or a reset, which is also an
   * end). Returns which one; fails if bytes arrive or nothing happens by `deadline`.
   */
  async expectEnd(deadline = now() + 2000): Promise<"eof" | "reset"> {
    try {
      const extra = await this.read(1, deadline);
      assert.fail(`expected the end of the stream, got byte 0x${extra[0].toString(16)}`);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      assert.notEqual(e.kind, "timeout", `expected the end of the stream: ${e.message}`);
      return e.kind as "eof" | "reset";
    }
  }

  /** Reads an HTTP head (up to the blank line) as text. */
  async readHead(deadline = now() + 2000, limit = 16 * 1024): Promise<string> {
    let text = "";
    while (!text.endsWith("\r\n\r\n")) {
      assert.ok(text.length < limit, "raw peer: HTTP head too long");
      text += String.fromCharCode((await this.read(1, deadline))[0]);
    }
    return text;
  }

  /** Reads an HTTP response head and its Content-Length body. */
  async readResponse(deadline = now() + 2000): Promise<ParsedResponse> {
    const raw = await this.readHead(deadline);
    const [startLine, ...lines] = raw.slice(0, -4).split("\r\n");
    const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(startLine);
    assert.ok(m, `malformed status line ${JSON.stringify(startLine)}`);
    const headers = parseHeaderLines(lines);
    const length = Number(headers.get("content-length") ?? "0");
    const body = length > 0 ? decoder.decode(await this.read(length, deadline)) : "";
    return { version: m[1], status: Number(m[2]), reason: m[3], headers, body, raw };
  }

  /** Reads an HTTP request head (what our client sends). */
  async readRequest(deadline = now() + 2000): Promise<ParsedRequest> {
    const raw = await this.readHead(deadline);
    const [startLine, ...lines] = raw.slice(0, -4).split("\r\n");
    const m = /^(\S+) (\S+) (HTTP\/\d\.\d)$/.exec(startLine);
    assert.ok(m, `malformed request line ${JSON.stringify(startLine)}`);
    return { method: m[1], target: m[2], version: m[3], headers: parseHeaderLines(lines), raw };
  }

  /** Closes the wire. */
  close(): Promise<void> {
    return this.wire.close();
  }
}

function parseHeaderLines(lines: string[]): Headers {
  const headers = new Headers();
  for (const line of lines) {
    const i = line.indexOf(":");
    assert.ok(i > 0, `malformed header line ${JSON.stringify(line)}`);
    headers.append(line.slice(0, i), line.slice(i + 1).trim());
  }
  return headers;
}

/** Parses a close body; its reason must be valid UTF-8 of at most 123 bytes. */
export function parseClose(body: Uint8Array): ParsedClose {
  if (body.length === 0) return { code: 1005, reason: "", body };
  assert.ok(body.length >= 2, "our side sent a 1-byte close body");
  assert.ok(body.length <= 125, "our side sent a close body over 125 bytes");
  const reason = strictDecoder.decode(body.subarray(2));
  return { code: (body[0] << 8) | body[1], reason, body };
}

/** A 101 answer for `key`, with extra raw header lines. */
export function switchingProtocols(key: string, extra: string[] = []): Uint8Array {
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${acceptKey(key)}`,
    ...extra,
  ];
  return bytes(lines.join("\r\n") + "\r\n\r\n");
}

/** A payload of `size` bytes (at least 4) that starts with the number `i`. */
export function numbered(i: number, size: number): Uint8Array {
  const payload = new Uint8Array(size);
  new DataView(payload.buffer).setUint32(0, i);
  return payload;
}

/** The number a {@link numbered} payload starts with. */
export function numberOf(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
}

/**
 * Reads `count` pongs our side sent in answer to {@link numbered} pings of `size` bytes
 * and checks each one: a final pong, masked as our role requires, carrying the payload
 * numbered `0, 1, 2, ...` in order. Reads many frames at a time (they all have the same
 * size), so that checking a flood of pongs takes little time.
 */
export async function expectNumberedPongs(
  peer: RawPeer,
  count: number,
  size: number,
  deadline = now() + 5000,
): Promise<void> {
  assert.ok(size >= 4 && size <= 125);
  const masked = peer.role === "server"; // our client masks
  const frameSize = 2 + (masked ? 4 : 0) + size;
  const perRead = 1024;
  for (let first = 0; first < count; first += perRead) {
    const n = Math.min(perRead, count - first);
    const block = await peer.read(n * frameSize, deadline);
    for (let k = 0; k < n; k++) {
      const at = k * frameSize;
      assert.equal(block[at], 0x80 | OP.PONG, `frame ${first + k} is not a final pong`);
      assert.equal(block[at + 1], (masked ? 0x80 : 0) | size, `pong ${first + k}: header`);
      const payload = block.slice(at + frameSize - size, at + frameSize);
      if (masked) {
        const key = block.subarray(at + 2, at + 6);
        for (let j = 0; j < size; j++) payload[j] ^= key[j & 3];
      }
      assert.equal(numberOf(payload), first + k, `pong ${first + k} answers another ping`);
    }
  }
}

/** Asserts that `ms` (elapsed) is well before a deadline `budget` ms away. */
export function assertQuick(startedAt: number, what: string, budget = 1000): void {
  const elapsed = now() - startedAt;
  assert.ok(elapsed < budget, `${what} took ${elapsed.toFixed(0)} ms (budget ${budget} ms)`);
}

// ---- outcomes ------------------------------------------------------------------------

/** How a promise ended, captured so that a rejection is never left unhandled. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Captures the outcome of `p` at once (no unhandled rejection while the test does more). */
export function settle<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false, error }));
}

/** Asserts an outcome is a {@link DillError} failure with `code`; returns the error. */
export function assertFailed<T>(outcome: Outcome<T>, code: ErrorCode, what: string): DillError {
  if (outcome.ok) assert.fail(`${what}: expected ${code}, but it succeeded`);
  const e = outcome.error;
  assert.ok(isDillError(e), `${what}: expected a DillError ${code}, got ${String(e)}`);
  assert.equal(e.code, code, `${what}: expected ${code}, got ${e.message}`);
  return e;
}

/** Asserts an outcome succeeded; returns its value. */
export function assertOk<T>(outcome: Outcome<T>, what: string): T {
  if (!outcome.ok) {
    const e = outcome.error;
    assert.fail(`${what}: expected success, got ${e instanceof Error ? e.stack : String(e)}`);
  }
  return outcome.value;
}

// ---- rigs: our side on one end, a raw peer on the other --------------------------------

/** The transports a rig can run over. */
export type Transport = "tcp" | "pipe";
/** Every {@link Transport}. */
export const TRANSPORTS: readonly Transport[] = ["tcp", "pipe"];

/** One of our bytestream handles connected to a raw peer playing `peerRole`. */
export async function connectRaw(
  transport: Transport,
  peerRole: "client" | "server",
  pipeOptions: PairOptions = {},
): Promise<{ ours: Handle; peer: RawPeer }> {
  if (transport === "pipe") {
    const [ours, theirs] = ipcPair(pipeOptions);
    return { ours, peer: new RawPeer(new HandleWire(theirs), peerRole) };
  }
  if (peerRole === "client") {
    const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { port } = tcpLocalAddr(ls);
      const [accepted, conn] = await Promise.all([
        tcpAccept(ls, now() + 2000),
        Deno.connect({ hostname: "127.0.0.1", port }),
      ]);
      return { ours: accepted.handle, peer: new RawPeer(new ConnWire(conn), peerRole) };
    } finally {
      hclose(ls);
    }
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = listener.addr as Deno.NetAddr;
    const [conn, ours] = await Promise.all([
      listener.accept(),
      tcpConnect({ hostname: "127.0.0.1", port }, now() + 2000),
    ]);
    return { ours, peer: new RawPeer(new ConnWire(conn), peerRole) };
  } finally {
    listener.close();
  }
}

/** Our WebSocket handle and the raw peer at the other end. */
export class Rig {
  /**
   * @param ws our WebSocket handle
   * @param peer the raw peer
   * @param headers the handshake headers our side saw
   */
  constructor(readonly ws: Handle, readonly peer: RawPeer, readonly headers: Headers) {}

  /** Closes our handle (if still open) and the peer. */
  async close(): Promise<void> {
    try {
      hclose(this.ws);
    } catch (e) {
      if (!isDillError(e, "EBADF")) throw e;
    }
    await this.peer.close();
  }
}

/** Options of {@link openServer}. */
export interface ServerRigOptions {
  flags?: number;
  options?: WsServerOptions;
  /** The raw upgrade request to send. */
  request?: Uint8Array;
}

/** Our server (wsAttachServer) against a raw client that completes a valid handshake. */
export async function openServer(transport: Transport, setup: ServerRigOptions = {}): Promise<Rig> {
  const { ours, peer } = await connectRaw(transport, "client");
  const flags = setup.flags ?? 0;
  const attaching = settle(wsAttachServer(ours, flags, now() + 2000, setup.options));
  try {
    if (!(flags & WS_NOHTTP)) {
      await peer.send(setup.request ?? upgradeRequest());
      const res = await peer.readResponse();
      assert.equal(res.status, 101, `our server refused a valid upgrade:\n${res.raw}${res.body}`);
      assert.equal(res.headers.get("sec-websocket-accept"), acceptKey(SAMPLE_KEY));
    }
    const attached = assertOk(await attaching, "wsAttachServer");
    return new Rig(attached.handle, peer, attached.headers);
  } catch (e) {
    await attaching;
    await peer.close();
    throw e;
  }
}

/** Options of {@link openClient}. */
export interface ClientRigOptions {
  flags?: number;
  options?: WsClientOptions;
  /** Extra raw header lines in the 101 answer. */
  extra?: string[];
  /** Bytes sent right after the 101 answer, in the same write. */
  after?: Uint8Array;
}

/** Our client (wsAttachClient) against a raw server that answers a valid 101. */
export async function openClient(transport: Transport, setup: ClientRigOptions = {}): Promise<Rig> {
  const { ours, peer } = await connectRaw(transport, "server");
  const flags = setup.flags ?? 0;
  const attaching = settle(
    wsAttachClient(ours, flags, "/chat", "example.com", now() + 2000, setup.options),
  );
  try {
    if (!(flags & WS_NOHTTP)) {
      const req = await peer.readRequest();
      const key = checkClientRequest(req);
      await peer.send(
        concat(switchingProtocols(key, setup.extra), setup.after ?? new Uint8Array()),
      );
    }
    const attached = assertOk(await attaching, "wsAttachClient");
    return new Rig(attached.handle, peer, attached.headers);
  } catch (e) {
    await attaching;
    await peer.close();
    throw e;
  }
}

/** Checks the upgrade request our client sent (RFC 6455 4.1); returns its key. */
export function checkClientRequest(req: ParsedRequest): string {
  assert.equal(req.method, "GET");
  assert.equal(req.target, "/chat");
  assert.equal(req.version, "HTTP/1.1");
  assert.equal(req.headers.get("host"), "example.com");
  assert.equal(req.headers.get("upgrade")?.toLowerCase(), "websocket");
  assert.ok(/(^|,)\s*upgrade\s*(,|$)/i.test(req.headers.get("connection") ?? ""));
  assert.equal(req.headers.get("sec-websocket-version"), "13");
  // The only extension our client may offer is permessage-deflate (on by default).
  const offer = req.headers.get("sec-websocket-extensions");
  if (offer !== null) assert.match(offer, /^permessage-deflate(;|$)/, "unexpected offer");
  const key = req.headers.get("sec-websocket-key") ?? "";
  assert.equal(atob(key).length, 16, `key ${key} is not 16 bytes of base64`);
  return key;
}

// ---- the framing rules both sides enforce ------------------------------------------------

/** A framing violation: what the peer sends and what our side must answer. */
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
}

const RESERVED_OPCODES = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15];
const INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
const u8 = (...b: number[]) => new Uint8Array(b);

/** Every framing rule of RFC 6455 section 5 that both sides enforce (masking aside). */
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
 */
export async function checkFrameRule(rig: Rig, rule: Pick<FrameRule, "send" | "code" | "error">) {
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
