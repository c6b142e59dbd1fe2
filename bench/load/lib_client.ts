/**
 * Client-side comparison: a WebSocket *client library* pipelining echo traffic to a
 * server, `window` messages in flight. `ours` is tcpConnect → wsAttachClient with
 * msend/mrecv; `deno` is Deno's built-in `WebSocket`. One measurement per process:
 * the {@link LibClientCommand} is the JSON in the first argument, the
 * {@link Measurement} (or `{ok:false}`) is printed as JSON on stdout.
 *
 * @module
 */

import {
  hclose,
  mrecv,
  msend,
  now,
  tcpConnect,
  WS_BINARY,
  wsAttachClient,
  wsDetach,
} from "../../mod.ts";
import type { Answer, LibClientCommand, Measurement } from "./commands.ts";
import { message } from "./conn.ts";
import { binaryPayload } from "./payloads.ts";
import { cpuBetween, rssKiB, sampleCpu } from "./procfs.ts";
import { raceTimeout, sleep, TIMED_OUT } from "./throughput.ts";

/** A running client: a live echo count and a way to stop. */
interface Running {
  echoed(): number;
  failure(): string | null;
  /** Stops sending and closes cleanly; returns a problem description or `null`. */
  stop(): Promise<string | null>;
}

/** The `sendBuffer` of the `ours-sb` client (the same as the `dill-sb` server's). */
const SEND_BUFFER = 64 * 1024;

async function startOurs(cmd: LibClientCommand, payload: Uint8Array): Promise<Running> {
  const sendBuffer = cmd.client === "ours-sb" ? SEND_BUFFER : 0;
  // Deno's WebSocket client leaves Nagle's algorithm on (TCP_NODELAY 0, seen with strace);
  // `ours-nagle` does the same, to tell that apart from the rest of the difference.
  const noDelay = cmd.client !== "ours-nagle";
  const tcp = await tcpConnect({ hostname: "127.0.0.1", port: cmd.port }, now() + 5000, {
    sendBuffer,
    noDelay,
  });
  const { handle } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", now() + 5000);
  let echoed = 0;
  let credits = cmd.window;
  let stopped = false;
  let failure: string | null = null;
  const waiter: { wake: (() => void) | null } = { wake: null };
  const writer = (async () => {
    while (!stopped) {
      if (credits === 0) {
        await new Promise<void>((r) => (waiter.wake = r));
        waiter.wake = null;
        continue;
      }
      credits--;
      await msend(handle, payload, -1);
    }
  })().catch((e) => void (stopped || (failure ??= `msend: ${message(e)}`)));
  const reader = (async () => {
    for (;;) {
      const m = await mrecv(handle, -1);
      if (m.length !== payload.length) failure ??= `echo of ${m.length} bytes`;
      echoed++;
      credits++;
      waiter.wake?.();
    }
  })().catch((e) => void (stopped || (failure ??= `mrecv: ${message(e)}`)));
  return {
    echoed: () => echoed,
    failure: () => failure,
    stop: async () => {
      stopped = true;
      waiter.wake?.();
      await writer;
      let problem: string | null = null;
      try {
        // The closing handshake; echoes still in flight are dropped.
        hclose(await wsDetach(handle, 1000, "", now() + 2000));
      } catch (e) {
        problem = `wsDetach: ${message(e)}`;
        hclose(handle);
      }
      await reader;
      return problem;
    },
  };
}

async function startDeno(cmd: LibClientCommand, payload: Uint8Array): Promise<Running> {
  const ws = new WebSocket(`ws://127.0.0.1:${cmd.port}/`);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "WebSocket error"));
  });
  let echoed = 0;
  let stopped = false;
  let failure: string | null = null;
  const closed = new Promise<void>((r) => (ws.onclose = () => r()));
  ws.onerror = (e) => void (stopped || (failure ??= (e as ErrorEvent).message));
  ws.onmessage = (e) => {
    if ((e.data as ArrayBuffer).byteLength !== payload.length) failure ??= "wrong echo size";
    echoed++;
    if (!stopped) ws.send(payload);
  };
  for (let i = 0; i < cmd.window; i++) ws.send(payload);
  return {
    echoed: () => echoed,
    failure: () => failure,
    stop: async () => {
      stopped = true;
      ws.close(1000);
      return (await raceTimeout(closed, 2000)) === TIMED_OUT ? "no close within 2 s" : null;
    },
  };
}

async function measure(cmd: LibClientCommand): Promise<Measurement> {
  const payload = binaryPayload(cmd.size);
  const run = cmd.client === "deno" ? await startDeno(cmd, payload) : await startOurs(cmd, payload);
  let stopped = false;
  try {
    await sleep(cmd.warmupMs);
    const m0 = run.echoed();
    const s0 = sampleCpu(cmd.pid, cmd.clkTck);
    while (
      performance.now() - s0.at < cmd.durationMs && run.echoed() - m0 < cmd.maxMessages &&
      run.failure() === null
    ) {
      await sleep(10);
    }
    const s1 = sampleCpu(cmd.pid, cmd.clkTck);
    const count = run.echoed() - m0;
    const serverRssKiB = rssKiB(cmd.pid);
    const clientRssKiB = rssKiB("self");
    const anomalies: string[] = [];
    const failure = run.failure();
    if (failure !== null) anomalies.push(failure);
    stopped = true;
    const problem = await run.stop();
    if (problem !== null) anomalies.push(problem);
    return {
      count,
      bytes: count * cmd.size,
      ...cpuBetween(s0, s1),
      serverRssKiB,
      clientRssKiB,
      anomalies,
    };
  } finally {
    if (!stopped) await run.stop();
  }
}

const cmd = JSON.parse(Deno.args[0]) as LibClientCommand;
let answer: Answer;
try {
  answer = { ok: true, result: await measure(cmd) };
} catch (e) {
  answer = { ok: false, error: message(e) };
}
console.log(JSON.stringify(answer));
Deno.exit(0);
