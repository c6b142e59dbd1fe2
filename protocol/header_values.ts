/**
 * Reading header values of the opening handshake: RFC 9110 lists, host names, and
 * quoting what a peer sent into an error message. Shared by both sides.
 *
 * @module
 */

/**
 * Whether `s` looks like `uri-host [ ":" port ]`: a name, IPv4 or bracketed IPv6 address
 * with an optional port. Commas are refused although RFC 3986 allows them in names: no
 * real host has one, and a comma is what two joined `Host` headers look like.
 *
 * @example
 * ```ts
 * import { isHost } from "./header_values.ts";
 *
 * console.log(isHost("example.com:8080"), isHost("a,b")); // true false
 * ```
 */
export function isHost(s: string): boolean {
  return /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+;=]+)(?::[0-9]*)?$/.test(s);
}

/**
 * Splits an RFC 9110 list (`a, b,,c`) into its non-empty elements, without the optional
 * whitespace (SP and HTAB only) around them. `String.prototype.trim` would not do: it
 * also strips U+00A0, which is how the obs-text byte 0xA0 reads, so `websocket\xA0`
 * would pass for `websocket`.
 *
 * @example
 * ```ts
 * import { tokenList } from "./header_values.ts";
 *
 * console.log(tokenList("keep-alive, Upgrade,,")); // [ "keep-alive", "Upgrade" ]
 * ```
 */
export function tokenList(value: string | null): string[] {
  if (value === null) return [];
  const elements: string[] = [];
  for (const part of value.split(",")) {
    let start = 0;
    let end = part.length;
    while (start < end && isOws(part.charCodeAt(start))) start++;
    while (end > start && isOws(part.charCodeAt(end - 1))) end--;
    if (end > start) elements.push(part.slice(start, end));
  }
  return elements;
}

/**
 * Whether the RFC 9110 list `value` has an element equal to `token` (given in lowercase)
 * without regard to ASCII case: what `tokenList(value)` lowercased and searched says,
 * without building the list (the opening handshake asks this of two headers).
 *
 * @example
 * ```ts
 * import { listHasToken } from "./header_values.ts";
 *
 * console.log(listHasToken("keep-alive, Upgrade", "upgrade")); // true
 * ```
 */
export function listHasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  let start = 0;
  while (start <= value.length) {
    let end = value.indexOf(",", start);
    if (end < 0) end = value.length;
    const next = end + 1;
    while (start < end && isOws(value.charCodeAt(start))) start++;
    while (end > start && isOws(value.charCodeAt(end - 1))) end--;
    if (end - start === token.length && equalsLowercase(value, start, token)) return true;
    start = next;
  }
  return false;
}

/** Whether `value` from `at` on starts with `lower` (lowercase) in any ASCII case. */
function equalsLowercase(value: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = value.charCodeAt(at + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether `c` is optional whitespace (RFC 9110 section 5.6.3): SP or HTAB. */
function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Quotes a peer-supplied string for a message, cut short so answers stay small.
 *
 * @example
 * ```ts
 * import { quote } from "./header_values.ts";
 *
 * console.log(quote("x".repeat(70)).length); // 69
 * ```
 */
export function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + "..." : s);
}
