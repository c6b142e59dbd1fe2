/**
 * What the orchestrator (bench/run.ts) asks the load client process for, one JSON
 * line per command on its stdin, and what the client answers, one JSON line per
 * result on its stdout.
 *
 * @module
 */

/** Which server process to load and how to read its accounting. */
export interface Target {
  /** Port on 127.0.0.1. */
  readonly port: number;
  /** The server's pid, for /proc/<pid>/stat and /proc/<pid>/status. */
  readonly pid: number;
  /** Clock ticks per second of /proc stat times. */
  readonly clkTck: number;
  /** Speak TLS (wss) to the server, trusting tests/fixtures/tls/ca.pem. */
  readonly tls?: boolean;
}

/** Pipelined echo traffic over `conns` connections. */
export interface ThroughputCommand extends Target {
  readonly op: "throughput";
  /** Connections opened for this run. */
  readonly conns: number;
  /** Payload size in bytes. */
  readonly size: number;
  /** `true`: a text message of multibyte UTF-8; `false`: binary. */
  readonly text: boolean;
  /** Send each message as frames of this many payload bytes (a fragmented message). */
  readonly fragment?: number;
  /** Messages in flight per connection. */
  readonly window: number;
  /** Traffic before the measured span, to warm up both sides. */
  readonly warmupMs: number;
  /** Longest measured span. */
  readonly durationMs: number;
  /** The measured span also ends after this many echoed messages. */
  readonly maxMessages: number;
  /**
   * The server is bench/servers/reflector.ts: frames come back masked, as sent, and
   * there is no closing handshake.
   */
  readonly reflect?: boolean;
}

/** One connection, one message in flight: write, wait for its echo, write the next. */
export interface InflightCommand extends Target {
  readonly op: "inflight";
  /** Payload size in bytes (binary). */
  readonly size: number;
  /** Round trips before the measured span. */
  readonly warmupMs: number;
  /** Longest measured span. */
  readonly durationMs: number;
  /** The measured span also ends after this many round trips (and keeps as many latencies). */
  readonly maxMessages: number;
}

/** Sequential connect, handshake, one 64-byte echo, closing handshake. */
export interface StormCommand extends Target {
  readonly op: "storm";
  /** Connections cycled before the measured span. */
  readonly warmupMs: number;
  /** Longest measured span. */
  readonly durationMs: number;
  /** The measured span also ends after this many connections. */
  readonly maxConns: number;
}

/** Opens `conns` idle connections and measures the server's RSS growth. */
export interface IdleCommand extends Target {
  readonly op: "idle";
  /** Idle connections to hold open. */
  readonly conns: number;
  /** Wait after the last handshake before reading RSS. */
  readonly settleMs: number;
}

/** A command for the load client. */
export type Command =
  | ThroughputCommand
  | InflightCommand
  | StormCommand
  | IdleCommand
  | { readonly op: "exit" };

/**
 * The clients compared: `ours` (dill-ws, sends complete once written), `ours-sb` (dill-ws
 * on a socket with a 64 KiB `sendBuffer`), `ours-nagle` (dill-ws with `noDelay: false`:
 * Nagle's algorithm on, as Deno's client leaves it) and `deno` (Deno's built-in `WebSocket`).
 */
export type ClientId = "ours" | "ours-sb" | "ours-nagle" | "deno";

/** Which client to run and how. */
export interface LibClientCommand extends Target {
  /** Which client runs. */
  readonly client: ClientId;
  /** Binary payload size. */
  readonly size: number;
  /** Messages in flight. */
  readonly window: number;
  /** Traffic before the measured span. */
  readonly warmupMs: number;
  /** Longest measured span. */
  readonly durationMs: number;
  /** The span also ends after this many echoes. */
  readonly maxMessages: number;
}

/** What one measured span produced. */
export interface Measurement {
  /** Messages (or, for the storm, connections) completed in the span. */
  readonly count: number;
  /** Echoed payload bytes received in the span. */
  readonly bytes: number;
  /** Length of the span in ms. */
  readonly elapsedMs: number;
  /** CPU time the server process used in the span, ms. */
  readonly serverCpuMs: number;
  /** CPU time the load client used in the span, ms. */
  readonly clientCpuMs: number;
  /** CPU time every other process of the machine used in the span, ms (noise). */
  readonly otherCpuMs: number;
  /** Server VmRSS at the end of the span, KiB. */
  readonly serverRssKiB: number;
  /** VmRSS of the client at the end of the span, KiB (client-side comparison only). */
  readonly clientRssKiB?: number;
  /** For `idle`: RSS growth over the opened connections, KiB. */
  readonly rssDeltaKiB?: number;
  /** For `inflight`: round-trip time percentiles over the span, µs. */
  readonly latency?: Latency;
  /** Misbehaviour seen (wrong echoes, errors, missing close answers). */
  readonly anomalies: string[];
  /** Observations that are not misbehaviour (such as unusually slow connection cycles). */
  readonly notes?: string[];
}

/** Round-trip time percentiles of one span, µs (nearest-rank). */
export interface Latency {
  /** Median. */
  readonly p50Us: number;
  /** 90th percentile. */
  readonly p90Us: number;
  /** 99th percentile. */
  readonly p99Us: number;
  /** Slowest round trip. */
  readonly maxUs: number;
}

/** The client's answer: a measurement, or why the command failed. */
export type Answer = { ok: true; result: Measurement } | { ok: false; error: string };
