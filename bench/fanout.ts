/**
 * Broadcast fan-out of the chat demo: one process with its rooms in memory against two
 * processes sharing the port, their rooms joined through a local `nats-server`.
 *
 * Clients (Deno's WebSocket, in this process): one sender and {@link RECEIVERS} receivers in
 * one room, spread evenly over the processes. Two measures per setup:
 * - **throughput**: the sender keeps at most {@link WINDOW} messages ahead of its slowest
 *   receiver (the demo drops a member {@link DEFAULT_MAX_OUTBOX} events behind, so the
 *   window stays well under that); messages/s delivered = receiver deliveries / span;
 * - **latency**: one message at a time, each waited for by every receiver; p50/p99 from
 *   send to receipt, split by whether the receiver sits on the sender's process (local
 *   delivery) or on the other (through NATS). Remote minus local is the broker hop.
 *
 * Run: `deno task bench:fanout` (`FANOUT_QUICK=1` for a smoke run). Needs `nats-server`.
 * It prints a Markdown table.
 *
 * @module
 */

import { DEFAULT_MAX_OUTBOX } from "../examples/chat_rooms.ts";
import { DemoProcess, freePort, NatsServer } from "../examples/demo_cluster.ts";

const QUICK = Deno.env.get("FANOUT_QUICK") === "1";
/** Receivers in the room (split evenly over the processes). */
const RECEIVERS = 8;
/** Messages the sender may be ahead of its slowest receiver. */
const WINDOW = 64;
/** Throughput span: time and count bounds. */
const SPAN_MS = QUICK ? 500 : 3_000;
const MAX_MESSAGES = QUICK ? 5_000 : 100_000;
/** Latency samples (one message at a time). */
const LATENCY_SAMPLES = QUICK ? 50 : 500;
const STEP_MS = 10_000;
const MAX_CONNECTS = 100;
if (WINDOW + 1 >= DEFAULT_MAX_OUTBOX) throw new Error("the window would get receivers dropped");

/** A client in the room, counting the sender's messages it receives. */
class Client {
  readonly ws: WebSocket;
  name = "";
  node = "";
  /** Highest sequence number seen from the sender, and when each arrived. */
  last = -1;
  readonly arrivals = new Map<number, number>();
  sender = "";
  recordArrivals = false;
  #wake: (() => void) | null = null;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws?room=bench`);
    this.closed = new Promise((resolve) => this.ws.onclose = () => resolve());
    this.ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.kind === "welcome") {
        this.name = m.name;
        this.node = m.name.split("@")[1];
      } else if (m.kind === "chat" && m.from === this.sender) {
        const seq = Number(m.text);
        if (seq > this.last) this.last = seq;
        if (this.recordArrivals) this.arrivals.set(seq, performance.now());
      } else return;
      this.#wake?.();
    };
  }

  /** Waits (bounded) until `ready()` holds; re-checked on every message. */
  async until(ready: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + STEP_MS;
    while (!ready()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out: ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = null;
    }
  }

  async close(): Promise<void> {
    this.ws.close(1000);
    await this.closed;
  }
}

async function join(port: number): Promise<Client> {
  const c = new Client(port);
  await c.until(() => c.name !== "", "welcome");
  return c;
}

/** One sender on the first node, receivers spread evenly over `nodes`. */
async function setUp(
  port: number,
  nodes: string[],
): Promise<{ sender: Client; receivers: Client[] }> {
  const perNode = RECEIVERS / nodes.length;
  const want = new Map(nodes.map((n) => [n, perNode + (n === nodes[0] ? 1 : 0)]));
  const got: Client[] = [];
  for (let i = 0; i < MAX_CONNECTS && [...want.values()].some((n) => n > 0); i++) {
    const c = await join(port);
    const left = want.get(c.node) ?? 0;
    if (left > 0) {
      want.set(c.node, left - 1);
      got.push(c);
    } else await c.close();
  }
  if ([...want.values()].some((n) => n > 0)) throw new Error("could not spread the clients");
  const sender = got.find((c) => c.node === nodes[0])!;
  const receivers = got.filter((c) => c !== sender);
  for (const c of got) c.sender = sender.name;
  return { sender, receivers };
}

/** Messages/s delivered to the receivers, with the sender at most WINDOW ahead. */
async function throughput(sender: Client, receivers: Client[], first: number): Promise<number> {
  let seq = first;
  for (const r of receivers) r.last = first - 1; // the previous span ended fully delivered
  const slowest = () => Math.min(...receivers.map((r) => r.last));
  const start = performance.now();
  while (performance.now() - start < SPAN_MS && seq - first < MAX_MESSAGES) {
    while (seq - 1 - slowest() < WINDOW) sender.ws.send(String(seq++));
    // Refill once the slowest receiver has taken half the window.
    const s = receivers.reduce((a, b) => b.last < a.last ? b : a);
    await s.until(() => seq - 1 - s.last <= WINDOW / 2, "the slowest receiver keeps up");
  }
  for (const r of receivers) await r.until(() => r.last === seq - 1, "the last message");
  const span = performance.now() - start;
  return (seq - first) * receivers.length / (span / 1000);
}

/** One message at a time; latencies in ms by receiver placement. */
async function latency(
  sender: Client,
  receivers: Client[],
  first: number,
): Promise<{ local: number[]; remote: number[]; hop: number[] }> {
  const local: number[] = [];
  const remote: number[] = [];
  const hop: number[] = [];
  for (const r of receivers) r.recordArrivals = true;
  for (let seq = first; seq < first + LATENCY_SAMPLES; seq++) {
    const sent = performance.now();
    sender.ws.send(String(seq));
    const here: number[] = [];
    const there: number[] = [];
    for (const r of receivers) {
      await r.until(() => r.arrivals.has(seq), "a latency sample");
      (r.node === sender.node ? here : there).push(r.arrivals.get(seq)! - sent);
      r.arrivals.delete(seq);
    }
    local.push(...here);
    remote.push(...there);
    // The hop, message by message: mean arrival through NATS minus mean arrival locally.
    if (here.length && there.length) hop.push(mean(there) - mean(here));
  }
  return { local, remote, hop };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const ms = (v: number) => Number.isNaN(v) ? "–" : v.toFixed(2);

interface Row {
  setup: string;
  rate: number;
  local: number[];
  remote: number[];
  hop: number[];
}

async function measure(setup: string, nodes: string[], nats: NatsServer | null): Promise<Row> {
  const port = freePort();
  const processes: DemoProcess[] = [];
  try {
    for (const n of nodes) processes.push(await DemoProcess.start(n, port, nats?.url ?? null));
    const { sender, receivers } = await setUp(port, nodes);
    try {
      // Warm-up: a short throughput span, then the measures.
      await throughput(sender, receivers, 0);
      const rate = await throughput(sender, receivers, 1_000_000);
      return { setup, rate, ...await latency(sender, receivers, 10_000_000) };
    } finally {
      await Promise.all([sender, ...receivers].map((c) => c.close()));
    }
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  rows.push(await measure("1 process (rooms in memory)", ["p1"], null));
  const nats = await NatsServer.start();
  try {
    rows.push(await measure("2 processes + NATS", ["p1", "p2"], nats));
  } finally {
    await nats.stop();
  }
  const lines = [
    `Broadcast fan-out: 1 sender, ${RECEIVERS} receivers in one room, window ${WINDOW}` +
    `${QUICK ? " (quick run)" : ""}.`,
    "",
    "| setup | delivered msg/s | local p50 ms | local p99 ms | via NATS p50 ms | via NATS p99 ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.setup} | ${Math.round(r.rate).toLocaleString("en-US")} | ` +
      `${ms(percentile(r.local, 0.5))} | ${ms(percentile(r.local, 0.99))} | ` +
      `${ms(percentile(r.remote, 0.5))} | ${ms(percentile(r.remote, 0.99))} |`
    ),
  ];
  const { hop } = rows[1];
  lines.push(
    "",
    `Added by the broker hop (per message: mean arrival via NATS − mean arrival on the ` +
      `sender's process): p50 ${ms(percentile(hop, 0.5))} ms, p99 ${ms(percentile(hop, 0.99))} ms.`,
    "Clients and servers share this machine's cores; the latencies are those the client " +
      "process observes.",
  );
  console.log(lines.join("\n"));
}

if (import.meta.main) await main();
