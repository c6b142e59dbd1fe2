/**
 * A server that accepts TCP connections and holds them open, run as its own process
 * under a small descriptor limit (tests/listener.test.ts). Its argument is the
 * listener's `maxConnections`, or `none`. It prints its port once listening, then, for
 * every `probe` line on stdin, prints how many connections it holds and how many
 * descriptors of its own it can still open, up to {@link PROBE_FILES}: what a flood of
 * clients leaves to the rest of the process.
 *
 * @module
 */

import { type Handle, tcpAccept, tcpListen, tcpLocalAddr } from "../../mod.ts";

const cap = Deno.args[0] === "none" ? undefined : Number(Deno.args[0]);
const listener = tcpListen({ hostname: "127.0.0.1", port: 0 }, 128, { maxConnections: cap });
const held: Handle[] = [];
console.log(tcpLocalAddr(listener).port);

(async () => {
  for (;;) held.push((await tcpAccept(listener, -1)).handle);
})();

/** Descriptors a probe tries to open at once. */
const PROBE_FILES = 8;

function probe(): number {
  const files: Deno.FsFile[] = [];
  try {
    while (files.length < PROBE_FILES) files.push(Deno.openSync("/dev/null"));
  } catch {
    // Out of descriptors: the count so far is the answer.
  }
  for (const f of files) f.close();
  return files.length;
}

for await (const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  for (const _ of line.split("\n").filter((l) => l.trim() === "probe")) {
    console.log(JSON.stringify({ held: held.length, canOpen: probe() }));
  }
}
Deno.exit(0);
