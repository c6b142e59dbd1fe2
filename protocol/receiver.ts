/**
 * The receiving half of WebSocket framing: an incremental, pull-based parser that turns
 * fed bytes into whole messages and control frames, enforcing every framing rule of
 * RFC 6455 (section 5) and reporting the close code to answer a violation with.
 *
 * The {@link Receiver} drives the pieces: `./byte_queue.ts` holds the fed bytes,
 * `./frame_header.ts` reads and checks frame headers, `./message_assembly.ts` gathers a
 * data message's payload under the size limit, `./control_frame.ts` reads control
 * frames, and `./compressed_message.ts` holds the permessage-deflate rules and inflates.
 *
 * @module
 */

import { ByteQueue } from "./byte_queue.ts";
import { CloseCode } from "./close_codes.ts";
import { inflateMessage } from "./compressed_message.ts";
import { controlEvent, ControlFrameReader } from "./control_frame.ts";
import type { MessageInflater } from "./deflate_codec.ts";
import { DillError } from "./errors.ts";
import { checkAmount } from "./option_checks.ts";
import { FrameHeaderReader, HEADER_READ, NEED_MORE } from "./frame_header.ts";
import { Opcode } from "./frame.ts";
import { MessageAssembly } from "./message_assembly.ts";
import { decodeValidText, decodeWholeText, invalidTextReason } from "./text_message.ts";
import { Utf8Validator } from "./utf8.ts";

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

/** Outcome of a parsing step that produced no event: go on with the next step. */
const PROGRESSED = -1;
/** What a parsing step produces: an event, or stop for lack of bytes, or go on. */
type Step = ReceiverEvent | typeof NEED_MORE | typeof PROGRESSED;

/**
 * Parses WebSocket frames from bytes fed in arbitrary chunks and reassembles fragmented
 * messages. It does no I/O: the owner feeds bytes with {@link Receiver.feed} and pulls
 * events with {@link Receiver.next} until it returns `undefined`, then feeds more.
 *
 * Fed chunks become the receiver's: payloads are unmasked in place, and a message that
 * arrived as one frame inside one chunk is returned as a view into it, without copying.
 * A message spread over several chunks or frames is copied into one buffer as it
 * completes, unless the rest of a large one was read straight into its buffer (see
 * {@link Receiver.readTarget}); memory grows with the bytes actually received (at most
 * 8 times them), never with an announced length alone. Text is validated as soon as its
 * bytes are fed, even mid-frame, so invalid UTF-8 is reported without waiting for the
 * rest of the message.
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
  #inflater: MessageInflater | null;
  readonly #queue = new ByteQueue();
  readonly #frame: FrameHeaderReader;
  readonly #message: MessageAssembly;
  /** Made at the first control frame: a connection may never see one. */
  #control: ControlFrameReader | null = null;
  /** Made when a text message is first checked piece by piece (or inflated). */
  #textValidator: Utf8Validator | null = null;

  /** Set by the final event (close or error); `#closed` by a close. */
  #finished = false;
  #closed = false;
  /** The header of the current frame was read; its payload is being read. */
  #inFrame = false;
  /** {@link Receiver.readTarget} gave out the place of the current frame's rest. */
  #targetGiven = false;
  /** The chunk fed last, until {@link Receiver.releasable} gives it back. */
  #lastChunk: Uint8Array | null = null;
  /** A view of #lastChunk's buffer went out (in an event, or to the inflater). */
  #lastChunkShared = false;

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
    checkAmount("maxMessageSize", max);
    this.#frame = new FrameHeaderReader(options.role === "server");
    // Lengths beyond 2^53 cannot even be counted exactly, let alone held.
    this.#message = new MessageAssembly(Math.min(max, Number.MAX_SAFE_INTEGER));
    this.#inflater = null;
    this.#setInflater(options.inflater ?? null);
  }

  /**
   * Turns on permessage-deflate once the handshake negotiated it, before any frame
   * arrives (the handshake decides after the receiver exists).
   *
   * @param inflater the connection's decompressor
   * @throws {DillError} `EINVAL` once bytes were fed
   */
  useInflater(inflater: MessageInflater): void {
    if (this.#queue.size > 0 || this.#inFrame || this.#finished) {
      throw new DillError("EINVAL", "useInflater: frames were already received");
    }
    this.#setInflater(inflater);
  }

  #setInflater(inflater: MessageInflater | null): void {
    this.#inflater = inflater;
    this.#frame.deflate = inflater !== null;
    this.#message.inflater = inflater;
  }

  /**
   * Queues bytes received from the peer. Parsing happens in {@link Receiver.next}.
   * The receiver takes ownership of `chunk`: it may unmask it in place and hand out views
   * into it, so the caller must not reuse it (until {@link Receiver.releasable} gives it
   * back). Ignored once a close or error event has been returned.
   *
   * @param chunk the next bytes of the stream
   * @param reusable whether the caller would reuse the chunk's memory once it is given
   *   back (default `true`). For a chunk that would not be (a slice of an arena whose
   *   other parts serve later reads, never rewritten), {@link Receiver.releasable}
   *   returns `null` at once, and the pieces of a message in progress that lie in it stay
   *   views instead of being copied out for nothing.
   */
  feed(chunk: Uint8Array, reusable = true): void {
    if (this.#finished || chunk.length === 0) return;
    this.#queue.push(chunk);
    this.#lastChunk = reusable ? chunk : null;
    this.#lastChunkShared = false;
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
      } else if (this.#frame.opcode >= Opcode.CLOSE) {
        step = this.#readControlPayload();
      } else {
        step = this.#readDataPayload();
      }
      if (step === NEED_MORE) return undefined;
      if (step !== PROGRESSED) {
        if ("data" in step && step.data.buffer === this.#lastChunk?.buffer) {
          this.#lastChunkShared = true;
        }
        return step;
      }
    }
    return undefined;
  }

  /**
   * The chunk fed last, once the receiver is done with it, so that its memory may serve
   * another read: every byte of it parsed, no view of it handed out, none kept (the
   * pieces of a message in progress that lie in it are copied out now, as they would be
   * anyway when the message completes in a later chunk). Gives a chunk back at most
   * once; returns `null` when the last chunk is not free (or after a close or error).
   * Call it once the fed bytes were parsed: the receiver then forgets the chunk, given
   * back or not.
   *
   * @returns the chunk whose buffer nothing here refers to any more, or `null`
   *
   * @example
   * ```ts
   * import { Receiver } from "./receiver.ts";
   *
   * const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 20 });
   * const read = new Uint8Array([0x02, 0x03, 1, 2, 3]); // a first fragment: more to come
   * receiver.feed(read);
   * console.log(receiver.next()); // undefined
   * console.log(receiver.releasable() === read); // true: its payload was copied out
   * read.fill(0); // reused for the next read: the message keeps its own copy
   * receiver.feed(new Uint8Array([0x80, 0x01, 4]));
   * const event = receiver.next();
   * if (event?.type === "message") console.log(event.data); // Uint8Array(4) [ 1, 2, 3, 4 ]
   * ```
   */
  releasable(): Uint8Array | null {
    const chunk = this.#lastChunk;
    if (chunk === null || this.#queue.size > 0) return null;
    // Parsed: it is not kept here either way (an idle connection pins no read buffer).
    this.#lastChunk = null;
    if (this.#lastChunkShared || this.#finished) return null;
    const frame = this.#frame;
    const finalDataFrame = this.#inFrame && frame.opcode < Opcode.CLOSE && frame.fin;
    return this.#message.release(chunk.buffer, finalDataFrame) ? chunk : null;
  }

  /**
   * Bytes held: fed but not parsed, plus the payload of a partial message or control
   * frame. For flow control: stop reading from the peer while this is high.
   */
  get bufferedBytes(): number {
    return this.#queue.size + this.#message.bufferedBytes + (this.#control?.bufferedBytes ?? 0);
  }

  /**
   * Where the rest of the current frame's payload may be read, to spare copying a large
   * message out of read buffers: a view into the buffer the message is assembled in, or
   * `null`. Given out at most once per frame, when every fed byte was parsed and the
   * frame is the final one of a message with at least 64 KiB still to come (and at
   * least an eighth of the message already received: see
   * {@link MessageAssembly.reserveRest}).
   *
   * Every payload byte fed from then on goes to its place in `target`: a chunk that is
   * a view of that very place (a read into `target`) is taken as is, any other is
   * copied there. So the caller may have the stream's next bytes read into `target`,
   * each at its position, while bytes already on their way are fed from elsewhere; it
   * must never let a read write a place whose byte was fed from elsewhere.
   *
   * @returns the view to read the frame's rest into, or `null`
   *
   * @example
   * ```ts
   * import { Receiver } from "./receiver.ts";
   *
   * const receiver = new Receiver({ role: "client", maxMessageSize: 1 << 20 });
   * const size = 200_000; // an unmasked binary frame, 64-bit length form
   * const header = new Uint8Array([0x82, 127, 0, 0, 0, 0, 0, 0x03, 0x0d, 0x40]);
   * receiver.feed(header);
   * receiver.feed(new Uint8Array(100_000).fill(7)); // half the payload
   * console.log(receiver.next()); // undefined: needs more bytes
   * const target = receiver.readTarget()!;
   * console.log(target.length); // 100000: the rest goes straight into the message
   * target.fill(7); // as a read would
   * receiver.feed(target);
   * const event = receiver.next();
   * if (event?.type === "message") console.log(event.data.length, event.data.buffer === target.buffer); // 200000 true
   * ```
   */
  readTarget(): Uint8Array | null {
    const frame = this.#frame;
    if (
      this.#targetGiven || !this.#inFrame || this.#finished || this.#queue.size > 0 ||
      frame.opcode >= Opcode.CLOSE || !frame.fin
    ) {
      return null;
    }
    const target = this.#message.reserveRest(frame.remaining);
    if (target !== null) this.#targetGiven = true;
    return target;
  }

  /**
   * After a close event: hands over the fed bytes that followed the close frame (views
   * into the fed chunks, in order) and forgets them. Returns `[]` before a close event,
   * after an error event, and on later calls.
   */
  leftover(): Uint8Array[] {
    if (!this.#closed) return [];
    return this.#queue.takeAll();
  }

  /** Reads the next frame header and starts its frame (and message, for a first frame). */
  #readHeader(): Step {
    const frame = this.#frame;
    const message = this.#message;
    const result = frame.read(this.#queue, message);
    if (result === NEED_MORE) return NEED_MORE;
    if (result !== HEADER_READ) return this.#fail(result.code, result.message);
    this.#inFrame = true;
    this.#targetGiven = false;
    const opcode = frame.opcode;
    if (opcode >= Opcode.CLOSE) {
      (this.#control ??= new ControlFrameReader()).begin();
    } else {
      if (opcode !== Opcode.CONTINUATION) {
        message.begin(opcode === Opcode.BINARY, frame.rsv1);
        this.#textValidator?.reset();
      }
      message.announce(frame.length);
    }
    return PROGRESSED;
  }

  /** Reads the available payload of the current data frame; ends the message on FIN. */
  #readDataPayload(): Step {
    const queue = this.#queue;
    const frame = this.#frame;
    const message = this.#message;
    // A message that needs no streaming text check: binary, or compressed (checked once inflated).
    const unchecked = message.binary || message.compressed;
    while (frame.remaining > 0) {
      if (queue.size === 0) return NEED_MORE;
      const chunk = queue.front;
      const start = queue.offset;
      const take = Math.min(frame.remaining, chunk.length - start);
      // A whole unfragmented message in this chunk: nothing came before it, nothing follows.
      const whole = take === message.length && frame.fin;
      const piece = chunk.subarray(start, start + take);
      frame.unmask(piece);
      queue.skip(take);
      frame.remaining -= take;
      if (whole && !unchecked) {
        // Validate and decode at once; the application wants the text anyway.
        const text = decodeWholeText(piece);
        if (text === null) return this.#failText(piece);
        this.#inFrame = false;
        message.end();
        return { type: "message", binary: false, data: piece, text };
      }
      if (!unchecked && !this.#validator().push(piece)) {
        return this.#fail(CloseCode.INVALID_PAYLOAD, "text message is not valid UTF-8");
      }
      if (frame.remaining === 0 && frame.fin && message.isEmpty) {
        // The whole message is this one piece: hand it out as is, with no bookkeeping.
        return this.#endMessage(piece);
      }
      message.add(piece, frame.fin);
    }
    if (frame.fin) return this.#endMessage(null);
    this.#inFrame = false;
    return PROGRESSED;
  }

  /** Ends the message after its final frame: `data` if given, else the gathered pieces. */
  #endMessage(data: Uint8Array | null): Step {
    this.#inFrame = false;
    const message = this.#message;
    if (message.compressed) return this.#endCompressedMessage(data ?? message.take());
    // No validator yet: no piece of this message was checked, so none ends mid-sequence.
    if (!message.binary && this.#textValidator !== null && !this.#textValidator.finish()) {
      return this.#fail(
        CloseCode.INVALID_PAYLOAD,
        "text message ends in the middle of a UTF-8 sequence",
      );
    }
    // Gather first: sizing the buffer uses the message length.
    const payload = data ?? message.take();
    message.end();
    if (message.binary) return { type: "message", binary: true, data: payload };
    return { type: "message", binary: false, data: payload, text: decodeValidText(payload) };
  }

  /** Inflates a whole compressed message, under the size limit, and checks its text. */
  #endCompressedMessage(compressed: Uint8Array): Step {
    if (compressed.buffer === this.#lastChunk?.buffer) this.#lastChunkShared = true;
    const message = this.#message;
    message.drop();
    message.end();
    message.compressed = false;
    const event = inflateMessage(
      this.#inflater!,
      compressed,
      message.binary,
      message.maxMessageSize,
      this.#validator(),
    );
    if (event.type === "error") return this.#fail(event.code, event.message);
    return event;
  }

  /** The 1007 for a whole text message found invalid, worded as the streaming check words it. */
  #failText(bytes: Uint8Array): ReceiverEvent {
    return this.#fail(CloseCode.INVALID_PAYLOAD, invalidTextReason(bytes, this.#validator()));
  }

  /** Reads the available payload of the current control frame; reports it when whole. */
  #readControlPayload(): Step {
    const control = this.#control!; // made when the control frame's header was read
    const payload = control.read(this.#queue, this.#frame);
    if (payload === NEED_MORE) return NEED_MORE;
    if (!(payload instanceof Uint8Array)) return this.#fail(payload.code, payload.message);
    this.#inFrame = false;
    control.reset();
    const event = controlEvent(this.#frame.opcode, payload);
    if (event.type === "error") return this.#fail(event.code, event.message);
    if (event.type === "close") {
      this.#finished = true;
      this.#closed = true;
      this.#message.drop();
    }
    return event;
  }

  /** The text validator, made on first use. */
  #validator(): Utf8Validator {
    return this.#textValidator ??= new Utf8Validator();
  }

  /** Ends parsing with a protocol error; later input is ignored. */
  #fail(code: number, message: string): ReceiverEvent {
    this.#finished = true;
    this.#lastChunk = null;
    this.#message.drop();
    this.#queue.clear();
    this.#control?.reset();
    return { type: "error", code, message };
  }
}
