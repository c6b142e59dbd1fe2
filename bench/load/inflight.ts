/**
 * One message in flight (request/response): a single connection writes one message,
 * waits for its echo, and only then writes the next. Measures round trips per second
 * and the round-trip time of every message, so a server that batches its writes at
 * the cost of latency shows it here.
 *
 * @module
 */

import type { InflightCommand, Latency, Measurement } from "./commands.ts";
import { closeQuietly, closeWs, message, openWs, writeAll } from "./conn.ts";
import { clientFrame, FrameCounter, OP_BINARY } from "./frames.ts";
import { binaryPayload } from "./payloads.ts";
import { cpuBetween, rssKiB, sampleCpu } from "./procfs.ts";

const CONNECT_TIMEOUT_MS = 5000;
/** One echo slower than this ends the cell as a failure (a stuck server, not latency). */
const ECHO_TIMEOUT_MS = 5000;
const CLOSE_TIMEOUT_MS = 2000;
const READ_BUFFER = 64 * 1024;

/** The value at quantile `q` (0..1) of ascending `sorted`, nearest-rank. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Percentiles of `samples` (ms), in µs. */
export function latencyOf(samples: Float64Array): Latency {
  const sorted = samples.slice().sort();
  const us = (ms: number) => ms * 1000;
  return {
    p50Us: us(percentile(sorted, 0.5)),
    p90Us: us(percentile(sorted, 0.9)),
    p99Us: us(percentile(sorted, 0.99)),
    maxUs: us(sorted.length ? sorted[sorted.length - 1] : NaN),
  };
}

/** Runs the request/response measurement. */
export async function runInflight(cmd: InflightCommand): Promise<Measurement> {
  const payload = binaryPayload(cmd.size);
  const frame = clientFrame(OP_BINARY, payload);
  const counter = new FrameCounter({ opcode: OP_BINARY, payload });
  const { conn, leftover } = await openWs(cmd.port, CONNECT_TIMEOUT_MS, true, cmd.tls);
  const buf = new Uint8Array(READ_BUFFER);
  counter.feed(leftover);
  /** One round trip; returns its duration in ms. */
  const roundTrip = async (): Promise<number> => {
    const want = counter.messages + 1;
    const t0 = performance.now();
    await writeAll(conn, frame);
    while (counter.messages < want) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("server closed the connection mid-run");
      counter.feed(buf.subarray(0, n));
    }
    return performance.now() - t0;
  };
  const samples = new Float64Array(cmd.maxMessages);
  let count = 0;
  // One watchdog for the whole cell rather than a timer per round trip (which would
  // add its own cost to every cycle): a server that stops answering for
  // ECHO_TIMEOUT_MS gets its connection closed, which fails the pending read.
  let progressAt = performance.now();
  let stalled = false;
  const watchdog = setInterval(() => {
    if (performance.now() - progressAt > ECHO_TIMEOUT_MS) {
      stalled = true;
      closeQuietly(conn);
    }
  }, 250);
  try {
    const timed = async () => {
      const ms = await roundTrip();
      progressAt = performance.now();
      return ms;
    };
    const warmEnd = performance.now() + cmd.warmupMs;
    while (performance.now() < warmEnd) await timed();
    const s0 = sampleCpu(cmd.pid, cmd.clkTck);
    const end = s0.at + cmd.durationMs;
    while (count < cmd.maxMessages && performance.now() < end) samples[count++] = await timed();
    const s1 = sampleCpu(cmd.pid, cmd.clkTck);
    clearInterval(watchdog);
    const rss = rssKiB(cmd.pid);
    const anomalies = [...counter.anomalies];
    const problem = await closeWs(conn, counter, CLOSE_TIMEOUT_MS);
    if (problem) anomalies.push(problem);
    return {
      count,
      bytes: count * payload.length,
      ...cpuBetween(s0, s1),
      serverRssKiB: rss,
      latency: latencyOf(samples.subarray(0, count)),
      anomalies,
    };
  } catch (e) {
    closeQuietly(conn);
    const why = stalled ? `no echo within ${ECHO_TIMEOUT_MS} ms` : message(e);
    throw new Error(`after ${count} measured round trips: ${why}`);
  } finally {
    clearInterval(watchdog);
  }
}
