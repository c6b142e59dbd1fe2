/**
 * The wire side of the load client, written by hand so the client stays lean: the
 * HTTP upgrade request, client frames built (and masked) once up front, and a
 * counter of the server's frames that parses only frame headers.
 *
 * @module
 */

/** WebSocket opcodes the client uses. */
export const OP_TEXT = 0x1;
/** Binary data frame. */
export const OP_BINARY = 0x2;
/** Close frame. */
export const OP_CLOSE = 0x8;

const encoder = new TextEncoder();

/** The upgrade request for `/` on `127.0.0.1:port`, with a fresh random key. */
export function upgradeRequest(port: number): { bytes: Uint8Array; key: string } {
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const key = btoa(String.fromCharCode(...nonce));
  const text = "GET / HTTP/1.1\r\n" +
    `Host: 127.0.0.1:${port}\r\n` +
    "Upgrade: websocket\r\n" +
    "Connection: Upgrade\r\n" +
    `Sec-WebSocket-Key: ${key}\r\n` +
    "Sec-WebSocket-Version: 13\r\n\r\n";
  return { bytes: encoder.encode(text), key };
}

/** The `Sec-WebSocket-Accept` value a server must answer to `key` (RFC 6455 4.2.2). */
export async function acceptKey(key: string): Promise<string> {
  const data = encoder.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", data));
  return btoa(String.fromCharCode(...digest));
}

/** One masked client frame carrying `payload`; `fin` is false on all but a message's last. */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = 2 + lenBytes + 4;
  const frame = new Uint8Array(head + n);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (lenBytes === 0) {
    frame[1] = 0x80 | n;
  } else if (lenBytes === 2) {
    frame[1] = 0x80 | 126;
    frame[2] = n >>> 8;
    frame[3] = n & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  frame.set(mask, head - 4);
  for (let i = 0; i < n; i++) frame[head + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** One message sent as masked frames of `fragment` payload bytes each (continuations after the first). */
export function fragmentedMessage(
  opcode: number,
  payload: Uint8Array,
  fragment: number,
): Uint8Array {
  const frames: Uint8Array[] = [];
  for (let at = 0; at < payload.length; at += fragment) {
    const last = at + fragment >= payload.length;
    frames.push(clientFrame(at === 0 ? opcode : 0, payload.subarray(at, at + fragment), last));
  }
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** `copies` back-to-back copies of `frame`, written in one go when pipelining. */
export function repeatFrame(frame: Uint8Array, copies: number): Uint8Array {
  const out = new Uint8Array(frame.length * copies);
  for (let i = 0; i < copies; i++) out.set(frame, i * frame.length);
  return out;
}

/** A masked close frame with status 1000. */
export function closeFrame(): Uint8Array {
  return clientFrame(OP_CLOSE, new Uint8Array([0x03, 0xe8]));
}

/** What the server's frames must look like for the echo to count as right. */
export interface EchoExpectation {
  /** Opcode every echoed message must start with (type preserved). */
  readonly opcode: number;
  /** Payload each echoed message must have; its bytes are compared for the first message only. */
  readonly payload: Uint8Array;
  /** Frames come back masked (the calibration reflector); content is not compared then. */
  readonly masked?: boolean;
}

/**
 * Counts the server's messages by parsing frame headers only; payload bytes are
 * skipped, except those of the first message, which are compared with what was
 * sent. Checks every message's type and length. Fragmented messages are
 * reassembled in the count (not in memory).
 */
export class FrameCounter {
  /** Complete data messages received. */
  messages = 0;
  /** Payload bytes of data messages received. */
  bytes = 0;
  /** Whether a close frame arrived. */
  closed = false;
  /** Problems seen (wrong type, size or content, unexpected frames); kept short. */
  readonly anomalies: string[] = [];

  readonly #expect: EchoExpectation;
  readonly #scratch = new Uint8Array(14);
  #scratchLen = 0;
  #remaining = 0;
  #opcode = 0;
  #fin = true;
  #inMessage = false;
  #msgOpcode = 0;
  #msgLen = 0;
  #capture: Uint8Array | null;
  #captured = 0;

  /** @param expect the echo each message must be */
  constructor(expect: EchoExpectation) {
    this.#expect = expect;
    this.#capture = expect.masked ? null : new Uint8Array(expect.payload.length);
  }

  /** Feeds received bytes; returns the number of data messages completed by them. */
  feed(chunk: Uint8Array): number {
    const before = this.messages;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, n - i);
        if (this.#capture && this.#opcode < 8) this.#capturePayload(chunk, i, take);
        i += take;
        this.#remaining -= take;
        if (this.#opcode < 8) this.bytes += take;
        if (this.#remaining === 0) this.#frameEnd();
        continue;
      }
      // Header: parse in place when whole, else gather it in the scratch buffer.
      let src = chunk;
      let at = i;
      let avail = n - i;
      if (this.#scratchLen > 0) {
        const need = Math.min(14 - this.#scratchLen, avail);
        this.#scratch.set(chunk.subarray(i, i + need), this.#scratchLen);
        src = this.#scratch;
        at = 0;
        avail = this.#scratchLen + need;
      }
      const headLen = avail < 2 ? 0 : headerLength(src[at + 1]);
      if (headLen === 0 || avail < headLen) {
        if (this.#scratchLen === 0) this.#scratch.set(chunk.subarray(i, n));
        this.#scratchLen = avail;
        return this.messages - before;
      }
      const consumedFromChunk = headLen - this.#scratchLen;
      this.#scratchLen = 0;
      this.#header(src, at);
      i += consumedFromChunk;
      if (this.#remaining === 0) this.#frameEnd();
    }
    return this.messages - before;
  }

  #header(b: Uint8Array, at: number): void {
    this.#fin = (b[at] & 0x80) !== 0;
    this.#opcode = b[at] & 0x0f;
    if ((b[at] & 0x70) !== 0) this.#note("frame with RSV bits set");
    if ((b[at + 1] & 0x80) !== 0 && !this.#expect.masked) {
      this.#note("masked frame from the server");
    }
    const len7 = b[at + 1] & 0x7f;
    let len = len7;
    if (len7 === 126) len = (b[at + 2] << 8) | b[at + 3];
    else if (len7 === 127) {
      len = 0;
      for (let k = 2; k < 10; k++) len = len * 256 + b[at + k];
    }
    this.#remaining = len;
    if (this.#opcode >= 8) return;
    if (this.#opcode === 0) {
      if (!this.#inMessage) this.#note("continuation frame without a message");
    } else {
      if (this.#inMessage) this.#note("new data frame inside a fragmented message");
      this.#inMessage = true;
      this.#msgOpcode = this.#opcode;
      this.#msgLen = 0;
    }
    this.#msgLen += len;
  }

  #frameEnd(): void {
    if (this.#opcode === OP_CLOSE) {
      this.closed = true;
      return;
    }
    if (this.#opcode >= 8) {
      this.#note(`unexpected control frame 0x${this.#opcode.toString(16)}`);
      return;
    }
    if (!this.#fin) return;
    this.#inMessage = false;
    this.messages++;
    if (this.#msgOpcode !== this.#expect.opcode) {
      this.#note(`echo has opcode ${this.#msgOpcode}, sent ${this.#expect.opcode}`);
    }
    if (this.#msgLen !== this.#expect.payload.length) {
      this.#note(`echo of ${this.#msgLen} bytes, sent ${this.#expect.payload.length}`);
    }
    if (this.#capture) {
      const same = this.#captured === this.#capture.length &&
        this.#capture.every((v, k) => v === this.#expect.payload[k]);
      if (!same) this.#note("first echo's payload differs from what was sent");
      this.#capture = null;
    }
  }

  #capturePayload(chunk: Uint8Array, at: number, take: number): void {
    const cap = this.#capture!;
    const room = Math.min(take, cap.length - this.#captured);
    if (room > 0) cap.set(chunk.subarray(at, at + room), this.#captured);
    this.#captured += take;
  }

  #note(what: string): void {
    if (this.anomalies.length < 5 && !this.anomalies.includes(what)) this.anomalies.push(what);
  }
}

/** Header length implied by the second header byte (length code and mask bit). */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}
