/**
 * What the report says about the machine and the software: date, Deno, Node and
 * `ws` versions, CPUs, kernel, memory and load.
 *
 * @module
 */

import { type Children, runCommand } from "./children.ts";

/** The machine and software a run measured on. */
export interface MachineInfo {
  /** ISO date and time of the start of the run. */
  readonly date: string;
  /** Deno, V8 and TypeScript versions. */
  readonly deno: string;
  /** Node's version, or `null` without /usr/bin/node. */
  readonly node: string | null;
  /** CPUs available (`nproc`). */
  readonly nproc: number;
  /** CPU model name from /proc/cpuinfo. */
  readonly cpuModel: string;
  /** Kernel release. */
  readonly kernel: string;
  /** Total memory, GiB. */
  readonly memGiB: number;
  /** 1-, 5- and 15-minute load averages at the start. */
  readonly loadStart: number[];
}

async function output(children: Children, cmd: string, args: string[], root: string) {
  try {
    const r = await runCommand(children, cmd, args, root, 10_000);
    return r.code === 0 ? r.stdout.trim() : null;
  } catch {
    return null;
  }
}

/** Gathers the machine description. */
export async function machineInfo(children: Children, root: string): Promise<MachineInfo> {
  const nproc = Number(await output(children, "nproc", [], root)) ||
    navigator.hardwareConcurrency;
  const cpu = await output(children, "grep", ["-m1", "model name", "/proc/cpuinfo"], root);
  const node = await output(children, "/usr/bin/node", ["--version"], root);
  return {
    date: new Date().toISOString(),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
    node,
    nproc,
    cpuModel: cpu?.replace(/^model name\s*:\s*/, "") ?? "unknown",
    kernel: Deno.osRelease(),
    memGiB: Deno.systemMemoryInfo().total / 2 ** 30,
    loadStart: Deno.loadavg(),
  };
}
