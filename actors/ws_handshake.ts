/**
 * The opening handshake of one WebSocket connection, as the WS actor runs it: the
 * HTTP head is read from the bytes the stream delivers, then accepted (server: the
 * `101` answer) or checked (client), or refused with the HTTP error answer a server
 * owes a bad request. A plain object owned and driven by the actor; it does no I/O.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { deferHeaders } from "../protocol/deferred_headers.ts";
import { HttpError, HttpHeadReader } from "../protocol/http11.ts";
import { writeHttpErrorResponse } from "../protocol/http_write.ts";
import type { HttpLimits } from "../protocol/http11.ts";
import {
  acceptUpgrade,
  HandshakeError,
  type ServerHandshakeOptions,
} from "../protocol/handshake.ts";
import { checkUpgradeResponse } from "../protocol/handshake_client.ts";
import type { NegotiatedDeflate, PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { wsClientDeflate, type WsDeflateOffer } from "./ws_deflate.ts";

/** What a successful opening handshake reports. */
export interface WsAttachInfo {
  /** Request target (server side; `""` with `WS_NOHTTP`). */
  readonly resource: string;
  /** Host header (server side; `""` with `WS_NOHTTP`). */
  readonly host: string;
  /** The negotiated subprotocol, or `null`. */
  readonly protocol: string | null;
  /** The peer's handshake headers (request headers on the server, response headers on the client). */
  readonly headers: Headers;
}

/** How the WS actor starts: which side, and the handshake it runs. */
export type WsStart =
  | {
    readonly side: "server";
    readonly http: ServerHandshakeOptions | null;
    /** With `WS_NOHTTP`: the permessage-deflate the caller negotiated, or `null`. */
    readonly deflate: NegotiatedDeflate | null;
  }
  | {
    readonly side: "client";
    readonly http: {
      request: Uint8Array;
      key: string;
      protocols: string[];
      /** The permessage-deflate offer in `request`, whose reservation the handshake owns. */
      deflate: WsDeflateOffer | null;
    } | null;
  };

/** A finished handshake: what to report, what to answer, and the bytes that followed the head. */
export interface HandshakeDone {
  /** What the attach call resolves with. */
  readonly info: WsAttachInfo;
  /** The server's `101` answer (`null` on the client). */
  readonly response: Uint8Array | null;
  /** Bytes after the head: the first frames. */
  readonly rest: Uint8Array;
  /** The permessage-deflate codec, if negotiated: the connection now owns it. */
  readonly deflate: PerMessageDeflate | null;
}

/** A failed handshake: the error for the attach call and, on a server, the HTTP answer owed. */
export interface HandshakeRefusal {
  /** What the attach call fails with. */
  readonly error: DillError;
  /** The HTTP error answer to send before closing, or `null` when there is none. */
  readonly response: Uint8Array | null;
}

/**
 * Reads and judges the peer's HTTP head for one connection.
 *
 * @example
 * ```ts
 * import { OpeningHandshake } from "./ws_handshake.ts";
 *
 * const hs = new OpeningHandshake({ side: "server", http: {}, deflate: null });
 * const head = "GET /chat HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n" +
 *   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
 *   "Sec-WebSocket-Version: 13\r\n\r\n";
 * const done = hs.feed(new TextEncoder().encode(head));
 * console.log(done?.info.resource); // "/chat"
 * ```
 */
export class OpeningHandshake {
  readonly #start: WsStart;
  readonly #head: HttpHeadReader<"request"> | HttpHeadReader<"response"> | null;
  /** The client's deflate offer reservation is still ours to give back. */
  #offerPending: boolean;

  /**
   * @param start which side, and its handshake (`http: null` with `WS_NOHTTP`)
   * @param httpLimits limits on the head
   */
  constructor(start: WsStart, httpLimits?: HttpLimits) {
    this.#start = start;
    this.#offerPending = start.side === "client" && !!start.http?.deflate;
    this.#head = !start.http
      ? null
      : start.side === "server"
      ? new HttpHeadReader("request", httpLimits)
      : new HttpHeadReader("response", httpLimits);
  }

  /** Whether there is an HTTP head to read at all (not with `WS_NOHTTP`). */
  get needsHead(): boolean {
    return this.#head !== null;
  }

  /** The client's upgrade request, to send first; `null` on a server or with `WS_NOHTTP`. */
  get request(): Uint8Array | null {
    return this.#start.side === "client" && this.#start.http ? this.#start.http.request : null;
  }

  /**
   * Feeds bytes of the head. Returns `null` while the head is incomplete, the finished
   * handshake once it is; throws (see {@link refusal}) when the head is bad.
   */
  feed(chunk: Uint8Array): HandshakeDone | null {
    const start = this.#start;
    if (start.side === "server") {
      const done = (this.#head as HttpHeadReader<"request">).feed(chunk);
      if (!done) return null;
      const accepted = acceptUpgrade(done.head, start.http ?? undefined);
      const { resource, host, protocol } = accepted;
      return {
        info: new AttachInfo(resource, host, protocol, deferHeaders(done.head)),
        response: accepted.response,
        rest: done.rest,
        deflate: accepted.deflate?.takeCodec() ?? null,
      };
    }
    const done = (this.#head as HttpHeadReader<"response">).feed(chunk);
    if (!done) return null;
    const http = start.http!;
    const { protocol, deflate } = checkUpgradeResponse(
      done.head,
      http.key,
      http.protocols,
      http.deflate,
    );
    this.#offerPending = false;
    return {
      info: new AttachInfo("", "", protocol, deferHeaders(done.head)),
      response: null,
      rest: done.rest,
      deflate: http.deflate ? wsClientDeflate(http.deflate, deflate ?? null) : null,
    };
  }

  /** With `WS_NOHTTP`: the codec of the deflate the caller negotiated, if any. */
  takeNoHttpDeflate(): PerMessageDeflate | null {
    const start = this.#start;
    return start.side === "server" && start.deflate ? start.deflate.takeCodec() : null;
  }

  /** The connection ends before the handshake did: gives back a client offer's reservation. */
  abandon(): void {
    if (!this.#offerPending) return;
    this.#offerPending = false;
    const offer = (this.#start as { http: { deflate: WsDeflateOffer } }).http.deflate;
    offer.budget.release(offer.reserved);
  }

  /** What an error thrown by {@link feed} means: the attach error and the HTTP answer owed. */
  refusal(e: unknown): HandshakeRefusal {
    const error = e instanceof DillError
      ? e
      : new DillError("EPROTO", `handshake failed: ${e instanceof Error ? e.message : e}`);
    const response = this.#start.side === "client"
      ? null
      : e instanceof HandshakeError
      ? e.response
      : e instanceof HttpError
      ? writeHttpErrorResponse(e.status, error.message)
      : null;
    return { error, response };
  }
}

/**
 * What an attach reports: the peer's `Headers` are built on first read (most servers
 * never read them, and a connection then keeps only the head's text, one string).
 */
class AttachInfo implements WsAttachInfo {
  readonly #head: { readonly headers: Headers } | null;
  #headers: Headers | null = null;

  constructor(
    readonly resource: string,
    readonly host: string,
    readonly protocol: string | null,
    head: { readonly headers: Headers } | null,
  ) {
    this.#head = head;
  }

  get headers(): Headers {
    return this.#headers ??= this.#head?.headers ?? new Headers();
  }

  /** Where `info`'s headers come from, for a result that keeps only that (`null`: none). */
  static later(info: WsAttachInfo): { readonly headers: Headers } | null {
    return info instanceof AttachInfo && info.#headers === null ? info.#head : info;
  }
}

/** The handshake result with `WS_NOHTTP`: nothing was read. */
export const NO_HTTP_INFO: () => WsAttachInfo = () => new AttachInfo("", "", null, null);

/**
 * The peer's `Headers` of an attach result, built when first read: what
 * {@link ServerAttached} and {@link ClientAttached} share.
 *
 * @example
 * ```ts
 * import { AttachedHeaders } from "./ws_handshake.ts";
 *
 * const info = { resource: "", host: "", protocol: null, headers: new Headers({ a: "1" }) };
 * console.log(new AttachedHeaders(info).headers.get("a")); // 1
 * ```
 */
export class AttachedHeaders {
  #later: { readonly headers: Headers } | null;
  #headers: Headers | null = null;

  /** @param info what the handshake reported */
  constructor(info: WsAttachInfo) {
    this.#later = AttachInfo.later(info);
  }

  /** The peer's headers (the request's on a server, the response's on a client). */
  get headers(): Headers {
    if (this.#headers === null) {
      this.#headers = this.#later?.headers ?? new Headers();
      this.#later = null;
    }
    return this.#headers;
  }

  set headers(headers: Headers) {
    this.#headers = headers;
    this.#later = null;
  }
}

/**
 * The result of `wsAttachServer`: the handle and what the handshake found, the request's
 * `Headers` built when `headers` is first read.
 *
 * @example
 * ```ts
 * import { ServerAttached } from "./ws_handshake.ts";
 *
 * const attached = new ServerAttached(null as never, {
 *   resource: "/", host: "a", protocol: null, headers: new Headers({ host: "a" }),
 * });
 * console.log(attached.resource, attached.headers.get("host")); // / a
 * ```
 */
export class ServerAttached<H> extends AttachedHeaders {
  /** The request target the client asked for (`""` with `WS_NOHTTP`). */
  resource: string;
  /** The client's Host header (`""` with `WS_NOHTTP`). */
  host: string;
  /** The negotiated subprotocol, or `null`. */
  protocol: string | null;

  /**
   * @param handle the WebSocket handle
   * @param info what the handshake reported
   */
  constructor(public handle: H, info: WsAttachInfo) {
    super(info);
    this.resource = info.resource;
    this.host = info.host;
    this.protocol = info.protocol;
  }
}

/**
 * The result of `wsAttachClient`: the handle, the chosen subprotocol and the response's
 * `Headers`, built when `headers` is first read.
 *
 * @example
 * ```ts
 * import { ClientAttached } from "./ws_handshake.ts";
 *
 * const attached = new ClientAttached(null as never, {
 *   resource: "", host: "", protocol: "chat", headers: new Headers(),
 * });
 * console.log(attached.protocol); // chat
 * ```
 */
export class ClientAttached<H> extends AttachedHeaders {
  /** The subprotocol the server chose, or `null`. */
  protocol: string | null;

  /**
   * @param handle the WebSocket handle
   * @param info what the handshake reported
   */
  constructor(public handle: H, info: WsAttachInfo) {
    super(info);
    this.protocol = info.protocol;
  }
}
