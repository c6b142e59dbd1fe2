/**
 * The echo servers under test, each in its own process (bench/servers/): how to
 * start one, wait for its port, and stop it while collecting what it reported.
 *
 * @module
 */

import { type Children, DENO, killQuietly, LineReader, withTimeout } from "./children.ts";

/** One server implementation. */
export interface ServerDef {
  /** Id used in BENCH_SERVERS and the raw results. */
  readonly id: string;
  /** Label in the report. */
  readonly label: string;
  /** Program and arguments, relative to the repository root. */
  readonly command: { cmd: string; args: string[] };
}

/** The id of the reference every ratio is taken against. */
export const REFERENCE = "deno";

const DENO_RUN = ["run", "--no-lock", "--allow-net=127.0.0.1"];

/** The servers; `ws-node` only when Node is there and `ws` is installed in `nodeWsDir`. */
export function serverDefs(nodeWsDir: string | null): ServerDef[] {
  const defs: ServerDef[] = [
    {
      id: "dill",
      label: "dill-ws (ours)",
      command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/dill.ts"] },
    },
    {
      id: REFERENCE,
      label: "Deno native",
      command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/deno_native.ts"] },
    },
    {
      id: "ws-deno",
      label: "npm ws on Deno",
      command: {
        cmd: DENO,
        args: [...DENO_RUN, "--allow-env", "--allow-read", "bench/servers/ws_deno.ts"],
      },
    },
  ];
  if (nodeWsDir !== null) {
    defs.push({
      id: "ws-node",
      label: "npm ws on Node",
      command: { cmd: "/usr/bin/node", args: ["bench/servers/ws_node.mjs", nodeWsDir] },
    });
  }
  return defs;
}

/** The calibration server (bench/servers/reflector.ts): the load client's ceiling. */
export const REFLECTOR: ServerDef = {
  id: "reflector",
  label: "TCP reflector (load client ceiling)",
  command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/reflector.ts"] },
};

/** What a stopped server left: its tally of connection endings and other stderr lines. */
export interface ServerReport {
  /** How connections ended, by reason (from the server's SUMMARY line). */
  readonly endings: Record<string, number>;
  /** Other stderr lines (errors, warnings). */
  readonly stderr: string[];
}

/** A running server process. */
export class ServerProc {
  readonly def: ServerDef;
  readonly pid: number;
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: string[];
  readonly #stderrDone: Promise<void>;
  readonly #stdoutDone: Promise<void>;

  private constructor(
    def: ServerDef,
    child: Deno.ChildProcess,
    port: number,
    stderr: string[],
    stderrDone: Promise<void>,
    stdoutDone: Promise<void>,
  ) {
    this.def = def;
    this.pid = child.pid;
    this.port = port;
    this.#child = child;
    this.#stderr = stderr;
    this.#stderrDone = stderrDone;
    this.#stdoutDone = stdoutDone;
  }

  /** Starts the server and waits (at most `timeoutMs`) for the port it prints. */
  static async start(
    def: ServerDef,
    children: Children,
    root: string,
    timeoutMs: number,
  ): Promise<ServerProc> {
    const child = children.spawn(def.command.cmd, def.command.args, root);
    const stderr: string[] = [];
    const stderrDone = new LineReader(child.stderr).drain(stderr);
    const out = new LineReader(child.stdout);
    try {
      const line = await withTimeout(out.next(), timeoutMs, `starting ${def.label}`);
      const port = Number(line);
      if (!Number.isInteger(port) || port <= 0) {
        throw new Error(`${def.label} printed ${JSON.stringify(line)} instead of its port`);
      }
      return new ServerProc(def, child, port, stderr, stderrDone, out.drain([]));
    } catch (e) {
      killQuietly(child);
      await child.status;
      await stderrDone;
      const tail = stderr.slice(-5).join(" | ");
      throw new Error(`${e instanceof Error ? e.message : e}${tail ? ` (stderr: ${tail})` : ""}`);
    }
  }

  /**
   * Stops the server: closes its stdin (it prints its tally and exits), and kills
   * it if it has not exited within `timeoutMs`.
   */
  async stop(timeoutMs = 3000): Promise<ServerReport> {
    await this.#child.stdin.close().catch(() => {});
    try {
      await withTimeout(this.#child.status, timeoutMs, `stopping ${this.def.label}`);
    } catch {
      killQuietly(this.#child);
      await this.#child.status;
    }
    await Promise.all([this.#stderrDone, this.#stdoutDone]);
    let endings: Record<string, number> = {};
    const stderr: string[] = [];
    for (const line of this.#stderr) {
      if (line.startsWith("SUMMARY ")) endings = JSON.parse(line.slice(8)).endings ?? {};
      else if (line.trim() !== "") stderr.push(line);
    }
    return { endings, stderr };
  }
}
