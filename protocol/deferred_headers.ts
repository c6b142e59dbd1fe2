/**
 * A handshake head's `Headers`, kept as the head's text until the application asks for
 * them: a server connection reports the headers it was opened with, which most
 * applications never read, and one string costs far less than a `Headers` object.
 *
 * @module
 */

import { HttpHeadReader, type HttpRequestHead, type HttpResponseHead } from "./http11.ts";
import { ParsedHead } from "./http_head.ts";

/** A head's `Headers`, kept as the head's text until asked for. */
class HeadersFromText {
  readonly #kind: "request" | "response";
  #raw: string | null;
  #headers: Headers | null = null;

  constructor(kind: "request" | "response", raw: string) {
    this.#kind = kind;
    this.#raw = raw;
  }

  get headers(): Headers {
    if (this.#headers === null) {
      // The text was read once within the limits: read again without any, it is the same.
      const raw = this.#raw!;
      const reader = new HttpHeadReader(this.#kind, {
        maxHeadBytes: raw.length,
        maxHeaders: Number.MAX_SAFE_INTEGER,
      });
      this.#headers = reader.feed(Uint8Array.from(raw, (c) => c.charCodeAt(0)))!.head.headers;
      this.#raw = null;
    }
    return this.#headers;
  }
}

/**
 * A head's `Headers` for later: for a head from {@link HttpHeadReader} whose `headers`
 * were not read yet, an object that keeps only the head's text (one string) and builds
 * the same `Headers` when asked; for any other head, its `headers`. For a connection that
 * reports the headers it was opened with but whose application may never read them.
 *
 * @example
 * ```ts
 * import { deferHeaders } from "./deferred_headers.ts";
 * import { HttpHeadReader } from "./http11.ts";
 *
 * const done = new HttpHeadReader("request").feed(
 *   new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
 * )!;
 * const later = deferHeaders(done.head);
 * console.log(later.headers.get("host")); // a
 * ```
 */
export function deferHeaders(
  head: HttpRequestHead | HttpResponseHead,
): { readonly headers: Headers } {
  const raw = ParsedHead.raw(head);
  if (raw === null) return { headers: head.headers };
  return new HeadersFromText("method" in head ? "request" : "response", raw);
}
