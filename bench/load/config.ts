/**
 * The benchmark's workloads and settings, with the environment knobs that change
 * them (BENCH_QUICK=1 for a smoke run under a minute).
 *
 * @module
 */

/** One workload: what traffic, how much of it at most. */
export interface Workload {
  /** Short id used in the raw results. */
  readonly id: string;
  /** Row label in the report. */
  readonly label: string;
  /**
   * Pipelined echo traffic, one message in flight (request/response, with latency
   * percentiles), the connect storm, or idle memory.
   */
  readonly kind: "throughput" | "inflight" | "storm" | "idle";
  /** `wss`: runs against the TLS servers (TLS over TCP under the WebSocket). */
  readonly scheme: "ws" | "wss";
  /** Connections (throughput). */
  readonly conns: number;
  /** Payload bytes (throughput). */
  readonly size: number;
  /** Text messages of multibyte UTF-8 (throughput). */
  readonly text: boolean;
  /** Messages in flight per connection (throughput). */
  readonly window: number;
  /** Count bound of the measured span: messages, or connections for the storm. */
  readonly max: number;
  /** Fragment size: each message is sent as frames of this many payload bytes (throughput). */
  readonly fragment?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

function throughput(
  id: string,
  label: string,
  conns: number,
  size: number,
  window: number,
  max: number,
  text = false,
): Workload {
  return { id, label, kind: "throughput", scheme: "ws", conns, size, text, window, max };
}

/** Every workload, in the order a round runs them (idle memory first, on fresh servers). */
export const WORKLOADS: readonly Workload[] = [
  { ...throughput("idle", "idle memory", 0, 0, 0, 0), kind: "idle" },
  throughput("bin64x1", "64 B binary, 1 conn", 1, 64, 256, 5_000_000),
  throughput("bin64x50", "64 B binary, 50 conns", 50, 64, 32, 5_000_000),
  throughput("bin16k", "16 KiB binary, 1 conn", 1, 16 * KiB, 32, 1_000_000),
  throughput("bin1m", "1 MiB binary, 1 conn", 1, MiB, 4, 20_000),
  throughput("text1k", "1 KiB UTF-8 text, 1 conn", 1, KiB, 64, 2_000_000, true),
  {
    ...throughput("frag1m", "1 MiB binary in 1 KiB fragments, 1 conn", 1, MiB, 4, 20_000),
    fragment: KiB,
  },
  {
    ...throughput("inflight", "64 B binary, 1 conn, request/response", 1, 64, 1, 500_000),
    kind: "inflight",
  },
  { ...throughput("storm", "connect storm (sequential)", 1, 64, 1, 50_000), kind: "storm" },
  {
    ...throughput("wss16k", "wss: 16 KiB binary, 1 conn", 1, 16 * KiB, 32, 1_000_000),
    scheme: "wss",
  },
  { ...throughput("wss1m", "wss: 1 MiB binary, 1 conn", 1, MiB, 4, 20_000), scheme: "wss" },
];

/** Workloads also run against the reflector, to measure the load client's own ceiling. */
export const CALIBRATED: readonly string[] = ["bin64x1", "bin64x50", "wss16k", "wss1m"];

/** One client-side comparison: payload size and window. */
export interface ClientWorkload {
  /** Short id used in BENCH_ONLY. */
  readonly id: string;
  /** Row label. */
  readonly label: string;
  /** Binary payload bytes. */
  readonly size: number;
  /** Messages in flight. */
  readonly window: number;
  /** Count bound. */
  readonly max: number;
}

/** The client-side comparison (our client vs Deno's `WebSocket`, against Deno's server). */
export const CLIENT_WORKLOADS: readonly ClientWorkload[] = [
  { id: "client64", label: "64 B binary", size: 64, window: 256, max: 5_000_000 },
  { id: "client16k", label: "16 KiB binary", size: 16 * KiB, window: 32, max: 1_000_000 },
  { id: "client1m", label: "1 MiB binary", size: MiB, window: 4, max: 20_000 },
];

/** Settings of one run. */
export interface BenchConfig {
  /** BENCH_QUICK=1: one short round, for a smoke check. */
  readonly quick: boolean;
  /** BENCH_ROUNDS: rounds (medians are taken over them). Default 3, quick 1. */
  readonly rounds: number;
  /** BENCH_WARMUP_MS: traffic before each measured span. Default 300, quick 150. */
  readonly warmupMs: number;
  /** BENCH_DURATION_MS: longest measured span per cell. Default 1500, quick 500. */
  readonly durationMs: number;
  /** BENCH_CLIENT_DURATION_MS: the same for the client-side comparison. Default 1500, quick 500. */
  readonly clientDurationMs: number;
  /** BENCH_IDLE_CONNS: idle connections held. Default 10,000 (quick: 1000). */
  readonly idleConns: number;
  /** Wait before reading RSS in the idle workload. */
  readonly settleMs: number;
  /** BENCH_BUDGET_S: no new round starts if it could end past this. Default 600 s. */
  readonly budgetMs: number;
  /** BENCH_SERVERS: comma list of server ids to run (default: all available). */
  readonly servers: string[] | null;
  /**
   * BENCH_ONLY (or BENCH_WORKLOADS): comma list of workload ids, server-side
   * ({@link WORKLOADS}) and client-side ({@link CLIENT_WORKLOADS}) alike (default: all).
   */
  readonly workloads: string[] | null;
  /** BENCH_CLIENTS=0 skips the client-side comparison. */
  readonly clients: boolean;
  /** BENCH_OUT: Markdown report path (default bench/results/latest.md; quick: none). */
  readonly out: string | null;
  /** Raw samples as JSON: beside the report (`latest.json`), or `quick.json`. */
  readonly json: string;
  /** BENCH_CACHE_DIR: where npm installs `ws` + `bufferutil` for Node and Bun. */
  readonly cacheDir: string;
  /** BENCH_BUN=0 leaves Bun out (no install). */
  readonly bun: boolean;
}

function intEnv(name: string, fallback: number): number {
  const v = Deno.env.get(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${v}`);
  return n;
}

function listEnv(name: string): string[] | null {
  const v = Deno.env.get(name);
  return v ? v.split(",").map((s) => s.trim()).filter((s) => s !== "") : null;
}

/** Reads the settings from the environment; `root` is the repository root. */
export function loadConfig(root: string): BenchConfig {
  const quick = Deno.env.get("BENCH_QUICK") === "1";
  const results = `${root}bench/results/`;
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const out = Deno.env.get("BENCH_OUT") ?? (quick ? null : `${results}latest.md`);
  return {
    quick,
    rounds: intEnv("BENCH_ROUNDS", quick ? 1 : 3),
    warmupMs: intEnv("BENCH_WARMUP_MS", quick ? 150 : 300),
    durationMs: intEnv("BENCH_DURATION_MS", quick ? 500 : 1500),
    clientDurationMs: intEnv("BENCH_CLIENT_DURATION_MS", quick ? 500 : 1500),
    idleConns: intEnv("BENCH_IDLE_CONNS", quick ? 1000 : 10_000),
    settleMs: quick ? 200 : 500,
    budgetMs: intEnv("BENCH_BUDGET_S", 600) * 1000,
    servers: listEnv("BENCH_SERVERS"),
    workloads: listEnv("BENCH_ONLY") ?? listEnv("BENCH_WORKLOADS"),
    clients: Deno.env.get("BENCH_CLIENTS") !== "0",
    out,
    // Beside the report it belongs to (bench:ceiling must not replace latest.json).
    json: out?.endsWith(".md")
      ? `${out.slice(0, -3)}.json`
      : `${results}${quick ? "quick" : "latest"}.json`,
    cacheDir: Deno.env.get("BENCH_CACHE_DIR") ?? `${tmp}/dill-ws-bench-cache`,
    bun: Deno.env.get("BENCH_BUN") !== "0",
  };
}
