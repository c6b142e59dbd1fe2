/**
 * Deploy readiness of the `Deno.serve` path (`@dill/ws/serve`): its module graph uses
 * none of the APIs Deno Deploy lacks, it imports and serves with reads, subprocesses,
 * FFI, writes, env and sys denied (net allowed), and a graceful shutdown on SIGINT (as
 * Deploy sends before evicting an isolate) closes every WebSocket with 1001.
 */

import assert from "node:assert/strict";
import { connectClient } from "./helpers/serve.ts";

const ROOT = new URL("../", import.meta.url);
const DENIED = [
  "--deny-read",
  "--deny-write",
  "--deny-run",
  "--deny-ffi",
  "--deny-env",
  "--deny-sys",
  "--allow-net=127.0.0.1",
];

/** Calls and modules Deno Deploy does not offer (or that read files at run time). */
const FORBIDDEN = [
  /\bDeno\.(listen|listenTls|connect|connectTls|startTls|Command|run|dlopen)\s*\(/,
  /\bDeno\.(readFile|readTextFile|readFileSync|readTextFileSync|open|openSync|readDir)\s*\(/,
  /\bDeno\.(writeFile|writeTextFile|makeTempDir|makeTempFile|mkdir|remove)\s*\(/,
  /["']node:(net|tls|fs|child_process|fs\/promises|dgram|cluster|worker_threads)["']/,
];

Deno.test("deploy/graph: nothing reached from serve.ts uses an API Deno Deploy lacks", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "serve.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string; isDynamic?: boolean }[] }[];
  };
  const local = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"));
  assert.ok(local.some((s) => s.endsWith("/actors/ws_upgrade.ts")), "wsUpgrade is in the graph");
  for (const name of ["tcp.ts", "ipc.ts", "tls.ts", "tls_actor.ts", "listener.ts"]) {
    assert.ok(!local.some((s) => s.endsWith(`/actors/${name}`)), `${name} is not in the graph`);
  }
  const builtins = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("node:"));
  // node:zlib comes with permessage-deflate (protocol/zlib_sync.ts, through the WS actor
  // that actors/ws.ts also serves), imported only when an attach needs it, never by
  // wsUpgrade; Deploy has it, and it needs no permission.
  assert.deepEqual(builtins, ["node:zlib"]);
  const edges = graph.modules.flatMap((m) => m.dependencies ?? []);
  assert.ok(edges.filter((d) => d.specifier === "node:zlib").every((d) => d.isDynamic));
  for (const specifier of local) {
    // Code only: JSDoc examples (which may show other entry points) are not run.
    const code = (await Deno.readTextFile(new URL(specifier))).split("\n")
      .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line)).join("\n");
    for (const pattern of FORBIDDEN) {
      assert.ok(!pattern.test(code), `${specifier} matches ${pattern}`);
    }
  }
});

Deno.test("deploy/permissions: serve.ts imports with only net allowed", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      ...DENIED,
      'const m = await import("@dill/ws/serve"); console.log(typeof m.wsUpgrade)',
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "function");
});

Deno.test("deploy/shutdown: SIGINT to a real Deno.serve process closes every WebSocket with 1001", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...DENIED, "examples/deploy.ts", "0"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  try {
    while (!/listening on http:\/\/127\.0\.0\.1:(\d+)\//.test(seen)) {
      const { value, done } = await lines.read();
      if (done) assert.fail(`the server exited early: ${seen} ${await stderr}`);
      seen += value;
    }
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(seen)![1]);
    const clients = [connectClient(port), connectClient(port), connectClient(port)];
    await Promise.all(clients.map((c) => c.opened));
    for (const [i, c] of clients.entries()) {
      c.ws.send(`hello ${i}`);
      assert.equal(await c.next(), `hello ${i}`, "the echo app answers");
    }
    child.kill("SIGINT");
    const closes = await Promise.all(clients.map((c) => c.closed));
    for (const close of closes) assert.equal(close.code, 1001, "closed with going away");
    const status = await child.status;
    assert.equal(status.code, 0, `the server exited cleanly: ${await stderr}`);
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /shut down/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await lines.cancel().catch(() => {});
    await stderr;
    await child.status;
  }
});
