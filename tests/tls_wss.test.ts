/**
 * WebSocket over TLS (wss) end to end, with real peers on both sides:
 *
 * - our server (tcp → tlsAttachServer → wsAttachServer) ← Deno's built-in `WebSocket`
 *   client. The test CA is given to it in-process with
 *   `new WebSocket(url, { client: Deno.createHttpClient({ caCerts }) })` (Deno 2.9's
 *   `WebSocketOptions.client`), so no child process or `--cert` flag is needed;
 * - our client (tcp → tlsAttachClient → wsAttachClient) → `Deno.serve({ cert, key })`
 *   with `Deno.upgradeWebSocket`;
 * - Python `websockets` over wss in both directions (tests/peers/py_wss.py, with an
 *   `ssl` context that trusts the test CA);
 * - our client and our server together, then both layers detached down to plain TCP.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  mrecv,
  msend,
  now,
  tcpAccept,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
  tlsAttachClient,
  tlsAttachServer,
  tlsDetach,
  tlsInfo,
  WS_BINARY,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsDetach,
  wsDone,
  wsRecv,
  wsSend,
  wsStatus,
} from "../mod.ts";
import { closeQuietly, rejectsWith, within } from "./helpers/transports.ts";
import { CA, fixture, SERVER } from "./helpers/tls_fixtures.ts";
import { denoClientEchoes, echoUntilClosed } from "./helpers/wss_echo.ts";
import { startPythonPeer } from "./peers/python_peer.ts";

const soon = (ms = 5000) => now() + ms;
const TEST_MS = 20_000;

/** Accepts one connection and stacks TLS and the WebSocket server side on it. */
async function acceptWss(listener: Handle) {
  const { handle: tcp } = await tcpAccept(listener, soon());
  const tls = await tlsAttachServer(tcp, { ...SERVER, alpn: ["http/1.1"] }, soon());
  return await wsAttachServer(tls, WS_BINARY, soon());
}

/** Connects and stacks TLS and the WebSocket client side. */
async function connectWss(port: number, resource: string, flags = WS_BINARY): Promise<Handle> {
  const tcp = await tcpConnect({ port }, soon());
  const tls = await tlsAttachClient(
    tcp,
    { hostname: "localhost", caCerts: [CA], alpn: ["http/1.1"] },
    soon(),
  );
  const { handle } = await wsAttachClient(tls, flags, resource, `localhost:${port}`, soon());
  return handle;
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

// ---- Deno's WebSocket client → our wss server -----------------------------------------

Deno.test("wss: Deno's WebSocket client talks to our TLS + WebSocket server", async () => {
  const listener = tcpListen({ port: 0 });
  const { port } = tcpLocalAddr(listener);
  try {
    const serving = (async () => {
      const { handle, resource, host } = await acceptWss(listener);
      assert.equal(resource, "/chat?room=1");
      assert.equal(host, `localhost:${port}`);
      return await echoUntilClosed(handle, TEST_MS);
    })();
    await denoClientEchoes(
      `wss://localhost:${port}/chat?room=1`,
      serving,
      "héllo wss",
      bytes(1 << 20, 3),
    );
  } finally {
    hclose(listener);
  }
});

// ---- our wss client → Deno.serve over TLS ---------------------------------------------

Deno.test("wss: our TLS + WebSocket client talks to Deno.serve({ cert, key })", async () => {
  const abort = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    ...SERVER,
    signal: abort.signal,
    onListen() {},
  }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  });
  try {
    const h = await connectWss(server.addr.port, "/echo");
    try {
      await wsSend(h, WS_TEXT, "over rustls", soon());
      assert.deepEqual(await wsRecv(h, soon()), { type: WS_TEXT, data: "over rustls" });
      const big = bytes(3 << 20, 5);
      await msend(h, big, soon());
      assert.deepEqual(await mrecv(h, soon()), big);
      await wsDone(h, 1000, "finished", soon());
      await rejectsWith(mrecv(h, soon()), "EPIPE");
      assert.equal((await wsStatus(h)).status, 1000);
    } finally {
      hclose(h);
    }
  } finally {
    abort.abort();
    await server.finished;
  }
});

// ---- Python websockets over wss, both ways ---------------------------------------------

Deno.test("wss: Python websockets client talks to our TLS + WebSocket server", async () => {
  const listener = tcpListen({ port: 0 });
  const { port } = tcpLocalAddr(listener);
  const py = startPythonPeer("py_wss.py", [
    "client",
    `wss://localhost:${port}/py`,
    fixture("ca.pem"),
  ]);
  try {
    const { handle, resource } = await within(acceptWss(listener), 10_000, "python connects");
    assert.equal(resource, "/py");
    const serving = echoUntilClosed(handle, TEST_MS);
    const echoed = await py.event("echoed");
    assert.deepEqual(echoed, { event: "echoed", text: "hello over wss", binary_ok: true });
    assert.deepEqual(await py.event("closed"), { event: "closed", code: 1000, reason: "" });
    assert.deepEqual(await within(serving, 5000, "server side"), {
      status: 1000,
      reason: "done",
    });
    await py.expectSuccess();
  } finally {
    hclose(listener);
    await py.dispose();
  }
});

Deno.test("wss: our TLS + WebSocket client talks to a Python websockets server", async () => {
  const py = startPythonPeer("py_wss.py", ["server", fixture("cert.pem"), fixture("key.pem")]);
  try {
    const port = (await py.event("listening")).port as number;
    const h = await connectWss(port, "/from-dill", WS_TEXT);
    try {
      assert.deepEqual(await py.event("open"), { event: "open", path: "/from-dill" });
      await msend(h, "ünïcode over TLS", soon());
      assert.deepEqual(await wsRecv(h, soon()), { type: WS_TEXT, data: "ünïcode over TLS" });
      const big = bytes(2 << 20, 9);
      await wsSend(h, WS_BINARY, big, soon());
      assert.deepEqual(await wsRecv(h, soon()), { type: WS_BINARY, data: big });
      await wsDone(h, 1001, "going", soon());
      await rejectsWith(mrecv(h, soon()), "EPIPE");
      assert.deepEqual(await wsStatus(h), { status: 1001, reason: "going" });
    } finally {
      hclose(h);
    }
    assert.deepEqual(await py.event("closed"), { event: "closed", code: 1001, reason: "going" });
    await py.expectSuccess();
  } finally {
    await py.dispose();
  }
});

// ---- our client ↔ our server, then every layer detached --------------------------------

Deno.test("wss: our client and server, then wsDetach and tlsDetach down to plain TCP", async () => {
  const listener = tcpListen({ port: 0 });
  const { port } = tcpLocalAddr(listener);
  let server: Handle | undefined;
  let client: Handle | undefined;
  try {
    const [accepted, c] = await Promise.all([acceptWss(listener), connectWss(port, "/layers")]);
    server = accepted.handle;
    client = c;
    for (let i = 0; i < 20; i++) {
      const payload = bytes(1 + i * 50_000, i);
      await msend(client, payload, soon());
      assert.deepEqual(await mrecv(server, soon()), payload);
    }
    // Down one layer: TLS bytestreams again.
    const [tlsS, tlsC] = await Promise.all([
      wsDetach(server, 1000, "", soon()),
      wsDetach(client, 1000, "", soon()),
    ]);
    server = tlsS;
    client = tlsC;
    assert.equal(tlsInfo(tlsS).alpnProtocol, "http/1.1");
    await bsend(tlsC, new TextEncoder().encode("tls again"), soon());
    assert.equal(
      new TextDecoder().decode(await brecv(tlsS, new Uint8Array(9), soon())),
      "tls again",
    );
    // Down another: plain TCP.
    const [tcpS, tcpC] = await Promise.all([tlsDetach(tlsS, soon()), tlsDetach(tlsC, soon())]);
    server = tcpS;
    client = tcpC;
    await bsend(tcpS, new TextEncoder().encode("plain tcp"), soon());
    assert.equal(
      new TextDecoder().decode(await brecv(tcpC, new Uint8Array(9), soon())),
      "plain tcp",
    );
  } finally {
    if (server) closeQuietly(server);
    if (client) closeQuietly(client);
    hclose(listener);
  }
});

// ---- the README's wss example, as written -------------------------------------------

/** The first ```ts block after `marker` in README.md. */
function readmeBlock(readme: string, marker: string): string {
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `README.md has no "${marker}"`);
  const start = readme.indexOf("```ts\n", at) + "```ts\n".length;
  return readme.slice(start, readme.indexOf("```", start));
}

Deno.test("wss: the README's wss server and client work as written", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const mod = new URL("../mod.ts", import.meta.url).href;
  // The only changes: the package (`@dill/ws`, as a user imports it) by the absolute URL
  // of mod.ts, and a free port instead of 8443 (tests run in parallel with other servers).
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((probe.addr as Deno.NetAddr).port);
  probe.close();
  const adapt = (code: string) =>
    code.replaceAll(`"@dill/ws"`, JSON.stringify(mod)).replaceAll("8443", port);
  const server = adapt(readmeBlock(readme, "A wss server:"));
  const client = adapt(readmeBlock(readme, "A wss client:"));
  assert.ok(server.includes("hclose(ws)") && client.includes("mrecv(ws"), "README blocks changed");
  assert.ok(server.includes(mod) && client.includes(mod), "README blocks import @dill/ws");
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-readme-" });
  try {
    for (const name of ["cert.pem", "key.pem", "ca.pem"]) {
      await Deno.copyFile(fixture(name), `${dir}/${name}`);
    }
    await Deno.writeTextFile(`${dir}/server.ts`, server);
    await Deno.writeTextFile(`${dir}/client.ts`, client);
    const run = (file: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-lock", "--allow-net", "--allow-read", file],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    const serverProc = run("server.ts");
    try {
      // The client may start before the server listens: retry a few times.
      let out: Deno.CommandOutput | null = null;
      for (let i = 0; i < 50; i++) {
        out = await run("client.ts").output();
        const err = new TextDecoder().decode(out.stderr);
        if (out.success || !err.includes("ECONNREFUSED")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const stdout = new TextDecoder().decode(out!.stdout);
      const stderr = new TextDecoder().decode(out!.stderr);
      assert.ok(out!.success, `the client failed: ${stderr}`);
      assert.equal(stdout.trim(), "Uint8Array(2) [ 104, 105 ]");
    } finally {
      // As written, the server keeps its listener open after serving one client.
      try {
        serverProc.kill();
      } catch {
        // it exited already
      }
    }
    const served = await within(serverProc.output(), TEST_MS, "README server exit");
    const serverErr = new TextDecoder().decode(served.stderr);
    assert.ok(!/error/i.test(serverErr), `the server failed: ${serverErr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wss: our client and server echo 200 random messages of random sizes byte-exact, pipelined", async () => {
  // The TLS layer reuses its read buffer once the engine took a read and hands decrypted
  // chunks up without a copy: random bytes of every size, sent back to back while the
  // echoes come back, would show any buffer reused too early.
  const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
  try {
    const serving = acceptWss(listener).then(({ handle }) => echoUntilClosed(handle, TEST_MS));
    const h = await connectWss(tcpLocalAddr(listener).port, "/random");
    try {
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) {
        const size = i % 10 === 0 ? 256 * 1024 + i : Math.floor(Math.random() * 40_000);
        const m = new Uint8Array(size);
        for (let off = 0; off < size; off += 65_536) {
          crypto.getRandomValues(m.subarray(off, Math.min(size, off + 65_536)));
        }
        sent.push(m);
      }
      let next = 0;
      const sending = (async () => {
        for (const m of sent) await msend(h, m, soon(TEST_MS));
      })();
      for (; next < sent.length; next++) {
        const got = await mrecv(h, soon(TEST_MS));
        assert.equal(got.length, sent[next].length, `message ${next}: size`);
        assert.ok(got.every((b, k) => b === sent[next][k]), `message ${next}: bytes`);
      }
      await sending;
      await wsDone(h, 1000, "", soon());
      await rejectsWith(mrecv(h, soon()), "EPIPE");
    } finally {
      hclose(h);
    }
    assert.deepEqual(await serving, { status: 1000, reason: "" });
  } finally {
    hclose(listener);
  }
});
