/**
 * Reads a process's own kernel accounting from Linux's /proc: CPU time (user +
 * system, all threads) and resident memory. Used by the load client to sample the
 * server at the exact moments it snapshots its counters.
 *
 * @module
 */

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux). */
export const DEFAULT_CLK_TCK = 100;

/**
 * CPU time (user + system, every thread of the process) in milliseconds, from
 * /proc/<pid>/stat fields 14 and 15. `pid` may be `"self"`.
 */
export function cpuMs(pid: number | "self", clkTck: number = DEFAULT_CLK_TCK): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces; fields after it start at the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks * 1000) / clkTck;
}

/** Resident set size in KiB, from the `VmRSS` line of /proc/<pid>/status. */
export function rssKiB(pid: number | "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status (process gone?)`);
  return Number(m[1]);
}

/**
 * CPU time all CPUs of the machine spent running processes (user, nice, system)
 * or stolen by the hypervisor, in milliseconds, from the first line of /proc/stat.
 * Subtracting the server's and the client's own time leaves what other processes
 * used: the noise of the machine. Interrupt and softirq time is left out, since
 * much of it is the loopback traffic of the benchmark itself.
 */
export function machineBusyMs(clkTck: number = DEFAULT_CLK_TCK): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0];
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, , , , , steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + (steal || 0)) * 1000) / clkTck;
}

/** A point-in-time sample of CPU times, taken together with the wall clock. */
export interface CpuSample {
  /** Wall clock, `performance.now()` ms. */
  readonly at: number;
  /** CPU ms of the server process. */
  readonly serverCpu: number;
  /** CPU ms of this (client) process. */
  readonly selfCpu: number;
  /** Busy CPU ms of the whole machine. */
  readonly machineBusy: number;
}

/** Samples the server's, this process's and the machine's CPU time with the wall clock. */
export function sampleCpu(serverPid: number, clkTck: number): CpuSample {
  return {
    at: performance.now(),
    serverCpu: cpuMs(serverPid, clkTck),
    selfCpu: cpuMs("self", clkTck),
    machineBusy: machineBusyMs(clkTck),
  };
}

/** The {@link Measurement}-style CPU figures between two samples. */
export function cpuBetween(
  s0: CpuSample,
  s1: CpuSample,
): { elapsedMs: number; serverCpuMs: number; clientCpuMs: number; otherCpuMs: number } {
  const serverCpuMs = s1.serverCpu - s0.serverCpu;
  const clientCpuMs = s1.selfCpu - s0.selfCpu;
  return {
    elapsedMs: s1.at - s0.at,
    serverCpuMs,
    clientCpuMs,
    otherCpuMs: Math.max(0, s1.machineBusy - s0.machineBusy - serverCpuMs - clientCpuMs),
  };
}
