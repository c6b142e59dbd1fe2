/**
 * A socket call that Deno's permissions forbid fails with `EACCES` and says which
 * permission is missing, instead of looking like a broken connection (`ECONNRESET`).
 */

import assert from "node:assert/strict";

Deno.test("permissions: tcp and unix socket calls without the permission fail EACCES", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dill-ws-perm-" });
  try {
    const probe = new URL("./fixtures/permission_probe.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      // Read access to the module only: no net, no access to the socket path.
      args: [
        "run",
        "--no-lock",
        `--allow-read=${new URL("..", import.meta.url).pathname}`,
        probe,
        `${dir}/sock`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.equal(code, 0, dec.decode(stderr));
    assert.deepEqual(dec.decode(stdout).trim().split("\n"), [
      "tcpListen EACCES",
      "tcpConnect EACCES",
      "ipcListen EACCES",
      "ipcConnect EACCES",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
