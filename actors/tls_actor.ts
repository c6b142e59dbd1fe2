/**
 * The TLS actor: one per TLS connection. It owns the bytestream beneath it (whose
 * input it takes over with the `attach`/`pause`/`resume` protocol) and a `node:tls`
 * engine that runs over an in-memory duplex: ciphertext the engine writes goes to the
 * lower actor as `send` messages, ciphertext the lower actor reads is fed to the
 * engine. Upwards it offers the plaintext as a {@link Transport}, so that an ordinary
 * {@link ByteStream} on top gives TLS the exact `bsend`/`brecv` semantics, deadlines
 * and flow control of every other bytestream.
 *
 * Received ciphertext is fed record by record around possible alerts, so the actor
 * stops right after the peer's `close_notify`: the bytes behind it are handed back
 * with the lower stream on detach.
 *
 * This module is the actor's state machine: the handshake, the flow of plaintext and
 * ciphertext, close_notify, detach and failures. The engine itself (`node:tls`, its
 * duplex, record plumbing and error mapping) is behind `./tls_engine.ts`.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { Actor, call } from "./actor.ts";
import { Fifo } from "./fifo.ts";
import { Request } from "./request.ts";
import type { PendingCall } from "./request.ts";
import type { ByteStream, StreamEvent } from "./stream.ts";
import { remaining } from "./time.ts";
import { DEFAULT_CLOSE_LINGER_MS } from "./stream_options.ts";
import { TlsEngine, type TlsEngineReport, type TlsSession, type TlsStart } from "./tls_engine.ts";
import type { Transport } from "./transport.ts";

export type { TlsSession, TlsStart } from "./tls_engine.ts";

/** Buffer limits of a TLS actor. */
export interface TlsLimits {
  /** Decrypted bytes kept for the layer above before reading from the wire pauses. */
  readonly readHighWater: number;
}

/** Messages a TLS actor understands. */
export type TlsMsg =
  | StreamEvent
  | { readonly kind: "handshake"; readonly req: Request<TlsSession> }
  | { readonly kind: "read"; readonly buf: Uint8Array; readonly req: Request<number | null> }
  | { readonly kind: "readChunks"; readonly req: Request<Uint8Array[] | null> }
  | { readonly kind: "write"; readonly buf: Uint8Array; readonly req: Request<number> }
  | { readonly kind: "closeWrite"; readonly req: Request<void> }
  | { readonly kind: "detach"; readonly req: Request<ByteStream> }
  // Reports from the TLS engine and from the lower actor:
  | TlsEngineReport
  | { readonly kind: "cipherSent"; readonly bytes: number }
  | { readonly kind: "cipherFailed"; readonly error: unknown }
  | { readonly kind: "alertCheck" }
  | { readonly kind: "alertTimedOut" }
  | { readonly kind: "judgeDetach"; readonly req: Request<ByteStream> };

/**
 * Plaintext handed to the engine per write. Each write makes the engine emit its
 * records at once, and those reach this actor as messages: the cap keeps them far
 * below the mailbox limit.
 */
const MAX_PLAIN_WRITE = 256 * 1024;

const ALERT_CHECK: TlsMsg = { kind: "alertCheck" };
const ALERT_TIMED_OUT: TlsMsg = { kind: "alertTimedOut" };

type Phase = "handshake" | "open" | "detached";

/**
 * A TLS connection layer. It is not a socket layer itself: the bytestream above it
 * reaches it through {@link TlsActor.plaintext}.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, tlsAttachClient, tlsAttachServer } from "../mod.ts";
 *
 * // The TLS actor is spawned by the attach calls; this is how it is normally reached.
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const read = (f: string) => Deno.readTextFileSync(new URL(f, dir));
 * const [a, b] = ipcPair();
 * const [s, c] = await Promise.all([
 *   tlsAttachServer(a, { cert: read("cert.pem"), key: read("key.pem") }, -1),
 *   tlsAttachClient(b, { hostname: "localhost", caCerts: [read("ca.pem")] }, -1),
 * ]);
 * hclose(s);
 * hclose(c);
 * ```
 */
export class TlsActor extends Actor<TlsMsg> {
  readonly #lower: ByteStream;
  readonly #start: TlsStart;
  readonly #limits: TlsLimits;
  readonly #engine: TlsEngine;
  readonly #plaintext: Transport;

  #phase: Phase = "handshake";
  #session: TlsSession | null = null;
  #handshakeReq: Request<TlsSession> | null = null;
  #detachReq: Request<ByteStream> | null = null;

  // Inbound: decrypted bytes for the layer above, and its one pending read.
  /** A Fifo: tiny TLS records can queue many chunks; `Array.shift` would be quadratic. */
  readonly #plain = new Fifo<Uint8Array>();
  #plainBytes = 0;
  #reader: PlainReader | null = null;
  /** `"eof"` after the peer's close_notify was read, or why input failed. */
  #inputEnd: "eof" | DillError | null = null;
  /** Ciphertext that followed the peer's close_notify: no longer TLS. */
  #afterClose: Uint8Array[] = [];
  #lowerPaused = false;

  // Outbound: the plaintext write in progress and the ciphertext still in flight.
  #writer: { n: number; req: Request<number>; engineDone: boolean } | null = null;
  #cipherInFlight = 0;
  #outputFailure: DillError | null = null;
  #closeWriteReq: Request<void> | null = null;
  /** The engine sent its close_notify (its writable side finished). */
  #engineFinished = false;
  /** The engine failed after the handshake: the stack closes with this once its alert is out. */
  #failAfterAlert: DillError | null = null;
  #alertTimer: ReturnType<typeof setTimeout> | undefined;
  #alertCheck: ReturnType<typeof setImmediate> | undefined;

  /**
   * Starts the engine; the handshake begins with the `handshake` message.
   *
   * @param lower the bytestream to run TLS over (adopted: it closes with this actor)
   * @param start which side, and its credentials
   * @param limits buffer limits
   */
  constructor(lower: ByteStream, start: TlsStart, limits: TlsLimits) {
    super(`tls ${start.side}`);
    this.#lower = lower;
    this.#start = start;
    this.#limits = limits;
    this.adopt(lower);
    this.#engine = new TlsEngine(start, (report) => this.send(report));
    this.#plaintext = new PlaintextTransport(this);
  }

  /** The decrypted side, as the transport of the bytestream above. */
  get plaintext(): Transport {
    return this.#plaintext;
  }

  /** What the handshake settled, once it finished. */
  get session(): TlsSession | null {
    return this.#session;
  }

  /** Handles one message: a call from above, a stream event from below, an engine report. */
  protected receive(msg: TlsMsg): void {
    // While the engine's alert goes out, the stack is as good as closed: calls fail now.
    if (this.#failAfterAlert && "req" in msg && msg.kind !== "handshake") {
      return msg.req.reject(this.#failAfterAlert);
    }
    switch (msg.kind) {
      case "data":
        return this.#feed(msg.chunk);
      case "eof":
        return this.#wireEnded(null);
      case "fail":
        return this.#wireEnded(msg.error);
      case "handshake":
        this.#handshakeReq = msg.req;
        if (!this.park(msg.req)) this.#failHandshake(timedOut(msg.req.op));
        return;
      case "read":
        return this.#read({ buf: msg.buf, req: msg.req });
      case "readChunks":
        return this.#read({ buf: null, req: msg.req });
      case "write":
        return this.#write(msg.buf, msg.req);
      case "closeWrite":
        return this.#closeWrite(msg.req);
      case "detach":
        return this.#detach(msg.req);
      case "started":
        this.#lower.send({ kind: "attach", consumer: this });
        return;
      case "secure":
        return this.#secure();
      case "plain":
        return this.#plainData(msg.chunk);
      case "plainEnd":
        if (this.#inputEnd === null) this.#inputEnd = "eof";
        if (!this.#engine.closeNotifyRead) {
          // Normally seen earlier, as the engine pushed its end; never miss it.
          this.#engine.noteInputEnd();
          this.#keepAfterClose(new Uint8Array(0));
        }
        return this.#serveReader();
      case "engineError":
        return this.#engineFailed(msg.error);
      case "written":
        return this.#engineWritten(msg.error);
      case "finished":
        this.#engineFinished = true;
        return this.#finishCloseWrite();
      case "cipher":
        return this.#sendCipher(msg.chunk);
      case "cipherSent":
        this.#cipherInFlight -= msg.bytes;
        if (this.#failAfterAlert && this.#cipherInFlight === 0) {
          return this.close(this.#failAfterAlert);
        }
        this.#finishWrite();
        return this.#finishCloseWrite();
      case "cipherFailed":
        if (this.#failAfterAlert) return this.close(this.#failAfterAlert);
        return this.#failOutput(msg.error);
      case "alertCheck":
        if (this.#cipherInFlight === 0) return this.close(this.#failAfterAlert!);
        return; // the alert is being written: cipherSent closes
      case "alertTimedOut":
        return this.close(this.#failAfterAlert!);
      case "judgeDetach":
        // Deadline 0: what had arrived was read this turn, and no close_notify was in it.
        if (msg.req === this.#detachReq) this.#detachTimedOut(msg.req);
        return;
    }
  }

  /** The handshake or the detach reached its deadline: the stack closes. */
  protected expired(req: PendingCall): void {
    if (req === this.#handshakeReq) return this.#failHandshake(timedOut(req.op));
    if (req === this.#detachReq) return this.#detachTimedOut(req);
  }

  /**
   * The detach fails at its deadline, and the stack closes under the calls still pending
   * on the handle: those fail with `ECANCELED` (theirs may have no deadline at all).
   */
  #detachTimedOut(req: PendingCall): void {
    this.#detachReq = null;
    req.reject(
      new DillError("ETIMEDOUT", `${req.op}: the peer's close_notify did not come in time`),
    );
    this.close(new DillError("ECANCELED", `${req.op} timed out, which closed the TLS stack`));
  }

  /** Fails every pending call with `reason` and destroys the engine. */
  protected terminate(reason: DillError): void {
    this.#handshakeReq?.reject(reason);
    this.#detachReq?.reject(reason);
    this.#reader?.req.reject(reason);
    this.#writer?.req.reject(reason);
    this.#closeWriteReq?.reject(reason);
    this.#handshakeReq = this.#detachReq = this.#closeWriteReq = null;
    this.#reader = null;
    this.#writer = null;
    this.#plain.clear();
    this.#afterClose = [];
    clearTimeout(this.#alertTimer);
    clearImmediate(this.#alertCheck);
    this.#engine.destroy();
  }

  // ---- handshake ------------------------------------------------------------------

  #secure(): void {
    const req = this.#handshakeReq;
    if (this.#phase !== "handshake" || !req) return;
    this.#handshakeReq = null;
    this.#phase = "open";
    this.#session = this.#engine.session();
    req.resolve(this.#session);
  }

  #failHandshake(error: DillError): void {
    const req = this.#handshakeReq;
    this.#handshakeReq = null;
    req?.reject(error);
    this.close(error);
  }

  // ---- inbound --------------------------------------------------------------------

  /** Feeds received ciphertext to the engine, up to the peer's close_notify. */
  #feed(chunk: Uint8Array): void {
    const fed = this.#engine.feed(chunk);
    if (this.#engine.closeNotifyRead) return this.#keepAfterClose(chunk.subarray(fed));
    // The engine took every byte (nothing waits in the duplex): the read buffer is free.
    if (!this.#engine.holdsCiphertext) this.#lower.send({ kind: "recycle", chunk });
  }

  /** Bytes after the close_notify wait for a detach; reading stops meanwhile. */
  #keepAfterClose(rest: Uint8Array): void {
    if (rest.length > 0) this.#afterClose.push(rest);
    this.#pauseLower(true);
    if (this.#detachReq) this.#finishDetach();
  }

  #plainData(chunk: Uint8Array): void {
    // Data may come before the handshake is reported (it can share a read with the
    // client's Finished): keep it. Only a detach drops what is left.
    if (this.#phase === "detached" || chunk.length === 0) return;
    // The engine's chunks are node Buffers; handed up as they are, the messages cut
    // from them would be Buffers too. A plain view of the same bytes, no copy.
    this.#plain.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    this.#plainBytes += chunk.length;
    this.#serveReader();
  }

  #read(reader: PlainReader): void {
    if (this.#reader) {
      return reader.req.reject(new DillError("EBUSY", `${this.name}: a read is already pending`));
    }
    this.#reader = reader;
    this.#serveReader();
  }

  #serveReader(): void {
    const reader = this.#reader;
    if (reader && this.#plainBytes > 0) {
      this.#reader = null;
      if (reader.buf) reader.req.resolve(this.#take(reader.buf));
      else reader.req.resolve(this.#takeAll());
    } else if (reader && this.#inputEnd !== null) {
      this.#reader = null;
      if (this.#inputEnd === "eof") reader.req.resolve(null);
      else reader.req.reject(this.#inputEnd);
    }
    // Checked on every change, reader or not: a reader that takes everything at once
    // leaves nothing behind to trigger the check on its next read.
    if (!this.#engine.closeNotifyRead) {
      this.#pauseLower(this.#plainBytes >= this.#limits.readHighWater);
    }
  }

  #take(buf: Uint8Array): number {
    let n = 0;
    while (n < buf.length && this.#plain.length > 0) {
      const chunk = this.#plain.peek()!;
      const k = Math.min(chunk.length, buf.length - n);
      buf.set(k === chunk.length ? chunk : chunk.subarray(0, k), n);
      n += k;
      if (k === chunk.length) this.#plain.shift();
      else this.#plain.replaceFront(chunk.subarray(k));
    }
    this.#plainBytes -= n;
    return n;
  }

  /** Hands every decrypted chunk over: the engine made each one afresh, nothing else holds it. */
  #takeAll(): Uint8Array[] {
    this.#plainBytes = 0;
    return this.#plain.drain();
  }

  #pauseLower(pause: boolean): void {
    if (pause === this.#lowerPaused) return;
    this.#lowerPaused = pause;
    this.#lower.send({ kind: pause ? "pause" : "resume" });
  }

  /** The stream beneath ended (`null`) or failed. */
  #wireEnded(failure: DillError | null): void {
    if (this.#phase === "handshake") {
      return this.#failHandshake(
        failure ??
          new DillError(
            "ECONNRESET",
            `${this.#op()}: the peer closed the connection during the TLS handshake`,
          ),
      );
    }
    if (this.#engine.closeNotifyRead) return; // a clean TLS end came first
    const error = failure ??
      new DillError(
        "ECONNRESET",
        `${this.name}: the peer closed the connection without a TLS close_notify ` +
          "(the data may have been cut short)",
      );
    this.#inputEnd ??= error;
    if (this.#detachReq) return this.close(error);
    this.#serveReader();
  }

  // ---- outbound -------------------------------------------------------------------

  #write(buf: Uint8Array, req: Request<number>): void {
    if (this.#outputFailure) return req.reject(this.#outputFailure);
    if (this.#writer) {
      return req.reject(new DillError("EBUSY", `${this.name}: a write is already pending`));
    }
    const n = Math.min(buf.length, MAX_PLAIN_WRITE);
    this.#writer = { n, req, engineDone: false };
    const piece = n === buf.length ? buf : buf.subarray(0, n);
    this.#engine.write(piece);
  }

  #engineWritten(error: unknown): void {
    if (error) return this.#engineFailed(error);
    if (this.#writer) this.#writer.engineDone = true;
    this.#finishWrite();
  }

  /**
   * A write is answered once the engine took it and every ciphertext record it made
   * was written by the stream beneath: a send above then means "handed to the OS",
   * as on a plain socket, and a close right after it loses nothing.
   */
  #finishWrite(): void {
    const w = this.#writer;
    if (!w || !w.engineDone || this.#cipherInFlight > 0) return;
    this.#writer = null;
    w.req.resolve(w.n);
  }

  #sendCipher(chunk: Uint8Array): void {
    if (this.#phase === "detached" || this.#outputFailure) return;
    this.#cipherInFlight += chunk.length;
    const req = new Request<void>("tls", -1);
    const bytes = chunk.length;
    req.promise.then(
      () => this.send({ kind: "cipherSent", bytes }),
      (error) => this.send({ kind: "cipherFailed", error }),
    );
    this.#lower.send({ kind: "send", chunks: [chunk], req });
  }

  #failOutput(error: unknown): void {
    const failure = error instanceof DillError
      ? error
      : new DillError("ECONNRESET", `${this.name}: sending failed (${String(error)})`);
    this.#outputFailure ??= failure;
    this.#writer?.req.reject(failure);
    this.#closeWriteReq?.reject(failure);
    this.#writer = this.#closeWriteReq = null;
    if (this.#phase === "handshake") this.#failHandshake(failure);
  }

  #closeWrite(req: Request<void>): void {
    if (this.#outputFailure) return req.reject(this.#outputFailure);
    this.#closeWriteReq = req;
    this.#engine.end(); // sends close_notify; "finish" follows once the engine made it
  }

  /** The close_notify is out once the engine finished and the stream beneath wrote it. */
  #finishCloseWrite(): void {
    if (!this.#closeWriteReq || !this.#engineFinished || this.#cipherInFlight > 0) return;
    this.#closeWriteReq.resolve();
    this.#closeWriteReq = null;
  }

  // ---- failures and detach ----------------------------------------------------------

  #engineFailed(error: unknown): void {
    const failure = this.#engine.error(this.#op(), error, this.#phase === "handshake");
    if (this.#phase === "handshake") return this.#failHandshake(failure);
    if (this.#failAfterAlert) return; // reported twice (a client's engine does)
    if (this.#outputFailure) return this.close(failure);
    // The engine writes its alert (a record it could not decrypt) just after it reports,
    // within the turn: the peer should learn why, so the stack closes once the alert is
    // written (at most after the linger), or at the end of the turn when none came.
    this.#failAfterAlert = failure;
    this.#pauseLower(true);
    this.#alertCheck = setImmediate(() => this.send(ALERT_CHECK));
    this.#alertTimer = setTimeout(() => this.send(ALERT_TIMED_OUT), DEFAULT_CLOSE_LINGER_MS);
  }

  #detach(req: Request<ByteStream>): void {
    this.#detachReq = req;
    this.#phase = "detached";
    this.#plain.clear();
    this.#plainBytes = 0;
    if (this.#engine.closeNotifyRead) return this.#finishDetach();
    if (this.#inputEnd instanceof DillError) return this.close(this.#inputEnd);
    this.#pauseLower(false); // drop what the peer still sends until its close_notify
    if (remaining(req.deadline) === 0) {
      // "Without waiting": a close_notify already sent may still be in the socket, behind
      // data to drop; the reads this turn find it, as any call with deadline 0 would.
      setImmediate(() => this.send({ kind: "judgeDetach", req }));
      return;
    }
    if (!this.park(req)) {
      // Its signal had aborted (park failed the call): the stack closes under the rest.
      this.#detachReq = null;
      this.close(new DillError("ECANCELED", `${req.op} was cancelled, which closed the TLS stack`));
    }
  }

  /** Hands the lower stream back with the bytes that followed the close_notify. */
  #finishDetach(): void {
    const req = this.#detachReq!;
    this.#detachReq = null;
    const leftover = this.#afterClose;
    this.#afterClose = [];
    const detached = new DillError("ECANCELED", `${req.op}: the TLS layer was detached`);
    // Input already delivered to this actor goes back down; calls still queued fail.
    for (const m of this.takeQueued()) {
      if (m.kind === "data") leftover.push(m.chunk);
      else if ("req" in m) m.req.reject(detached);
    }
    this.release(this.#lower);
    this.#lower.send({ kind: "detach", leftover });
    req.resolve(this.#lower);
    this.close(detached);
  }

  /** Who a failure is told in the name of: the attach call, or the open connection after it. */
  #op(): string {
    if (this.#phase !== "handshake") return this.name;
    return this.#start.side === "client" ? "tlsAttachClient" : "tlsAttachServer";
  }
}

/** The one pending read of the plaintext: into a buffer, or of the chunks themselves. */
type PlainReader =
  | { readonly buf: Uint8Array; readonly req: Request<number | null> }
  | { readonly buf: null; readonly req: Request<Uint8Array[] | null> };

/** The plaintext side of a {@link TlsActor}, as a transport: every call is a message. */
class PlaintextTransport implements Transport {
  constructor(readonly actor: TlsActor) {}

  read(buf: Uint8Array): Promise<number | null> {
    return call<number | null, TlsMsg>(this.actor, "tls read", -1, (req) => ({
      kind: "read",
      buf,
      req,
    }));
  }

  readChunks(): Promise<Uint8Array[] | null> {
    return call<Uint8Array[] | null, TlsMsg>(this.actor, "tls read", -1, (req) => ({
      kind: "readChunks",
      req,
    }));
  }

  write(buf: Uint8Array): Promise<number> {
    return call<number, TlsMsg>(this.actor, "tls write", -1, (req) => ({
      kind: "write",
      buf,
      req,
    }));
  }

  closeWrite(): Promise<void> {
    return call<void, TlsMsg>(this.actor, "tls close_notify", -1, (req) => ({
      kind: "closeWrite",
      req,
    }));
  }

  close(): void {
    this.actor.close(new DillError("ECANCELED", "the TLS socket was closed"));
  }
}

function timedOut(op: string): DillError {
  return new DillError("ETIMEDOUT", `${op}: the TLS handshake did not finish before the deadline`);
}
