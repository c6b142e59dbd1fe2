/**
 * permessage-deflate for the WS actor: resolving the `perMessageDeflate` option, the
 * client's offer with its memory reservation, and the client's codec once the server
 * answered. The rules themselves are in `../protocol/permessage_deflate.ts`.
 *
 * @module
 */

import { DeflateBudget } from "../protocol/deflate_budget.ts";
import { PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { DillError } from "../protocol/errors.ts";
import {
  deflateOffer,
  type DeflateParams,
  type ResolvedDeflateOptions,
  resolveDeflateOptions,
} from "../protocol/permessage_deflate.ts";
import type { WsDeflateOptions, WsOptions } from "./ws_options.ts";

/** Resolved `perMessageDeflate` settings, with the budget their zlib state counts against. */
export interface WsDeflateConfig {
  readonly options: ResolvedDeflateOptions;
  readonly budget: DeflateBudget;
}

/**
 * Resolves the `perMessageDeflate` option of one side (absent: on); throws `EINVAL` for
 * bad settings, `null` among them (it is neither on nor off).
 *
 * @param options the call's options
 * @param side which end negotiates
 * @param op the API call, for error messages
 *
 * @example
 * ```ts
 * import { wsDeflate } from "./ws_deflate.ts";
 *
 * console.log(wsDeflate({ perMessageDeflate: false }, "server")); // null
 * console.log(wsDeflate({}, "client")?.options.clientMaxWindowBits); // 12
 * ```
 */
export function wsDeflate(
  options: WsOptions,
  side: "server" | "client",
  op = side === "server" ? "wsAttachServer" : "wsAttachClient",
): WsDeflateConfig | null {
  const setting: unknown = options.perMessageDeflate === undefined
    ? true
    : options.perMessageDeflate;
  if (setting === false) return null;
  if (
    setting !== true && (setting === null || typeof setting !== "object" || Array.isArray(setting))
  ) {
    throw new DillError("EINVAL", `${op}: perMessageDeflate must be a boolean or settings`);
  }
  const settings = setting === true ? {} : setting as WsDeflateOptions;
  // Absent: the shared budget; anything else (null too) must be a budget.
  const budget = settings.budget === undefined ? DeflateBudget.shared : settings.budget;
  if (!(budget instanceof DeflateBudget)) {
    throw new DillError("EINVAL", `${op}: perMessageDeflate.budget must be a DeflateBudget`);
  }
  return { options: resolveDeflateOptions(settings, side), budget };
}

/** A client's permessage-deflate offer, with the memory reserved for it. */
export interface WsDeflateOffer extends WsDeflateConfig {
  /** The `Sec-WebSocket-Extensions` value sent. */
  readonly offer: string;
  /** The offer asks for no context takeover both ways: the budget was spent. */
  readonly stateless: boolean;
  /** Bytes reserved from `budget` for the largest answer the offer allows. */
  readonly reserved: number;
}

/**
 * Makes a client's offer: with context takeover if the budget can hold the windows the
 * largest acceptable answer needs (those bytes are then reserved; the caller trims the
 * reservation to the real answer, or releases it), else without.
 *
 * @example
 * ```ts
 * import { wsDeflate, wsDeflateOffer } from "./ws_deflate.ts";
 *
 * const offer = wsDeflateOffer(wsDeflate({}, "client"))!;
 * console.log(offer.offer); // permessage-deflate; client_max_window_bits=12
 * offer.budget.release(offer.reserved);
 * ```
 */
export function wsDeflateOffer(config: WsDeflateConfig | null): WsDeflateOffer | null {
  if (config === null) return null;
  const { options, budget } = config;
  const widest = PerMessageDeflate.reservation(
    {
      serverNoContextTakeover: options.serverNoContextTakeover,
      clientNoContextTakeover: options.clientNoContextTakeover,
      serverMaxWindowBits: options.serverMaxWindowBits ?? 15,
      clientMaxWindowBits: options.clientMaxWindowBits,
    },
    "client",
    options.memLevel,
  );
  const stateless = !budget.tryReserve(widest);
  return {
    options,
    budget,
    offer: deflateOffer(options, stateless),
    stateless,
    reserved: stateless ? 0 : widest,
  };
}

/**
 * The client's codec once the answer is known: trims the offer's reservation to what the
 * answer keeps (never more than the offer reserved, so it always fits) and builds the
 * codec, or releases everything when the server declined (`params` `null`).
 *
 * @example
 * ```ts
 * import { wsClientDeflate, wsDeflate, wsDeflateOffer } from "./ws_deflate.ts";
 *
 * const offer = wsDeflateOffer(wsDeflate({}, "client"))!;
 * console.log(wsClientDeflate(offer, null)); // null: declined, nothing stays reserved
 * ```
 */
export function wsClientDeflate(
  offer: WsDeflateOffer,
  params: DeflateParams | null,
): PerMessageDeflate | null {
  const { options, budget } = offer;
  budget.release(offer.reserved);
  if (params === null) return null;
  const kept = budget.tryReserve(PerMessageDeflate.reservation(params, "client", options.memLevel));
  return new PerMessageDeflate(params, "client", options, kept ? budget : null);
}
