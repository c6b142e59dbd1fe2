/**
 * Flags and options of the WebSocket layer, with their defaults in one place.
 *
 * @module
 */

import type { DeflateBudget } from "../protocol/deflate_budget.ts";
import type { NegotiatedDeflate } from "../protocol/deflate_codec.ts";
import { DillError } from "../protocol/errors.ts";
import type { HttpLimits, HttpRequestHead } from "../protocol/http11.ts";
import type { PerMessageDeflateOptions } from "../protocol/permessage_deflate.ts";
import { checkAmount, checkWholeNumber } from "../protocol/option_checks.ts";
import { MAX_TIMER_MS } from "./time.ts";

/**
 * Binary socket: `msend` sends binary messages, `mrecv` accepts binary ones. The default.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, WS_BINARY, WS_NOHTTP, wsAttachServer } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const { handle } = await wsAttachServer(a, WS_BINARY | WS_NOHTTP, -1);
 * hclose(handle);
 * hclose(b);
 * ```
 */
export const WS_BINARY = 0;
/**
 * Text socket: `msend` sends text messages, `mrecv` accepts text ones.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, WS_NOHTTP, WS_TEXT, wsAttachClient } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const { handle } = await wsAttachClient(b, WS_TEXT | WS_NOHTTP, "/", "localhost", -1);
 * hclose(handle);
 * hclose(a);
 * ```
 */
export const WS_TEXT = 1;
/**
 * Skip the HTTP handshake: the caller already did it. Combine with `WS_TEXT`/`WS_BINARY`.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, WS_NOHTTP, wsAttachServer } from "../mod.ts";
 *
 * const [a, b] = ipcPair(); // the handshake happened elsewhere
 * const { handle } = await wsAttachServer(a, WS_NOHTTP, -1);
 * hclose(handle);
 * hclose(b);
 * ```
 */
export const WS_NOHTTP = 2;

/** A message type: {@link WS_BINARY} or {@link WS_TEXT}. */
export type WsType = typeof WS_BINARY | typeof WS_TEXT;

/** Options common to both sides. Every limit has a default; every timer is off unless set. */
export interface WsOptions {
  /** Largest message (all fragments together) accepted; larger ones close with 1009 and `EMSGSIZE`. Default 64 MiB. */
  maxMessageSize?: number;
  /** Received bytes buffered for a reader that is behind before reading from the socket pauses. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Complete messages queued for a reader that is behind before reading pauses. Default 1024. */
  maxQueuedMessages?: number;
  /**
   * Receive calls that may wait at once (a whole number >= 1); more fail with `EBUSY`. On a
   * `wsUpgrade` socket it also bounds the sends waiting their turn. Default 1024.
   */
  maxWaitingCalls?: number;
  /**
   * Bytes of pongs (whole frames) we may owe the peer at once: pongs handed to the
   * bytestream and not written yet. Every ping is answered; while owed pongs use up this
   * budget (a peer that floods pings and does not read), we stop parsing and reading
   * until they drain, so a ping flood cannot grow memory. One pong is always allowed.
   * Default 64 KiB (about 500 pongs of the largest ping).
   */
  maxPongBytes?: number;
  /**
   * When the peer breaks the protocol after messages the application has not received
   * yet, those messages are still delivered, and what the application sends meanwhile
   * goes out before our close frame (1002/1007/1009): the connection fails when the
   * application asks for a message past them, or this many ms after the violation,
   * whichever comes first. `0` fails at once. Default 1000.
   */
  failGrace?: number;
  /**
   * What happens to our sending half when the peer's close frame arrives. `0` (the
   * default): we answer with our close at once (RFC 6455 5.5.1: "as soon as
   * practical"), so sending ends with receiving. More than `0`: libdill's half-close:
   * receiving ends (`EPIPE`) but the application may keep sending until it calls
   * `wsDone` (whose status is then our reply), `wsDetach` or `hclose`; after this many
   * ms our close goes anyway, so a peer never waits forever on a forgotten handle.
   */
  halfCloseTimeout?: number;
  /** Limits on the HTTP handshake head (size and header count). Defaults: 8 KiB, 64 headers. */
  httpLimits?: HttpLimits;
  /**
   * Keepalive: when nothing has arrived for this many ms, send a ping. `0` turns it off.
   * Default 0 (off). While reading is paused (the application is behind), the peer is
   * not judged and no ping goes: its answer could not be read.
   */
  pingInterval?: number;
  /**
   * How long the peer has to answer: after a keepalive ping, and, while `pingInterval` or
   * `idleTimeout` is on, after our close frame (`wsDone`, `wsDetach`, the idle close).
   * When nothing arrives in time the connection fails (`ECONNRESET`, status 1006). It must
   * cover the time the peer needs to read what we sent before (a ping or a close waits
   * behind it in the socket). More than 0 (0 is `EINVAL`). Default 10 000.
   */
  pongTimeout?: number;
  /**
   * Close the connection cleanly (status 1001) when no message went either way for this
   * many ms. Pings and pongs do not count. `0` turns it off. Default 0 (off).
   */
  idleTimeout?: number;
  /**
   * Compression, permessage-deflate (RFC 7692): `true` (the default) with the default
   * settings, `false` to turn it off, or the settings (see `PerMessageDeflateOptions`:
   * which parameters to require, window bits, memory and compression levels, the size
   * below which messages go uncompressed) plus `budget`, the `DeflateBudget` kept
   * compression windows are reserved from (default `DeflateBudget.shared`, 64 MiB for
   * the process; when it is spent, new connections negotiate no context takeover and
   * keep no zlib state). Only with the HTTP handshake (not `WS_NOHTTP`). Anything else
   * (`null` too) is `EINVAL`.
   *
   * On by default because browsers always offer it and JSON traffic shrinks by 80% or
   * more; the memory it costs is bounded by the budget, and the default windows (12
   * bits, memLevel 5) keep about 180 KiB per connection with context takeover.
   */
  perMessageDeflate?: boolean | WsDeflateOptions;
}

/** The `perMessageDeflate` settings: the extension's options and the memory budget. */
export interface WsDeflateOptions extends PerMessageDeflateOptions {
  /** Where kept windows are reserved from. Default `DeflateBudget.shared` (64 MiB). */
  budget?: DeflateBudget;
}

/** Options of `wsAttachServer`. */
export interface WsServerOptions extends WsOptions {
  /**
   * After the closing handshake the server half-closes TCP by itself (RFC 6455 7.1.1),
   * this many ms later unless the application called `wsDetach` to reuse the bytestream
   * (libdill's pattern: `mrecv` fails with `EPIPE`, then `wsDetach`). Default 0: the next
   * turn of the event loop.
   */
  closeGrace?: number;
  /** Longest request target accepted (libdill's `resourcelen`); longer is `EMSGSIZE` + 414. Default 1024. */
  maxResourceLength?: number;
  /** Longest Host accepted (libdill's `hostlen`); longer is `EMSGSIZE` + 400. Default 256. */
  maxHostLength?: number;
  /** Subprotocols this server speaks, preferred first; the first one the client offers wins. */
  protocols?: string[];
  /** Decides on the `Origin` header (null when absent); `false` refuses the upgrade with 403. */
  checkOrigin?: (origin: string | null, request: HttpRequestHead) => boolean;
  /** Extra headers for the 101 answer. */
  responseHeaders?: [string, string][];
  /**
   * With `WS_NOHTTP` only: the permessage-deflate negotiated by the caller's own
   * handshake (the `deflate` of `wsAcceptUpgrade` called with `perMessageDeflate`, whose
   * answer already carries the header). The socket takes over its memory reservation; a
   * caller that does not attach must call its `release()`.
   */
  negotiatedDeflate?: NegotiatedDeflate;
}

/** Options of `wsAttachClient`. */
export interface WsClientOptions extends WsOptions {
  /** Subprotocols to offer, preferred first. */
  protocols?: string[];
  /** Extra request headers (such as `Authorization`); they may not replace handshake headers. */
  headers?: [string, string][];
  /** The `Origin` header to send, if any. */
  origin?: string;
}

/** The resolved limits and timers a WS actor runs with. */
export interface WsLimits {
  readonly maxMessageSize: number;
  readonly maxBufferedBytes: number;
  readonly maxQueuedMessages: number;
  readonly maxWaitingCalls: number;
  readonly maxPongBytes: number;
  readonly failGrace: number;
  readonly halfCloseTimeout: number;
  readonly pingInterval: number;
  readonly pongTimeout: number;
  readonly idleTimeout: number;
  readonly closeGrace: number;
}

/**
 * Fills in the defaults of the limits and timers; throws `EINVAL` for a value that is
 * not a non-negative number, before any handle is taken over.
 *
 * @example
 * ```ts
 * import { wsLimits } from "./ws_options.ts";
 *
 * console.log(wsLimits({ pingInterval: 30_000 }).pongTimeout); // 10000
 * ```
 */
export function wsLimits(options: WsServerOptions): WsLimits {
  const limits = resolveLimits(options);
  // Every connection keeps its limits: connections made with equal settings (a server's,
  // for every client it accepts) share one object.
  for (const shared of SHARED_LIMITS) if (sameLimits(limits, shared)) return shared;
  if (SHARED_LIMITS.length < MAX_SHARED_LIMITS) SHARED_LIMITS.push(Object.freeze(limits));
  return limits;
}

/** Limits handed out so far, frozen, for {@link wsLimits} to share: the first few sets. */
const SHARED_LIMITS: WsLimits[] = [];
/** More distinct sets than this are not shared (each connection keeps its own copy). */
const MAX_SHARED_LIMITS = 16;

function resolveLimits(options: WsServerOptions): WsLimits {
  if (typeof options !== "object" || options === null) {
    throw new DillError("EINVAL", "WebSocket options must be an object");
  }
  const pick = (name: keyof WsLimits, fallback: number): number => {
    const value = options[name] ?? fallback;
    checkAmount(`option ${name}`, value);
    return value;
  };
  // Durations become timers: setTimeout cannot wait longer than MAX_TIMER_MS.
  const pickMs = (name: keyof WsLimits, fallback: number): number => {
    const value = options[name] ?? fallback;
    checkAmount(`option ${name}`, value, MAX_TIMER_MS, " ms (about 24.8 days)");
    return value;
  };
  // Unlike the timers that 0 turns off, 0 here would fail the connection on the first
  // timer tick after every ping, before any real peer could answer.
  const pickPositiveMs = (name: keyof WsLimits, fallback: number): number => {
    const value = pickMs(name, fallback);
    if (value === 0) throw new DillError("EINVAL", `option ${name} must be more than 0 ms`);
    return value;
  };
  // A count of calls, as on a bytestream: 0 would fail every receive that waits (EBUSY).
  const pickCount = (name: keyof WsLimits, fallback: number): number => {
    const value = options[name] ?? fallback;
    checkWholeNumber(`option ${name}`, value, 1);
    return value;
  };
  const limits: WsLimits = {
    maxMessageSize: pick("maxMessageSize", 64 * 1024 * 1024),
    maxBufferedBytes: pick("maxBufferedBytes", 1024 * 1024),
    maxQueuedMessages: pick("maxQueuedMessages", 1024),
    maxWaitingCalls: pickCount("maxWaitingCalls", 1024),
    maxPongBytes: pick("maxPongBytes", 64 * 1024),
    failGrace: pickMs("failGrace", 1000),
    halfCloseTimeout: pickMs("halfCloseTimeout", 0),
    pingInterval: pickMs("pingInterval", 0),
    pongTimeout: pickPositiveMs("pongTimeout", 10_000),
    idleTimeout: pickMs("idleTimeout", 0),
    closeGrace: pickMs("closeGrace", 0),
  };
  return limits;
}

function sameLimits(a: WsLimits, b: WsLimits): boolean {
  for (const key in a) if (a[key as keyof WsLimits] !== b[key as keyof WsLimits]) return false;
  return true;
}
