/**
 * Packaging: `deno publish --dry-run` succeeds and the package holds the module and its
 * docs only: no test, key, benchmark, CI script, fixture, fuzz corpus or example.
 */

import assert from "node:assert/strict";

Deno.test("publish: the dry run is clean and lists only the module and its docs", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: new URL("../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /Success Dry run complete/);
  assert.doesNotMatch(text, /warning/i, "no slow-type or other warnings");
  const root = new URL("../", import.meta.url).href;
  const files = [...text.matchAll(/^\s+(file:\/\/\S+)/gm)].map((m) => m[1].slice(root.length));
  assert.ok(files.length > 10, `files listed: ${files.join(", ")}`);
  for (
    const needed of [
      "mod.ts",
      "serve.ts",
      "README.md",
      "LICENSE",
      "deno.json",
      "actors/ws_upgrade.ts",
    ]
  ) {
    assert.ok(files.includes(needed), `${needed} is published`);
  }
  for (const file of files) {
    assert.match(
      file,
      /^(mod\.ts|serve\.ts|README\.md|LICENSE|deno\.json|(actors|protocol)\/[a-z0-9_]+\.ts)$/,
      file,
    );
    assert.doesNotMatch(file, /\.test\.ts$|\.(pem|key|crt|py|sh|mjs|yml|yaml)$/, file);
    assert.doesNotMatch(file, /^(tests|bench|fuzz|soak|examples|\.github|node_modules)\//, file);
  }
});
