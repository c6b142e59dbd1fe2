/**
 * Cold start, in one command: `deno task bench:startup`. What a Deno Deploy isolate or a
 * freshly started server pays before it serves its first WebSocket message.
 *
 * Each run spawns a fresh server process (the echo servers of bench/servers/) and
 * measures, from the spawn: `ready`, when it printed its port (runtime start, imports,
 * listen); and `first echo`, when a client that connected at that moment (offering
 * permessage-deflate, as browsers do) got its first 64-byte message back. The servers
 * run interleaved, `STARTUP_RUNS` times each (default 12), and the report gives the
 * median and the range of each. With `STARTUP_BASE=<git ref>`, our two servers also run
 * from that commit (extracted with `git archive`), for a before/after in the same run.
 * Writes bench/results/startup.md.
 *
 * @module
 */

import { Children, DENO, withTimeout } from "./load/children.ts";
import { closeQuietly, writeAll } from "./load/conn.ts";
import { acceptKey, clientFrame, OP_BINARY } from "./load/frames.ts";
import { median } from "./load/stats.ts";
import { ServerProc } from "./load/server_procs.ts";
import type { ServerDef } from "./load/server_procs.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const RUNS = Number(Deno.env.get("STARTUP_RUNS") ?? 12);
const BASE = Deno.env.get("STARTUP_BASE");
const STEP_MS = 10_000;
const RUN = ["run", "--no-lock", "--allow-net=127.0.0.1"];

interface Target {
  readonly def: ServerDef;
  /** Where its files are (a `STARTUP_BASE` checkout, or this repository). */
  readonly root: string;
}

function targets(baseRoot: string | null): Target[] {
  const def = (id: string, label: string, args: string[]): ServerDef => ({
    id,
    label,
    scheme: "ws",
    command: { cmd: DENO, args: [...RUN, ...args] },
  });
  const ours = [
    def("dill", "dill-ws (ours): tcpListen + wsAttachServer", ["bench/servers/dill.ts"]),
    def("dill-serve", "dill-ws (ours) on Deno.serve", ["bench/servers/dill_serve.ts"]),
  ];
  const list: Target[] = [
    ...ours.map((d) => ({ def: d, root: ROOT })),
    { def: def("deno", "Deno native", ["bench/servers/deno_native.ts"]), root: ROOT },
    {
      def: def("ws-deno", "npm ws on Deno", [
        "--allow-env",
        "--allow-read",
        "bench/servers/ws_deno.ts",
      ]),
      root: ROOT,
    },
  ];
  if (baseRoot !== null) {
    for (const d of ours) {
      list.push({
        def: { ...d, id: `${d.id}@base`, label: `${d.label} at ${BASE}` },
        root: baseRoot,
      });
    }
  }
  return list;
}

/** The opening handshake with a permessage-deflate offer, one message, and its echo. */
async function firstEcho(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const nonce = crypto.getRandomValues(new Uint8Array(16));
    const key = btoa(String.fromCharCode(...nonce));
    const request = "GET / HTTP/1.1\r\n" +
      `Host: 127.0.0.1:${port}\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    await writeAll(conn, new TextEncoder().encode(request));
    await writeAll(conn, clientFrame(OP_BINARY, new Uint8Array(64).fill(7)));
    // Read the head, then one whole frame (compressed or not, its length is in its header).
    const buf = new Uint8Array(4096);
    let len = 0;
    let headEnd = -1;
    for (;;) {
      const n = await conn.read(buf.subarray(len));
      if (n === null) throw new Error("closed before the echo");
      len += n;
      if (headEnd < 0) {
        const text = new TextDecoder().decode(buf.subarray(0, len));
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) continue;
        if (!text.startsWith("HTTP/1.1 101")) throw new Error(`refused: ${text.split("\r\n")[0]}`);
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
        if (accept !== await acceptKey(key)) throw new Error("wrong Sec-WebSocket-Accept");
        headEnd = end + 4;
      }
      if (len - headEnd >= 2 && len - headEnd >= 2 + (buf[headEnd + 1] & 0x7f)) {
        if ((buf[headEnd] & 0x0f) !== OP_BINARY) throw new Error("the echo is not binary");
        return;
      }
    }
  } finally {
    closeQuietly(conn);
  }
}

interface RunResult {
  readyMs: number;
  echoMs: number;
}

async function once(target: Target, children: Children): Promise<RunResult> {
  const start = performance.now();
  const server = await ServerProc.start(target.def, children, target.root, STEP_MS);
  const readyMs = performance.now() - start;
  try {
    await withTimeout(firstEcho(server.port), STEP_MS, `${target.def.label}: first echo`);
    return { readyMs, echoMs: performance.now() - start };
  } finally {
    await server.stop();
  }
}

async function extractBase(ref: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-startup-" });
  const out = await new Deno.Command("bash", {
    args: ["-c", `git archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)}`],
    cwd: ROOT,
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`git archive ${ref}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return dir;
}

const fmt = (ms: number) => ms.toFixed(1);

async function main(): Promise<void> {
  if (!(Number.isInteger(RUNS) && RUNS > 0 && RUNS <= 100)) {
    throw new Error("STARTUP_RUNS must be an integer from 1 to 100");
  }
  const children = new Children();
  const baseRoot = BASE ? await extractBase(BASE) : null;
  const list = targets(baseRoot);
  const results = new Map<string, RunResult[]>(list.map((t) => [t.def.id, []]));
  const failures: string[] = [];
  try {
    for (let round = 0; round < RUNS; round++) {
      // Rotated each round, so that no server always runs first (a cold disk cache).
      for (let i = 0; i < list.length; i++) {
        const target = list[(i + round) % list.length];
        try {
          results.get(target.def.id)!.push(await once(target, children));
        } catch (e) {
          failures.push(`${target.def.label}: ${e instanceof Error ? e.message : e}`);
        }
      }
    }
  } finally {
    await children.killAll();
    if (baseRoot) await Deno.remove(baseRoot, { recursive: true });
  }
  const lines = [
    "# dill-ws cold start",
    "",
    `- Date: ${new Date().toISOString()}`,
    `- Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); ${RUNS} runs per server, interleaved`,
    "",
    "From spawning the server process: **ready**, when it printed its port; **first echo**,",
    "when a client that connected then (offering permessage-deflate) got its first 64-byte",
    "message back. Medians, with the smallest and largest run in brackets.",
    "",
    "| Server | ready ms | first echo ms |",
    "| --- | ---: | ---: |",
  ];
  for (const target of list) {
    const runs = results.get(target.def.id)!;
    if (runs.length === 0) continue;
    const cell = (values: number[]) =>
      `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;
    lines.push(
      `| ${target.def.label} | ${cell(runs.map((r) => r.readyMs))} | ${
        cell(runs.map((r) => r.echoMs))
      } |`,
    );
  }
  if (failures.length > 0) lines.push("", "Failed runs:", ...failures.map((f) => `- ${f}`));
  const report = lines.join("\n") + "\n";
  console.log(report);
  await Deno.writeTextFile(new URL("results/startup.md", import.meta.url), report);
}

await main();
