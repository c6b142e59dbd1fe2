/**
 * The connect storm: one connection at a time, connect, handshake, one 64-byte
 * echo, closing handshake; counted per second.
 *
 * @module
 */

import type { Measurement, StormCommand } from "./commands.ts";
import { closeQuietly, closeWs, message, openWs, within, writeAll } from "./conn.ts";
import { clientFrame, type EchoExpectation, FrameCounter, OP_BINARY } from "./frames.ts";
import { binaryPayload } from "./payloads.ts";
import { cpuBetween, rssKiB, sampleCpu } from "./procfs.ts";
import { note } from "./throughput.ts";

const STEP_TIMEOUT_MS = 2000;
/** The storm stops early after this many failed cycles (each may take a timeout). */
const MAX_FAILURES = 3;
/** Cycles slower than this are reported (a stall, such as a retransmission, not work). */
const SLOW_CYCLE_MS = 100;

/** One full connection lifetime; returns a problem description or `null`. */
async function cycle(
  port: number,
  frame: Uint8Array,
  expect: EchoExpectation,
  checkAccept: boolean,
): Promise<string | null> {
  const { conn, leftover } = await openWs(port, STEP_TIMEOUT_MS, checkAccept);
  const counter = new FrameCounter(expect);
  try {
    await within(conn, STEP_TIMEOUT_MS, "echo", async () => {
      await writeAll(conn, frame);
      counter.feed(leftover);
      const buf = new Uint8Array(4096);
      while (counter.messages === 0) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("server closed the connection before echoing");
        counter.feed(buf.subarray(0, n));
      }
    });
  } catch (e) {
    closeQuietly(conn);
    return message(e);
  }
  const problem = await closeWs(conn, counter, STEP_TIMEOUT_MS);
  return problem ?? counter.anomalies[0] ?? null;
}

/** Runs the connect storm: a warm-up span, then the measured one. */
export async function runStorm(cmd: StormCommand): Promise<Measurement> {
  const payload = binaryPayload(64);
  const frame = clientFrame(OP_BINARY, payload);
  const expect = { opcode: OP_BINARY, payload };
  const anomalies: string[] = [];
  let failures = 0;
  let slow = 0;
  let slowest = 0;
  const run = async (ms: number, max: number): Promise<number> => {
    const start = performance.now();
    let done = 0;
    while (performance.now() - start < ms && done < max && failures < MAX_FAILURES) {
      const t0 = performance.now();
      let problem: string | null;
      try {
        problem = await cycle(cmd.port, frame, expect, done === 0);
      } catch (e) {
        problem = message(e);
      }
      if (problem === null) done++;
      else {
        failures++;
        note(anomalies, problem);
      }
      const took = performance.now() - t0;
      if (took > SLOW_CYCLE_MS) slow++;
      slowest = Math.max(slowest, took);
    }
    return done;
  };
  await run(cmd.warmupMs, Number.MAX_SAFE_INTEGER);
  slow = 0;
  slowest = 0;
  const s0 = sampleCpu(cmd.pid, cmd.clkTck);
  const count = await run(cmd.durationMs, cmd.maxConns);
  const s1 = sampleCpu(cmd.pid, cmd.clkTck);
  if (failures >= MAX_FAILURES) note(anomalies, `stopped after ${failures} failed connections`);
  return {
    count,
    bytes: count * payload.length,
    ...cpuBetween(s0, s1),
    serverRssKiB: rssKiB(cmd.pid),
    anomalies,
    notes: slow > 0
      ? [`${slow} cycle(s) over ${SLOW_CYCLE_MS} ms (slowest ${Math.round(slowest)} ms)`]
      : [],
  };
}
