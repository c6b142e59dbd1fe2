/**
 * Negotiating permessage-deflate (RFC 7692 section 7.1), both sides, without I/O: the
 * options, the server's choice among a client's offers and its answer, the client's
 * offer and its check of the server's answer. The result is a {@link DeflateParams},
 * which `./deflate_codec.ts` turns into a compressor and decompressor.
 *
 * The four parameters, seen from the side that compresses:
 *
 * - `server_no_context_takeover` / `client_no_context_takeover`: that side starts every
 *   message with an empty window, so its peer's decompressor need not keep one;
 * - `server_max_window_bits` / `client_max_window_bits`: that side's LZ77 window is at
 *   most 2^N bytes (8 ≤ N ≤ 15), which bounds the peer's decompressor memory.
 *
 * @module
 */

import { DillError } from "./errors.ts";
import { checkAmount, checkWholeNumber } from "./option_checks.ts";
import { type Extension, type ExtensionParam, formatExtension } from "./extensions.ts";

/** The registered name of the extension. */
export const PERMESSAGE_DEFLATE = "permessage-deflate";

/** What both sides agreed on. Window bits are 8 to 15 (15 when not negotiated). */
export interface DeflateParams {
  /** The server compresses every message with an empty window. */
  readonly serverNoContextTakeover: boolean;
  /** The client compresses every message with an empty window. */
  readonly clientNoContextTakeover: boolean;
  /** The server's LZ77 window is at most 2^this bytes. */
  readonly serverMaxWindowBits: number;
  /** The client's LZ77 window is at most 2^this bytes. */
  readonly clientMaxWindowBits: number;
}

/**
 * Settings of permessage-deflate (the `perMessageDeflate` option of both sides). Every
 * field is optional; the defaults favour memory (about 180 KiB per connection with
 * context takeover both ways, see the README) over the last few percent of
 * compression, as python-websockets does.
 *
 * Parameters, on a server:
 * - `serverNoContextTakeover`: always answer `server_no_context_takeover` (ours is then
 *   stateless between messages). Default `false`.
 * - `clientNoContextTakeover`: always answer `client_no_context_takeover` (our
 *   decompressor is then stateless). Default `false`.
 * - `serverMaxWindowBits`: our compressor's window, 9–15 (8 is refused: zlib cannot
 *   compress with a 256-byte window). Default 12.
 * - `clientMaxWindowBits`: the window asked of the client when it offers
 *   `client_max_window_bits`, 8–15. Default 12.
 * - `requireClientMaxWindowBits`: decline offers without `client_max_window_bits`
 *   (else they are accepted and the client uses a 32 KiB window). Default `false`.
 *
 * On a client:
 * - `serverNoContextTakeover`: offer `server_no_context_takeover` (required in the answer).
 * - `clientNoContextTakeover`: offer `client_no_context_takeover` (we then never keep a
 *   window between messages).
 * - `serverMaxWindowBits`: offer `server_max_window_bits=N`, 8–15. Default: not offered.
 * - `clientMaxWindowBits`: offer `client_max_window_bits=N` and compress with at most
 *   that window, 9–15. Default 12.
 *
 * Both: `level` (0–9, default 6), `memLevel` (1–9, default 5), `threshold` (messages
 * shorter than this many bytes are sent uncompressed, default 128), `maxInflatedSize`
 * (largest inflated size of a received compressed message, default 4 MiB; see below).
 *
 * Why `maxInflatedSize` is smaller than `maxMessageSize`'s default (64 MiB): DEFLATE
 * expands up to about 1000 to 1, so under `maxMessageSize` alone 64 KiB sent by a peer
 * becomes a 64 MiB message held until the application reads it, on every connection.
 * A compressed message is held to the smaller of the two limits (over it: 1009 and
 * `EMSGSIZE`); uncompressed messages cost the peer a byte sent per byte held and keep
 * `maxMessageSize`. Raise it for peers known to send large compressed messages.
 *
 * @example
 * ```ts
 * import { resolveDeflateOptions } from "./permessage_deflate.ts";
 *
 * console.log(resolveDeflateOptions({ threshold: 0 }).memLevel); // 5
 * ```
 */
export interface PerMessageDeflateOptions {
  /** See above: on a server, always answered; on a client, requested. Default `false`. */
  serverNoContextTakeover?: boolean;
  /** See above: on a server, always answered; on a client, offered. Default `false`. */
  clientNoContextTakeover?: boolean;
  /** The server's window in bits. Server default 12; client default: not requested. */
  serverMaxWindowBits?: number;
  /** The client's window in bits. Default 12. */
  clientMaxWindowBits?: number;
  /** Server only: decline offers that cannot limit the client's window. Default `false`. */
  requireClientMaxWindowBits?: boolean;
  /** zlib compression level, 0 (store) to 9 (smallest). Default 6. */
  level?: number;
  /**
   * zlib memory level of our compressor, 1 to 9: stock zlib's figure is 2^(memLevel+9) bytes
   * of match state (measured on Deno, less: see `deflateMemory`). Default 5.
   */
  memLevel?: number;
  /** Messages shorter than this many bytes are sent uncompressed. Default 128. */
  threshold?: number;
  /**
   * Largest inflated size of a received compressed message, in bytes; the smaller of
   * this and `maxMessageSize` applies (over it: close 1009, `EMSGSIZE`). Default 4 MiB.
   */
  maxInflatedSize?: number;
}

/** {@link PerMessageDeflateOptions} with every default filled in. */
export interface ResolvedDeflateOptions {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  /** `null`: not requested (client side only). */
  readonly serverMaxWindowBits: number | null;
  readonly clientMaxWindowBits: number;
  readonly requireClientMaxWindowBits: boolean;
  readonly level: number;
  readonly memLevel: number;
  readonly threshold: number;
  readonly maxInflatedSize: number;
}

/** Default of {@link PerMessageDeflateOptions.maxInflatedSize}: 4 MiB. */
export const DEFAULT_MAX_INFLATED_SIZE = 4 * 1024 * 1024;

/**
 * Fills in the defaults and checks the ranges.
 *
 * @param options the caller's settings
 * @param side `"server"` (the default) or `"client"`: only the server window default differs
 * @returns the settings with every default
 * @throws {DillError} `EINVAL` for a value out of range
 *
 * @example
 * ```ts
 * import { resolveDeflateOptions } from "./permessage_deflate.ts";
 *
 * console.log(resolveDeflateOptions({}, "client").serverMaxWindowBits); // null
 * ```
 */
export function resolveDeflateOptions(
  options: PerMessageDeflateOptions,
  side: "server" | "client" = "server",
): ResolvedDeflateOptions {
  if (typeof options !== "object" || options === null) {
    throw new DillError("EINVAL", "perMessageDeflate must be a boolean or an object");
  }
  const int = (name: keyof PerMessageDeflateOptions, fallback: number, min: number, max = 15) => {
    const value = options[name] ?? fallback;
    checkWholeNumber(`perMessageDeflate.${name}`, value, min, max);
    return value;
  };
  const flag = (name: keyof PerMessageDeflateOptions) => {
    const value = options[name] ?? false;
    if (typeof value !== "boolean") {
      throw new DillError("EINVAL", `perMessageDeflate.${name} must be a boolean`);
    }
    return value;
  };
  // Our own compressor needs at least 9 bits; the peer's window may be 8.
  const ownMin = 9;
  const serverBits = side === "client"
    ? (options.serverMaxWindowBits === undefined ? null : int("serverMaxWindowBits", 15, 8))
    : int("serverMaxWindowBits", 12, ownMin);
  const threshold = options.threshold ?? 128;
  checkAmount("perMessageDeflate.threshold", threshold);
  const maxInflatedSize = options.maxInflatedSize ?? DEFAULT_MAX_INFLATED_SIZE;
  checkAmount("perMessageDeflate.maxInflatedSize", maxInflatedSize);
  return {
    serverNoContextTakeover: flag("serverNoContextTakeover"),
    clientNoContextTakeover: flag("clientNoContextTakeover"),
    serverMaxWindowBits: serverBits,
    clientMaxWindowBits: int("clientMaxWindowBits", 12, side === "client" ? ownMin : 8),
    requireClientMaxWindowBits: flag("requireClientMaxWindowBits"),
    level: int("level", 6, 0, 9),
    memLevel: int("memLevel", 5, 1, 9),
    threshold,
    maxInflatedSize,
  };
}

/** The parameters of one offer or answer, each at most once. */
interface ParsedParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** `undefined`: absent. */
  serverMaxWindowBits?: number;
  /** `undefined`: absent; `null`: present without a value. */
  clientMaxWindowBits?: number | null;
}

/** Window bits as RFC 7692 writes them: 8 to 15, decimal, no leading zero. */
function windowBits(value: string | null): number | null {
  return value !== null && /^(?:[89]|1[0-5])$/.test(value) ? Number(value) : null;
}

/**
 * Reads the parameters of one permessage-deflate element. Returns the reason it is
 * invalid instead: an unknown or repeated parameter, or a bad value (RFC 7692 7.1).
 * `inAnswer`: `client_max_window_bits` then needs a value.
 */
function readParams(params: ExtensionParam[], inAnswer: boolean): ParsedParams | string {
  const seen = new Set<string>();
  const out: ParsedParams = { serverNoContextTakeover: false, clientNoContextTakeover: false };
  for (const { name, value } of params) {
    if (seen.has(name)) return `parameter ${name} is repeated`;
    seen.add(name);
    switch (name) {
      case "server_no_context_takeover":
      case "client_no_context_takeover":
        if (value !== null) return `parameter ${name} takes no value`;
        if (name === "server_no_context_takeover") out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case "server_max_window_bits": {
        const bits = windowBits(value);
        if (bits === null) return `server_max_window_bits=${value} is not 8 to 15`;
        out.serverMaxWindowBits = bits;
        break;
      }
      case "client_max_window_bits": {
        if (value === null && !inAnswer) {
          out.clientMaxWindowBits = null;
          break;
        }
        const bits = windowBits(value);
        if (bits === null) return `client_max_window_bits=${value} is not 8 to 15`;
        out.clientMaxWindowBits = bits;
        break;
      }
      default:
        return `unknown parameter ${name}`;
    }
  }
  return out;
}

/** The server's decision: the parameters and the `Sec-WebSocket-Extensions` answer. */
export interface DeflateAgreement {
  /** What both sides will use. */
  readonly params: DeflateParams;
  /** The header value to answer with. */
  readonly answer: string;
}

/**
 * The server side of the negotiation: picks the first permessage-deflate offer it can
 * accept (offers are in the client's order of preference) and writes its answer.
 * Offers with an unknown or repeated parameter or an invalid value are declined, as
 * RFC 7692 section 5 says; other extensions are ignored. Declining every offer is not
 * an error: the connection runs uncompressed.
 *
 * `stateless` asks for no context takeover both ways (the answer may always include
 * both parameters): the caller sets it when its memory budget for kept windows is
 * spent, see `./deflate_codec.ts`.
 *
 * @param offers the client's extension list, from `parseExtensions`
 * @param options the server's resolved settings
 * @param stateless answer with both `*_no_context_takeover` parameters
 * @returns the agreement, or `null` when no offer is acceptable
 *
 * @example
 * ```ts
 * import { parseExtensions } from "./extensions.ts";
 * import { negotiateDeflate, resolveDeflateOptions } from "./permessage_deflate.ts";
 *
 * const offers = parseExtensions("permessage-deflate; client_max_window_bits");
 * const agreed = negotiateDeflate(offers, resolveDeflateOptions({}), false);
 * console.log(agreed?.answer);
 * // permessage-deflate; server_max_window_bits=12; client_max_window_bits=12
 * ```
 */
export function negotiateDeflate(
  offers: Extension[],
  options: ResolvedDeflateOptions,
  stateless: boolean,
): DeflateAgreement | null {
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const asked = readParams(offer.params, false);
    if (typeof asked === "string") continue;
    if (asked.clientMaxWindowBits === undefined && options.requireClientMaxWindowBits) continue;

    const serverNoContextTakeover = asked.serverNoContextTakeover ||
      options.serverNoContextTakeover || stateless;
    const clientNoContextTakeover = asked.clientNoContextTakeover ||
      options.clientNoContextTakeover || stateless;
    const ownBits = options.serverMaxWindowBits ?? 15;
    // A smaller window asked by the client binds us; 8 is answered as asked, and then
    // we simply never compress (zlib cannot honour it; see deflate_codec.ts).
    const serverMaxWindowBits = Math.min(asked.serverMaxWindowBits ?? 15, ownBits);
    let clientMaxWindowBits = 15;
    if (asked.clientMaxWindowBits !== undefined) {
      clientMaxWindowBits = Math.min(asked.clientMaxWindowBits ?? 15, options.clientMaxWindowBits);
    }

    const params: ExtensionParam[] = [];
    if (serverNoContextTakeover) params.push({ name: "server_no_context_takeover", value: null });
    if (clientNoContextTakeover) params.push({ name: "client_no_context_takeover", value: null });
    if (serverMaxWindowBits < 15 || asked.serverMaxWindowBits !== undefined) {
      params.push({ name: "server_max_window_bits", value: String(serverMaxWindowBits) });
    }
    if (asked.clientMaxWindowBits !== undefined && clientMaxWindowBits < 15) {
      params.push({ name: "client_max_window_bits", value: String(clientMaxWindowBits) });
    }
    return {
      params: {
        serverNoContextTakeover,
        clientNoContextTakeover,
        serverMaxWindowBits,
        clientMaxWindowBits,
      },
      answer: formatExtension({ name: PERMESSAGE_DEFLATE, params }),
    };
  }
  return null;
}

/**
 * The client's offer: one permessage-deflate element with the parameters the options
 * ask for. `client_max_window_bits` is always offered (with our window as its value), so
 * servers may shrink our window. `stateless` adds both `*_no_context_takeover`
 * parameters (the caller's memory budget for kept windows is spent).
 *
 * @param options the client's resolved settings
 * @param stateless offer without context takeover both ways
 * @returns the `Sec-WebSocket-Extensions` value to send
 *
 * @example
 * ```ts
 * import { deflateOffer, resolveDeflateOptions } from "./permessage_deflate.ts";
 *
 * console.log(deflateOffer(resolveDeflateOptions({}, "client"), false));
 * // permessage-deflate; client_max_window_bits=12
 * ```
 */
export function deflateOffer(options: ResolvedDeflateOptions, stateless: boolean): string {
  const params: ExtensionParam[] = [];
  if (options.serverNoContextTakeover || stateless) {
    params.push({ name: "server_no_context_takeover", value: null });
  }
  if (options.clientNoContextTakeover || stateless) {
    params.push({ name: "client_no_context_takeover", value: null });
  }
  if (options.serverMaxWindowBits !== null) {
    params.push({ name: "server_max_window_bits", value: String(options.serverMaxWindowBits) });
  }
  params.push({ name: "client_max_window_bits", value: String(options.clientMaxWindowBits) });
  return formatExtension({ name: PERMESSAGE_DEFLATE, params });
}

/**
 * The client side: checks the server's `Sec-WebSocket-Extensions` answer against the
 * offer made with these options (RFC 7692 7.1). The answer must be a single
 * permessage-deflate element with known parameters, each once, with valid values; it
 * must keep `server_no_context_takeover` and `server_max_window_bits` if they were
 * asked, and may only shrink what was offered.
 *
 * @param answer the server's extension list, from `parseExtensions` (empty: declined)
 * @param options the settings the offer was made with, or `null` if nothing was offered
 * @param stateless whether the offer asked for no context takeover both ways
 * @returns the agreed parameters, or `null` when the server declined
 * @throws {DillError} `EPROTO` naming what the server got wrong
 *
 * @example
 * ```ts
 * import { parseExtensions } from "./extensions.ts";
 * import { checkDeflateAnswer, resolveDeflateOptions } from "./permessage_deflate.ts";
 *
 * const options = resolveDeflateOptions({}, "client");
 * const answer = parseExtensions("permessage-deflate; server_no_context_takeover");
 * console.log(checkDeflateAnswer(answer, options, false)?.serverNoContextTakeover); // true
 * ```
 */
export function checkDeflateAnswer(
  answer: Extension[],
  options: ResolvedDeflateOptions | null,
  stateless: boolean,
): DeflateParams | null {
  if (answer.length === 0) return null;
  const fail = (why: string): never => {
    throw new DillError("EPROTO", `server's Sec-WebSocket-Extensions answer: ${why}`);
  };
  if (options === null) fail("it accepts an extension although none was offered");
  if (answer.length > 1) fail("it accepts more than one extension; one was offered");
  const [element] = answer;
  if (element.name !== PERMESSAGE_DEFLATE) {
    fail(`it accepts ${element.name}, which was not offered`);
  }
  const got = readParams(element.params, true);
  if (typeof got === "string") return fail(got);
  const offered = options!;
  if ((offered.serverNoContextTakeover || stateless) && !got.serverNoContextTakeover) {
    fail("server_no_context_takeover was asked for and is missing");
  }
  if (offered.serverMaxWindowBits !== null) {
    if (got.serverMaxWindowBits === undefined) fail("server_max_window_bits was asked for");
    if (got.serverMaxWindowBits! > offered.serverMaxWindowBits) {
      fail(`server_max_window_bits=${got.serverMaxWindowBits} is over the offered value`);
    }
  }
  const clientBits = got.clientMaxWindowBits ?? offered.clientMaxWindowBits;
  if (clientBits > offered.clientMaxWindowBits) {
    fail(`client_max_window_bits=${clientBits} is over the offered value`);
  }
  return {
    serverNoContextTakeover: got.serverNoContextTakeover,
    clientNoContextTakeover: got.clientNoContextTakeover || offered.clientNoContextTakeover ||
      stateless,
    serverMaxWindowBits: got.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: clientBits,
  };
}
