/**
 * Compression benchmark (permessage-deflate): our echo server against npm `ws` with
 * `perMessageDeflate`, on Deno and on Node, in the same run, on JSON-like text of 1 KiB
 * and 16 KiB. Run it with `deno task bench:deflate` (`BENCH_DEFLATE_MS=300` for a smoke
 * run).
 *
 * Per server and workload it reports msg/s, the server's CPU time per message (user +
 * system of the server process, from `/proc/<pid>/stat`), and bytes on the wire per
 * message each way: the TCP payload bytes the server's socket sent and received
 * (`bytes_sent`/`bytes_received` of `ss -ti`: WebSocket frames with their headers, no
 * TCP/IP headers). Our server also runs with compression off, the baseline of the CPU cost.
 *
 * One load client (npm `ws` on Deno, offering permessage-deflate with context takeover,
 * threshold 0) serves every server, so client costs are alike. Each message differs (a
 * seeded generator), so context takeover gains what it would on real traffic.
 *
 * The same file is the servers and the client: `deflate.ts server-dill [on|off]`,
 * `deflate.ts server-ws`, `deflate.ts client PORT SIZE WINDOW MS`; Node runs the
 * equivalent `ws` server from a script written at start.
 *
 * @module
 */

const SELF = new URL(import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const DENO = Deno.execPath();
const NODE = "/usr/bin/node";
const CACHE = Deno.env.get("BENCH_CACHE_DIR") ?? "/tmp/dill-ws-bench-cache";
const SPAN_MS = Number(Deno.env.get("BENCH_DEFLATE_MS") ?? 2000);
const CLK_TCK = 100;

/** A JSON-like payload of about `size` bytes, different for every `seed`. */
function jsonPayload(size: number, seed: number): string {
  let state = (seed * 2654435761) >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
  const items: string[] = [];
  let length = 2;
  while (length < size) {
    const item = JSON.stringify({
      id: Math.floor(next() * 1e6),
      user: names[Math.floor(next() * names.length)],
      score: Math.round(next() * 10000) / 100,
      active: next() < 0.5,
      tags: ["news", "sport", "tech"].filter(() => next() < 0.5),
    });
    items.push(item);
    length += item.length + 1;
  }
  return `[${items.join(",")}]`.slice(0, size - 1) + "]";
}

// ---- servers ----------------------------------------------------------------------------

async function serverDill(mode: string): Promise<void> {
  const mod = await import("../mod.ts");
  const listener = mod.tcpListen({ hostname: "127.0.0.1", port: 0 });
  watchStdin();
  console.log(mod.tcpLocalAddr(listener).port);
  const options = { perMessageDeflate: mode !== "off" };
  for (;;) {
    const { handle } = await mod.tcpAccept(listener, -1);
    (async () => {
      let h = handle;
      try {
        h = (await mod.wsAttachServer(handle, mod.WS_BINARY, mod.now() + 5000, options)).handle;
        for (;;) {
          const m = await mod.wsRecv(h, -1);
          await mod.wsSend(h, m.type, m.data, -1);
        }
      } catch {
        // the client went away
      } finally {
        mod.hclose(h);
      }
    })();
  }
}

const WS_SERVER_JS = `
const { WebSocketServer } = WS_IMPORT;
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: true });
server.on("listening", () => console.log(server.address().port));
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => {});
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
`;

async function serverWsDeno(): Promise<void> {
  const specifier = ["npm:ws", "8"].join("@");
  const { WebSocketServer } = await import(specifier);
  watchStdin();
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: true });
  server.on("listening", () => console.log(server.address().port));
  // deno-lint-ignore no-explicit-any
  server.on("connection", (ws: any) => {
    ws.on("message", (data: Uint8Array, isBinary: boolean) => ws.send(data, { binary: isBinary }));
    ws.on("error", () => {});
  });
}

/** Exits when the parent closes our stdin. */
function watchStdin(): void {
  (async () => {
    const buf = new Uint8Array(64);
    try {
      while ((await Deno.stdin.read(buf)) !== null) { /* only the end matters */ }
    } catch { /* parent gone */ }
    Deno.exit(0);
  })();
}

// ---- load client ------------------------------------------------------------------------

async function client(port: number, size: number, window: number, ms: number): Promise<void> {
  const specifier = ["npm:ws", "8"].join("@");
  const { default: WebSocket } = await import(specifier);
  const messages = Array.from({ length: 64 }, (_, i) => jsonPayload(size, i));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } });
  await new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  let sent = 0, received = 0, measuring = false, counted = 0, bad = 0;
  let stop = false;
  const done = new Promise<void>((resolve) => {
    ws.on("message", (data: Uint8Array) => {
      received++;
      if (data.length !== messages[(received - 1) % 64].length) bad++;
      if (measuring) counted++;
      if (!stop && sent - received < window) {
        ws.send(messages[sent++ % 64]);
      } else if (stop && received === sent) resolve();
    });
  });
  for (let i = 0; i < window; i++) ws.send(messages[sent++ % 64]);
  await new Promise((r) => setTimeout(r, Math.min(300, ms)));
  console.log("START"); // the parent samples the server now
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  // Stop sending, count the echoes still in flight, then let the parent sample.
  stop = true;
  if (received < sent) await done;
  measuring = false;
  const elapsed = performance.now() - t0;
  console.log(`SPAN ${JSON.stringify({ counted, elapsed, bad })}`);
  // Keep the connection open until the parent sampled (it closes our stdin).
  const buf = new Uint8Array(16);
  while ((await Deno.stdin.read(buf)) !== null) { /* only the end matters */ }
  ws.close();
}

// ---- the run ----------------------------------------------------------------------------

interface Server {
  name: string;
  command: string;
  args: string[];
}

/** The server's CPU time, and the TCP payload bytes its sockets on `port` sent and received. */
async function sample(pid: number, port: number) {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  let text = "";
  // ss now and then lists nothing for a busy socket: ask again.
  for (let attempt = 0; attempt < 10 && !text.includes("bytes_sent"); attempt++) {
    const ss = await new Deno.Command("ss", {
      args: ["-tinH", "state", "established", `( sport = :${port} )`],
      stdout: "piped",
      stderr: "null",
    }).output();
    text = new TextDecoder().decode(ss.stdout);
  }
  const sum = (name: string) =>
    [...text.matchAll(new RegExp(`${name}:(\\d+)`, "g"))].reduce((n, m) => n + Number(m[1]), 0);
  return {
    cpuMs: (ticks * 1000) / CLK_TCK,
    sent: sum("bytes_sent"),
    received: sum("bytes_received"),
  };
}

/** Reads lines of a child's stdout. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
}

async function nodeWsReady(): Promise<string | null> {
  try {
    Deno.statSync(NODE);
  } catch {
    return null;
  }
  const dir = CACHE;
  try {
    Deno.statSync(`${dir}/node_modules/ws/package.json`);
  } catch {
    Deno.mkdirSync(dir, { recursive: true });
    const out = await new Deno.Command("npm", {
      args: ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", dir, "ws@8"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success) return null;
  }
  const script = `${dir}/deflate_ws_server.cjs`;
  Deno.writeTextFileSync(
    script,
    WS_SERVER_JS.replace("WS_IMPORT", `require(${JSON.stringify(`${dir}/node_modules/ws`)})`),
  );
  return script;
}

async function cell(server: Server, size: number, window: number) {
  const proc = new Deno.Command(server.command, {
    args: server.args,
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const out = lines(proc.stdout);
  const port = Number((await out.next()).value);
  const load = new Deno.Command(DENO, {
    args: [
      "run",
      "-A",
      SELF,
      "client",
      String(port),
      String(size),
      String(window),
      String(SPAN_MS),
    ],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let before = await sample(proc.pid, port);
  let span = { counted: 0, elapsed: 1, bad: 0 };
  let after = before;
  for await (const line of lines(load.stdout)) {
    if (line === "START") before = await sample(proc.pid, port);
    if (line.startsWith("SPAN ")) {
      after = await sample(proc.pid, port);
      span = JSON.parse(line.slice(5));
      await load.stdin.close();
    }
  }
  await load.status;
  await proc.stdin.close();
  await proc.status;
  await out.return(undefined);
  const n = Math.max(span.counted, 1);
  return {
    server: server.name,
    workload: `json ${size >= 1024 ? size / 1024 + " KiB" : size + " B"}`,
    msgPerSec: Math.round((span.counted * 1000) / span.elapsed),
    cpuUsPerMsg: ((after.cpuMs - before.cpuMs) * 1000) / n,
    outBytesPerMsg: (after.sent - before.sent) / n,
    inBytesPerMsg: (after.received - before.received) / n,
    payload: size,
    bad: span.bad,
  };
}

async function main(): Promise<void> {
  const servers: Server[] = [
    { name: "dill (deflate)", command: DENO, args: ["run", "-A", SELF, "server-dill", "on"] },
    { name: "dill (no deflate)", command: DENO, args: ["run", "-A", SELF, "server-dill", "off"] },
    { name: "ws on Deno", command: DENO, args: ["run", "-A", SELF, "server-ws"] },
  ];
  const nodeScript = await nodeWsReady();
  if (nodeScript) servers.push({ name: "ws on Node", command: NODE, args: [nodeScript] });
  else console.error("deflate bench: npm ws on Node left out (no /usr/bin/node or npm failed)");
  const rows = [];
  for (const [size, window] of [[1024, 32], [16 * 1024, 8]]) {
    for (const server of servers) rows.push(await cell(server, size, window));
  }
  const out = [
    `permessage-deflate benchmark, ${SPAN_MS} ms per cell, one connection, ${
      new Date().toISOString()
    }`,
    "",
    "| workload | server | msg/s | server CPU µs/msg | bytes out/msg | bytes in/msg | out / payload |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.workload} | ${r.server} | ${r.msgPerSec} | ${r.cpuUsPerMsg.toFixed(1)} | ${
        r.outBytesPerMsg.toFixed(0)
      } | ${r.inBytesPerMsg.toFixed(0)} | ${(r.outBytesPerMsg / r.payload).toFixed(3)}${
        r.bad ? ` (${r.bad} bad echoes)` : ""
      } |`
    ),
  ].join("\n");
  console.log(out);
}

const [mode, ...rest] = Deno.args;
if (mode === "server-dill") await serverDill(rest[0] ?? "on");
else if (mode === "server-ws") await serverWsDeno();
else if (mode === "client") {
  await client(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]));
} else if (import.meta.main) await main();
