/**
 * A head as `HttpHeadReader` (`./http11.ts`) returns it: its header fields kept as read,
 * in one array, for the lookups the handshake makes, and its `Headers` object built only
 * when someone reads `headers`. Building a `Headers` costs a validated `append` per field
 * and keeps more objects alive; most servers never read it.
 *
 * @module
 */

import type { HttpRequestHead, HttpResponseHead } from "./http11.ts";

/** The lookups the handshake makes in header fields: those of `Headers`. */
export type HeaderLookup = Pick<Headers, "get" | "has">;

/**
 * Header fields as the head reader read them, before any `Headers` is built: lowercased
 * names and their values, in order, in one array. Building a `Headers` costs a validated
 * `append` per field and keeps more objects alive; the handshake only looks a few
 * fields up, so the `Headers` of a head is built only when someone asks for it.
 *
 * @example
 * ```ts
 * import { HeaderFields } from "./http_head.ts";
 *
 * const fields = new HeaderFields();
 * fields.add("X-A", "1");
 * fields.add("x-a", "2");
 * console.log(fields.get("X-A"), fields.toHeaders().get("x-a")); // 1, 2 1, 2
 * ```
 */
export class HeaderFields implements HeaderLookup {
  /** Name, value, name, value, ...: the names lowercased as `Headers` does. */
  readonly #list: string[] = [];

  /** Adds a field (the reader checked the name and value). */
  add(name: string, value: string): void {
    this.#list.push(name.toLowerCase(), value);
  }

  /** As `Headers.get`: the values of every field with this name joined by `", "`, or `null`. */
  get(name: string): string | null {
    const key = name.toLowerCase();
    const list = this.#list;
    let out: string | null = null;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === key) out = out === null ? list[i + 1] : `${out}, ${list[i + 1]}`;
    }
    return out;
  }

  /** As `Headers.has`: whether a field has this name (values are not names). */
  has(name: string): boolean {
    const key = name.toLowerCase();
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) if (list[i] === key) return true;
    return false;
  }

  /**
   * The `Headers` these fields make. The reader let through only names that are tokens
   * and values of field bytes without surrounding whitespace, which `append` takes as
   * they are.
   */
  toHeaders(): Headers {
    const headers = new Headers();
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) headers.append(list[i], list[i + 1]);
    return headers;
  }
}

/**
 * A head the reader parsed: its `headers` are built on first access.
 *
 * @example
 * ```ts
 * import { HeaderFields, ParsedHead } from "./http_head.ts";
 *
 * const fields = new HeaderFields();
 * fields.add("Host", "a");
 * const head = new ParsedHead(fields, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
 * console.log(ParsedHead.lookup(head).get("host"), head.headers.get("host")); // a a
 * ```
 */
export class ParsedHead {
  readonly #fields: HeaderFields;
  /** The head as read (one character per byte), to read it again for `deferHeaders` (deferred_headers.ts). */
  readonly #raw: string;
  #headers: Headers | null = null;

  /**
   * @param fields the header fields as read
   * @param raw the head's text, one character per byte
   */
  constructor(fields: HeaderFields, raw: string) {
    this.#fields = fields;
    this.#raw = raw;
  }

  /** The header fields; repeated fields are combined with `", "`. */
  get headers(): Headers {
    return this.#headers ??= this.#fields.toHeaders();
  }

  set headers(headers: Headers) {
    this.#headers = headers;
  }

  /** The fields to look up in: without building a `Headers` unless one was built or set. */
  static lookup(head: { headers: Headers }): HeaderLookup {
    return head instanceof ParsedHead && head.#headers === null ? head.#fields : head.headers;
  }

  /** The head's text, unless its `Headers` were built or replaced (they may differ then). */
  static raw(head: { headers: Headers }): string | null {
    return head instanceof ParsedHead && head.#headers === null ? head.#raw : null;
  }
}

/**
 * A request head the reader parsed.
 *
 * @example
 * ```ts
 * import { HeaderFields, ParsedRequestHead } from "./http_head.ts";
 *
 * const head = new ParsedRequestHead("GET", "/", "HTTP/1.1", new HeaderFields(), "");
 * console.log(head.target, [...head.headers]); // / []
 * ```
 */
export class ParsedRequestHead extends ParsedHead implements HttpRequestHead {
  constructor(
    public method: string,
    public target: string,
    public version: string,
    fields: HeaderFields,
    raw: string,
  ) {
    super(fields, raw);
  }
}

/**
 * A response head the reader parsed.
 *
 * @example
 * ```ts
 * import { HeaderFields, ParsedResponseHead } from "./http_head.ts";
 *
 * const head = new ParsedResponseHead("HTTP/1.1", 101, "Switching Protocols", new HeaderFields(), "");
 * console.log(head.status); // 101
 * ```
 */
export class ParsedResponseHead extends ParsedHead implements HttpResponseHead {
  constructor(
    public version: string,
    public status: number,
    public reason: string,
    fields: HeaderFields,
    raw: string,
  ) {
    super(fields, raw);
  }
}

/**
 * The header fields of a head, for lookups: a head from `HttpHeadReader` answers
 * them without building its `Headers` (which it builds when `headers` is first read);
 * any other head answers with its `headers`.
 *
 * @example
 * ```ts
 * import { headerLookup } from "./http_head.ts";
 * import { HttpHeadReader } from "./http11.ts";
 *
 * const done = new HttpHeadReader("request").feed(
 *   new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n"),
 * )!;
 * console.log(headerLookup(done.head).get("X-A")); // 1, 2
 * ```
 */
export function headerLookup(head: HttpRequestHead | HttpResponseHead): HeaderLookup {
  return ParsedHead.lookup(head);
}
