// The arithmetic behind the benchmark report (bench/load/): percentiles of round
// trips, medians and ranges over rounds, ratios taken round by round, and the cap on
// idle connections. Wrong figures here would mislead every reading of the report.
import assert from "node:assert/strict";
import type { Answer, Measurement } from "../bench/load/commands.ts";
import { capIdle } from "../bench/load/idle.ts";
import { latencyOf, percentile } from "../bench/load/inflight.ts";
import { roundRatios, type Sample, summarize } from "../bench/load/stats.ts";

function measurement(count: number, serverCpuMs: number, extra: Partial<Measurement> = {}) {
  const m: Measurement = {
    count,
    bytes: count * 64,
    elapsedMs: 1000,
    serverCpuMs,
    clientCpuMs: 0,
    otherCpuMs: 0,
    serverRssKiB: 1024,
    anomalies: [],
    ...extra,
  };
  return m;
}

function sample(round: number, subject: string, answer: Answer): Sample {
  return { round, workload: "w", subject, answer };
}

Deno.test("percentile: nearest rank on sorted samples", () => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(percentile(sorted, 0.5), 50);
  assert.equal(percentile(sorted, 0.99), 99);
  assert.equal(percentile(sorted, 1), 100);
  assert.equal(percentile(sorted, 0), 1);
  assert.equal(percentile(Float64Array.of(7), 0.99), 7);
  assert.ok(Number.isNaN(percentile(new Float64Array(0), 0.5)));
});

Deno.test("latencyOf: sorts numerically (not as strings) and converts ms to µs", () => {
  // As strings, 10 would sort before 9; numerically the median of these is 0.009 ms.
  const ms = Float64Array.of(0.010, 0.009, 0.100, 0.002, 0.008);
  const l = latencyOf(ms);
  assert.equal(Math.round(l.p50Us), 9);
  assert.equal(Math.round(l.maxUs), 100);
  assert.equal(Math.round(l.p99Us), 100);
  assert.deepEqual(ms, Float64Array.of(0.010, 0.009, 0.100, 0.002, 0.008), "input untouched");
});

Deno.test("summarize: median with min and max over rounds; failed rounds left out", () => {
  const s = summarize([
    sample(0, "a", { ok: true, result: measurement(1000, 10) }),
    sample(1, "a", { ok: true, result: measurement(3000, 10) }),
    sample(2, "a", { ok: true, result: measurement(2000, 10) }),
    sample(3, "a", { ok: false, error: "stuck" }),
  ]);
  assert.equal(s.rounds, 3);
  assert.equal(s.median.rate, 2000);
  assert.equal(s.min.rate, 1000);
  assert.equal(s.max.rate, 3000);
  assert.equal(s.rateSpread, 1); // (3000 - 1000) / 2000
  // 10 ms of server CPU per round, over 3000 and over 1000 messages, as µs per message.
  assert.equal(s.min.serverCpuUs, 10_000 / 3000);
  assert.equal(s.max.serverCpuUs, 10);
  assert.deepEqual(s.errors, ["round 4: stuck"]);
});

Deno.test("roundRatios: pairs rounds, skips a round only one side has", () => {
  const ours = summarize([
    sample(0, "ours", { ok: true, result: measurement(200, 1) }),
    sample(1, "ours", { ok: true, result: measurement(300, 1) }),
    sample(2, "ours", { ok: true, result: measurement(900, 1) }),
  ]);
  const ref = summarize([
    sample(0, "ref", { ok: true, result: measurement(100, 1) }),
    sample(1, "ref", { ok: true, result: measurement(100, 1) }),
    sample(2, "ref", { ok: false, error: "down" }),
  ]);
  const r = roundRatios(ours, ref, "rate");
  assert.equal(r.rounds, 2);
  assert.equal(r.min, 2);
  assert.equal(r.max, 3);
  assert.equal(r.median, 2.5);
  // Not the ratio of medians (300 / 100 = 3): each round is compared with itself.
  assert.notEqual(r.median, ours.median.rate / ref.median.rate);
});

Deno.test("capIdle: the tightest of the limits wins, and the reason names it", () => {
  const roomy = { clientFds: 65536, serverFds: 65536, localPorts: 28232 };
  assert.deepEqual(capIdle(10_000, roomy), { n: 10_000, why: "" });
  const tightServer = capIdle(10_000, { ...roomy, serverFds: 1024 });
  assert.ok(tightServer.n < 1024 && tightServer.n > 0, String(tightServer.n));
  assert.match(tightServer.why, /server's open-files limit \(1024\)/);
  const both = capIdle(10_000, { clientFds: 4096, serverFds: 2048, localPorts: 28232 });
  assert.match(both.why, /server's/);
  assert.ok(both.n < 2048);
  const ports = capIdle(50_000, { ...roomy, localPorts: 28232 });
  assert.match(ports.why, /local port range/);
  assert.ok(ports.n < 28232);
  assert.equal(capIdle(10, { clientFds: 100, serverFds: 100, localPorts: 100 }).n, 0);
});
