/**
 * Idle memory: hold many open, idle WebSocket connections (10,000 by default) and
 * measure how much the server's resident memory grew per connection.
 *
 * Each connection takes one file descriptor in this process and one in the server.
 * Deno, Node and Bun raise their soft `RLIMIT_NOFILE` to the hard limit at start, so
 * the hard limit (`ulimit -Hn`) bounds what can be held; the count is capped below
 * both processes' limits and below the free local ports, and the cap is reported.
 * Opening is bounded in time as a whole ({@link OPEN_BOUND_MS}), not only per
 * connection.
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
/** Opening all connections stops after this long; those held by then are measured. */
export const OPEN_BOUND_MS = 60_000;
/** Descriptors kept free in each process for everything else it has open. */
const FD_RESERVE = 200;
const EXPECT = { opcode: OP_BINARY, payload: new Uint8Array(0) };

/** The soft "Max open files" limit of a process, from /proc/<pid>/limits. */
export function fdLimit(pid: number | "self"): number {
  const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return !m || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

/** How many local ports the kernel hands out for outgoing connections. */
function localPorts(): number {
  try {
    const [lo, hi] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range")
      .trim().split(/\s+/).map(Number);
    return hi - lo + 1;
  } catch {
    return Infinity;
  }
}

/** The limits that bound how many idle connections one run can hold. */
export interface IdleLimits {
  /** Soft open-files limit of the load client. */
  readonly clientFds: number;
  /** Soft open-files limit of the server. */
  readonly serverFds: number;
  /** Local ports available for outgoing connections. */
  readonly localPorts: number;
}

/**
 * How many idle connections can be held: `wanted`, capped by the descriptor limits
 * of the load client and the server (less what each has open besides) and by the
 * local port range; says why when capped.
 */
export function capIdle(wanted: number, limits: IdleLimits): { n: number; why: string } {
  const caps: [number, string][] = [
    [limits.clientFds - FD_RESERVE, `the load client's open-files limit (${limits.clientFds})`],
    [limits.serverFds - FD_RESERVE, `the server's open-files limit (${limits.serverFds})`],
    [limits.localPorts - 2 * FD_RESERVE, `the local port range (${limits.localPorts} ports)`],
  ];
  let n = wanted;
  let why = "";
  for (const [cap, reason] of caps) {
    if (cap < n) {
      n = Math.max(0, cap);
      why = reason;
    }
  }
  return { n, why };
}

/** {@link capIdle} with the limits of this process and of `serverPid` read from /proc. */
export function idleCapacity(wanted: number, serverPid: number): { n: number; why: string } {
  return capIdle(wanted, {
    clientFds: fdLimit("self"),
    serverFds: fdLimit(serverPid),
    localPorts: localPorts(),
  });
}

/**
 * Opens `n` connections, `PARALLEL` at a time, until `deadline` (performance.now());
 * failures are noted and skipped.
 */
async function openMany(
  port: number,
  n: number,
  anomalies: string[],
  deadline = Infinity,
): Promise<RawWs[]> {
  const open: RawWs[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n && performance.now() < deadline) {
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
  const notes: string[] = [];
  const { n, why } = idleCapacity(cmd.conns, cmd.pid);
  if (n < cmd.conns) notes.push(`held ${n} connections, not ${cmd.conns}: capped by ${why}`);
  await closeMany(await openMany(cmd.port, WARM_CONNS, anomalies), anomalies);
  await sleep(cmd.settleMs);
  const rss0 = rssKiB(cmd.pid);
  const s0 = sampleCpu(cmd.pid, cmd.clkTck);
  const conns = await openMany(cmd.port, n, anomalies, s0.at + OPEN_BOUND_MS);
  const s1 = sampleCpu(cmd.pid, cmd.clkTck);
  if (conns.length < n && s1.at - s0.at >= OPEN_BOUND_MS) {
    notes.push(`opening stopped at the ${OPEN_BOUND_MS / 1000} s bound with ${conns.length} held`);
  }
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
      notes,
    };
  } finally {
    await closeMany(conns, anomalies);
  }
}
