/**
 * The `Sec-WebSocket-Extensions` header (RFC 6455 section 9.1): parsing offers and
 * answers into extensions and their parameters, and writing them back.
 *
 * ```text
 * extension-list = 1#extension
 * extension      = token *( OWS ";" OWS param )
 * param          = token [ OWS "=" OWS ( token / quoted-string ) ]
 * ```
 *
 * A quoted value must be a token once unquoted (RFC 6455 9.1). Names are compared
 * case-insensitively, so they are returned in lower case. Parsing is one linear pass.
 *
 * @module
 */

import { DillError } from "./errors.ts";

/** One parameter of an extension: `name` or `name=value` (value unquoted). */
export interface ExtensionParam {
  /** Parameter name, lower case. */
  readonly name: string;
  /** The value, unquoted, or `null` when the parameter has none. */
  readonly value: string | null;
}

/** One element of an extension list: a name and its parameters, in order. */
export interface Extension {
  /** Extension name, lower case (such as `permessage-deflate`). */
  readonly name: string;
  /** Its parameters, in the order written; repeats are kept for the caller to judge. */
  readonly params: ExtensionParam[];
}

/** RFC 9110 tchar. */
function isTchar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}

/** Whether `s` is an RFC 9110 token. */
function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTchar(s.charCodeAt(i))) return false;
  return true;
}

/**
 * Parses a `Sec-WebSocket-Extensions` value (repeated headers joined with commas, as
 * `Headers.get` joins them). Empty list elements are skipped, as RFC 9110 allows.
 *
 * @param value the header value
 * @returns the extensions in order (several offers of one extension are kept apart)
 * @throws {DillError} `EPROTO` naming the first syntax error
 *
 * @example
 * ```ts
 * import { parseExtensions } from "./extensions.ts";
 *
 * const list = parseExtensions(
 *   'permessage-deflate; client_max_window_bits="10", permessage-deflate',
 * );
 * console.log(list.length, list[0].params[0]); // 2 { name: "client_max_window_bits", value: "10" }
 * ```
 */
export function parseExtensions(value: string): Extension[] {
  const result: Extension[] = [];
  const n = value.length;
  let i = 0;
  const fail = (why: string): never => {
    throw new DillError(
      "EPROTO",
      `malformed Sec-WebSocket-Extensions at character ${i}: ${why}`,
    );
  };
  const skipSpace = () => {
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
  };
  const readToken = (what: string): string => {
    const start = i;
    while (i < n && isTchar(value.charCodeAt(i))) i++;
    if (i === start) fail(`expected ${what}`);
    return value.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let text = "";
    for (;;) {
      if (i >= n) fail("unterminated quoted string");
      const c = value[i++];
      if (c === '"') return text;
      if (c === "\\") {
        if (i >= n) fail("unterminated quoted string");
        text += value[i++];
      } else {
        text += c;
      }
    }
  };

  for (;;) {
    skipSpace();
    if (i >= n) break;
    if (value[i] === ",") {
      i++;
      continue;
    }
    const name = readToken("an extension name").toLowerCase();
    const params: ExtensionParam[] = [];
    skipSpace();
    while (i < n && value[i] === ";") {
      i++;
      skipSpace();
      const param = readToken("a parameter name").toLowerCase();
      skipSpace();
      let paramValue: string | null = null;
      if (i < n && value[i] === "=") {
        i++;
        skipSpace();
        if (i < n && value[i] === '"') {
          paramValue = readQuoted();
          if (!isToken(paramValue)) fail(`quoted value of ${param} is not a token`);
        } else {
          paramValue = readToken(`a value for ${param}`);
        }
        skipSpace();
      }
      params.push({ name: param, value: paramValue });
    }
    if (i < n && value[i] !== ",") fail(`unexpected ${JSON.stringify(value[i])}`);
    result.push({ name, params });
  }
  return result;
}

/**
 * Writes one extension for a `Sec-WebSocket-Extensions` header: `name; p; q=v`.
 *
 * @param extension the extension and its parameters (values are written as tokens)
 * @returns the header element
 * @throws {DillError} `EINVAL` for a name or value that is not a token
 *
 * @example
 * ```ts
 * import { formatExtension } from "./extensions.ts";
 *
 * console.log(formatExtension({
 *   name: "permessage-deflate",
 *   params: [{ name: "server_no_context_takeover", value: null }, {
 *     name: "client_max_window_bits",
 *     value: "12",
 *   }],
 * })); // permessage-deflate; server_no_context_takeover; client_max_window_bits=12
 * ```
 */
export function formatExtension(extension: Extension): string {
  const check = (s: string) => {
    if (!isToken(s)) throw new DillError("EINVAL", `${JSON.stringify(s)} is not a token`);
    return s;
  };
  let text = check(extension.name);
  for (const { name, value } of extension.params) {
    text += `; ${check(name)}`;
    if (value !== null) text += `=${check(value)}`;
  }
  return text;
}
