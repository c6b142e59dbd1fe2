/**
 * `deno task soak`: churn against a real server process, then check that nothing
 * leaked. The server (`soak/server.ts`) is the README's echo example on ws and on wss;
 * the load (`soak/churn.py`) resets connections at every stage, opens and closes
 * thousands cleanly, floods pings and sends garbage instead of TLS handshakes. Before
 * and after each phase the soak reads the server's file descriptors and RSS in
 * `/proc/PID` and asks the server for its JS heap after a forced GC. The run fails (exit 1) when descriptors or heap do not come
 * back near their baseline.
 *
 * `SOAK_SCALE=0.1 deno task soak` runs a tenth of every count; `SOAK_TLS_ROUNDS=8` runs
 * eight rounds of garbage TLS handshakes instead of three. All traffic stays on
 * 127.0.0.1.
 *
 * @module
 */

import { hclose, mrecv, msend, now, tcpConnect, tlsAttachClient, wsAttachClient } from "../mod.ts";
import { LineChild } from "../tests/helpers/child.ts";
import { CLIENT, fixture } from "../tests/helpers/tls_fixtures.ts";

const SCALE = Number(Deno.env.get("SOAK_SCALE") ?? "1");
/** Rounds of garbage TLS handshakes: more show where RSS levels off. */
const TLS_ROUNDS = Number(Deno.env.get("SOAK_TLS_ROUNDS") ?? "3");
/**
 * Descriptors the server may hold above its baseline once the churn is over. Its TCP
 * sockets must come back exactly; Deno opens a few internal pipes and socket pairs
 * lazily, the first time some path runs.
 */
const FD_SLACK = 4;
/** JS heap (after GC) the server may hold above its baseline once the churn is over. */
const HEAP_SLACK = 4 * 1024 * 1024;
/** Longest any phase may take (ms). */
const PHASE_MS = 300_000;
const MIB = 1024 * 1024;

interface Stats {
  fds: number;
  tcp: number;
  kinds: Record<string, number>;
  heap: number;
  heapTotal: number;
  rss: number;
  external: number;
  live: number;
  errors: Record<string, number>;
}

const here = new URL(".", import.meta.url);

const server = new LineChild(Deno.execPath(), [
  "run",
  "--v8-flags=--expose-gc",
  "--allow-net=127.0.0.1",
  `--allow-read=${fixture("")}`,
  new URL("server.ts", here).pathname,
]);
const churn = new LineChild("/usr/bin/python3", ["-u", new URL("churn.py", here).pathname]);

let failed = false;
try {
  const ports = JSON.parse(await server.line("server ports", 30_000)) as {
    ws: number;
    wss: number;
  };
  console.log(`server pid ${server.pid}, ws :${ports.ws}, wss :${ports.wss}, scale ${SCALE}`);

  // Warm up every path once, so that code compiled and caches filled on first use do
  // not count as growth.
  await load(`openclose ${ports.ws} 50`);
  for (const stage of ["connect", "request", "frame", "bigframe"]) {
    await load(`reset ${stage} ${ports.ws} 20`);
  }
  await load(`pingflood ${ports.ws} 1 1000`);
  await load(`tlsgarbage ${ports.wss} 30`);
  await wssEcho(ports.wss, 20);
  const baseline = await settle();
  console.log(`baseline: ${describe(baseline)}`);
  console.log("");
  console.log(
    "| phase | seconds | fds (TCP) before → after | heap MiB before → after | V8 heap reserved MiB | RSS MiB before → after | load said |",
  );
  console.log("| --- | ---: | --- | --- | --- | --- | --- |");

  const n = (count: number) => Math.max(1, Math.round(count * SCALE));
  const phases: [string, () => Promise<unknown>][] = [
    [`${n(5000)} resets after connect`, () => load(`reset connect ${ports.ws} ${n(5000)}`)],
    [`${n(5000)} resets mid-request`, () => load(`reset request ${ports.ws} ${n(5000)}`)],
    [`${n(5000)} resets mid-frame`, () => load(`reset frame ${ports.ws} ${n(5000)}`)],
    [`${n(5000)} resets mid-64 KiB frame`, () => load(`reset bigframe ${ports.ws} ${n(5000)}`)],
    [`${n(10000)} connections opened and closed`, () => load(`openclose ${ports.ws} ${n(10000)}`)],
    [`ping floods: 10 × ${n(20000)} pings`, () => load(`pingflood ${ports.ws} 10 ${n(20000)}`)],
    [`${n(500)} wss echo connections`, () => wssEcho(ports.wss, n(500))],
  ];
  for (let round = 1; round <= TLS_ROUNDS; round++) {
    phases.push([
      `garbage TLS handshakes, round ${round}: ${n(1200)}`,
      () => load(`tlsgarbage ${ports.wss} ${n(1200)}`),
    ]);
  }

  let before = baseline;
  for (const [name, run] of phases) {
    const started = performance.now();
    const said = await run();
    const after = await settle();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `| ${name} | ${seconds} | ${before.fds} (${before.tcp}) → ${after.fds} (${after.tcp}) | ${
        mib(before.heap)
      } → ${mib(after.heap)} | ${mib(after.heapTotal)} | ${mib(before.rss)} → ${mib(after.rss)} | ${
        JSON.stringify(said ?? "")
      } |`,
    );
    if (after.tcp > baseline.tcp) {
      console.log(`  LEAK: ${after.tcp - baseline.tcp} TCP sockets above the baseline`);
      failed = true;
    }
    if (after.fds > baseline.fds + FD_SLACK) {
      console.log(
        `  LEAK: ${after.fds - baseline.fds} descriptors above the baseline: ${
          JSON.stringify(after.kinds)
        }`,
      );
      failed = true;
    }
    if (after.heap > baseline.heap + HEAP_SLACK) {
      console.log(`  LEAK: the heap is ${mib(after.heap - baseline.heap)} MiB above the baseline`);
      failed = true;
    }
    before = after;
  }
  console.log("");
  console.log(`after all phases: ${describe(before)}`);
  console.log(`failed connections by code: ${JSON.stringify(before.errors)}`);
  console.log(failed ? "SOAK FAILED" : "soak passed: descriptors and heap back at their baseline");
} catch (e) {
  console.error(e);
  failed = true;
} finally {
  await churn.send("quit").catch(() => {});
  await churn.dispose();
  await server.send("quit").catch(() => {});
  await server.wait(10_000).catch(() => {});
  await server.dispose();
}
Deno.exit(failed ? 1 : 0);

/** Runs one churn command and waits for its answer. */
async function load(command: string): Promise<unknown> {
  return await churn.ask(command, PHASE_MS);
}

/** Waits until the server serves no connection, then returns its stats. */
async function settle(): Promise<Stats> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const stats = await server.ask<Stats>("stats", 30_000);
    if (stats.live === 0) {
      const proc = await churn.ask<{ fds: number; rss: number }>(`procstat ${server.pid}`);
      return { ...stats, ...proc };
    }
    if (Date.now() > deadline) {
      throw new Error(`the server still serves ${stats.live} connections after 30 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** `count` wss clients (our own stack), one echoed message each, then a clean close. */
async function wssEcho(port: number, count: number): Promise<string> {
  const message = new TextEncoder().encode("soak");
  for (let i = 0; i < count; i++) {
    const tcp = await tcpConnect({ port }, now() + 5000);
    const tls = await tlsAttachClient(
      tcp,
      CLIENT,
      now() + 5000,
    );
    const { handle: ws } = await wsAttachClient(tls, 0, "/", `localhost:${port}`, now() + 5000);
    try {
      await msend(ws, message, now() + 5000);
      await mrecv(ws, now() + 5000);
    } finally {
      hclose(ws);
    }
  }
  return `${count} echoed`;
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

function describe(s: Stats): string {
  return `${s.fds} fds (${s.tcp} TCP), heap ${mib(s.heap)} MiB (reserved ${
    mib(s.heapTotal)
  } MiB), RSS ${mib(s.rss)} MiB, external ${mib(s.external)} MiB`;
}
