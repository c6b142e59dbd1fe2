/**
 * The benchmark, in one command: `deno task bench` (BENCH_QUICK=1 for a smoke run).
 *
 * Starts one echo server per implementation (bench/servers/), each in its own
 * process, and one load client process (bench/load/client.ts). For each round: fresh
 * servers; every workload against every server in turn (order rotating between
 * rounds); then the client-side comparison. Prints a Markdown report of the medians
 * and their ranges over rounds and writes it to bench/results/latest.md (raw samples:
 * latest.json). BENCH_ONLY picks workloads. Every child process is killed at the
 * end, on error and on Ctrl-C. See bench/README.md.
 *
 * @module
 */

import { Children, DENO, runCommand, withTimeout } from "./load/children.ts";
import type { Answer, ClientId, Command } from "./load/commands.ts";
import {
  type BenchConfig,
  CALIBRATED,
  CLIENT_WORKLOADS,
  type ClientWorkload,
  loadConfig,
  type Workload,
  WORKLOADS,
} from "./load/config.ts";
import { LoadClient, runLibClient } from "./load/driver.ts";
import { OPEN_BOUND_MS } from "./load/idle.ts";
import { machineInfo } from "./load/machine.ts";
import { preparePeers } from "./load/peers.ts";
import { CLIENTS, renderReport, type RunData } from "./load/report.ts";
import {
  REFERENCE,
  referenceOf,
  reflectorOf,
  type ServerDef,
  serverDefs,
  ServerProc,
  type ServerReport,
  serves,
} from "./load/server_procs.ts";
import type { Sample } from "./load/stats.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SERVER_START_MS = 60_000;
/** Slack on top of a cell's own time bounds before the load client is declared stuck. */
const CELL_SLACK_MS = 30_000;
/** Bound of the idle cell: opening (bounded itself), settling, and closing every connection. */
const IDLE_BOUND_MS = OPEN_BOUND_MS + 60_000;
/** The id selecting the actor runtime benchmark in BENCH_ONLY. */
const ACTOR_ID = "actor";

/** `list` rotated left by `n`. */
function rotate<T>(list: readonly T[], n: number): T[] {
  const k = list.length === 0 ? 0 : n % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

function commandFor(
  w: Workload,
  s: ServerProc,
  cfg: BenchConfig,
  clkTck: number,
  reflect: boolean,
): Command {
  const target = { port: s.port, pid: s.pid, clkTck, tls: s.def.scheme === "wss" };
  const span = { warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
  switch (w.kind) {
    case "idle":
      return { op: "idle", ...target, conns: cfg.idleConns, settleMs: cfg.settleMs };
    case "inflight":
      return { op: "inflight", ...target, ...span, size: w.size, maxMessages: w.max };
    case "storm":
      return { op: "storm", ...target, ...span, maxConns: w.max };
    case "throughput":
      return {
        op: "throughput",
        ...target,
        ...span,
        conns: w.conns,
        size: w.size,
        text: w.text,
        fragment: w.fragment,
        window: w.window,
        maxMessages: w.max,
        reflect,
      };
  }
}

/** Runs the server cells and the client comparison of one round. */
class Round {
  constructor(
    readonly index: number,
    readonly cfg: BenchConfig,
    readonly children: Children,
    readonly clkTck: number,
    readonly data: { samples: Sample[]; clientSamples: Sample[] },
    public client: LoadClient,
  ) {}

  async serverCells(
    procs: ServerProc[],
    reflectors: ServerProc[],
    workloads: readonly Workload[],
  ): Promise<void> {
    for (const w of workloads) {
      const reflector = CALIBRATED.includes(w.id)
        ? reflectors.find((r) => r.def.scheme === w.scheme) ?? null
        : null;
      const servers = procs.filter((p) => serves(p.def, w));
      const subjects = reflector ? [...servers, reflector] : servers;
      for (const s of rotate(subjects, this.index)) {
        const cmd = commandFor(w, s, this.cfg, this.clkTck, s === reflector);
        const answer = await this.#cell(cmd);
        this.data.samples.push({ round: this.index, workload: w.id, subject: s.def.id, answer });
        progress(this.index, w.id, s.def.id, answer);
      }
    }
  }

  async clientCells(reference: ServerProc, workloads: readonly ClientWorkload[]): Promise<void> {
    for (const w of workloads) {
      const clients = CLIENTS.filter((c) => c.only?.includes(w.id) ?? true);
      for (const c of rotate(clients, this.index)) {
        const answer = await this.#libCell(w, c.id, reference);
        this.data.clientSamples.push({
          round: this.index,
          workload: w.label,
          subject: c.id,
          answer,
        });
        progress(this.index, `client ${w.label}`, c.id, answer);
      }
    }
  }

  async #cell(cmd: Command): Promise<Answer> {
    const bound = "durationMs" in cmd ? cmd.warmupMs + cmd.durationMs : IDLE_BOUND_MS;
    try {
      return await this.client.run(cmd, bound + CELL_SLACK_MS);
    } catch (e) {
      // A stuck or dead load client is replaced, so the next cells still run.
      await this.client.close();
      this.client = LoadClient.start(this.children, ROOT);
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async #libCell(w: ClientWorkload, client: ClientId, ref: ServerProc): Promise<Answer> {
    const cmd = {
      client,
      port: ref.port,
      pid: ref.pid,
      clkTck: this.clkTck,
      size: w.size,
      window: w.window,
      warmupMs: this.cfg.warmupMs,
      durationMs: this.cfg.clientDurationMs,
      maxMessages: w.max,
    };
    const bound = cmd.warmupMs + cmd.durationMs + CELL_SLACK_MS;
    try {
      return await runLibClient(this.children, ROOT, cmd, bound);
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }
}

function progress(round: number, workload: string, subject: string, a: Answer): void {
  const what = a.ok
    ? `${Math.round(a.result.count / (a.result.elapsedMs / 1000)).toLocaleString("en-US")}/s` +
      (a.result.anomalies.length ? ` (${a.result.anomalies.length} anomalies)` : "")
    : `FAILED: ${a.error}`;
  console.error(`[round ${round + 1}] ${workload} / ${subject}: ${what}`);
}

async function clockTicks(children: Children): Promise<number> {
  try {
    const r = await runCommand(children, "getconf", ["CLK_TCK"], ROOT, 10_000);
    return Number(r.stdout.trim()) || 100;
  } catch {
    return 100;
  }
}

async function actorBench(children: Children, quick: boolean): Promise<RunData["actor"]> {
  try {
    Deno.statSync(`${ROOT}bench/actor_calls.ts`);
  } catch {
    return null;
  }
  const args = ["run", "--no-lock", `--allow-read=${ROOT}`, "bench/load/actor_calls_child.ts"];
  try {
    const r = await runCommand(children, DENO, [...args, quick ? "200" : "1000"], ROOT, 60_000);
    const line = r.stdout.trim().split("\n").pop() ?? "";
    return JSON.parse(line);
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

async function startServers(
  defs: ServerDef[],
  children: Children,
  notes: string[],
): Promise<ServerProc[]> {
  const procs: ServerProc[] = [];
  for (const def of defs) {
    try {
      procs.push(await ServerProc.start(def, children, ROOT, SERVER_START_MS));
    } catch (e) {
      notes.push(`${def.label} did not start: ${e instanceof Error ? e.message : e}`);
    }
  }
  return procs;
}

async function main(children: Children): Promise<void> {
  const started = performance.now();
  const cfg = loadConfig(ROOT);
  const notes: string[] = [];
  const machine = await machineInfo(children, ROOT);
  const clkTck = await clockTicks(children);
  const only = cfg.workloads;
  const known = [...WORKLOADS, ...CLIENT_WORKLOADS].map((w) => w.id).concat(ACTOR_ID);
  const unknown = (only ?? []).filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new Error(`unknown workload id(s) ${unknown.join(", ")}; known: ${known.join(", ")}`);
  }
  const workloads = WORKLOADS.filter((w) => !only || only.includes(w.id));
  const clientWorkloads = cfg.clients
    ? CLIENT_WORKLOADS.filter((w) => !only || only.includes(w.id))
    : [];
  console.error(`bench: installing ws + bufferutil for Node and Bun into ${cfg.cacheDir}`);
  const peers = await preparePeers(children, cfg.cacheDir, ROOT, cfg.bun);
  for (const n of [peers.node.note, peers.bun.note]) if (n) notes.push(n);
  // Only the servers some selected workload runs against (the client side needs Deno's).
  const schemes = new Set(workloads.map((w) => w.scheme));
  const servers = serverDefs(peers).filter((s) =>
    (cfg.servers ? cfg.servers.includes(s.id) || s.id === referenceOf(s.scheme) : !s.optIn) &&
    (schemes.has(s.scheme) || (s.id === REFERENCE && clientWorkloads.length > 0))
  );
  const data = { samples: [] as Sample[], clientSamples: [] as Sample[] };
  const serverReports = new Map<string, ServerReport[]>();
  let client = LoadClient.start(children, ROOT);
  let roundsDone = 0;
  try {
    let longestRound = 0;
    for (let r = 0; r < cfg.rounds; r++) {
      const elapsed = performance.now() - started;
      if (r > 0 && elapsed + longestRound > cfg.budgetMs) {
        notes.push(
          `stopped after ${r} round(s): another would end past the ${cfg.budgetMs / 1000} s budget`,
        );
        break;
      }
      const roundStart = performance.now();
      const procs = await startServers(servers, children, notes);
      const calibrated = workloads.filter((w) => CALIBRATED.includes(w.id));
      const reflectorDefs = [...new Set(calibrated.map((w) => reflectorOf(w.scheme)))];
      const reflectors = await startServers(reflectorDefs, children, notes);
      const round = new Round(r, cfg, children, clkTck, data, client);
      try {
        await round.serverCells(procs, reflectors, workloads);
        const ref = procs.find((p) => p.def.id === REFERENCE);
        if (clientWorkloads.length > 0 && ref) await round.clientCells(ref, clientWorkloads);
      } finally {
        client = round.client;
        for (const p of [...procs, ...reflectors]) {
          const report = await p.stop();
          serverReports.set(p.def.id, [...(serverReports.get(p.def.id) ?? []), report]);
        }
      }
      roundsDone++;
      longestRound = Math.max(longestRound, performance.now() - roundStart);
    }
  } finally {
    await client.close();
  }
  let actor: RunData["actor"] = null;
  if (!only || only.includes(ACTOR_ID)) {
    console.error("bench: actor runtime");
    actor = await actorBench(children, cfg.quick);
  }
  const run: RunData = {
    config: cfg,
    machine,
    peers,
    servers,
    workloads,
    clientWorkloads,
    ...data,
    serverReports,
    actor,
    roundsDone,
    durationMs: performance.now() - started,
    loadEnd: Deno.loadavg(),
    notes: [...new Set(notes)],
  };
  const report = renderReport(run);
  console.log(report);
  Deno.mkdirSync(`${ROOT}bench/results`, { recursive: true });
  if (cfg.out) {
    Deno.writeTextFileSync(cfg.out, report + "\n");
    console.error(`bench: wrote ${cfg.out}`);
  }
  Deno.writeTextFileSync(
    cfg.json,
    JSON.stringify({ ...run, serverReports: Object.fromEntries(serverReports) }, null, 1) + "\n",
  );
  console.error(`bench: raw samples in ${cfg.json}`);
}

const children = new Children();
const onSignal = () => {
  children.killAllNow();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
try {
  await main(children);
} finally {
  await withTimeout(children.killAll(), 5000, "killing child processes").catch(() => {});
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}
