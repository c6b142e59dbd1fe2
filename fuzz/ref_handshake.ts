/**
 * Reference checks for the opening handshake fuzzer, written from RFC 6455 section 4 and
 * the rules `acceptUpgrade` documents (in its documented order), working on the header
 * lines as the reference head parser read them rather than on a `Headers` object. Keys
 * are checked by base64 round trip and hosts by a character loop, not by the regular
 * expressions the handshake uses (`protocol/handshake_keys.ts`, `protocol/header_values.ts`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { RefHead } from "./ref_http.ts";

/** What the server side must answer: 101 with the results, or a refusal. */
export type ServerOutcome =
  | { status: 101; resource: string; host: string; protocol: string | null }
  | { status: number; code: "EPROTO" | "EMSGSIZE" };

/** What the client side must conclude from the answer. */
export type ClientOutcome = { ok: true; protocol: string | null } | { ok: false };

/** Server settings of one input, mirroring `ServerHandshakeOptions`. */
export interface RefServerOptions {
  maxResourceLength: number;
  maxHostLength: number;
  protocols: string[];
  /** Origins containing this are refused, when set. */
  refuseOrigin: string | null;
}

/** The values of every line named `name` (any case), in order. */
export function lines(head: RefHead, name: string): string[] {
  return head.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

/** The lines' values joined as one field (RFC 9110 section 5.3), or null if none. */
function joined(head: RefHead, name: string): string | null {
  const values = lines(head, name);
  return values.length === 0 ? null : values.join(", ");
}

/** The elements of a comma-separated list field, OWS (SP, HTAB) removed, empties dropped. */
function listElements(value: string | null): string[] {
  if (value === null) return [];
  const out: string[] = [];
  for (const part of value.split(",")) {
    let a = 0;
    let b = part.length;
    while (a < b && (part[a] === " " || part[a] === "\t")) a++;
    while (b > a && (part[b - 1] === " " || part[b - 1] === "\t")) b--;
    if (b > a) out.push(part.slice(a, b));
  }
  return out;
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function isToken(s: string): boolean {
  return s.length > 0 && [...s].every((c) => TCHARS.includes(c));
}

const REG_NAME = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+;=";
const IPV6 = "0123456789ABCDEFabcdef:.";

/** `uri-host [":" port]` as the handshake accepts it (no comma in names). */
export function refIsHost(s: string): boolean {
  let i = 0;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 2) return false;
    for (let k = 1; k < close; k++) if (!IPV6.includes(s[k])) return false;
    i = close + 1;
  } else {
    while (i < s.length && REG_NAME.includes(s[i])) i++;
    if (i === 0) return false;
  }
  if (i === s.length) return true;
  if (s[i] !== ":") return false;
  for (let k = i + 1; k < s.length; k++) if (s[k] < "0" || s[k] > "9") return false;
  return true;
}

/** Whether `key` is the canonical base64 encoding of exactly 16 bytes. */
export function refIsKey(key: string): boolean {
  let raw: string;
  try {
    raw = atob(key);
  } catch {
    return false;
  }
  return raw.length === 16 && btoa(raw) === key;
}

/** `Sec-WebSocket-Accept` for `key`, per RFC 6455 section 4.2.2. */
export function refAccept(key: string): string {
  return createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest(
    "base64",
  );
}

function refuse(status = 400, code: "EPROTO" | "EMSGSIZE" = "EPROTO"): ServerOutcome {
  return { status, code };
}

/** What `acceptUpgrade` must do with a request head. */
export function refServer(head: RefHead, o: RefServerOptions): ServerOutcome {
  const { method, target, version } = head.fields as Record<string, string>;
  if (method !== "GET") return refuse(405);
  if (version[5] !== "1") return refuse(505);
  if (version === "HTTP/1.0") return refuse(400);

  if (target.includes("#")) return refuse();
  let resource: string;
  let authority: string | null = null;
  if (target.startsWith("/")) {
    resource = target;
  } else {
    const lower = target.toLowerCase();
    const scheme = ["ws://", "wss://", "http://", "https://"].find((s) => lower.startsWith(s));
    if (!scheme) return refuse();
    const rest = target.slice(scheme.length);
    let cut = rest.length;
    for (let k = 0; k < rest.length; k++) {
      if (rest[k] === "/" || rest[k] === "?") {
        cut = k;
        break;
      }
    }
    authority = rest.slice(0, cut);
    if (!refIsHost(authority)) return refuse();
    const path = rest.slice(cut);
    resource = path === "" ? "/" : path.startsWith("?") ? "/" + path : path;
  }
  if (resource.length > o.maxResourceLength) return refuse(414, "EMSGSIZE");

  const hostHeader = joined(head, "host");
  if (hostHeader === null || hostHeader.includes(",") || !refIsHost(hostHeader)) return refuse();
  const host = authority ?? hostHeader;
  if (host.length > o.maxHostLength) return refuse(400, "EMSGSIZE");

  if (lines(head, "transfer-encoding").length > 0) return refuse();
  const contentLength = joined(head, "content-length");
  if (contentLength !== null && contentLength !== "0") return refuse();

  const upgrade = listElements(joined(head, "upgrade")).map((t) => t.toLowerCase());
  if (!upgrade.includes("websocket")) return refuse();
  const connection = listElements(joined(head, "connection")).map((t) => t.toLowerCase());
  if (!connection.includes("upgrade")) return refuse();

  if (joined(head, "sec-websocket-version") !== "13") return refuse(426);

  const keys = lines(head, "sec-websocket-key");
  if (keys.length !== 1 || !refIsKey(keys[0])) return refuse();

  const origin = joined(head, "origin");
  if (o.refuseOrigin !== null && origin !== null && origin.includes(o.refuseOrigin)) {
    return refuse(403);
  }

  const offered = listElements(joined(head, "sec-websocket-protocol"));
  if (!offered.every(isToken)) return refuse();
  const protocol = offered.find((p) => o.protocols.includes(p)) ?? null;
  return { status: 101, resource, host, protocol };
}

/** What `checkUpgradeResponse` must conclude from a response head. */
export function refClient(head: RefHead, key: string, offered: string[]): ClientOutcome {
  const { status, version } = head.fields;
  if (status !== 101) return { ok: false };
  if (typeof version !== "string" || version.slice(0, 7) !== "HTTP/1." || version[7] === "0") {
    return { ok: false };
  }
  const upgrade = listElements(joined(head, "upgrade")).map((t) => t.toLowerCase());
  const connection = listElements(joined(head, "connection")).map((t) => t.toLowerCase());
  if (!upgrade.includes("websocket") || !connection.includes("upgrade")) return { ok: false };
  if (joined(head, "sec-websocket-accept") !== refAccept(key)) return { ok: false };
  if (lines(head, "sec-websocket-extensions").length > 0) return { ok: false };
  const chosen = joined(head, "sec-websocket-protocol");
  if (chosen === null) return { ok: true, protocol: null };
  if (!offered.includes(chosen)) return { ok: false };
  return { ok: true, protocol: chosen };
}
