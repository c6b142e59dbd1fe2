/**
 * Pipelined echo traffic: each connection keeps `window` messages in flight,
 * writing pre-built masked frames in batches as echoes come back, and counts the
 * echoes by their frame headers.
 *
 * @module
 */

import type { Measurement, ThroughputCommand } from "./commands.ts";
import { closeQuietly, message, openWs, type RawWs, writeAll } from "./conn.ts";
import {
  clientFrame,
  closeFrame,
  type EchoExpectation,
  fragmentedMessage,
  FrameCounter,
  OP_BINARY,
  OP_TEXT,
  repeatFrame,
} from "./frames.ts";
import { binaryPayload, textPayload } from "./payloads.ts";
import { cpuBetween, rssKiB, sampleCpu } from "./procfs.ts";

/** Largest single write of pre-built frames. */
const MAX_BATCH_BYTES = 256 * 1024;
const READ_BUFFER = 256 * 1024;
const POLL_MS = 10;
const DRAIN_TIMEOUT_MS = 5000;
const CLOSE_TIMEOUT_MS = 2000;
const CLOSE_FRAME = closeFrame();

/** One connection's pipeline: a writer spending credits, a reader returning them. */
class Pump {
  readonly counter: FrameCounter;
  sent = 0;
  stopped = false;
  failure: string | null = null;
  readonly #ws: RawWs;
  readonly #batch: Uint8Array;
  readonly #frameLen: number;
  readonly #batchCount: number;
  #credits: number;
  /** Writes wait for this many credits, so both sides move messages in batches. */
  readonly #minBatch: number;
  #wake: (() => void) | null = null;
  #drained: (() => void) | null = null;
  #readerDone: Promise<void> | null = null;

  constructor(
    ws: RawWs,
    frame: Uint8Array,
    batch: Uint8Array,
    window: number,
    expect: EchoExpectation,
  ) {
    this.#ws = ws;
    this.#batch = batch;
    this.#frameLen = frame.length;
    this.#batchCount = batch.length / frame.length;
    this.#credits = window;
    this.#minBatch = Math.min(this.#batchCount, Math.max(1, Math.floor(window / 4)));
    this.counter = new FrameCounter(expect);
  }

  start(): void {
    this.#readerDone = this.#read();
    this.#write();
  }

  /**
   * Stops sending, waits until every sent message is echoed, then runs the closing
   * handshake (unless `handshake` is false: the reflector has none).
   */
  async finish(handshake: boolean): Promise<string[]> {
    this.stopped = true;
    this.#wake?.();
    const problems: string[] = [];
    if (this.counter.messages < this.sent && this.failure === null) {
      const drained = new Promise<void>((r) => (this.#drained = r));
      await raceTimeout(Promise.race([drained, this.#readerDone]), DRAIN_TIMEOUT_MS);
      if (this.counter.messages < this.sent && this.failure === null) {
        problems.push(
          `${this.sent - this.counter.messages} of ${this.sent} messages not echoed ` +
            `${DRAIN_TIMEOUT_MS} ms after sending stopped`,
        );
      }
    }
    if (this.failure !== null || !handshake) {
      if (this.failure !== null) problems.push(this.failure);
      closeQuietly(this.#ws.conn);
      await this.#readerDone;
      return problems;
    }
    // The reader keeps counting; the closing handshake only writes and waits for EOF.
    const closed = closeCheck(this.#ws.conn, this.counter, this.#readerDone!);
    const problem = await closed;
    if (problem) problems.push(problem);
    return problems;
  }

  /** Stops at once and closes the socket (the error path; harmless after {@link finish}). */
  abort(): void {
    this.stopped = true;
    this.#wake?.();
    closeQuietly(this.#ws.conn);
  }

  async #write(): Promise<void> {
    try {
      while (!this.stopped) {
        if (this.#credits < this.#minBatch) {
          await new Promise<void>((r) => (this.#wake = r));
          this.#wake = null;
          continue;
        }
        const n = Math.min(this.#credits, this.#batchCount);
        this.#credits -= n;
        this.sent += n;
        await writeAll(this.#ws.conn, this.#batch.subarray(0, n * this.#frameLen));
      }
    } catch (e) {
      if (!this.stopped) this.failure ??= `write failed: ${message(e)}`;
    }
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER);
    try {
      if (this.#ws.leftover.length > 0) this.#onEchoes(this.counter.feed(this.#ws.leftover));
      for (;;) {
        const n = await this.#ws.conn.read(buf);
        if (n === null) {
          if (!this.counter.closed) this.failure ??= "server closed the connection mid-run";
          return;
        }
        this.#onEchoes(this.counter.feed(buf.subarray(0, n)));
      }
    } catch (e) {
      if (!this.counter.closed) this.failure ??= `read failed: ${message(e)}`;
    } finally {
      this.#drained?.();
    }
  }

  #onEchoes(k: number): void {
    if (k === 0) return;
    this.#credits += k;
    if (this.#credits >= this.#minBatch) this.#wake?.();
    if (this.stopped && this.counter.messages >= this.sent) this.#drained?.();
  }
}

/** The client's closing handshake while the pump's reader goes on counting frames. */
async function closeCheck(
  conn: Deno.Conn,
  counter: FrameCounter,
  readerDone: Promise<void>,
): Promise<string | null> {
  try {
    await writeAll(conn, CLOSE_FRAME);
  } catch (e) {
    closeQuietly(conn);
    return `could not send a close frame: ${message(e)}`;
  }
  const outcome = await raceTimeout(readerDone, CLOSE_TIMEOUT_MS);
  closeQuietly(conn);
  await readerDone;
  if (!counter.closed) return "no close frame from the server after the client's close";
  if (outcome === TIMED_OUT) return `server did not close TCP within ${CLOSE_TIMEOUT_MS} ms`;
  return null;
}

/** Runs one pipelined throughput measurement. */
export async function runThroughput(cmd: ThroughputCommand): Promise<Measurement> {
  const payload = cmd.text ? textPayload(cmd.size) : binaryPayload(cmd.size);
  const opcode = cmd.text ? OP_TEXT : OP_BINARY;
  const frame = cmd.fragment
    ? fragmentedMessage(opcode, payload, cmd.fragment)
    : clientFrame(opcode, payload);
  const copies = Math.max(1, Math.min(cmd.window, Math.floor(MAX_BATCH_BYTES / frame.length)));
  const batch = repeatFrame(frame, copies);
  const expect = { opcode, payload, masked: cmd.reflect };

  const opened = await Promise.allSettled(
    Array.from({ length: cmd.conns }, (_, i) => openWs(cmd.port, 5000, i === 0, cmd.tls)),
  );
  const pumps: Pump[] = [];
  const anomalies: string[] = [];
  for (const o of opened) {
    if (o.status === "fulfilled") pumps.push(new Pump(o.value, frame, batch, cmd.window, expect));
    else note(anomalies, `connect/handshake failed: ${message(o.reason)}`);
  }
  try {
    if (pumps.length === 0) throw new Error(anomalies.join("; "));
    for (const p of pumps) p.start();
    await sleep(cmd.warmupMs);
    const total = () => pumps.reduce((s, p) => s + p.counter.messages, 0);
    const totalBytes = () => pumps.reduce((s, p) => s + p.counter.bytes, 0);
    const m0 = total();
    const b0 = totalBytes();
    const s0 = sampleCpu(cmd.pid, cmd.clkTck);
    while (
      performance.now() - s0.at < cmd.durationMs && total() - m0 < cmd.maxMessages &&
      pumps.some((p) => p.failure === null)
    ) {
      await sleep(POLL_MS);
    }
    const s1 = sampleCpu(cmd.pid, cmd.clkTck);
    const count = total() - m0;
    const bytes = totalBytes() - b0;
    const rss = rssKiB(cmd.pid);
    for (const p of pumps) for (const a of p.counter.anomalies) note(anomalies, a);
    const results = await Promise.all(pumps.map((p) => p.finish(!cmd.reflect)));
    for (const r of results) for (const a of r) note(anomalies, a);
    for (const p of pumps) for (const a of p.counter.anomalies) note(anomalies, a);
    return {
      count,
      bytes,
      ...cpuBetween(s0, s1),
      serverRssKiB: rss,
      anomalies,
    };
  } finally {
    for (const p of pumps) p.abort();
  }
}

/** Adds `what` to `list` once, keeping the list short. */
export function note(list: string[], what: string): void {
  if (list.length < 8 && !list.includes(what)) list.push(what);
}

/** What {@link raceTimeout} resolves when time ran out. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** `p`'s value, or {@link TIMED_OUT} if `p` has not settled after `ms`. */
export async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof TIMED_OUT>((r) => (timer = setTimeout(() => r(TIMED_OUT), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
