/**
 * The Markdown report of a run: header (date, versions, machine), the ratios of
 * ours to the references (median and per-round range), the server table, latency,
 * idle memory, the client-side comparison, the actor runtime, anomalies and a short
 * method. Every figure is a median over rounds with its min–max range.
 *
 * @module
 */

import type { Answer, ClientId } from "./commands.ts";
import type { BenchConfig, ClientWorkload, Workload } from "./config.ts";
import type { MachineInfo } from "./machine.ts";
import type { Peers } from "./peers.ts";
import type { ServerDef, ServerReport } from "./server_procs.ts";
import {
  NATIVE_TLS,
  NATIVE_TLS_SEND_BUFFERED,
  REFERENCE,
  referenceOf,
  REFLECTOR,
  REFLECTOR_TLS,
  reflectorOf,
  SERVE_ADAPTER,
  SERVE_ADAPTER_TLS,
  serves,
} from "./server_procs.ts";
import { type Figures, roundRatios, type Sample, summarize, type Summary } from "./stats.ts";

/** Everything a run collected. */
export interface RunData {
  readonly config: BenchConfig;
  readonly machine: MachineInfo;
  readonly peers: Peers;
  readonly servers: ServerDef[];
  readonly workloads: readonly Workload[];
  readonly clientWorkloads: readonly ClientWorkload[];
  /** Server cells (subject = server id). */
  readonly samples: Sample[];
  /** Client-side cells (workload = client workload label, subject = client id). */
  readonly clientSamples: Sample[];
  /** What each server reported when stopped, one entry per round. */
  readonly serverReports: Map<string, ServerReport[]>;
  /** The actor runtime benchmark's answer, if it ran. */
  readonly actor: Answer | { ok: true; result: unknown } | null;
  /** Rounds completed. */
  readonly roundsDone: number;
  /** Wall time of the whole run, ms. */
  readonly durationMs: number;
  /** Load averages at the end. */
  readonly loadEnd: number[];
  /** Remarks of the run (skipped servers, budget). */
  readonly notes: string[];
}

/** The label part of our client with Nagle's algorithm on. */
const NAGLE_NOTE = "noDelay false (Nagle on, as Deno's client)";

/**
 * The clients of the client-side comparison; `only`: the client workloads it runs (all
 * when absent).
 */
export const CLIENTS: readonly { id: ClientId; label: string; only?: readonly string[] }[] = [
  { id: "ours", label: "dill-ws client (ours)" },
  { id: "ours-sb", label: "dill-ws client (ours), sendBuffer 64 KiB" },
  // Nagle's algorithm only changes anything where writes are smaller than a segment.
  { id: "ours-nagle", label: `dill-ws client (ours), ${NAGLE_NOTE}`, only: ["client64"] },
  { id: "deno", label: "Deno WebSocket" },
];
const CLIENT_REFERENCE = "deno";

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

/** A number with about three significant digits. */
function fmt(n: number): string {
  if (!Number.isFinite(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1000) return fmtInt(n);
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** `value (ratio×)`, or the value alone for the reference row. */
function withRatio(value: number, ref: number, isRef: boolean, format = fmt): string {
  if (isRef || !Number.isFinite(ref) || ref === 0) return format(value);
  return `${format(value)} (${(value / ref).toFixed(2)}×)`;
}

/** `min–max` of a figure over rounds (just the value when they agree or one round ran). */
function range(sum: Summary, key: keyof Figures, format = fmt): string {
  const lo = sum.min[key];
  const hi = sum.max[key];
  if (!Number.isFinite(lo)) return "–";
  return format(lo) === format(hi) ? format(lo) : `${format(lo)}–${format(hi)}`;
}

/** Per-round ratio of `key`, subject ÷ reference: `median× (min–max)`. */
function ratioCell(subject: Summary, reference: Summary, key: keyof Figures): string {
  const r = roundRatios(subject, reference, key);
  if (!Number.isFinite(r.median)) return "–";
  const f = (x: number) => x.toFixed(2);
  return r.rounds > 1 ? `${f(r.median)}× (${f(r.min)}–${f(r.max)})` : `${f(r.median)}×`;
}

function pct(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n)) : "–";
}

function spreadCell(s: Summary): string {
  return Number.isFinite(s.rateSpread) ? `${Math.round(s.rateSpread * 100)}%` : "–";
}

function cell(samples: Sample[], workload: string, subject: string): Summary {
  return summarize(samples.filter((s) => s.workload === workload && s.subject === subject));
}

function workloadLabel(w: Workload): string {
  if (w.kind !== "throughput") return w.label;
  return `${w.label}, ${w.window} in flight${w.conns > 1 ? " each" : ""}`;
}

/** The servers a workload ran against (its scheme's). */
function serversOf(d: RunData, w: Workload): ServerDef[] {
  return d.servers.filter((s) => serves(s, w));
}

/** What the Node servers said about their masking, and Bun's version. */
function peerLines(d: RunData): string[] {
  const lines: string[] = [];
  const node = d.peers.node;
  if (node.dir !== null) {
    lines.push(
      `- npm \`ws\` ${node.version} on Node; bufferutil ${node.bufferutil ?? "not installed"} ` +
        `(from ${node.dir})`,
    );
  }
  for (const s of d.servers) {
    const said = (d.serverReports.get(s.id) ?? []).map((r) => r.info.masking).filter(Boolean);
    if (said.length > 0) lines.push(`  - ${s.label}: masking: ${[...new Set(said)].join("; ")}`);
  }
  const bun = d.peers.bun;
  lines.push(bun.bin !== null ? `- Bun ${bun.version} (${bun.bin})` : `- ${bun.note}`);
  return lines;
}

function header(d: RunData): string[] {
  const m = d.machine;
  const c = d.config;
  const ws = d.peers.node.dir !== null ? `ws ${d.peers.node.version}` : "npm ws on Node: left out";
  return [
    `# dill-ws benchmark${c.quick ? " (quick smoke run)" : ""}`,
    "",
    `- Date: ${m.date}`,
    `- Deno ${m.deno}; Node ${m.node ?? "absent"}; ${ws} (npm \`ws\` on Deno: \`npm:ws@8\`)`,
    `- Machine: ${m.nproc} CPUs (nproc), ${m.cpuModel}, ${
      m.memGiB.toFixed(1)
    } GiB, Linux ${m.kernel}`,
    `- Load average at start ${m.loadStart.map((x) => x.toFixed(2)).join(" ")}, ` +
    `at end ${d.loadEnd.map((x) => x.toFixed(2)).join(" ")}`,
    `- ${d.roundsDone} round(s) of ${c.rounds}; measured spans up to ${c.durationMs} ms after ` +
    `${c.warmupMs} ms of warm-up; ${c.idleConns} idle connections; whole run ` +
    `${(d.durationMs / 1000).toFixed(0)} s`,
    ...peerLines(d),
    ...d.notes.map((n) => `- Note: ${n}`),
    "",
  ];
}

/** The peers ours is compared with beyond the reference, when they ran. */
const PEERS: readonly { ws: string; wss: string; label: string }[] = [
  { ws: "ws-node-bu", wss: "ws-node-bu-tls", label: "npm ws + bufferutil on Node" },
  { ws: "bun", wss: "bun-tls", label: "Bun" },
];

/** Our server with a send buffer (`sendBuffer`), beside the default one. */
const SEND_BUFFERED = "dill-sb";
const SEND_BUFFERED_NOTE = "with sendBuffer 64 KiB";
/** Our wss server on tlsListen (Deno's own TLS), beside the tcp → tls → ws one. */
const NATIVE_TLS_NOTE = "tlsListen (native TLS)";
/** Our `Deno.serve` entry point, beside our own stack (when `BENCH_SERVERS` names it). */
const SERVE_ADAPTER_NOTE = "on Deno.serve (@dill/ws/serve)";

/** The ratio row of one of our servers on one workload (none if it did not run). */
function ratioRows(d: RunData, w: Workload, id: string, prefix: string): string[] {
  const mine = cell(d.samples, w.id, id);
  if (mine.rounds === 0) return [];
  const ref = cell(d.samples, w.id, referenceOf(w.scheme));
  const peers = PEERS.map((p) => {
    const other = cell(d.samples, w.id, w.scheme === "wss" ? p.wss : p.ws);
    return other.rounds === 0
      ? "–"
      : w.kind === "idle"
      ? ratioCell(mine, other, "kibPerConn")
      : ratioCell(mine, other, "rate");
  });
  if (w.kind === "idle") {
    return [
      `| ${prefix}idle memory (KiB per connection ÷) | ${
        ratioCell(mine, ref, "kibPerConn")
      } | – | ` +
      `${peers.join(" | ")} |`,
    ];
  }
  return [
    `| ${prefix}${workloadLabel(w)} | ${ratioCell(mine, ref, "rate")} | ` +
    `${ratioCell(mine, ref, "serverCpuUs")} | ${peers.join(" | ")} |`,
  ];
}

function ratioTable(d: RunData): string[] {
  const ours = (w: Workload) => (w.scheme === "wss" ? "dill-tls" : "dill");
  const rows = [
    "## Ours ÷ the others",
    "",
    "Ratios of dill-ws to Deno native (for wss: to `Deno.serve` with cert/key), taken " +
    "round by round (both ran in the same round): the median ratio, and in brackets the " +
    "smallest and largest ratio over rounds. Throughput: above 1 is better; CPU per " +
    "message (or connection) and memory: below 1 is better.",
    "",
    `| Workload | msg/s ÷ Deno | server CPU/msg ÷ Deno | ${
      PEERS.map((p) => `msg/s ÷ ${p.label}`).join(" | ")
    } |`,
    `| --- | ---: | ---: |${PEERS.map(() => " ---: |").join("")}`,
  ];
  for (const w of d.workloads) {
    rows.push(...ratioRows(d, w, ours(w), ""));
    if (w.scheme === "ws" && w.kind !== "idle") {
      rows.push(...ratioRows(d, w, SEND_BUFFERED, `${SEND_BUFFERED_NOTE}: `));
    }
    rows.push(
      ...ratioRows(
        d,
        w,
        w.scheme === "wss" ? SERVE_ADAPTER_TLS : SERVE_ADAPTER,
        `${SERVE_ADAPTER_NOTE}: `,
      ),
    );
    if (w.scheme === "wss") {
      rows.push(...ratioRows(d, w, NATIVE_TLS, `${NATIVE_TLS_NOTE}: `));
      rows.push(
        ...ratioRows(
          d,
          w,
          NATIVE_TLS_SEND_BUFFERED,
          `${NATIVE_TLS_NOTE}, ${SEND_BUFFERED_NOTE}: `,
        ),
      );
    }
  }
  for (const w of d.clientWorkloads) {
    const ref = cell(d.clientSamples, w.label, CLIENT_REFERENCE);
    for (
      const [id, prefix] of [
        ["ours", ""],
        ["ours-sb", `${SEND_BUFFERED_NOTE}: `],
        ["ours-nagle", `with ${NAGLE_NOTE}: `],
      ]
    ) {
      const mine = cell(d.clientSamples, w.label, id);
      if (mine.rounds === 0) continue;
      rows.push(
        `| ${prefix}client: ${w.label}, ${w.window} in flight (÷ Deno's WebSocket client; CPU ` +
          `is the client's) | ${ratioCell(mine, ref, "rate")} | ` +
          `${ratioCell(mine, ref, "clientCpuUs")} | ${PEERS.map(() => "–").join(" | ")} |`,
      );
    }
  }
  return [...rows, ""];
}

function serverTable(d: RunData): string[] {
  const rows = [
    "## Echo servers",
    "",
    "Medians over rounds. In brackets: ratio of medians to Deno native (wss rows: to " +
    "`Deno.serve` with cert/key) in the same run (for CPU and RSS, lower is better). " +
    "Range: smallest and largest msg/s and CPU µs/msg over rounds. CPU % columns: share " +
    "of one CPU used by the server, the load client, and every other process on the " +
    "machine (noise) during the span. Spread: (max − min) / median of msg/s over rounds.",
    "",
    "| Workload | Server | msg/s | msg/s range | MB/s | server CPU µs/msg | CPU µs/msg range | " +
    "server RSS MiB | CPU % server / load / other | spread |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const w of d.workloads.filter((w) => w.kind !== "idle")) {
    const refId = referenceOf(w.scheme);
    const ref = cell(d.samples, w.id, refId).median;
    for (const s of serversOf(d, w)) {
      const sum = cell(d.samples, w.id, s.id);
      const f = sum.median;
      const isRef = s.id === refId;
      const storm = w.kind === "storm";
      rows.push(
        `| ${workloadLabel(w)} | ${s.label} | ${withRatio(f.rate, ref.rate, isRef)}` +
          `${storm ? " conn/s" : ""} | ${range(sum, "rate")} | ` +
          `${storm ? "–" : withRatio(f.mbps, ref.mbps, isRef)} | ` +
          `${withRatio(f.serverCpuUs, ref.serverCpuUs, isRef)}${storm ? " /conn" : ""} | ` +
          `${range(sum, "serverCpuUs")} | ` +
          `${withRatio(f.serverRssMiB, ref.serverRssMiB, isRef)} | ` +
          `${pct(f.serverPct)} / ${pct(f.clientPct)} / ${pct(f.otherPct)} | ${spreadCell(sum)} |`,
      );
    }
  }
  return [...rows, ""];
}

function ceilingTable(d: RunData): string[] {
  const calibrated = d.workloads.filter((w) =>
    d.samples.some((s) => s.workload === w.id && s.subject === reflectorOf(w.scheme).id)
  );
  if (calibrated.length === 0) return [];
  const rows = [
    "## Load client ceiling",
    "",
    "The same load client against a TCP reflector that answers the handshake and then " +
    "sends every byte straight back (no WebSocket parsing at all): the most the client " +
    "can drive on this machine. The echo servers' rates are to be read against it. For " +
    "wss the reflector runs over Node's TLS (OpenSSL), so the ceiling includes the " +
    "client's TLS work.",
    "",
    "| Workload | ceiling msg/s | load client CPU µs/msg | CPU % load / reflector / other | " +
    "fastest echo server msg/s (share of ceiling) |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const w of calibrated) {
    const f = cell(d.samples, w.id, reflectorOf(w.scheme).id).median;
    let best = { label: "–", rate: NaN };
    for (const s of serversOf(d, w)) {
      const rate = cell(d.samples, w.id, s.id).median.rate;
      if (Number.isFinite(rate) && !(rate <= best.rate)) best = { label: s.label, rate };
    }
    rows.push(
      `| ${workloadLabel(w)} | ${fmt(f.rate)} | ${fmt(f.clientCpuUs)} | ` +
        `${pct(f.clientPct)} / ${pct(f.serverPct)} / ${pct(f.otherPct)} | ` +
        `${best.label}: ${fmt(best.rate)} (${pct((best.rate / f.rate) * 100)}%) |`,
    );
  }
  return [...rows, ""];
}

function latencyTable(d: RunData): string[] {
  const inflight = d.workloads.filter((w) => w.kind === "inflight");
  if (inflight.length === 0) return [];
  const rows = [
    "## Latency (one message in flight)",
    "",
    "One connection writes a message, waits for its echo, then writes the next: round " +
    "trips per second and the round-trip time as the load client sees it (its own " +
    "write and read included). Medians over rounds, with the min–max range.",
    "",
    "| Workload | Server | round trips/s | p50 µs | p50 range | p99 µs | p99 range | " +
    "server CPU µs/msg |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const w of inflight) {
    const refId = referenceOf(w.scheme);
    const ref = cell(d.samples, w.id, refId).median;
    for (const s of serversOf(d, w)) {
      const sum = cell(d.samples, w.id, s.id);
      const f = sum.median;
      const isRef = s.id === refId;
      rows.push(
        `| ${w.label} | ${s.label} | ${withRatio(f.rate, ref.rate, isRef)} | ` +
          `${withRatio(f.p50Us, ref.p50Us, isRef)} | ${range(sum, "p50Us")} | ` +
          `${withRatio(f.p99Us, ref.p99Us, isRef)} | ${range(sum, "p99Us")} | ` +
          `${withRatio(f.serverCpuUs, ref.serverCpuUs, isRef)} |`,
      );
    }
  }
  return [...rows, ""];
}

function idleTable(d: RunData): string[] {
  const w = d.workloads.find((w) => w.kind === "idle");
  if (!w) return [];
  const ref = cell(d.samples, w.id, REFERENCE).median;
  const rows = [
    "## Idle memory",
    "",
    `${d.config.idleConns} connections opened (handshake done, then idle) on a freshly ` +
    "started server after 100 warm-up connections; RSS growth divided by the connections.",
    "",
    "| Server | KiB per idle connection | range | server RSS MiB while holding them | " +
    "server CPU µs per connection opened | connections held |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const s of serversOf(d, w)) {
    const sum = cell(d.samples, w.id, s.id);
    const f = sum.median;
    const isRef = s.id === REFERENCE;
    const held = d.samples.filter((x) => x.workload === w.id && x.subject === s.id && x.answer.ok)
      .map((x) => x.answer.ok ? x.answer.result.count : 0);
    rows.push(
      `| ${s.label} | ${withRatio(f.kibPerConn, ref.kibPerConn, isRef)} | ` +
        `${range(sum, "kibPerConn")} | ` +
        `${withRatio(f.serverRssMiB, ref.serverRssMiB, isRef)} | ` +
        `${withRatio(f.serverCpuUs, ref.serverCpuUs, isRef)} | ${
          held.length ? Math.min(...held) : "–"
        } |`,
    );
  }
  return [...rows, ""];
}

function clientTable(d: RunData): string[] {
  if (d.clientSamples.length === 0) return [];
  const rows = [
    "## Client side",
    "",
    "Each client library pipelines echo traffic over one connection to the Deno native " +
    "server, in its own process. In brackets: ratio to Deno's built-in `WebSocket` client.",
    "",
    "| Message | Client | msg/s | msg/s range | client CPU µs/msg | client CPU range | " +
    "client RSS MiB | server CPU µs/msg | CPU % client / server / other | spread |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const w of d.clientWorkloads) {
    const ref = cell(d.clientSamples, w.label, CLIENT_REFERENCE).median;
    for (const c of CLIENTS) {
      const sum = cell(d.clientSamples, w.label, c.id);
      if (sum.rounds === 0 && c.id !== CLIENT_REFERENCE) continue; // not run on this workload
      const f: Figures = sum.median;
      const isRef = c.id === CLIENT_REFERENCE;
      rows.push(
        `| ${w.label}, ${w.window} in flight | ${c.label} | ${
          withRatio(f.rate, ref.rate, isRef)
        } | ${range(sum, "rate")} | ` +
          `${withRatio(f.clientCpuUs, ref.clientCpuUs, isRef)} | ${range(sum, "clientCpuUs")} | ` +
          `${withRatio(f.clientRssMiB, ref.clientRssMiB, isRef)} | ` +
          `${withRatio(f.serverCpuUs, ref.serverCpuUs, isRef)} | ` +
          `${pct(f.clientPct)} / ${pct(f.serverPct)} / ${pct(f.otherPct)} | ${spreadCell(sum)} |`,
      );
    }
  }
  return [...rows, ""];
}

function actorSection(d: RunData): string[] {
  if (d.actor === null) return [];
  const rows = ["## Actor runtime (bench/actor_calls.ts)", ""];
  if (!d.actor.ok) return [...rows, `Failed: ${d.actor.error}`, ""];
  const result = d.actor.result as { measurements?: unknown };
  const list = Array.isArray(result?.measurements) ? result.measurements : null;
  if (list === null) return [...rows, "```json", JSON.stringify(d.actor.result), "```", ""];
  rows.push("| operation | count | ms | ops/s |", "| --- | ---: | ---: | ---: |");
  for (const m of list as { name: string; count: number; ms: number; perSec: number }[]) {
    rows.push(`| ${m.name} | ${fmtInt(m.count)} | ${fmt(m.ms)} | ${fmtInt(m.perSec)} |`);
  }
  return [...rows, ""];
}

function anomalies(d: RunData): string[] {
  const rows = ["## Anomalies", ""];
  const list = (samples: Sample[], label: (w: string, s: string) => string) => {
    const keys = new Set(samples.map((s) => `${s.workload}\u0000${s.subject}`));
    for (const key of keys) {
      const [w, s] = key.split("\u0000");
      const sum = cell(samples, w, s);
      for (const e of sum.errors) rows.push(`- ${label(w, s)}: **failed** ${e}`);
      for (const a of sum.anomalies) rows.push(`- ${label(w, s)}: ${a}`);
      for (const n of sum.notes) rows.push(`- ${label(w, s)} (observation): ${n}`);
    }
  };
  const serverLabel = (id: string) =>
    [...d.servers, REFLECTOR, REFLECTOR_TLS].find((s) => s.id === id)?.label ?? id;
  const wlLabel = (id: string) => d.workloads.find((w) => w.id === id)?.label ?? id;
  list(d.samples, (w, s) => `${wlLabel(w)} / ${serverLabel(s)}`);
  list(d.clientSamples, (w, s) => `client ${w} / ${CLIENTS.find((c) => c.id === s)?.label}`);
  if (rows.length === 2) {
    rows.push(
      "None seen: every echo had the sent type and size (and the first echo of each " +
        "connection the sent bytes), and every closing handshake was answered.",
    );
  }
  rows.push("", "How server connections ended (all rounds, as each server counts them):", "");
  for (const s of d.servers) {
    const total: Record<string, number> = {};
    const stderr: string[] = [];
    for (const r of d.serverReports.get(s.id) ?? []) {
      for (const [k, v] of Object.entries(r.endings)) total[k] = (total[k] ?? 0) + v;
      stderr.push(...r.stderr);
    }
    const endings = Object.entries(total).map(([k, v]) => `${k}: ${fmtInt(v)}`).join(", ");
    rows.push(`- ${s.label}: ${endings || "none reported"}`);
    for (const line of stderr.slice(0, 5)) rows.push(`  - stderr: \`${line.slice(0, 200)}\``);
    if (stderr.length > 5) rows.push(`  - (${stderr.length - 5} more stderr lines)`);
  }
  return [...rows, ""];
}

const METHOD = [
  "## Method",
  "",
  "Every server is an echo server in its own process; one load client process, written " +
  "for the purpose (raw TCP, handshake by hand, masked frames built once, echoes counted " +
  "from frame headers only; wss over Deno's native TLS, trusting the test CA), drives " +
  "all of them. Servers are started fresh for each round; " +
  "within a round each workload runs against every server in turn, the order rotating " +
  "between rounds, so slow drifts of the machine hit every server alike. Each cell warms " +
  "up, then measures a span bounded by time and by count. CPU figures come from the " +
  "server's own /proc/<pid>/stat (user + system time of all its threads) read at the " +
  "start and end of the span, so other load on the machine does not inflate them; " +
  'throughput figures do depend on that load (see the "other" CPU %). Every figure is ' +
  "the median over rounds, given with its range (smallest–largest over rounds); ratios " +
  "are also taken round by round, with their range. Details and the checks of the load " +
  "client: bench/README.md.",
  "",
];

/** Renders the report. */
export function renderReport(d: RunData): string {
  return [
    ...header(d),
    ...ratioTable(d),
    ...serverTable(d),
    ...latencyTable(d),
    ...ceilingTable(d),
    ...idleTable(d),
    ...clientTable(d),
    ...actorSection(d),
    ...anomalies(d),
    ...METHOD,
  ].join("\n");
}
