/**
 * The receiving half of WebSocket framing: an incremental, pull-based parser that turns
 * fed bytes into whole messages and control frames, enforcing every framing rule of
 * RFC 6455 (section 5) and reporting the close code to answer a violation with.
 *
 * @module
 */

import { CloseCode, isValidReceivedCloseCode, parseClosePayload } from "./close_codes.ts";
import type { MessageInflater } from "./deflate_codec.ts";
import { DillError } from "./errors.ts";
import { MAX_CONTROL_PAYLOAD, MAX_FRAME_HEADER_LENGTH, Opcode } from "./frame.ts";
import { applyMask, MASK_LENGTH } from "./mask.ts";
import { isValidUtf8, Utf8Validator } from "./utf8.ts";

/** Options of a {@link Receiver}. */
export interface ReceiverOptions {
  /**
   * Which end this is: a `"server"` requires every frame to be masked, a `"client"`
   * requires every frame to be unmasked.
   */
  role: "server" | "client";
  /**
   * Largest payload, in bytes, of one reassembled data message; may be `Infinity`. For a
   * compressed message it applies to the inflated payload, checked while inflating.
   */
  maxMessageSize: number;
  /**
   * The decompressor of a negotiated permessage-deflate (RFC 7692), or `null` (the
   * default): then RSV1 is a protocol error (1002) like the other RSV bits.
   */
  inflater?: MessageInflater | null;
}

/**
 * What {@link Receiver.next} produces.
 *
 * - `message`: a whole data message; for text, `data` is validated UTF-8 and `text` is
 *   the same message decoded (present on every text message, absent on binary ones).
 * - `ping`, `pong`: a control frame and its payload.
 * - `close`: the peer's close frame; `code` is 1005 when it had no body.
 * - `error`: the peer broke the protocol; `code` is the close code to send (1002, 1007
 *   or 1009).
 *
 * `close` and `error` are final. Every `data` may be a view into a fed chunk.
 */
export type ReceiverEvent =
  | { type: "message"; binary: boolean; data: Uint8Array; text?: string }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; code: number; message: string };

/** Outcome of a parsing step that produced no event: stop for lack of bytes... */
const NEED_MORE = 0;
/** ...or go on with the next step. */
const PROGRESSED = 1;
type Step = ReceiverEvent | typeof NEED_MORE | typeof PROGRESSED;

/** More pieces than this in a partial message get gathered into one buffer. */
const MAX_PARTS = 64;
/** Chunk memory a partial message may pin beyond twice its own size before being gathered. */
const RETAINED_SLACK = 64 * 1024;
/** Smallest buffer allocated to gather a partial message. */
const MIN_ASSEMBLY_CAPACITY = 4096;

const EMPTY = new Uint8Array(0);

/** Lossy decoding: it inserts U+FFFD for every invalid sequence, and keeps a leading BOM. */
const lossyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Validates and decodes a whole text message in one native pass: a lossy decode that
 * produced no U+FFFD proves the bytes valid. Only a message containing U+FFFD (a real
 * one or a replacement) needs the exact check. Returns `null` for invalid UTF-8.
 */
function decodeWholeText(bytes: Uint8Array): string | null {
  const text = lossyDecoder.decode(bytes);
  return text.indexOf("\uFFFD") === -1 || isValidUtf8(bytes) ? text : null;
}

/** Reads a big-endian unsigned 32-bit integer. */
function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/**
 * Parses WebSocket frames from bytes fed in arbitrary chunks and reassembles fragmented
 * messages. It does no I/O: the owner feeds bytes with {@link Receiver.feed} and pulls
 * events with {@link Receiver.next} until it returns `undefined`, then feeds more.
 *
 * Fed chunks become the receiver's: payloads are unmasked in place, and a message that
 * arrived as one frame inside one chunk is returned as a view into it, without copying.
 * A message spread over several chunks or frames is copied into one buffer as it
 * completes; memory grows with the bytes actually received, never with an announced
 * length. Text is validated as soon as its bytes are fed, even mid-frame, so invalid
 * UTF-8 is reported without waiting for the rest of the message.
 *
 * With permessage-deflate negotiated (`inflater`), a message whose first frame has RSV1
 * is gathered compressed, under the size limit plus DEFLATE's worst overhead, and
 * inflated when its last frame arrives, with `maxMessageSize` applied to the output as
 * it is produced; its text is validated once inflated.
 *
 * @example
 * ```ts
 * import { Receiver } from "./receiver.ts";
 *
 * const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 20 });
 * // An unmasked text frame "Hello" split over two reads, then a close frame (1000).
 * receiver.feed(new Uint8Array([0x81, 0x05, 0x48, 0x65]));
 * console.log(receiver.next()); // undefined: needs more bytes
 * receiver.feed(new Uint8Array([0x6c, 0x6c, 0x6f, 0x88, 0x02, 0x03, 0xe8]));
 * const event = receiver.next();
 * if (event?.type === "message") console.log(new TextDecoder().decode(event.data)); // "Hello"
 * console.log(receiver.next()); // { type: "close", code: 1000, reason: "" }
 * ```
 */
export class Receiver {
  readonly #expectMasked: boolean;
  readonly #maxMessageSize: number;
  #inflater: MessageInflater | null;
  /** Largest compressed size of a message: the inflated limit plus DEFLATE's worst overhead. */
  #maxWireSize: number;

  // Fed bytes not parsed yet: #chunks[#head] from #offset, then the following chunks.
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  #queuedBytes = 0;
  /** Gathers a frame header that is split across chunks. */
  #headerScratch: Uint8Array | null = null;

  /** Set by the final event (close or error); `#closed` by a close. */
  #finished = false;
  #closed = false;

  // The frame whose payload is being read, if #inFrame.
  #inFrame = false;
  #opcode = 0;
  #fin = false;
  #masked = false;
  readonly #mask = new Uint8Array(MASK_LENGTH);
  /** Payload bytes of the current frame not read yet. */
  #remaining = 0;
  /** Payload bytes of the current frame read so far, modulo 4: where the key continues. */
  #maskOffset = 0;

  // The data message being assembled, if #inMessage.
  #inMessage = false;
  #binary = false;
  /** The message had RSV1 on its first frame: its payload is DEFLATE data. */
  #compressed = false;
  /** Payload bytes announced by the message's frames so far. */
  #messageLength = 0;
  readonly #textValidator = new Utf8Validator();
  /** Received pieces, as views into fed chunks; they follow #assembly's bytes. */
  #parts: Uint8Array[] = [];
  #partsBytes = 0;
  /** Bytes of the chunk buffers the pieces keep alive (counted once per piece). */
  #partsRetained = 0;
  /** Earlier pieces gathered into one buffer, when there were many or they pinned much. */
  #assembly: Uint8Array | null = null;
  #assemblyLength = 0;

  // A control frame whose payload is not in one chunk is gathered here.
  /** Allocated the first time a control payload is split across chunks (rare). */
  #control: Uint8Array | null = null;
  #controlLength = 0;
  readonly #closeReasonValidator = new Utf8Validator();

  /**
   * Creates a receiver for one connection.
   *
   * @param options the role of this end and the message size limit
   * @throws {DillError} `EINVAL` for an unknown role or a negative or NaN size limit
   */
  constructor(options: ReceiverOptions) {
    if (options.role !== "server" && options.role !== "client") {
      throw new DillError("EINVAL", `receiver role must be "server" or "client"`);
    }
    const max = options.maxMessageSize;
    if (typeof max !== "number" || !(max >= 0)) {
      throw new DillError("EINVAL", `maxMessageSize must be a number >= 0, not ${max}`);
    }
    this.#expectMasked = options.role === "server";
    // Lengths beyond 2^53 cannot even be counted exactly, let alone held.
    this.#maxMessageSize = Math.min(max, Number.MAX_SAFE_INTEGER);
    this.#inflater = options.inflater ?? null;
    this.#maxWireSize = this.#wireLimit();
  }

  /**
   * Largest compressed size a message can have and still inflate under the limits:
   * stored blocks cost 5 bytes per 64 KiB, plus a few bytes of block headers. Larger
   * compressed messages fail with 1009 before they are gathered.
   */
  #wireLimit(): number {
    const inflated = Math.min(this.#maxMessageSize, this.#inflater?.maxInflatedSize ?? Infinity);
    return Math.min(inflated + Math.ceil(inflated / 65535) * 5 + 64, Number.MAX_SAFE_INTEGER);
  }

  /**
   * Turns on permessage-deflate once the handshake negotiated it, before any frame
   * arrives (the handshake decides after the receiver exists).
   *
   * @param inflater the connection's decompressor
   * @throws {DillError} `EINVAL` once bytes were fed
   */
  useInflater(inflater: MessageInflater): void {
    if (this.#queuedBytes > 0 || this.#inFrame || this.#finished) {
      throw new DillError("EINVAL", "useInflater: frames were already received");
    }
    this.#inflater = inflater;
    this.#maxWireSize = this.#wireLimit();
  }

  /**
   * Queues bytes received from the peer. Parsing happens in {@link Receiver.next}.
   * The receiver takes ownership of `chunk`: it may unmask it in place and hand out views
   * into it, so the caller must not reuse it. Ignored once a close or error event has
   * been returned.
   *
   * @param chunk the next bytes of the stream
   */
  feed(chunk: Uint8Array): void {
    if (this.#finished || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#queuedBytes += chunk.length;
  }

  /**
   * Parses as far as needed to produce the next event.
   *
   * @returns the next event, or `undefined` when more bytes are needed (or after a
   * close or error event, forever)
   */
  next(): ReceiverEvent | undefined {
    while (!this.#finished) {
      let step: Step;
      if (!this.#inFrame) {
        step = this.#readHeader();
      } else if (this.#opcode >= Opcode.CLOSE) {
        step = this.#readControlPayload();
      } else {
        step = this.#readDataPayload();
      }
      if (step === NEED_MORE) return undefined;
      if (step !== PROGRESSED) return step;
    }
    return undefined;
  }

  /**
   * Bytes held: fed but not parsed, plus the payload of a partial message or control
   * frame. For flow control: stop reading from the peer while this is high.
   */
  get bufferedBytes(): number {
    return this.#queuedBytes + this.#assemblyLength + this.#partsBytes + this.#controlLength;
  }

  /**
   * After a close event: hands over the fed bytes that followed the close frame (views
   * into the fed chunks, in order) and forgets them. Returns `[]` before a close event,
   * after an error event, and on later calls.
   */
  leftover(): Uint8Array[] {
    if (!this.#closed || this.#queuedBytes === 0) return [];
    const rest = this.#chunks.slice(this.#head);
    rest[0] = rest[0].subarray(this.#offset);
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#queuedBytes = 0;
    return rest;
  }

  /** Parses the next frame header, checking each field as soon as its bytes are there. */
  #readHeader(): Step {
    const queued = this.#queuedBytes;
    if (queued === 0) return NEED_MORE;
    let src = this.#chunks[this.#head];
    let p = this.#offset;
    let available = src.length - p;

    // The first byte alone can break most rules: check it before waiting for more.
    const byte0 = src[p];
    const fin = (byte0 & 0x80) !== 0;
    const opcode = byte0 & 0x0f;
    const rsv1 = (byte0 & 0x40) !== 0;
    if ((byte0 & 0x30) !== 0) {
      return this.#fail(
        CloseCode.PROTOCOL_ERROR,
        "frame has RSV2 or RSV3 set but no extension defines them",
      );
    }
    if (rsv1) {
      // permessage-deflate (RFC 7692 6.1): RSV1 marks the first frame of a compressed
      // data message, and nothing else.
      if (this.#inflater === null) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          "frame has RSV1 set but no extension was negotiated",
        );
      }
      if (opcode !== Opcode.TEXT && opcode !== Opcode.BINARY) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          opcode === Opcode.CONTINUATION
            ? "continuation frame has RSV1 set; only a message's first frame may"
            : "control or reserved frame has RSV1 set; only data messages are compressed",
        );
      }
    }
    if (opcode >= Opcode.CLOSE) {
      if (opcode > Opcode.PONG) {
        return this.#fail(CloseCode.PROTOCOL_ERROR, `frame has reserved opcode ${opcode}`);
      }
      if (!fin) {
        return this.#fail(CloseCode.PROTOCOL_ERROR, "control frame is fragmented (FIN is 0)");
      }
    } else if (opcode === Opcode.CONTINUATION) {
      if (!this.#inMessage) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          "continuation frame without a fragmented message in progress",
        );
      }
    } else if (opcode <= Opcode.BINARY) {
      if (this.#inMessage) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          "new data frame while a fragmented message is in progress",
        );
      }
    } else {
      return this.#fail(CloseCode.PROTOCOL_ERROR, `frame has reserved opcode ${opcode}`);
    }

    if (queued < 2) return NEED_MORE;
    if (available < MAX_FRAME_HEADER_LENGTH && available < queued) {
      // The header may continue in the next chunks: gather its bytes first.
      // Allocated on first need: most connections never see a header split across reads.
      src = this.#headerScratch ??= new Uint8Array(MAX_FRAME_HEADER_LENGTH);
      available = this.#peek(src);
      p = 0;
    }
    const byte1 = src[p + 1];
    const masked = (byte1 & 0x80) !== 0;
    let length = byte1 & 0x7f;
    if (masked !== this.#expectMasked) {
      return this.#fail(
        CloseCode.PROTOCOL_ERROR,
        masked ? "server sent a masked frame" : "client sent an unmasked frame",
      );
    }
    if (opcode >= Opcode.CLOSE) {
      if (length > MAX_CONTROL_PAYLOAD) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          `control frame payload is longer than ${MAX_CONTROL_PAYLOAD} bytes`,
        );
      }
      if (opcode === Opcode.CLOSE && length === 1) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          "close frame body is 1 byte: too short for a status code",
        );
      }
    }

    let headerLength = 2;
    if (length === 126) {
      if (available < 4) return NEED_MORE;
      length = (src[p + 2] << 8) | src[p + 3];
      if (length < 126) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          `frame length ${length} uses the 16-bit form; it must use the 7-bit form`,
        );
      }
      headerLength = 4;
    } else if (length === 127) {
      if (available > 2 && src[p + 2] >= 0x80) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          "frame length has its most significant bit set",
        );
      }
      if (available < 10) return NEED_MORE;
      const high = readUint32(src, p + 2);
      const low = readUint32(src, p + 6);
      if (high === 0 && low <= 0xffff) {
        return this.#fail(
          CloseCode.PROTOCOL_ERROR,
          `frame length ${low} uses the 64-bit form; it must use a shorter form`,
        );
      }
      length = high * 0x1_0000_0000 + low;
      headerLength = 10;
    }
    if (opcode < Opcode.CLOSE) {
      const messageLength = this.#messageLength + length;
      const compressed = opcode === Opcode.CONTINUATION ? this.#compressed : rsv1;
      if (messageLength > (compressed ? this.#maxWireSize : this.#maxMessageSize)) {
        return this.#fail(
          CloseCode.MESSAGE_TOO_BIG,
          compressed
            ? `compressed message of ${messageLength}+ bytes cannot inflate under the limit of ${
              Math.min(this.#maxMessageSize, this.#inflater?.maxInflatedSize ?? Infinity)
            }`
            : `message of ${messageLength}+ bytes is over the limit of ${this.#maxMessageSize}`,
        );
      }
    }

    if (masked) {
      if (available < headerLength + MASK_LENGTH) return NEED_MORE;
      const key = this.#mask;
      key[0] = src[p + headerLength];
      key[1] = src[p + headerLength + 1];
      key[2] = src[p + headerLength + 2];
      key[3] = src[p + headerLength + 3];
      headerLength += MASK_LENGTH;
    }
    this.#skip(headerLength);

    this.#inFrame = true;
    this.#opcode = opcode;
    this.#fin = fin;
    this.#masked = masked;
    this.#remaining = length;
    this.#maskOffset = 0;
    if (opcode >= Opcode.CLOSE) {
      this.#controlLength = 0;
      this.#closeReasonValidator.reset();
    } else {
      if (opcode !== Opcode.CONTINUATION) {
        this.#inMessage = true;
        this.#binary = opcode === Opcode.BINARY;
        this.#compressed = rsv1;
        this.#textValidator.reset();
      }
      this.#messageLength += length;
    }
    return PROGRESSED;
  }

  /** Reads the available payload of the current data frame; ends the message on FIN. */
  #readDataPayload(): Step {
    while (this.#remaining > 0) {
      if (this.#queuedBytes === 0) return NEED_MORE;
      const chunk = this.#chunks[this.#head];
      const start = this.#offset;
      const take = Math.min(this.#remaining, chunk.length - start);
      // A whole unfragmented message in this chunk: nothing came before it, nothing follows.
      const whole = take === this.#messageLength && this.#fin;
      const piece = chunk.subarray(start, start + take);
      if (this.#masked) {
        applyMask(piece, this.#mask, this.#maskOffset);
        this.#maskOffset = (this.#maskOffset + take) & 3;
      }
      this.#skip(take);
      this.#remaining -= take;
      if (whole && !this.#binary && !this.#compressed) {
        // Validate and decode at once; the application wants the text anyway.
        const text = decodeWholeText(piece);
        if (text === null) return this.#failText(piece);
        this.#inFrame = false;
        this.#inMessage = false;
        this.#messageLength = 0;
        return { type: "message", binary: false, data: piece, text };
      }
      if (!this.#binary && !this.#compressed && !this.#textValidator.push(piece)) {
        return this.#fail(CloseCode.INVALID_PAYLOAD, "text message is not valid UTF-8");
      }
      if (
        this.#remaining === 0 && this.#fin && this.#partsBytes === 0 && this.#assembly === null
      ) {
        // The whole message is this one piece: hand it out as is, with no bookkeeping.
        return this.#endMessage(piece);
      }
      this.#addPart(piece);
    }
    if (this.#fin) return this.#endMessage(null);
    this.#inFrame = false;
    return PROGRESSED;
  }

  /** Ends the message after its final frame: `data` if given, else the gathered pieces. */
  #endMessage(data: Uint8Array | null): Step {
    this.#inFrame = false;
    if (this.#compressed) return this.#endCompressedMessage(data ?? this.#takeMessage());
    if (!this.#binary && !this.#textValidator.finish()) {
      return this.#fail(
        CloseCode.INVALID_PAYLOAD,
        "text message ends in the middle of a UTF-8 sequence",
      );
    }
    // Gather first: sizing the buffer uses the message length.
    const message = data ?? this.#takeMessage();
    this.#inMessage = false;
    this.#messageLength = 0;
    if (this.#binary) return { type: "message", binary: true, data: message };
    return { type: "message", binary: false, data: message, text: lossyDecoder.decode(message) };
  }

  /** Inflates a whole compressed message, under the size limit, and checks its text. */
  #endCompressedMessage(compressed: Uint8Array): Step {
    this.#dropMessage();
    this.#inMessage = false;
    this.#messageLength = 0;
    this.#compressed = false;
    const inflated = this.#inflater!.inflate(compressed, this.#maxMessageSize);
    if (!(inflated instanceof Uint8Array)) {
      const what = inflated.code === CloseCode.MESSAGE_TOO_BIG ? "" : "compressed message: ";
      return this.#fail(inflated.code, what + inflated.message);
    }
    if (this.#binary) return { type: "message", binary: true, data: inflated };
    const text = decodeWholeText(inflated);
    if (text === null) return this.#failText(inflated);
    return { type: "message", binary: false, data: inflated, text };
  }

  /** The 1007 for a whole text message found invalid, worded as the streaming check words it. */
  #failText(bytes: Uint8Array): ReceiverEvent {
    const validator = this.#textValidator;
    validator.reset();
    const why = validator.push(bytes)
      ? "text message ends in the middle of a UTF-8 sequence"
      : "text message is not valid UTF-8";
    return this.#fail(CloseCode.INVALID_PAYLOAD, why);
  }

  /** Reads the available payload of the current control frame; reports it when whole. */
  #readControlPayload(): Step {
    if (this.#controlLength === 0) {
      // The common case: the whole payload is in the first chunk, so hand out a view.
      if (this.#remaining === 0) return this.#controlEvent(new Uint8Array(0));
      if (this.#queuedBytes === 0) return NEED_MORE;
      const chunk = this.#chunks[this.#head];
      const start = this.#offset;
      const length = this.#remaining;
      if (chunk.length - start >= length) {
        const payload = chunk.subarray(start, start + length);
        if (this.#masked) applyMask(payload, this.#mask, 0);
        this.#skip(length);
        this.#remaining = 0;
        return this.#controlEvent(payload);
      }
    }
    while (this.#remaining > 0) {
      if (this.#queuedBytes === 0) return NEED_MORE;
      const chunk = this.#chunks[this.#head];
      const start = this.#offset;
      const take = Math.min(this.#remaining, chunk.length - start);
      const before = this.#controlLength;
      const after = before + take;
      const control = this.#control ??= new Uint8Array(MAX_CONTROL_PAYLOAD);
      control.set(chunk.subarray(start, start + take), before);
      if (this.#masked) applyMask(control.subarray(before, after), this.#mask, before);
      this.#skip(take);
      this.#remaining -= take;
      this.#controlLength = after;
      if (this.#opcode === Opcode.CLOSE) {
        // Check the status code and reason as their bytes arrive, not when the frame ends.
        if (before < 2 && after >= 2) {
          const code = (control[0] << 8) | control[1];
          if (!isValidReceivedCloseCode(code)) {
            return this.#fail(
              CloseCode.PROTOCOL_ERROR,
              `close frame carries status ${code}, which may not be sent`,
            );
          }
        }
        const reasonStart = Math.max(before, 2);
        if (
          after > reasonStart &&
          !this.#closeReasonValidator.push(control.subarray(reasonStart, after))
        ) {
          return this.#fail(CloseCode.INVALID_PAYLOAD, "close reason is not valid UTF-8");
        }
      }
    }
    return this.#controlEvent(this.#control!.slice(0, this.#controlLength));
  }

  /** The event for a complete control frame with this (unmasked) payload. */
  #controlEvent(payload: Uint8Array): ReceiverEvent {
    this.#inFrame = false;
    this.#controlLength = 0;
    if (this.#opcode === Opcode.PING) return { type: "ping", data: payload };
    if (this.#opcode === Opcode.PONG) return { type: "pong", data: payload };
    const close = parseClosePayload(payload);
    if ("error" in close) return this.#fail(close.error, close.message);
    this.#finished = true;
    this.#closed = true;
    this.#dropMessage();
    return { type: "close", code: close.code, reason: close.reason };
  }

  /** Adds a piece to the partial message, gathering pieces when they get many or pin much. */
  #addPart(piece: Uint8Array): void {
    if (piece.length === 0) return;
    const parts = this.#parts;
    parts.push(piece);
    this.#partsBytes += piece.length;
    this.#partsRetained += piece.buffer.byteLength;
    // Views keep whole chunk buffers alive: tiny fragments each in its own big read buffer
    // would otherwise pin far more memory than the message size limit suggests.
    if (
      parts.length > 1 &&
      (parts.length >= MAX_PARTS || this.#partsRetained > 2 * this.#partsBytes + RETAINED_SLACK)
    ) {
      this.#gatherParts();
    }
  }

  /** Appends the pieces to #assembly, growing it with the data received; returns it. */
  #gatherParts(): Uint8Array {
    const needed = this.#assemblyLength + this.#partsBytes;
    let assembly = this.#assembly;
    if (assembly === null || assembly.length < needed) {
      // Double for amortized appends: the buffer stays within twice the bytes received.
      // In the final frame the total is known, so the buffer never goes past it (and the
      // last one is exact); before it, more fragments may come, and capping at what was
      // announced so far would regrow and recopy the whole message for every few frames.
      const doubled = Math.max(needed, 2 * (assembly?.length ?? 0), MIN_ASSEMBLY_CAPACITY);
      const cap = this.#fin ? this.#messageLength : this.#maxMessageSize;
      const grown = new Uint8Array(Math.max(needed, Math.min(doubled, cap)));
      if (assembly !== null) grown.set(assembly.subarray(0, this.#assemblyLength));
      this.#assembly = assembly = grown;
    }
    let at = this.#assemblyLength;
    for (const part of this.#parts) {
      assembly.set(part, at);
      at += part.length;
    }
    this.#assemblyLength = at;
    this.#parts.length = 0;
    this.#partsBytes = 0;
    this.#partsRetained = 0;
    return assembly;
  }

  /** The complete message: the single piece itself when there is one, else one copy. */
  #takeMessage(): Uint8Array {
    let data: Uint8Array;
    const parts = this.#parts;
    if (this.#assembly !== null) {
      data = this.#gatherParts().subarray(0, this.#assemblyLength);
    } else if (parts.length === 1) {
      data = parts[0];
    } else if (parts.length === 0) {
      data = new Uint8Array(0);
    } else {
      data = new Uint8Array(this.#partsBytes);
      let at = 0;
      for (const part of parts) {
        data.set(part, at);
        at += part.length;
      }
    }
    this.#dropMessage();
    return data;
  }

  /** Forgets the partial message's bytes. */
  #dropMessage(): void {
    this.#parts = [];
    this.#partsBytes = 0;
    this.#partsRetained = 0;
    this.#assembly = null;
    this.#assemblyLength = 0;
  }

  /** Ends parsing with a protocol error; later input is ignored. */
  #fail(code: number, message: string): ReceiverEvent {
    this.#finished = true;
    this.#dropMessage();
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#queuedBytes = 0;
    this.#controlLength = 0;
    return { type: "error", code, message };
  }

  /** Copies up to `target.length` queued bytes into `target` without consuming them. */
  #peek(target: Uint8Array): number {
    let copied = 0;
    let start = this.#offset;
    // Headers are at most 14 bytes: a plain loop beats creating views.
    for (let index = this.#head; index < this.#chunks.length; index++) {
      const chunk = this.#chunks[index];
      while (start < chunk.length && copied < target.length) target[copied++] = chunk[start++];
      if (copied === target.length) break;
      start = 0;
    }
    return copied;
  }

  /** Consumes `count` queued bytes, dropping the chunks used up. */
  #skip(count: number): void {
    this.#queuedBytes -= count;
    while (count > 0) {
      const available = this.#chunks[this.#head].length - this.#offset;
      if (count < available) {
        this.#offset += count;
        return;
      }
      count -= available;
      this.#chunks[this.#head] = EMPTY; // let the used-up chunk be collected
      this.#offset = 0;
      this.#head++;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      } else if (this.#head >= 32 && this.#head * 2 >= this.#chunks.length) {
        // Drop consumed entries now and then; amortized, without shifting on every chunk.
        this.#chunks.splice(0, this.#head);
        this.#head = 0;
      }
    }
  }
}
