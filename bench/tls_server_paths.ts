/**
 * Which TLS engine can a server use, and what does it cost? Each server echoes a
 * stream of bytes back over TLS, in its own process, while a native client
 * (`Deno.connectTls`) pushes 1 MiB writes through it (4 MiB in flight); the figure
 * is the server process's CPU time per MB echoed (all its threads, from
 * `/proc/<pid>/task/<tid>/schedstat`), robust to other load on the machine:
 *
 * - `Deno.listenTls`: native rustls in Rust, the engine under `Deno.serve` with a
 *   certificate (the reference of the bench's wss rows). It can only accept TLS
 *   from the first byte: Deno has no server-side `startTls`.
 * - `node:tls over node:net`: `tls.createServer`, the `node:tls` engine on a native
 *   socket handle (ciphertext never reaches JavaScript). What a "fast path for TLS
 *   directly over TCP" built on `node:net` would cost.
 * - `dill (node:tls)`: `tcpAccept` → `tlsAttachServer` → `brecv`/`bsend`, the
 *   module's path (the `node:tls` engine over an in-memory duplex under the TLS actor).
 *
 * A last line gives the `node:tls` engine alone, with no socket at all: two engines
 * wired back to back in this process (`actors/tls_engine.ts`), one encrypting 16 KiB
 * writes, 8 in flight, the other decrypting them: the time per MB of one encryption
 * plus one decryption, which is what an echo server spends on TLS at the least.
 *
 * Run with `deno run -A bench/tls_server_paths.ts`; `MIB` sets the megabytes per
 * round (default 128), `ROUNDS` the rounds (default 3; the median is printed).
 *
 * @module
 */

import { brecv, bsend, hclose, now, tcpAccept, tcpListen, tcpLocalAddr } from "../mod.ts";
import { tlsAttachServer } from "../mod.ts";
import { loadTlsEngine, TlsEngine, type TlsEngineReport } from "../actors/tls_engine.ts";

const CHUNK = 1 << 20;
const WINDOW = 4 * CHUNK;
const MIB = Number(Deno.env.get("MIB") ?? 128);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const FIXTURES = new URL("../tests/fixtures/tls/", import.meta.url);
const pem = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

const SERVERS = {
  "Deno.listenTls": "native",
  "node:tls over node:net": "node",
  "dill (node:tls)": "dill",
} as const;
type ServerKind = (typeof SERVERS)[keyof typeof SERVERS];

// ---- the servers (run as `tls_server_paths.ts --serve <kind>`; print their port) ----

async function serve(kind: ServerKind): Promise<void> {
  const cert = pem("cert.pem");
  const key = pem("key.pem");
  if (kind === "native") {
    const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
    console.log((listener.addr as Deno.NetAddr).port);
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(256 * 1024);
        for (let n; (n = await conn.read(buf)) !== null;) await writeFull(conn, buf.subarray(0, n));
      })().catch(() => {}).finally(() => conn.close());
    }
  } else if (kind === "node") {
    const tls = await import("node:tls");
    const server = tls.createServer({ cert, key }, (socket) => {
      socket.on("error", () => {});
      socket.pipe(socket);
    });
    server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
  } else {
    const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
    console.log(tcpLocalAddr(listener).port);
    for (;;) {
      const { handle } = await tcpAccept(listener, -1);
      (async () => {
        const s = await tlsAttachServer(handle, { cert, key }, now() + 5000);
        const buf = new Uint8Array(CHUNK);
        try {
          for (;;) await bsend(s, await brecv(s, buf, -1), -1);
        } finally {
          hclose(s);
        }
      })().catch(() => {});
    }
  }
}

async function writeFull(conn: Deno.Conn, buf: Uint8Array): Promise<void> {
  for (let off = 0; off < buf.length;) off += await conn.write(buf.subarray(off));
}

// ---- the client -----------------------------------------------------------------

/** CPU time of every thread of process `pid`, ms. */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

/** Pushes `total` bytes through the echo server and reads them back. */
async function echo(conn: Deno.TlsConn, total: number): Promise<void> {
  const out = new Uint8Array(CHUNK);
  const inbuf = new Uint8Array(CHUNK);
  let got = 0;
  const waker = { wake: () => {} };
  const reading = (async () => {
    while (got < total) {
      const n = await conn.read(inbuf);
      if (n === null) throw new Error("the server hung up");
      got += n;
      waker.wake();
    }
  })();
  for (let sent = 0; sent < total; sent += CHUNK) {
    while (sent - got >= WINDOW) await new Promise<void>((resolve) => waker.wake = resolve);
    await writeFull(conn, out);
  }
  await reading;
}

/** One round against a fresh server process: server CPU µs per MB and MB/s. */
async function round(kind: ServerKind): Promise<{ usPerMb: number; mbps: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--serve", kind],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`the ${kind} server exited`);
      text += value;
    }
    lines.releaseLock();
    const port = Number(text.trim());
    const conn = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [pem("ca.pem")],
    });
    try {
      await echo(conn, 16 * CHUNK); // warm-up
      const total = MIB * CHUNK;
      const cpu0 = cpuMs(child.pid);
      const t0 = performance.now();
      await echo(conn, total);
      const seconds = (performance.now() - t0) / 1000;
      const mb = total / 1e6;
      return { usPerMb: (cpuMs(child.pid) - cpu0) * 1000 / mb, mbps: mb / seconds };
    } finally {
      conn.close();
    }
  } finally {
    child.kill();
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
}

/** The engine alone: µs per MB of plaintext encrypted by one engine and decrypted by another. */
async function engineAlone(): Promise<number> {
  await loadTlsEngine(); // this process attaches no TLS, which would load it
  const size = 16 * 1024;
  const inFlight = 8;
  let server: TlsEngine | null = null;
  let decrypted = 0;
  let target = Infinity;
  const reached = { resolve: () => {} };
  const secure = Promise.withResolvers<void>();
  const client = new TlsEngine(
    { side: "client", hostname: "localhost", caCerts: [pem("ca.pem")], alpn: [] },
    (r: TlsEngineReport) => {
      if (r.kind === "cipher") queueMicrotask(() => server!.feed(r.chunk));
      else if (r.kind === "secure") secure.resolve();
      else if (r.kind === "plain" && (decrypted += r.chunk.length) >= target) reached.resolve();
    },
  );
  server = new TlsEngine(
    { side: "server", cert: pem("cert.pem"), key: pem("key.pem"), alpn: [] },
    (r: TlsEngineReport) => {
      if (r.kind === "cipher") client.feed(r.chunk);
    },
  );
  try {
    await secure.promise;
    const message = new Uint8Array(size);
    const run = async (messages: number) => {
      for (let sent = 0; sent < messages; sent += inFlight) {
        target = decrypted + size * inFlight;
        const done = new Promise<void>((resolve) => reached.resolve = resolve);
        for (let i = 0; i < inFlight; i++) server!.write(message);
        await done;
      }
    };
    await run(1024); // warm-up
    const messages = (MIB * CHUNK) / size;
    const t0 = performance.now();
    await run(messages);
    return (performance.now() - t0) * 1000 / (messages * size / 1e6);
  } finally {
    client.destroy();
    server.destroy();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

if (Deno.args[0] === "--serve") {
  await serve(Deno.args[1] as ServerKind);
} else {
  console.log(
    `TLS server paths: ${MIB} MiB echoed, 1 MiB writes, median of ${ROUNDS} rounds\n`,
  );
  console.log("| server path | server CPU µs/MB | ÷ Deno.listenTls | MB/s |");
  console.log("| --- | ---: | ---: | ---: |");
  const cpu: Record<string, number[]> = {};
  const rate: Record<string, number[]> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, kind] of Object.entries(SERVERS)) {
      const { usPerMb, mbps } = await round(kind);
      (cpu[name] ??= []).push(usPerMb);
      (rate[name] ??= []).push(mbps);
    }
  }
  const reference = median(cpu["Deno.listenTls"]);
  for (const name of Object.keys(SERVERS)) {
    const c = median(cpu[name]);
    console.log(
      `| ${name} | ${c.toFixed(0)} | ${(c / reference).toFixed(2)}× | ${
        median(rate[name]).toFixed(0)
      } |`,
    );
  }
  const engine: number[] = [];
  for (let r = 0; r < ROUNDS; r++) engine.push(await engineAlone());
  const e = median(engine);
  console.log(
    `| node:tls engine alone, no socket (16 KiB writes) | ${e.toFixed(0)} | ${
      (e / reference).toFixed(2)
    }× | – |`,
  );
}
