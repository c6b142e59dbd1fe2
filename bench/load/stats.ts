/**
 * The figures derived from each measured span, and their medians over rounds.
 *
 * @module
 */

import type { Answer, Measurement } from "./commands.ts";

/** One cell of one round: a workload run against one server (or by one client). */
export interface Sample {
  /** Round number, from 0. */
  readonly round: number;
  /** Workload id (or client workload label). */
  readonly workload: string;
  /** Server id (or client id). */
  readonly subject: string;
  /** What the client answered (or the failure). */
  readonly answer: Answer;
}

/** Figures of one span. */
export interface Figures {
  /** Messages (or connections) per second seen by the client. */
  readonly rate: number;
  /** Echoed payload MB/s (10^6 bytes) seen by the client. */
  readonly mbps: number;
  /** Server CPU µs per message (or connection). */
  readonly serverCpuUs: number;
  /** Client CPU µs per message. */
  readonly clientCpuUs: number;
  /** Server VmRSS at the end of the span, MiB. */
  readonly serverRssMiB: number;
  /** Client VmRSS, MiB (client-side comparison only). */
  readonly clientRssMiB: number;
  /** Server CPU time as % of one CPU over the span. */
  readonly serverPct: number;
  /** Load client CPU time as % of one CPU. */
  readonly clientPct: number;
  /** Other processes' CPU time as % of one CPU (machine noise). */
  readonly otherPct: number;
  /** Idle workload: server RSS growth per connection, KiB. */
  readonly kibPerConn: number;
  /** Request/response workload: median round trip, µs. */
  readonly p50Us: number;
  /** Request/response workload: 99th-percentile round trip, µs. */
  readonly p99Us: number;
}

/** Figures of one measurement. */
export function figures(m: Measurement): Figures {
  const s = m.elapsedMs / 1000;
  const per = (ms: number) => (m.count > 0 ? (ms * 1000) / m.count : NaN);
  return {
    rate: m.count / s,
    mbps: m.bytes / s / 1e6,
    serverCpuUs: per(m.serverCpuMs),
    clientCpuUs: per(m.clientCpuMs),
    serverRssMiB: m.serverRssKiB / 1024,
    clientRssMiB: (m.clientRssKiB ?? NaN) / 1024,
    serverPct: (m.serverCpuMs / m.elapsedMs) * 100,
    clientPct: (m.clientCpuMs / m.elapsedMs) * 100,
    otherPct: (m.otherCpuMs / m.elapsedMs) * 100,
    kibPerConn: m.rssDeltaKiB !== undefined && m.count > 0 ? m.rssDeltaKiB / m.count : NaN,
    p50Us: m.latency?.p50Us ?? NaN,
    p99Us: m.latency?.p99Us ?? NaN,
  };
}

/** The median of the finite values (NaN when there are none). */
export function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** (max − min) / median of the finite values: how far rounds disagree. */
export function spread(values: number[]): number {
  const v = values.filter(Number.isFinite);
  if (v.length < 2) return NaN;
  return (Math.max(...v) - Math.min(...v)) / median(v);
}

/** Medians over rounds of every figure of one cell, their range, and the spread of the rate. */
export interface Summary {
  /** Median of each figure. */
  readonly median: Figures;
  /** Smallest value of each figure over rounds. */
  readonly min: Figures;
  /** Largest value of each figure over rounds. */
  readonly max: Figures;
  /** Each round's figures, by round number. */
  readonly byRound: Map<number, Figures>;
  /** Spread of `rate` over rounds. */
  readonly rateSpread: number;
  /** Rounds that produced a measurement. */
  readonly rounds: number;
  /** Failures (client errors) over rounds. */
  readonly errors: string[];
  /** Misbehaviour noted over rounds. */
  readonly anomalies: string[];
  /** Observations noted over rounds. */
  readonly notes: string[];
}

/** Summarizes the samples of one cell. */
export function summarize(samples: Sample[]): Summary {
  const ok: Figures[] = [];
  const byRound = new Map<number, Figures>();
  const errors: string[] = [];
  const anomalies = new Set<string>();
  const notes = new Set<string>();
  for (const s of samples) {
    if (!s.answer.ok) {
      errors.push(`round ${s.round + 1}: ${s.answer.error}`);
      continue;
    }
    const f = figures(s.answer.result);
    ok.push(f);
    byRound.set(s.round, f);
    for (const a of s.answer.result.anomalies) anomalies.add(`round ${s.round + 1}: ${a}`);
    for (const n of s.answer.result.notes ?? []) notes.add(`round ${s.round + 1}: ${n}`);
  }
  const keys = Object.keys(figures(EMPTY)) as (keyof Figures)[];
  const each = (fn: (v: number[]) => number) =>
    Object.fromEntries(keys.map((k) => [k, fn(ok.map((f) => f[k]))])) as unknown as Figures;
  return {
    median: each(median),
    min: each((v) => extreme(v, Math.min)),
    max: each((v) => extreme(v, Math.max)),
    byRound,
    rateSpread: spread(ok.map((f) => f.rate)),
    rounds: ok.length,
    errors,
    anomalies: [...anomalies],
    notes: [...notes],
  };
}

/** `pick` (Math.min or Math.max) of the finite values (NaN when there are none). */
function extreme(values: number[], pick: (...v: number[]) => number): number {
  const v = values.filter(Number.isFinite);
  return v.length === 0 ? NaN : pick(...v);
}

/**
 * A figure of `subject` divided by the same figure of `reference`, taken round by
 * round (both ran in the same round, so they shared its machine state): the median
 * and the range of those per-round ratios.
 */
export function roundRatios(
  subject: Summary,
  reference: Summary,
  key: keyof Figures,
): { median: number; min: number; max: number; rounds: number } {
  const ratios: number[] = [];
  for (const [round, f] of subject.byRound) {
    const r = reference.byRound.get(round);
    if (r && Number.isFinite(f[key] / r[key])) ratios.push(f[key] / r[key]);
  }
  return {
    median: median(ratios),
    min: extreme(ratios, Math.min),
    max: extreme(ratios, Math.max),
    rounds: ratios.length,
  };
}

const EMPTY: Measurement = {
  count: 0,
  bytes: 0,
  elapsedMs: 1,
  serverCpuMs: 0,
  clientCpuMs: 0,
  otherCpuMs: 0,
  serverRssKiB: 0,
  anomalies: [],
};
