/**
 * The HTTP/1.1 message head (start line and header fields) that carries the WebSocket
 * opening handshake: an incremental, size-limited reader for request and response heads.
 * (Writing the heads this stack sends is `http_write.ts`.)
 *
 * Parsing follows RFC 9112 strictly. Lines must end in CRLF: a bare LF or a bare CR is
 * rejected rather than tolerated, because every WebSocket client and server sends CRLF and
 * lenient line endings are a classic source of request-smuggling disagreements between
 * parsers. Obsolete line folding, whitespace before the colon, empty lines before the
 * request line and control characters are rejected too. Nothing here awaits or does I/O.
 *
 * @module
 */

import { DillError, type ErrorCode } from "./errors.ts";
import { checkWholeNumber } from "./option_checks.ts";
import { HeaderFields, ParsedRequestHead, ParsedResponseHead } from "./http_head.ts";

export { type HeaderLookup, headerLookup } from "./http_head.ts";

/** Limits that bound how much a peer can make an {@link HttpHeadReader} buffer. */
export interface HttpLimits {
  /**
   * Most bytes in a head: start line, every header line and all CRLFs including the final
   * blank line. Default 8192.
   */
  maxHeadBytes?: number;
  /**
   * Most header field lines in a head. Default 64. Keep it small: each lookup the
   * handshake makes scans the fields, and building the head's `Headers` object (when it is
   * first read) costs time that grows with the square of the number of distinct names
   * (each `Headers.append` looks the name up among those already there).
   */
  maxHeaders?: number;
}

/** A parsed HTTP/1.x request head. */
export interface HttpRequestHead {
  /** The method, case-sensitive as sent (`"GET"`). */
  method: string;
  /** The request-target exactly as sent (`"/chat?room=1"`). */
  target: string;
  /** The protocol version as sent (`"HTTP/1.1"`). */
  version: string;
  /** The header fields; repeated fields are combined with `", "`. */
  headers: Headers;
}

/** A parsed HTTP/1.x response head. */
export interface HttpResponseHead {
  /** The protocol version as sent (`"HTTP/1.1"`). */
  version: string;
  /** The three-digit status code. */
  status: number;
  /** The reason phrase, possibly empty. */
  reason: string;
  /** The header fields; repeated fields are combined with `", "`. */
  headers: Headers;
}

/**
 * A malformed or oversized HTTP head. `status` is the HTTP status a server should answer
 * with before closing: 400 for malformed input, 414 for a request line that blows the
 * head limit, 431 for too many or too large header fields, 505 for an HTTP version other
 * than 1.x. `code` is `EPROTO` for malformed input and `EMSGSIZE` for an exceeded limit.
 * When reading a response head (client side) the same statuses are used; they only
 * describe the problem there, as nobody answers a response.
 *
 * @example
 * ```ts
 * import { HttpError, HttpHeadReader } from "./http11.ts";
 *
 * try {
 *   new HttpHeadReader("request").feed(new TextEncoder().encode("GET / HTTP/2.0\r\n"));
 * } catch (e) {
 *   if (e instanceof HttpError) console.log(e.status, e.code); // 505 EPROTO
 * }
 * ```
 */
export class HttpError extends DillError {
  /** The HTTP status a server should answer with. */
  readonly status: number;

  /**
   * Makes an error for a bad head.
   *
   * @param code `EPROTO` for malformed input, `EMSGSIZE` for an exceeded limit
   * @param status the HTTP status a server should answer with
   * @param message what is wrong with the head
   * @param options the underlying cause, if any
   */
  constructor(code: ErrorCode, status: number, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "HttpError";
    this.status = status;
  }
}

/**
 * Checks {@link HttpLimits} and fills in their defaults; throws `EINVAL` for a limit
 * that is not a whole number (`maxHeadBytes` at least 1, `maxHeaders` at least 0), so
 * that a caller can refuse them before taking anything over.
 *
 * @example
 * ```ts
 * import { checkHttpLimits } from "./http11.ts";
 *
 * console.log(checkHttpLimits("wsAttachServer", { maxHeaders: 10 })); // { maxHeadBytes: 8192, maxHeaders: 10 }
 * ```
 */
export function checkHttpLimits(
  op: string,
  limits: HttpLimits | undefined,
): Required<HttpLimits> {
  if (limits === undefined) limits = {};
  if (typeof limits !== "object" || limits === null) {
    throw new DillError("EINVAL", `${op}: httpLimits must be an object`);
  }
  const maxHeadBytes = limits.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  const maxHeaders = limits.maxHeaders ?? DEFAULT_MAX_HEADERS;
  checkWholeNumber(`${op}: maxHeadBytes`, maxHeadBytes, 1);
  checkWholeNumber(`${op}: maxHeaders`, maxHeaders, 0);
  return { maxHeadBytes, maxHeaders };
}

/** Default for {@link HttpLimits.maxHeadBytes}. */
const DEFAULT_MAX_HEAD_BYTES = 8192;
/** Default for {@link HttpLimits.maxHeaders}. */
const DEFAULT_MAX_HEADERS = 64;

const SP = 0x20;
const HT = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;

/** RFC 9110 tchar: the bytes allowed in a token (method, header name). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1; // 0-9
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1; // A-Z
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1; // a-z

/** Whether `b` may appear in a field value or reason phrase: HTAB, SP, VCHAR, obs-text. */
function isFieldByte(b: number): boolean {
  return b === HT || (b >= 0x20 && b !== 0x7f);
}

/**
 * Whether `s` is a non-empty RFC 9110 token, the syntax of methods, header names and
 * WebSocket subprotocol names.
 *
 * @example
 * ```ts
 * import { isHttpToken } from "./http11.ts";
 *
 * console.log(isHttpToken("chat.v2"), isHttpToken("two words")); // true false
 * ```
 */
export function isHttpToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TCHAR[c] !== 1) return false;
  }
  return true;
}

/** The states of the head reader; one per syntactic position. */
enum At {
  Method,
  Target,
  Version,
  StatusCode,
  Reason,
  StartLineLf,
  LineStart,
  Name,
  Value,
  ValueLf,
  EndLf,
  Done,
}

/**
 * How many bytes of CR LF CR LF the bytes so far end with, after one more byte `b`, given
 * `matched` before it (4: the blank line is complete). After a mismatch only a CR can
 * start a new match: no proper prefix of CR LF CR LF is also a suffix of a longer one,
 * except CR.
 *
 * @example
 * ```ts
 * import { blankLineStep } from "./http11.ts";
 *
 * let matched = 0;
 * for (const b of new TextEncoder().encode("a\r\n\r\n")) matched = blankLineStep(matched, b);
 * console.log(matched); // 4
 * ```
 */
export function blankLineStep(matched: number, b: number): number {
  if (b === (matched & 1 ? LF : CR)) return matched + 1;
  return b === CR ? 1 : 0;
}

/** "HTTP/1.1" as byte template: letters must match, `d` marks a digit. */
const VERSION_TEMPLATE = "HTTP/d.d";

/**
 * Reads an HTTP/1.x request or response head from bytes arriving in any chunking.
 * It checks every byte as it arrives, so bad input fails at the first wrong byte rather
 * than after the peer sends more, and it never holds more than `maxHeadBytes` of head.
 *
 * @typeParam K `"request"` on the server side, `"response"` on the client side
 *
 * @example
 * ```ts
 * import { HttpHeadReader } from "./http11.ts";
 *
 * const reader = new HttpHeadReader("request");
 * const bytes = new TextEncoder().encode("GET /chat HTTP/1.1\r\nHost: a.example\r\n\r\nXY");
 * console.log(reader.feed(bytes.subarray(0, 10))); // null: not complete yet
 * const done = reader.feed(bytes.subarray(10))!;
 * console.log(done.head.target, done.head.headers.get("host")); // /chat a.example
 * console.log(done.rest); // Uint8Array(2) [ 88, 89 ]
 * ```
 */
export class HttpHeadReader<K extends "request" | "response"> {
  readonly #kind: K;
  readonly #maxHeadBytes: number;
  readonly #maxHeaders: number;
  #at: At;
  #consumed = 0;
  #headerCount = 0;
  /**
   * The element being read (method, target, version, reason, name or value) is kept as
   * positions, not built a byte at a time: its first `#len` bytes are `#carry` (from
   * earlier chunks) and those of the current chunk from index `#from` on. It becomes a
   * string once, when it ends.
   */
  #len = 0;
  #carry = "";
  #from = 0;
  /**
   * The chunk being fed as a string (one character per byte, up to where the head's
   * budget ends: no byte past it can belong to the head), and the index of the byte
   * being stepped. Elements are sliced out of it.
   */
  #chunkText = "";
  #i = 0;
  /** The head's text from earlier chunks. */
  #rawBefore = "";
  /**
   * In a header value: its length up to its last byte that is not SP or HTAB.
   * Tracking it per byte trims trailing whitespace in constant time; a trimming regex
   * such as `/[ \t]+$/` backtracks and is quadratic on "a" + many spaces + "b".
   */
  #valueEnd = 0;
  #method = "";
  #target = "";
  #version = "";
  #status = 0;
  #reason = "";
  #name = "";
  #fields = new HeaderFields();
  #failure: HttpError | undefined;

  /**
   * Makes a reader for one head.
   *
   * @param kind `"request"` to read a request head, `"response"` to read a response head
   * @param limits bounds on the head's size; see {@link HttpLimits}
   * @throws {DillError} `EINVAL` if a limit is not a positive integer
   */
  constructor(kind: K, limits: HttpLimits = {}) {
    if (kind !== "request" && kind !== "response") {
      throw new DillError("EINVAL", `HttpHeadReader: kind must be "request" or "response"`);
    }
    const { maxHeadBytes, maxHeaders } = checkHttpLimits("HttpHeadReader", limits);
    this.#kind = kind;
    this.#maxHeadBytes = maxHeadBytes;
    this.#maxHeaders = maxHeaders;
    // Both start lines begin differently: a request with its method, a response with its
    // version.
    this.#at = kind === "request" ? At.Method : At.Version;
  }

  /**
   * Feeds the next bytes of the stream.
   *
   * @param chunk the next bytes; any length, including empty
   * @returns `null` while the head is incomplete; once it is complete, the parsed head and
   *   `rest`, a copy of the bytes of `chunk` after the blank line that ends the head (they
   *   belong to whatever protocol follows)
   * @throws {HttpError} as soon as the bytes seen so far cannot start a valid head or a
   *   limit is exceeded; the reader then keeps throwing the same error
   * @throws {DillError} `EINVAL` if called again after the head was complete
   */
  feed(
    chunk: Uint8Array,
  ): { head: K extends "request" ? HttpRequestHead : HttpResponseHead; rest: Uint8Array } | null {
    if (this.#failure) throw this.#failure;
    if (this.#at === At.Done) {
      throw new DillError("EINVAL", "HttpHeadReader.feed: the head is already complete");
    }
    // Bytes of this chunk the head's budget leaves room for.
    const limit = Math.min(chunk.length, this.#maxHeadBytes - this.#consumed);
    this.#chunkText = latin1(chunk, 0, limit);
    this.#from = 0;
    try {
      for (let i = 0; i < limit; i++) {
        this.#i = i;
        if (this.#step(chunk[i])) {
          this.#consumed += i + 1;
          const raw = this.#rawBefore + this.#chunkText.slice(0, i + 1);
          this.#chunkText = this.#rawBefore = "";
          return { head: this.#head(raw), rest: chunk.slice(i + 1) };
        }
      }
      this.#consumed += limit;
      // The head is incomplete and has used its whole budget: no further byte can make
      // it valid, so fail now instead of waiting for the peer.
      if (this.#consumed >= this.#maxHeadBytes) throw this.#tooLarge();
      // An element that goes on in the next chunk keeps what it has of this one.
      if (this.#len > 0) this.#carry += this.#chunkText.slice(this.#from);
      this.#rawBefore += this.#chunkText;
      this.#chunkText = "";
    } catch (e) {
      this.#chunkText = "";
      this.#failure = e instanceof HttpError
        ? e
        : new HttpError("EPROTO", 400, "malformed HTTP head", { cause: e });
      throw this.#failure;
    }
    return null;
  }

  /** The parsed head; only meaningful once the state is `Done`. */
  #head(raw: string): K extends "request" ? HttpRequestHead : HttpResponseHead {
    const head: HttpRequestHead | HttpResponseHead = this.#kind === "request"
      ? new ParsedRequestHead(this.#method, this.#target, this.#version, this.#fields, raw)
      : new ParsedResponseHead(this.#version, this.#status, this.#reason, this.#fields, raw);
    return head as K extends "request" ? HttpRequestHead : HttpResponseHead;
  }

  #tooLarge(): HttpError {
    const inStartLine = this.#at === At.Method || this.#at === At.Target ||
      this.#at === At.Version;
    if (this.#kind === "request" && inStartLine) {
      return new HttpError(
        "EMSGSIZE",
        414,
        `request line longer than the ${this.#maxHeadBytes}-byte head limit`,
      );
    }
    return new HttpError(
      "EMSGSIZE",
      431,
      `HTTP head larger than ${this.#maxHeadBytes} bytes (or no blank line ending it)`,
    );
  }

  /**
   * Advances the state machine by one byte; throws on the first invalid byte and returns
   * whether the head is now complete.
   */
  #step(b: number): boolean {
    switch (this.#at) {
      case At.Method:
        if (TCHAR[b] === 1) this.#grow();
        else if (b === SP && this.#len > 0) {
          this.#method = this.#take();
          this.#at = At.Target;
        } else throw bad(`invalid ${describe(b)} in the request method`);
        return false;
      case At.Target:
        // Request targets are ASCII without spaces (RFC 9112 section 3.2); anything else,
        // including raw UTF-8, is rejected rather than guessed at.
        if (b > SP && b < 0x7f) this.#grow();
        else if (b === SP && this.#len > 0) {
          this.#target = this.#take();
          this.#at = At.Version;
        } else throw bad(`invalid ${describe(b)} in the request target`);
        return false;
      case At.Version:
        this.#stepVersion(b);
        return false;
      case At.StatusCode:
        if (b >= 0x30 && b <= 0x39 && this.#len < 3) {
          this.#grow();
          if (this.#len === 1 && (b < 0x31 || b > 0x35)) {
            throw bad(`status code must be in 100-599`);
          }
        } else if ((b === SP || b === CR) && this.#len === 3) {
          this.#status = Number(this.#take());
          // A missing reason phrase (and its SP) is tolerated: clients ignore it anyway.
          this.#at = b === SP ? At.Reason : At.StartLineLf;
        } else throw bad(`invalid ${describe(b)} in the status code`);
        return false;
      case At.Reason:
        if (b === CR) {
          this.#reason = this.#take();
          this.#at = At.StartLineLf;
        } else if (isFieldByte(b)) this.#grow();
        else throw bad(`invalid ${describe(b)} in the reason phrase`);
        return false;
      case At.StartLineLf:
        if (b !== LF) throw bad("CR not followed by LF at the end of the start line");
        this.#at = At.LineStart;
        return false;
      case At.LineStart:
        if (b === CR) this.#at = At.EndLf;
        else if (TCHAR[b] === 1) {
          if (++this.#headerCount > this.#maxHeaders) {
            throw new HttpError("EMSGSIZE", 431, `more than ${this.#maxHeaders} header fields`);
          }
          this.#grow();
          this.#at = At.Name;
        } else if (b === SP || b === HT) {
          throw bad("header line starts with whitespace (obsolete line folding is not allowed)");
        } else if (b === COLON) throw bad("header line with an empty field name");
        else if (b === LF) throw bad("bare LF line ending (CRLF required)");
        else throw bad(`invalid ${describe(b)} at the start of a header line`);
        return false;
      case At.Name:
        if (TCHAR[b] === 1) this.#grow();
        else if (b === COLON) {
          this.#name = this.#take();
          this.#at = At.Value;
        } else if (b === SP || b === HT) {
          throw bad(`whitespace between header name "${this.#take()}" and its colon`);
        } else if (b === CR || b === LF) throw bad(`header line "${this.#take()}" has no colon`);
        else throw bad(`invalid ${describe(b)} in header name "${this.#take()}"`);
        return false;
      case At.Value:
        if (b === CR) this.#at = At.ValueLf;
        else if ((b === SP || b === HT) && this.#len === 0) {
          // Leading optional whitespace is not part of the value.
        } else if (isFieldByte(b)) {
          this.#grow();
          if (b !== SP && b !== HT) this.#valueEnd = this.#len;
        } else if (b === LF) throw bad("bare LF line ending (CRLF required)");
        else throw bad(`invalid ${describe(b)} in the value of header "${this.#name}"`);
        return false;
      case At.ValueLf:
        if (b !== LF) throw bad(`bare CR in the value of header "${this.#name}"`);
        this.#addHeader();
        this.#at = At.LineStart;
        return false;
      case At.EndLf:
        if (b !== LF) throw bad("CR not followed by LF at the end of the head");
        this.#at = At.Done;
        return true;
      case At.Done:
        return true;
    }
  }

  #stepVersion(b: number): void {
    const i = this.#len;
    if (i === VERSION_TEMPLATE.length) {
      // A request line ends after the version; a status line continues with the code.
      const end = this.#kind === "request" ? CR : SP;
      if (b !== end) throw bad(`invalid ${describe(b)} after the HTTP version`);
      this.#version = this.#take();
      this.#at = this.#kind === "request" ? At.StartLineLf : At.StatusCode;
      return;
    }
    const want = VERSION_TEMPLATE[i];
    const ok = want === "d" ? b >= 0x30 && b <= 0x39 : b === want.charCodeAt(0);
    if (!ok) throw bad(`malformed HTTP version (expected HTTP/1.x)`);
    this.#grow();
    // The major digit is enough to know this is not HTTP/1.x.
    if (i === 5 && b !== 0x31) {
      this.#i++; // the digit is part of the version quoted
      throw new HttpError("EPROTO", 505, `unsupported HTTP version ${this.#take()}.x`);
    }
  }

  /** The current byte belongs to the element being read. */
  #grow(): void {
    if (this.#len++ === 0) this.#from = this.#i;
  }

  /** Ends the element being read (before the current byte) and returns it. */
  #take(): string {
    if (this.#len === 0) return "";
    const text = this.#carry + this.#chunkText.slice(this.#from, this.#i);
    this.#len = 0;
    this.#carry = "";
    return text;
  }

  #addHeader(): void {
    // Trailing optional whitespace is not part of the value either.
    const value = this.#take().slice(0, this.#valueEnd);
    this.#valueEnd = 0;
    this.#fields.add(this.#name, value);
  }
}

const ASCII = new TextDecoder();

/** The bytes `from` to `to` of `bytes` as a string, one character per byte. */
function latin1(bytes: Uint8Array, from: number, to: number): string {
  // ASCII (every head in practice) reads the same in UTF-8, which the decoder does fastest.
  let ascii = true;
  for (let i = from; i < to && ascii; i++) ascii = bytes[i] < 0x80;
  if (ascii) return ASCII.decode(bytes.subarray(from, to));
  let out = "";
  // In slices: a spread or apply of too many arguments would overflow the stack.
  for (let at = from; at < to; at += 4096) {
    const part = bytes.subarray(at, Math.min(to, at + 4096));
    out += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return out;
}

function bad(message: string): HttpError {
  return new HttpError("EPROTO", 400, message);
}

/** Names a byte in an error message without echoing control characters. */
function describe(b: number): string {
  if (b > SP && b < 0x7f) return `character "${String.fromCharCode(b)}"`;
  return `byte 0x${b.toString(16).padStart(2, "0")}`;
}
