/**
 * The echo servers under test, each in its own process (bench/servers/): how to
 * start one, wait for its port, and stop it while collecting what it reported.
 *
 * @module
 */

import { type Children, DENO, killQuietly, LineReader, withTimeout } from "./children.ts";
import type { Peers } from "./peers.ts";

/** One server implementation. */
export interface ServerDef {
  /** Id used in BENCH_SERVERS and the raw results. */
  readonly id: string;
  /** Label in the report. */
  readonly label: string;
  /** `wss`: the server speaks TLS and serves the wss workloads (and only those). */
  readonly scheme: "ws" | "wss";
  /** Program, arguments (relative to the repository root) and extra environment. */
  readonly command: { cmd: string; args: string[]; env?: Record<string, string> };
  /** Runs only when BENCH_SERVERS names it (a reference for `bench:ceiling`, not a peer). */
  readonly optIn?: boolean;
  /** The only workloads it serves (all of its scheme when absent). */
  readonly only?: readonly string[];
}

/** The id of the reference every ratio of a ws workload is taken against. */
export const REFERENCE = "deno";
/** The reference of the wss workloads: `Deno.serve` with the certificate and key. */
export const TLS_REFERENCE = "deno-tls";

/** Our wss server on tlsListen/tlsAccept (Deno's own TLS), beside the attach path. */
export const NATIVE_TLS = "dill-tlsn";
/** The same with a 64 KiB `sendBuffer` on the accepted sockets. */
export const NATIVE_TLS_SEND_BUFFERED = "dill-tlsn-sb";

/** Our `Deno.serve` entry point (`@dill/ws/serve`: `wsUpgrade`), plain and with TLS. */
export const SERVE_ADAPTER = "dill-serve";
/** The same on `Deno.serve` with the certificate and key. */
export const SERVE_ADAPTER_TLS = "dill-serve-tls";

/** Whether `server` runs `workload`: one of its scheme, and one it names if it names any. */
export function serves(
  server: ServerDef,
  workload: { readonly id: string; readonly scheme: "ws" | "wss" },
): boolean {
  return server.scheme === workload.scheme && (server.only?.includes(workload.id) ?? true);
}

/** The reference server of a scheme. */
export function referenceOf(scheme: "ws" | "wss"): string {
  return scheme === "wss" ? TLS_REFERENCE : REFERENCE;
}

/** `BENCH_PROF_DIR`: every Deno server writes a V8 CPU profile there when it exits. */
const PROF_DIR = Deno.env.get("BENCH_PROF_DIR");
const PROF_ARGS = PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROF_DIR}`] : [];
const DENO_RUN = ["run", "--no-lock", ...PROF_ARGS, "--allow-net=127.0.0.1"];
/** The test certificate (SAN localhost, 127.0.0.1) every TLS server presents. */
const TLS_DIR = "tests/fixtures/tls";
const TLS_ARGS = ["--tls", `${TLS_DIR}/cert.pem`, `${TLS_DIR}/key.pem`];
const TLS_LISTEN_ARGS = ["--tls-listen", `${TLS_DIR}/cert.pem`, `${TLS_DIR}/key.pem`];
/** Our servers' `sendBuffer` variants: 64 KiB. */
const SEND_BUFFER_ARGS = ["--send-buffer", String(64 * 1024)];
const DENO_TLS_RUN = [...DENO_RUN, `--allow-read=${TLS_DIR}`];
const NODE = "/usr/bin/node";
/** The buffer `dill-buf` receives into: room for the largest message of the workloads. */
const RECV_BUFFER = 1024 * 1024 + 64;

/**
 * The servers, ws and wss. Node servers only when `ws` is installed, the bufferutil
 * ones only when bufferutil is, Bun only when its binary runs.
 */
export function serverDefs(peers: Peers): ServerDef[] {
  const defs: ServerDef[] = [
    {
      id: "dill",
      label: "dill-ws (ours)",
      scheme: "ws",
      command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/dill.ts"] },
    },
    {
      id: "dill-sb",
      label: "dill-ws (ours), sendBuffer 64 KiB",
      scheme: "ws",
      command: {
        cmd: DENO,
        args: [...DENO_RUN, "bench/servers/dill.ts", ...SEND_BUFFER_ARGS],
      },
    },
    {
      id: "dill-buf",
      label: "dill-ws (ours), receiving into a reused buffer",
      scheme: "ws",
      command: {
        cmd: DENO,
        args: [...DENO_RUN, "bench/servers/dill.ts", "--recv-buffer", String(RECV_BUFFER)],
      },
      optIn: true,
      // Where messages are large enough for a fresh buffer each to count; a 1 MiB buffer per
      // connection would swamp the storm and the idle connections.
      only: ["bin16k", "bin1m", "frag1m"],
    },
    {
      id: SERVE_ADAPTER,
      label: "dill-ws (ours) on Deno.serve (@dill/ws/serve)",
      scheme: "ws",
      command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/dill_serve.ts"] },
      optIn: true,
    },
    {
      id: REFERENCE,
      label: "Deno native",
      scheme: "ws",
      command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/deno_native.ts"] },
    },
    {
      id: "js-ceiling",
      label: "JS ceiling (no checks; bench/servers/js_ceiling.ts)",
      scheme: "ws",
      command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/js_ceiling.ts"] },
      optIn: true,
    },
    {
      id: "ws-deno",
      label: "npm ws on Deno",
      scheme: "ws",
      command: {
        cmd: DENO,
        args: [...DENO_RUN, "--allow-env", "--allow-read", "bench/servers/ws_deno.ts"],
      },
    },
    {
      id: "dill-tls",
      label: "dill-ws (ours): tcp → tls → ws",
      scheme: "wss",
      command: { cmd: DENO, args: [...DENO_TLS_RUN, "bench/servers/dill.ts", ...TLS_ARGS] },
    },
    {
      id: NATIVE_TLS,
      label: "dill-ws (ours): tlsListen (native TLS) → ws",
      scheme: "wss",
      command: { cmd: DENO, args: [...DENO_TLS_RUN, "bench/servers/dill.ts", ...TLS_LISTEN_ARGS] },
    },
    {
      id: NATIVE_TLS_SEND_BUFFERED,
      label: "dill-ws (ours): tlsListen (native TLS) → ws, sendBuffer 64 KiB",
      scheme: "wss",
      command: {
        cmd: DENO,
        args: [...DENO_TLS_RUN, "bench/servers/dill.ts", ...TLS_LISTEN_ARGS, ...SEND_BUFFER_ARGS],
      },
    },
    {
      id: "js-ceiling-tls",
      label: "JS ceiling on Deno.listenTls (no checks; bench/servers/js_ceiling.ts)",
      scheme: "wss",
      command: { cmd: DENO, args: [...DENO_TLS_RUN, "bench/servers/js_ceiling.ts", ...TLS_ARGS] },
      optIn: true,
    },
    {
      id: SERVE_ADAPTER_TLS,
      label: "dill-ws (ours) on Deno.serve with cert/key (@dill/ws/serve)",
      scheme: "wss",
      command: { cmd: DENO, args: [...DENO_TLS_RUN, "bench/servers/dill_serve.ts", ...TLS_ARGS] },
      optIn: true,
    },
    {
      id: TLS_REFERENCE,
      label: "Deno.serve with cert/key",
      scheme: "wss",
      command: {
        cmd: DENO,
        args: [...DENO_TLS_RUN, "bench/servers/deno_native.ts", ...TLS_ARGS],
      },
    },
  ];
  const node = peers.node;
  if (node.dir !== null) {
    const script = ["bench/servers/ws_node.mjs", node.dir];
    const pureJs = { WS_NO_BUFFER_UTIL: "1" };
    defs.push(
      {
        id: "ws-node",
        label: "npm ws on Node",
        scheme: "ws",
        command: { cmd: NODE, args: script, env: pureJs },
      },
      {
        id: "ws-node-tls",
        label: "npm ws on node:https",
        scheme: "wss",
        command: { cmd: NODE, args: [...script, ...TLS_ARGS], env: pureJs },
      },
    );
    if (node.bufferutil !== null) {
      defs.push(
        {
          id: "ws-node-bu",
          label: "npm ws + bufferutil on Node",
          scheme: "ws",
          command: { cmd: NODE, args: script },
        },
        {
          id: "ws-node-bu-tls",
          label: "npm ws + bufferutil on node:https",
          scheme: "wss",
          command: { cmd: NODE, args: [...script, ...TLS_ARGS] },
        },
      );
    }
  }
  if (peers.bun.bin !== null) {
    const script = ["bench/servers/bun_server.mjs"];
    defs.push(
      {
        id: "bun",
        label: "Bun.serve",
        scheme: "ws",
        command: { cmd: peers.bun.bin, args: script },
      },
      {
        id: "bun-tls",
        label: "Bun.serve with tls",
        scheme: "wss",
        command: { cmd: peers.bun.bin, args: [...script, ...TLS_ARGS] },
      },
    );
  }
  return defs;
}

/** The calibration server (bench/servers/reflector.ts): the load client's ceiling. */
export const REFLECTOR: ServerDef = {
  id: "reflector",
  label: "TCP reflector (load client ceiling)",
  scheme: "ws",
  command: { cmd: DENO, args: [...DENO_RUN, "bench/servers/reflector.ts"] },
};

/**
 * The same over TLS, on Node (bench/servers/reflector_tls.mjs): the load client's
 * ceiling on wss. Needs /usr/bin/node; without it the wss ceiling is left out.
 */
export const REFLECTOR_TLS: ServerDef = {
  id: "reflector-tls",
  label: "TLS reflector on Node (load client ceiling on wss)",
  scheme: "wss",
  command: { cmd: NODE, args: ["bench/servers/reflector_tls.mjs", ...TLS_ARGS] },
};

/** The reflector of a scheme. */
export function reflectorOf(scheme: "ws" | "wss"): ServerDef {
  return scheme === "wss" ? REFLECTOR_TLS : REFLECTOR;
}

/** What a stopped server left: its tally of connection endings and other stderr lines. */
export interface ServerReport {
  /** How connections ended, by reason (from the server's SUMMARY line). */
  readonly endings: Record<string, number>;
  /** What the server said about itself at start (`INFO {...}` lines), such as its masking. */
  readonly info: Record<string, unknown>;
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
    const child = children.spawn(def.command.cmd, def.command.args, root, def.command.env);
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
    let info: Record<string, unknown> = {};
    const stderr: string[] = [];
    for (const line of this.#stderr) {
      if (line.startsWith("SUMMARY ")) endings = JSON.parse(line.slice(8)).endings ?? {};
      else if (line.startsWith("INFO ")) info = { ...info, ...JSON.parse(line.slice(5)) };
      else if (line.trim() !== "") stderr.push(line);
    }
    return { endings, info, stderr };
  }
}
