/**
 * Idle memory: hold many open, idle WebSocket connections and measure how much the
 * server's resident memory grew per connection.
 *
 * @module
 */

import type { IdleCommand, Measurement } from "./commands.ts";
import { closeWs, message, openWs, type RawWs } from "./conn.ts";
import { FrameCounter, OP_BINARY } from "./frames.ts";
import { cpuBetween, rssKiB, sampleCpu } from "./procfs.ts";
import { note, sleep } from "./throughput.ts";

/** Handshakes in flight at once while opening. */
const PARALLEL = 50;
/** Connections opened and closed first, so first-use costs (code, pools) are not counted. */
const WARM_CONNS = 100;
const TIMEOUT_MS = 5000;
const EXPECT = { opcode: OP_BINARY, payload: new Uint8Array(0) };

/** Opens `n` connections, `PARALLEL` at a time; failures are noted and skipped. */
async function openMany(port: number, n: number, anomalies: string[]): Promise<RawWs[]> {
  const open: RawWs[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        open.push(await openWs(port, TIMEOUT_MS, i === 0));
      } catch (e) {
        note(anomalies, `connect/handshake failed: ${message(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, n) }, worker));
  return open;
}

/** Runs the closing handshake on every connection, `PARALLEL * 4` at a time. */
async function closeMany(conns: RawWs[], anomalies: string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < conns.length) {
      const problem = await closeWs(conns[next++].conn, new FrameCounter(EXPECT), TIMEOUT_MS);
      if (problem) note(anomalies, problem);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL * 4 }, worker));
}

/** Runs the idle-memory measurement. */
export async function runIdle(cmd: IdleCommand): Promise<Measurement> {
  const anomalies: string[] = [];
  await closeMany(await openMany(cmd.port, WARM_CONNS, anomalies), anomalies);
  await sleep(cmd.settleMs);
  const rss0 = rssKiB(cmd.pid);
  const s0 = sampleCpu(cmd.pid, cmd.clkTck);
  const conns = await openMany(cmd.port, cmd.conns, anomalies);
  const s1 = sampleCpu(cmd.pid, cmd.clkTck);
  try {
    await sleep(cmd.settleMs);
    const rss1 = rssKiB(cmd.pid);
    return {
      count: conns.length,
      bytes: 0,
      ...cpuBetween(s0, s1),
      serverRssKiB: rss1,
      rssDeltaKiB: rss1 - rss0,
      anomalies,
    };
  } finally {
    await closeMany(conns, anomalies);
  }
}
