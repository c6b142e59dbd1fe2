/**
 * The TLS engine of a TLS actor: `node:tls` running over an in-memory duplex. This
 * module is the adapter around it: it builds the engine for a side and its credentials,
 * feeds it ciphertext record by record so that input stops right after the peer's
 * `close_notify`, turns the engine's events into reports for the actor's mailbox, and
 * maps the engine's failures to {@link DillError}s. The actor's state machine (handshake,
 * flow control, close and detach) is in `./tls_actor.ts`.
 *
 * @module
 */

import type { Duplex } from "node:stream";
import type tls from "node:tls";
import { DillError } from "../protocol/errors.ts";
import { LazyModule } from "../protocol/lazy_module.ts";
import { TlsRecordScanner } from "../protocol/tls_records.ts";

/** What the engine takes from Node's modules, imported on first need (see lazy_module.ts). */
const nodeModules = new LazyModule("node:tls", async () => {
  // One after the other, as LazyModule runs its imports (node:tls imports node:stream).
  const { Duplex } = await import("node:stream");
  const process = await import("node:process");
  const tls = await import("node:tls");
  return { Duplex, nextTick: process.default.nextTick, tls: tls.default };
});

/**
 * Imports the engine's `node:tls` (and `node:stream`, `node:process`) once: awaited by
 * the TLS attach calls before they make an engine. Resolves at once after the first time.
 *
 * @example
 * ```ts
 * import { loadTlsEngine } from "./tls_engine.ts";
 *
 * await loadTlsEngine();
 * ```
 */
export async function loadTlsEngine(): Promise<void> {
  await nodeModules.load();
}

/**
 * How a TLS actor starts: which side, and its credentials (PEM text).
 *
 * @example
 * ```ts
 * import type { TlsStart } from "./tls_engine.ts";
 *
 * const start: TlsStart = { side: "client", hostname: "localhost", caCerts: undefined, alpn: [] };
 * console.log(start.side);
 * ```
 */
export type TlsStart =
  | {
    readonly side: "server";
    readonly cert: string;
    readonly key: string;
    readonly alpn: readonly string[];
  }
  | {
    readonly side: "client";
    readonly hostname: string;
    readonly caCerts: readonly string[] | undefined;
    readonly alpn: readonly string[];
  };

/**
 * What the handshake settled.
 *
 * @example
 * ```ts
 * import type { TlsSession } from "./tls_engine.ts";
 *
 * const session: TlsSession = { version: "TLSv1.3", alpnProtocol: null };
 * console.log(session.version);
 * ```
 */
export interface TlsSession {
  /** The protocol version, such as `"TLSv1.3"`. */
  readonly version: string | null;
  /** The application protocol agreed through ALPN, or `null`. */
  readonly alpnProtocol: string | null;
}

/**
 * What the engine reports, asynchronously, as messages for the actor's mailbox:
 * `started` (ciphertext may be fed from now on), `secure` (handshake done), `plain` and
 * `plainEnd` (decrypted input and its end), `cipher` (ciphertext to send), `written`
 * (a plaintext write was taken), `finished` (our close_notify was made) and
 * `engineError`.
 *
 * @example
 * ```ts
 * import type { TlsEngineReport } from "./tls_engine.ts";
 *
 * const report: TlsEngineReport = { kind: "plain", chunk: new Uint8Array([1]) };
 * console.log(report.kind);
 * ```
 */
export type TlsEngineReport =
  | { readonly kind: "started" }
  | { readonly kind: "secure" }
  | { readonly kind: "plain"; readonly chunk: Uint8Array }
  | { readonly kind: "plainEnd" }
  | { readonly kind: "engineError"; readonly error: unknown }
  | { readonly kind: "written"; readonly error: unknown }
  | { readonly kind: "finished" }
  | { readonly kind: "cipher"; readonly chunk: Uint8Array };

/**
 * A `node:tls` engine over an in-memory duplex, reporting through a callback.
 *
 * @example
 * ```ts
 * import { loadTlsEngine, TlsEngine, type TlsEngineReport } from "./tls_engine.ts";
 *
 * await loadTlsEngine();
 * // Two engines wired back to back: each one's ciphertext is fed to the other.
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const read = (f: string) => Deno.readTextFileSync(new URL(f, dir));
 * const { promise, resolve } = Promise.withResolvers<void>();
 * let client: TlsEngine;
 * const server = new TlsEngine(
 *   { side: "server", cert: read("cert.pem"), key: read("key.pem"), alpn: [] },
 *   (r: TlsEngineReport) => { if (r.kind === "cipher") client.feed(r.chunk); },
 * );
 * client = new TlsEngine(
 *   { side: "client", hostname: "localhost", caCerts: [read("ca.pem")], alpn: [] },
 *   (r: TlsEngineReport) => {
 *     if (r.kind === "cipher") server.feed(r.chunk);
 *     if (r.kind === "secure") resolve();
 *   },
 * );
 * await promise;
 * console.log(client.session().version); // "TLSv1.3"
 * client.destroy();
 * server.destroy();
 * ```
 */
export class TlsEngine {
  readonly #start: TlsStart;
  readonly #wire: Duplex;
  readonly #socket: tls.TLSSocket;
  readonly #scanner = new TlsRecordScanner();
  readonly #report: (report: TlsEngineReport) => void;
  readonly #nextTick: (callback: () => void) => void;
  #started = false;
  #closeNotifyRead = false;

  /**
   * Builds the engine; it starts on the next tick, then reports `started`. Needs
   * {@link loadTlsEngine} done (`ENOTSUP` otherwise).
   *
   * @param start which side, and its credentials
   * @param report receives the engine's reports (normally: sends them to the actor)
   */
  constructor(start: TlsStart, report: (report: TlsEngineReport) => void) {
    const { Duplex, nextTick, tls } = nodeModules.get("TLS engine");
    this.#start = start;
    this.#report = report;
    this.#nextTick = nextTick;
    this.#wire = new Duplex({
      allowHalfOpen: true,
      read() {},
      write: (chunk: Uint8Array, _encoding, done) => {
        report({ kind: "cipher", chunk });
        done();
      },
      // The engine's end never half-closes the stream beneath: detach needs it open.
      final: (done) => done(),
    });
    const socket = this.#socket = makeSocket(tls, this.#wire, start);
    socket.on(start.side === "client" ? "secureConnect" : "secure", () => {
      report({ kind: "secure" });
    });
    socket.on("data", (chunk: Uint8Array) => report({ kind: "plain", chunk }));
    socket.on("end", () => report({ kind: "plainEnd" }));
    socket.on("finish", () => report({ kind: "finished" }));
    socket.on("error", (error: unknown) => report({ kind: "engineError", error }));
    // After the handshake, a server socket made on its own (not by a tls.Server) reports a
    // record it cannot decrypt only as "_tlsError": it sends the peer its alert, and no
    // "error" or "close" follows. Without this the connection would stay open, silent.
    // (A client reports it as "error" too: the actor ignores a second failure.)
    socket.on("_tlsError", (error: unknown) => report({ kind: "engineError", error }));
    // The engine signals the end of its input by pushing null, synchronously while it
    // reads the close_notify record; "end" comes only a tick later. Feeding stops there.
    const push = socket.push;
    socket.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (chunk === null) this.#closeNotifyRead = true;
      return push.call(socket, chunk, encoding);
    };
    // The engine starts on the next tick; ciphertext fed before that crashes it. This
    // tick is queued after the engine's own, so once it ran the engine has started.
    nextTick(() => {
      this.#started = true;
      report({ kind: "started" });
    });
  }

  /** The engine read the peer's close_notify: its input ended, nothing more is fed. */
  get closeNotifyRead(): boolean {
    return this.#closeNotifyRead;
  }

  /** Records that the input ended, seen through `plainEnd` (normally seen earlier). */
  noteInputEnd(): void {
    this.#closeNotifyRead = true;
  }

  /**
   * Feeds received ciphertext, cut around records that may be alerts, up to the peer's
   * close_notify.
   *
   * @param chunk ciphertext from the stream beneath
   * @returns how many bytes were fed: less than `chunk.length` when the close_notify
   * came first (the rest is no longer TLS)
   */
  feed(chunk: Uint8Array): number {
    if (this.#closeNotifyRead) return 0;
    let offset = 0;
    while (offset < chunk.length) {
      const cut = this.#scanner.nextCut(chunk, offset);
      this.#wire.push(chunk.subarray(offset, cut));
      offset = cut;
      if (this.#closeNotifyRead) break;
    }
    return offset;
  }

  /** Whether fed ciphertext still waits in the duplex (the engine holds on to it). */
  get holdsCiphertext(): boolean {
    return this.#wire.readableLength > 0;
  }

  /** What the handshake settled; call once it reported `secure`. */
  session(): TlsSession {
    const alpn = this.#socket.alpnProtocol;
    return {
      version: this.#socket.getProtocol() ?? null,
      alpnProtocol: typeof alpn === "string" ? alpn : null,
    };
  }

  /** Encrypts plaintext; `written` is reported once the engine took it. */
  write(plain: Uint8Array): void {
    this.#socket.write(plain, (error) => this.#report({ kind: "written", error }));
  }

  /** Sends our close_notify; `finished` is reported once the engine made it. */
  end(): void {
    this.#socket.end();
  }

  /** Destroys the engine and its duplex (after its start, which would crash otherwise). */
  destroy(): void {
    const socket = this.#socket;
    const wire = this.#wire;
    const destroy = () => {
      socket.destroy();
      wire.destroy();
    };
    // Destroying the engine before it started makes its own start crash later.
    if (this.#started) destroy();
    else this.#nextTick(destroy);
  }

  /**
   * Turns a failure of the engine into a {@link DillError}: certificate and protocol
   * failures are `EPROTO` with what to fix, a connection lost mid-handshake `ECONNRESET`.
   *
   * @param op the call to name in the message
   * @param error what the engine reported
   * @param handshaking whether the handshake was still running (bytes that are not TLS
   * then mean a peer that does not speak it; later, a broken record)
   */
  error(op: string, error: unknown, handshaking = true): DillError {
    return tlsError(op, error, this.#start, handshaking);
  }
}

function makeSocket(nodeTls: typeof tls, wire: Duplex, start: TlsStart): tls.TLSSocket {
  const alpn = start.alpn.length > 0 ? [...start.alpn] : undefined;
  // Half-open: the peer's close_notify ends our input only, as a FIN does on TCP.
  const halfOpen = { allowHalfOpen: true };
  if (start.side === "server") {
    const options: tls.TLSSocketOptions & typeof halfOpen = {
      ...halfOpen,
      isServer: true,
      cert: start.cert,
      key: start.key,
      ALPNProtocols: alpn,
    };
    return new nodeTls.TLSSocket(wire, options);
  }
  const ip = isIpAddress(start.hostname);
  const options: tls.ConnectionOptions & typeof halfOpen = {
    ...halfOpen,
    socket: wire,
    // SNI carries names only; an IP address is checked against the certificate's IP SANs.
    servername: ip ? undefined : start.hostname,
    host: start.hostname,
    ca: start.caCerts ? [...start.caCerts] : undefined,
    ALPNProtocols: alpn,
    rejectUnauthorized: true,
  };
  return nodeTls.connect(options);
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/** Certificate checks that failed, by the codes the engine reports (OpenSSL's names). */
const CERT_PROBLEMS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "is not signed by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT: "is not signed by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "is not signed by a trusted CA",
  SELF_SIGNED_CERT_IN_CHAIN: "chains to a CA that is not trusted",
  DEPTH_ZERO_SELF_SIGNED_CERT: "is self-signed and not trusted",
  CERT_HAS_EXPIRED: "has expired",
  CERT_NOT_YET_VALID: "is not valid yet",
  ERR_TLS_CERT_ALTNAME_INVALID: "does not name the host connected to",
};

/** See {@link TlsEngine.error}. */
function tlsError(op: string, e: unknown, start: TlsStart, handshaking: boolean): DillError {
  if (e instanceof DillError) return e;
  const code = (e as { code?: unknown })?.code;
  const detail = e instanceof Error ? e.message : String(e);
  const problem = typeof code === "string" ? CERT_PROBLEMS[code] : undefined;
  if (problem) {
    const hint = code === "ERR_TLS_CERT_ALTNAME_INVALID"
      ? `; connect with the name the certificate was issued for`
      : start.side === "client"
      ? "; pass the CA that signed it in caCerts"
      : "";
    return new DillError(
      "EPROTO",
      `${op}: the peer's certificate ${problem} (${code}: ${detail})${hint}`,
      { cause: e },
    );
  }
  if (code === "ECONNRESET" || code === "EPIPE") {
    return new DillError("ECONNRESET", `${op}: the connection broke (${detail})`, { cause: e });
  }
  if (!handshaking) {
    return new DillError("EPROTO", `${op}: a TLS record from the peer was broken (${detail})`, {
      cause: e,
    });
  }
  if (/HandshakePayloadTooLarge/.test(detail)) {
    return new DillError("EPROTO", `${op}: a TLS handshake message was too large (${detail})`, {
      cause: e,
    });
  }
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" || /InvalidContentType|corrupt message/.test(detail)
  ) {
    return new DillError(
      "EPROTO",
      `${op}: the peer does not speak TLS (${detail})`,
      { cause: e },
    );
  }
  if (/known protocol|application protocol/i.test(detail)) {
    return new DillError("EPROTO", `${op}: no ALPN protocol in common (${detail})`, { cause: e });
  }
  return new DillError("EPROTO", `${op}: TLS failed (${detail})`, { cause: e });
}
