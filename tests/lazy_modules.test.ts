/**
 * Start-up cost: the `node:` built-ins (zlib for permessage-deflate, tls/stream/process
 * for the TLS engine, crypto for checking certificates) are imported when a feature first
 * needs them, not when `@dill/ws` or `@dill/ws/serve` is imported (protocol/lazy_module.ts).
 * Checked on the module graph, and in a fresh process that uses each feature first.
 */

import assert from "node:assert/strict";
import { LineChild } from "./helpers/child.ts";
import { DillError } from "../protocol/errors.ts";
import { LazyModule } from "../protocol/lazy_module.ts";

const ROOT = new URL("../", import.meta.url);

interface Graph {
  modules: {
    specifier: string;
    dependencies?: { specifier: string; isDynamic?: boolean }[];
  }[];
}

async function graphOf(entry: string): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Every import of a `node:` built-in in the graph, as `module → specifier (dynamic?)`. */
function builtinImports(graph: Graph): { from: string; specifier: string; dynamic: boolean }[] {
  return graph.modules.flatMap((m) =>
    (m.dependencies ?? []).filter((d) => d.specifier.startsWith("node:")).map((d) => ({
      from: m.specifier.slice(m.specifier.lastIndexOf("/") + 1),
      specifier: d.specifier,
      dynamic: d.isDynamic === true,
    }))
  );
}

Deno.test("startup: mod.ts imports node: built-ins only dynamically, where a feature needs them", async () => {
  const imports = builtinImports(await graphOf("mod.ts"));
  assert.deepEqual(imports.filter((i) => !i.dynamic), [], "no static import of a built-in");
  assert.deepEqual(
    imports.map((i) => `${i.from} ${i.specifier}`).sort(),
    [
      "tls_credentials.ts node:crypto",
      "tls_engine.ts node:process",
      "tls_engine.ts node:stream",
      "tls_engine.ts node:tls",
      "zlib_sync.ts node:zlib",
    ],
  );
});

Deno.test("startup: serve.ts reaches no built-in but zlib's dynamic import (wsUpgrade never runs it)", async () => {
  const imports = builtinImports(await graphOf("serve.ts"));
  assert.deepEqual(imports, [{ from: "zlib_sync.ts", specifier: "node:zlib", dynamic: true }]);
});

/** Runs one case of tests/peers/first_use.ts in a fresh process; returns what it printed. */
async function firstUse(name: string): Promise<Record<string, unknown>> {
  const child = new LineChild(Deno.execPath(), [
    "run",
    `--allow-read=${new URL("tests/fixtures/tls/", ROOT).pathname}`,
    new URL("tests/peers/first_use.ts", ROOT).pathname,
    name,
  ]);
  try {
    const result = await child.json(name);
    await child.expectSuccess();
    return result;
  } finally {
    await child.dispose();
  }
}

Deno.test("startup: in a fresh process, a codec used before PerMessageDeflate.ready() is ENOTSUP", async () => {
  const result = await firstUse("codec");
  assert.equal(result.code, "ENOTSUP");
  assert.match(String(result.message), /node:zlib is not loaded yet/);
});

Deno.test("startup: the first server attach of a process loads zlib: it inflates and compresses", async () => {
  const result = await firstUse("server");
  assert.match(String(result.extensions), /^permessage-deflate;/);
  assert.deepEqual({ ...result, extensions: "-" }, {
    extensions: "-",
    received: "Hello",
    sentCompressed: true,
  });
});

Deno.test("startup: the first client attach of a process loads zlib: it offers and inflates", async () => {
  assert.deepEqual(await firstUse("client"), { offered: true, received: "Hello" });
});

Deno.test("startup: the first WS_NOHTTP attach with a negotiated deflate loads zlib; one without does not", async () => {
  assert.deepEqual(await firstUse("nohttp"), { received: "Hello" });
  assert.deepEqual(await firstUse("nohttp-plain"), { received: 300, zlibLoaded: false });
});

Deno.test("startup: a signal aborting while the first attaches load zlib leaves their handles untouched", async () => {
  assert.deepEqual(await firstUse("abort"), {
    codes: ["ECANCELED", "ECANCELED"],
    stillUsable: "ok",
    reserved: 0,
  });
});

Deno.test("startup: the first TLS attach of a process loads the engine and the certificate checks", async () => {
  assert.deepEqual(await firstUse("tls"), { received: "hello" });
});

Deno.test("LazyModule: one import shared by concurrent loads; a failed import is ENOTSUP and tried again", async () => {
  let imports = 0;
  const lazy = new LazyModule("counted", () => {
    imports++;
    return Promise.resolve({ value: 42 });
  });
  assert.equal(lazy.loaded, false);
  assert.throws(() => lazy.get("test"), (e) => e instanceof DillError && e.code === "ENOTSUP");
  const [a, b] = await Promise.all([lazy.load(), lazy.load()]);
  assert.equal(a, b);
  assert.equal(imports, 1);
  assert.equal(lazy.get("test").value, 42);

  let attempts = 0;
  const flaky = new LazyModule("flaky", () => {
    attempts++;
    return attempts === 1 ? Promise.reject(new Error("not here")) : Promise.resolve(7);
  });
  await assert.rejects(
    flaky.load(),
    (e) =>
      e instanceof DillError && e.code === "ENOTSUP" && /flaky cannot be imported/.test(e.message),
  );
  assert.equal(await flaky.load(), 7);
  assert.equal(attempts, 2);
});

Deno.test("LazyModule: code that runs while the import starts shares it rather than importing again", async () => {
  // Deno evaluates a built-in inside import() and may run queued microtasks meanwhile;
  // a load from there must not start a second import of a half-evaluated module.
  let imports = 0;
  let nested: Promise<number> | null = null;
  const lazy: LazyModule<number> = new LazyModule("reentrant", () => {
    imports++;
    nested ??= lazy.load();
    return Promise.resolve(imports);
  });
  assert.equal(await lazy.load(), 1);
  assert.equal(await nested, 1);
  assert.equal(imports, 1);
});

Deno.test("LazyModule: node:crypto loaded by two callers, one a microtask later, has its bindings for both", async () => {
  const crypto = new LazyModule("node:crypto", () => import("node:crypto"));
  const later = (async () => {
    await 0;
    return typeof (await crypto.load()).X509Certificate;
  })();
  const first = typeof (await crypto.load()).X509Certificate;
  assert.deepEqual([first, await later], ["function", "function"]);
});
