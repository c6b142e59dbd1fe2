/**
 * The per-connection compressor and decompressor of permessage-deflate (RFC 7692
 * section 7.2), and the server's negotiation result that hands one out.
 *
 * Memory model (the budget is in `./deflate_budget.ts`):
 *
 * - A direction **with** context takeover keeps its zlib state between messages, so
 *   that state belongs to the connection. It is created on the first message that
 *   needs it and freed by {@link PerMessageDeflate.close}. Its size, measured on Deno
 *   2.9.6 (whose zlib keeps a fixed 128 KiB hash table, so memLevel matters little):
 *   a compressor about 136 KiB + 4·2^windowBits + 2^(memLevel+8) bytes (160 KiB at the
 *   defaults 12/5, 328 KiB at 15/8; 163 and 330 measured), a decompressor about
 *   2^windowBits + 16 KiB (20 KiB at 12 bits, 48 KiB at 15); `deflateMemory` computes it.
 * - A direction **without** context takeover needs no state between messages: it
 *   borrows one of a few process-wide zlib states (one per setting in use), resets it
 *   after the message and gives it back. Work is synchronous, so one state per setting
 *   serves every connection.
 * - A `DeflateBudget` caps the bytes of kept states in the whole process (default
 *   `DeflateBudget.shared`, 64 MiB). A connection reserves its states' size when
 *   it negotiates; when the budget is spent, the handshake negotiates no context
 *   takeover both ways instead, so 10,000 connections compressing at once hold a
 *   bounded number of windows, and the rest cost no zlib memory at all.
 *
 * Received messages are gathered compressed (under the same limits as uncompressed
 * ones) and inflated when their last frame arrives, with the output capped at the
 * message size limit while inflating; sent messages are compressed whole. Each call
 * is synchronous, so message order is the order of calls.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";
import { CloseCode } from "./close_codes.ts";
import { type DeflateBudget, deflateMemory } from "./deflate_budget.ts";
import { DillError } from "./errors.ts";
import type { DeflateParams } from "./permessage_deflate.ts";
import { loadZlib, SyncZlib } from "./zlib_sync.ts";

/** The tail a sync flush ends with; stripped when sending, put back when receiving. */
const SYNC_TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

/**
 * An empty non-final stored block, byte-aligned: `00` (BFINAL 0, BTYPE 00, padding),
 * LEN 0, NLEN 0xffff. Fed to an inflater that sits between blocks it changes nothing.
 */
const EMPTY_STORED_BLOCK = new Uint8Array([0x00, 0x00, 0x00, 0xff, 0xff]);

/**
 * Whether an inflater that just took a message and its `00 00 ff ff` tail is between
 * blocks, as it is after every message a conforming sender makes (RFC 7692 7.2.1: the
 * data ends with an empty stored block). zlib does not tell where it is, so this feeds
 * it an empty stored block: between blocks that is consumed whole with no output and no
 * error, and the state is unchanged. Inside a block (a stored block with bytes still
 * owed, a Huffman block without its end code, a block header cut short) the same bytes
 * come out as data, break a length check or end the stream, and the peer's next message
 * would otherwise have continued the unfinished block.
 */
function atBlockBoundary(zlib: SyncZlib): boolean {
  let produced = 0;
  const probe = zlib.write(EMPTY_STORED_BLOCK, true, (chunk) => {
    produced += chunk.length;
    return false;
  });
  return produced === 0 && !probe.ended && probe.consumed === EMPTY_STORED_BLOCK.length;
}

/** Settings of a {@link PerMessageDeflate} beyond the negotiated parameters. */
export interface DeflateCodecSettings {
  /** zlib compression level, 0 to 9. */
  readonly level: number;
  /** zlib memory level of the compressor, 1 to 9. */
  readonly memLevel: number;
  /** Messages shorter than this are sent uncompressed. */
  readonly threshold: number;
  /**
   * Largest inflated size of a received message, applied on top of the caller's limit
   * (`perMessageDeflate.maxInflatedSize`). Absent: only the caller's limit.
   */
  readonly maxInflatedSize?: number;
}

/** Process-wide zlib states for directions without context takeover, one per setting. */
const sharedStates = new Map<string, SyncZlib>();

function sharedState(mode: "deflate" | "inflate", bits: number, level: number, mem: number) {
  const key = `${mode}/${bits}/${level}/${mem}`;
  let state = sharedStates.get(key);
  if (state === undefined) {
    state = new SyncZlib(mode, { windowBits: bits, level, memLevel: mem });
    sharedStates.set(key, state);
  }
  return state;
}

/** Why an inflate failed: the close code (1007 or 1009) and what happened. */
export interface InflateFailure {
  /** The close code to fail the connection with: 1007 (invalid data) or 1009 (too big). */
  readonly code: number;
  /** What was wrong, for the close reason and the error. */
  readonly message: string;
}

/** What the receiver needs to decompress a message (see `./receiver.ts`). */
export interface MessageInflater {
  /**
   * Inflates one whole compressed message payload (without the `00 00 ff ff` tail).
   * Stops, and fails with 1009, as soon as the output passes `maxSize`; fails with 1007
   * for invalid data.
   */
  inflate(payload: Uint8Array, maxSize: number): Uint8Array | InflateFailure;
  /**
   * A limit of the inflater's own on the inflated size, below the caller's (see
   * `PerMessageDeflateOptions.maxInflatedSize`); the receiver refuses compressed messages
   * too long to inflate under it before gathering them. Absent: none.
   */
  readonly maxInflatedSize?: number;
}

/**
 * One connection's permessage-deflate: compresses messages to send and inflates
 * received ones, with the negotiated parameters. Synchronous; see the module doc for
 * memory. Call {@link PerMessageDeflate.close} when the connection ends. Its engine,
 * `node:zlib`, is imported on first need: the WebSocket attach calls await
 * {@link PerMessageDeflate.ready}; code that uses a codec on its own awaits it first.
 *
 * @example
 * ```ts
 * import { PerMessageDeflate } from "./deflate_codec.ts";
 *
 * await PerMessageDeflate.ready();
 * const params = {
 *   serverNoContextTakeover: false,
 *   clientNoContextTakeover: false,
 *   serverMaxWindowBits: 15,
 *   clientMaxWindowBits: 15,
 * };
 * const settings = { level: 6, memLevel: 8, threshold: 0 };
 * const server = new PerMessageDeflate(params, "server", settings);
 * const client = new PerMessageDeflate(params, "client", settings);
 * const packed = server.compress(new TextEncoder().encode("hello, hello, hello"))!;
 * const back = client.inflate(packed, 1024);
 * if (back instanceof Uint8Array) console.log(new TextDecoder().decode(back)); // hello, hello, hello
 * server.close();
 * client.close();
 * ```
 */
export class PerMessageDeflate implements MessageInflater {
  readonly #settings: DeflateCodecSettings;
  readonly #sendBits: number;
  readonly #sendTakeover: boolean;
  readonly #recvBits: number;
  readonly #recvTakeover: boolean;
  readonly #budget: DeflateBudget | null;
  readonly #reservedBytes: number;
  #deflater: SyncZlib | null = null;
  #inflater: SyncZlib | null = null;
  #closed = false;

  /**
   * Makes the codec; zlib states are created on the first message that needs them.
   *
   * @param params the negotiated parameters
   * @param role which side this connection is
   * @param settings compression level, memory level and threshold
   * @param budget the budget this connection reserved its kept states from
   *   ({@link PerMessageDeflate.reservation} bytes), released by `close`; `null` if none
   */
  constructor(
    params: DeflateParams,
    role: "server" | "client",
    settings: DeflateCodecSettings,
    budget: DeflateBudget | null = null,
  ) {
    this.#settings = settings;
    const server = role === "server";
    this.#sendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    this.#sendTakeover =
      !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.#recvBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    this.#recvTakeover =
      !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
    this.#budget = budget;
    this.#reservedBytes = PerMessageDeflate.reservation(params, role, settings.memLevel);
  }

  /**
   * Imports the compression engine (`node:zlib`) once; resolves at once after that.
   * Before it resolved, compressing or inflating fails with `ENOTSUP`.
   *
   * @throws {DillError} `ENOTSUP` when the runtime has no `node:zlib`
   *
   * @example
   * ```ts
   * import { PerMessageDeflate } from "./deflate_codec.ts";
   *
   * await PerMessageDeflate.ready();
   * ```
   */
  static ready(): Promise<void> {
    return loadZlib();
  }

  /** The settings' `maxInflatedSize`, if any: see {@link MessageInflater.maxInflatedSize}. */
  get maxInflatedSize(): number | undefined {
    return this.#settings.maxInflatedSize;
  }

  /**
   * Bytes of zlib state a connection with these parameters keeps between messages:
   * what it reserves from a {@link DeflateBudget}.
   *
   * @param params the negotiated parameters
   * @param role which side
   * @param memLevel our compressor's memory level
   * @returns bytes (0 without context takeover both ways)
   *
   * @example
   * ```ts
   * import { PerMessageDeflate } from "./deflate_codec.ts";
   *
   * const params = {
   *   serverNoContextTakeover: true,
   *   clientNoContextTakeover: true,
   *   serverMaxWindowBits: 15,
   *   clientMaxWindowBits: 15,
   * };
   * console.log(PerMessageDeflate.reservation(params, "server", 8)); // 0
   * ```
   */
  static reservation(params: DeflateParams, role: "server" | "client", memLevel: number): number {
    const server = role === "server";
    const sendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    const sendKept = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    const recvBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    const recvKept = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
    let bytes = 0;
    if (sendKept && sendBits > 8) bytes += deflateMemory(sendBits, memLevel);
    if (recvKept) bytes += deflateMemory(recvBits, null);
    return bytes;
  }

  /**
   * Compresses one message for sending: the DEFLATE data of a sync flush without its
   * `00 00 ff ff` tail, to send with RSV1 on the first frame. Returns `null` when the
   * message goes uncompressed: shorter than the threshold, or the negotiated window is
   * 8 bits, which zlib cannot compress with (RFC 7692 lets any message go uncompressed).
   *
   * @param payload the whole message
   * @returns the compressed payload, or `null` to send `payload` as is
   * @throws {DillError} `EBADF` after {@link PerMessageDeflate.close}
   */
  compress(payload: Uint8Array): Uint8Array | null {
    if (this.#closed) throw new DillError("EBADF", "permessage-deflate: closed");
    if (payload.length < this.#settings.threshold || this.#sendBits < 9) return null;
    const { level, memLevel } = this.#settings;
    const zlib = this.#sendTakeover
      ? this.#deflater ??= new SyncZlib("deflate", { windowBits: this.#sendBits, level, memLevel })
      : sharedState("deflate", this.#sendBits, level, memLevel);
    const pieces: Uint8Array[] = [];
    let length = 0;
    try {
      zlib.write(payload, true, (chunk) => {
        pieces.push(chunk.slice());
        length += chunk.length;
        return true;
      });
    } finally {
      if (!this.#sendTakeover) zlib.reset();
    }
    const out = concatBytes(pieces);
    // A sync flush always ends with the empty stored block's 00 00 ff ff.
    return out.subarray(0, out.length - SYNC_TAIL.length);
  }

  /**
   * Inflates one received message (its payload without the tail, which is put back
   * here). Output is counted as it is produced: past `maxSize` bytes (or the settings'
   * `maxInflatedSize`, if smaller) the inflate stops
   * with 1009, having produced at most 16 KiB more than `maxSize`. Invalid data fails
   * with 1007, and so does a message that does not end between DEFLATE blocks (a
   * conforming sender's data always ends with an empty stored block, RFC 7692 7.2.1;
   * otherwise the unfinished block would run on into the next message). A message that
   * ends its DEFLATE stream with a final block (BFINAL) is accepted; the window then
   * starts empty for the next message.
   *
   * @param payload the compressed message as received
   * @param maxSize largest inflated size accepted
   * @returns the inflated message, or why it failed
   * @throws {DillError} `EBADF` after {@link PerMessageDeflate.close}
   */
  inflate(payload: Uint8Array, maxSize: number): Uint8Array | InflateFailure {
    if (this.#closed) throw new DillError("EBADF", "permessage-deflate: closed");
    maxSize = Math.min(maxSize, this.#settings.maxInflatedSize ?? Infinity);
    // No DEFLATE data at all (RFC 7692 makes an empty message `00`, but an empty payload
    // is unambiguous): an empty message, leaving the window as it was. Fed to zlib, the
    // tail alone would leave it inside a stored block header.
    if (payload.length === 0) return new Uint8Array(0);
    const zlib = this.#recvTakeover
      ? this.#inflater ??= new SyncZlib("inflate", { windowBits: this.#recvBits })
      : sharedState("inflate", this.#recvBits, 0, 0);
    const pieces: Uint8Array[] = [];
    let length = 0;
    let tooBig = false;
    const sink = (chunk: Uint8Array) => {
      length += chunk.length;
      if (length > maxSize) {
        tooBig = true;
        return false;
      }
      pieces.push(chunk.slice());
      return true;
    };
    let failure: InflateFailure | null = null;
    try {
      const body = zlib.write(payload, false, sink);
      if (!tooBig && body.ended && body.consumed < payload.length) {
        failure = {
          code: CloseCode.INVALID_PAYLOAD,
          message: "compressed message has data after its final deflate block",
        };
      } else if (!tooBig) {
        const before = length;
        const tail = zlib.write(SYNC_TAIL, true, sink);
        // After a final block the tail is not consumed: the stream is over; start anew.
        if (body.ended || tail.ended) zlib.reset();
        else if (!tooBig && !(length === before && atBlockBoundary(zlib))) {
          failure = {
            code: CloseCode.INVALID_PAYLOAD,
            message: "compressed message does not end on a deflate block boundary",
          };
        }
      }
    } catch (e) {
      failure = {
        code: CloseCode.INVALID_PAYLOAD,
        message: e instanceof Error ? e.message : String(e),
      };
    }
    if (tooBig) {
      failure = {
        code: CloseCode.MESSAGE_TOO_BIG,
        message: `inflated message is over the limit of ${maxSize} bytes`,
      };
    }
    if (failure !== null || !this.#recvTakeover) zlib.reset();
    return failure ?? concatBytes(pieces);
  }

  /** Frees the kept zlib states and gives back the budget reservation. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#deflater?.close();
    this.#inflater?.close();
    this.#deflater = this.#inflater = null;
    this.#budget?.release(this.#reservedBytes);
  }
}

/**
 * A permessage-deflate the server side negotiated (`wsAcceptUpgrade`'s `deflate`): the
 * parameters, the settings, and the bytes reserved for them in a {@link DeflateBudget}.
 * A socket turns it into its codec with {@link NegotiatedDeflate.takeCodec} (the codec
 * then owns the reservation); a caller that will not attach a socket gives the
 * reservation back with {@link NegotiatedDeflate.release}.
 *
 * @example
 * ```ts
 * import { DeflateBudget } from "./deflate_budget.ts";
 * import { NegotiatedDeflate } from "./deflate_codec.ts";
 *
 * const budget = new DeflateBudget(1 << 20);
 * const params = {
 *   serverNoContextTakeover: true,
 *   clientNoContextTakeover: false,
 *   serverMaxWindowBits: 15,
 *   clientMaxWindowBits: 12,
 * };
 * const settings = { level: 6, memLevel: 5, threshold: 128 };
 * budget.tryReserve(NegotiatedDeflate.reservation(params, settings));
 * const negotiated = new NegotiatedDeflate(params, settings, budget);
 * negotiated.release();
 * console.log(budget.reserved); // 0
 * ```
 */
export class NegotiatedDeflate {
  /** What both sides agreed on. */
  readonly params: DeflateParams;
  readonly #settings: DeflateCodecSettings;
  readonly #budget: DeflateBudget;
  #state: "reserved" | "taken" | "released" = "reserved";

  /**
   * Bytes a server side with these parameters and settings reserves.
   *
   * @param params the agreed parameters
   * @param settings our compressor's settings
   * @returns bytes, as {@link PerMessageDeflate.reservation} counts them for a server
   */
  static reservation(params: DeflateParams, settings: DeflateCodecSettings): number {
    return PerMessageDeflate.reservation(params, "server", settings.memLevel);
  }

  /**
   * Wraps a negotiation whose {@link NegotiatedDeflate.reservation} bytes the caller
   * already reserved in `budget`.
   *
   * @param params the agreed parameters
   * @param settings compression level, memory level and threshold
   * @param budget where the bytes are reserved
   */
  constructor(params: DeflateParams, settings: DeflateCodecSettings, budget: DeflateBudget) {
    this.params = params;
    this.#settings = settings;
    this.#budget = budget;
  }

  /** Whether the reservation is still here: neither taken by a codec nor released. */
  get available(): boolean {
    return this.#state === "reserved";
  }

  /**
   * The server side's codec, which now owns the reservation (its `close` releases it).
   *
   * @returns the codec
   * @throws {DillError} `EINVAL` if a codec was already taken or the reservation released
   */
  takeCodec(): PerMessageDeflate {
    if (this.#state !== "reserved") {
      throw new DillError("EINVAL", `this permessage-deflate negotiation was ${this.#state}`);
    }
    this.#state = "taken";
    return new PerMessageDeflate(this.params, "server", this.#settings, this.#budget);
  }

  /** Gives the reservation back if no codec took it. Idempotent. */
  release(): void {
    if (this.#state !== "reserved") return;
    this.#state = "released";
    this.#budget.release(NegotiatedDeflate.reservation(this.params, this.#settings));
  }
}
