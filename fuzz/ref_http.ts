/**
 * Reference HTTP/1.1 head check for the head-reader fuzzer. Unlike the reader's byte
 * state machine, it works on whole lines: it splits the input at CRLF and matches each
 * line against a regular expression for its grammar (RFC 9112, as strict as the reader
 * documents: CRLF only, no obs-fold, no whitespace before the colon, HTTP/1.x only).
 * From "is this prefix still the start of a valid head?" it finds, by binary search, the
 * first byte that makes the input invalid, and from that and the limits derives what the
 * reader must do. Slow and plain on purpose; it runs only on small fuzz inputs.
 *
 * @module
 */

const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/** Field value bytes: HTAB, SP, VCHAR, obs-text (no CR, LF, other controls or DEL). */
const FIELD = "[\\t\\x20-\\x7e\\x80-\\xff]";

const REQUEST_LINE = new RegExp(`^${TCHAR}+ [\\x21-\\x7e]+ HTTP/1\\.[0-9]$`);
const STATUS_LINE = new RegExp(`^HTTP/1\\.[0-9] [1-5][0-9][0-9](?: ${FIELD}*)?$`);
const HEADER_LINE = new RegExp(`^${TCHAR}+:${FIELD}*$`);

/** Prefixes of a request line that some continuation could complete. */
const REQUEST_PREFIX = new RegExp(
  `^(?:${TCHAR}*|${TCHAR}+ [\\x21-\\x7e]*|${TCHAR}+ [\\x21-\\x7e]+ (?:H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\\.|HTTP/1\\.[0-9])?)$`,
);
const STATUS_PREFIX = new RegExp(
  `^(?:|H|HT|HTT|HTTP|HTTP/|HTTP/1|HTTP/1\\.|HTTP/1\\.[0-9]|HTTP/1\\.[0-9] (?:[1-5][0-9]{0,2})?|HTTP/1\\.[0-9] [1-5][0-9][0-9] ${FIELD}*)$`,
);
const STARTS_NAME = new RegExp(`^${TCHAR}`);
const HEADER_PREFIX = new RegExp(`^(?:${TCHAR}*|${TCHAR}+:${FIELD}*)$`);

/** The limits, with the reader's defaults filled in. */
export interface RefLimits {
  maxHeadBytes: number;
  maxHeaders: number;
}

/** A head as the reference reads it: fields and the header lines in order, trimmed. */
export interface RefHead {
  fields: Record<string, string | number>;
  headers: [string, string][];
}

/** What the reader must do with the input (fed completely). */
export type RefVerdict =
  /** Returns the head; `end` is the index after its blank line, `last` its last byte. */
  | { kind: "head"; head: RefHead; end: number; last: number }
  /** Throws at the byte with index `at`. */
  | { kind: "error"; at: number; status: number; code: "EPROTO" | "EMSGSIZE" }
  /** Returns `null`. */
  | { kind: "incomplete" };

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/**
 * Why `text` cannot start a valid head, or `null` if it still can: `"count"` for too
 * many header lines, `"syntax"` otherwise. Bytes after a complete head are ignored.
 */
function prefixProblem(
  text: string,
  kind: "request" | "response",
  maxHeaders: number,
): "syntax" | "count" | null {
  const lines = text.split("\r\n");
  let headerLines = 0;
  for (let j = 0; j < lines.length; j++) {
    const line = lines[j];
    const complete = j < lines.length - 1;
    if (j === 0) {
      const full = kind === "request" ? REQUEST_LINE : STATUS_LINE;
      const prefix = kind === "request" ? REQUEST_PREFIX : STATUS_PREFIX;
      if (complete) {
        if (!full.test(line)) return "syntax";
      } else if (line.endsWith("\r")) {
        if (!full.test(line.slice(0, -1))) return "syntax";
      } else if (!prefix.test(line)) return "syntax";
      continue;
    }
    if (complete && line === "") return null; // the head ended; the rest is not head
    if (line === "" || (line === "\r" && !complete)) return null; // the blank line, maybe
    if (line.startsWith("\r")) return "syntax"; // CR not followed by LF
    // A header line counts from its first byte, if that byte can start a name.
    if (STARTS_NAME.test(line) && ++headerLines > maxHeaders) return "count";
    if (complete) {
      if (!HEADER_LINE.test(line)) return "syntax";
    } else if (line.endsWith("\r")) {
      if (!HEADER_LINE.test(line.slice(0, -1))) return "syntax";
    } else if (!HEADER_PREFIX.test(line)) return "syntax";
  }
  return null;
}

/** Trims SP and HTAB at both ends (optional whitespace around a field value). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === " " || s[a] === "\t")) a++;
  while (b > a && (s[b - 1] === " " || s[b - 1] === "\t")) b--;
  return s.slice(a, b);
}

/** Reads the fields of a head known to be valid, `text` ending with its blank line. */
function readHead(text: string, kind: "request" | "response"): RefHead {
  const lines = text.split("\r\n").slice(0, -2);
  const start = lines[0];
  let fields: Record<string, string | number>;
  if (kind === "request") {
    const [method, target, version] = start.split(" ");
    fields = { method, target, version };
  } else {
    const version = start.slice(0, 8);
    const status = Number(start.slice(9, 12));
    const reason = start.length > 12 ? start.slice(13) : "";
    fields = { version, status, reason };
  }
  const headers: [string, string][] = lines.slice(1).map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon), trimOws(line.slice(colon + 1))];
  });
  return { fields, headers };
}

/** What a {@link HttpHeadReader} for `kind` with `limits` must do with `input`. */
export function referenceHead(
  input: Uint8Array,
  kind: "request" | "response",
  limits: RefLimits,
): RefVerdict {
  const text = latin1(input);
  const n = text.length;
  const problem = (k: number) => prefixProblem(text.slice(0, k), kind, limits.maxHeaders);

  // The first byte whose arrival makes the input invalid (n if none): binary search over
  // prefix lengths, as a prefix that is invalid stays invalid when it grows.
  let error = n;
  if (problem(n) !== null) {
    let lo = 0; // problem(lo) is null
    let hi = n; // problem(hi) is not
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (problem(mid) === null) lo = mid;
      else hi = mid;
    }
    error = hi - 1;
  }
  const blank = text.indexOf("\r\n\r\n");
  const last = blank < 0 ? n : blank + 3;
  const limitAt = limits.maxHeadBytes - 1;

  if (error < last) {
    if (error <= limitAt) {
      const why = problem(error + 1);
      if (why === "count") return { kind: "error", at: error, status: 431, code: "EMSGSIZE" };
      return { kind: "error", at: error, status: versionStatus(text, kind, error), code: "EPROTO" };
    }
  } else if (last < n && last <= limitAt) {
    return { kind: "head", head: readHead(text.slice(0, last + 1), kind), end: last + 1, last };
  }
  if (limitAt < n) {
    // The head used its whole budget: 414 while still in the request line.
    const inRequestLine = kind === "request" && !text.slice(0, limitAt + 1).includes("\r");
    return { kind: "error", at: limitAt, status: inRequestLine ? 414 : 431, code: "EMSGSIZE" };
  }
  return { kind: "incomplete" };
}

const BEFORE_MAJOR = new RegExp(`^${TCHAR}+ [\\x21-\\x7e]+ HTTP/$`);

/** 505 when the byte at `at` is the major version digit and is not 1; else 400. */
function versionStatus(text: string, kind: "request" | "response", at: number): number {
  const line = text.slice(0, at);
  const before = kind === "request" ? BEFORE_MAJOR.test(line) : line === "HTTP/";
  const c = text.charCodeAt(at);
  return before && c >= 0x30 && c <= 0x39 && c !== 0x31 ? 505 : 400;
}
