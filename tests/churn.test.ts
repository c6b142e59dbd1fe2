/**
 * A slice of the soak (soak/) in the test suite: a README-style echo server in this
 * process, on ws and wss, churned by the soak's Python client at every stage. Nothing
 * may stay open: the process's TCP sockets (counted in /proc by the Python client)
 * come back to the listeners alone, every echo task ends, and Deno's sanitizers check
 * that no resource or op outlives the test.
 */

import assert from "node:assert/strict";
import { type Handle, hclose, isDillError, tcpListen, tcpLocalAddr } from "../mod.ts";
import { acceptEach, echoConnection } from "./helpers/echo_server.ts";
import { LineChild } from "./helpers/child.ts";
import { delay } from "./helpers/transports.ts";
import { SERVER } from "./helpers/tls_fixtures.ts";
import { PYTHON } from "./peers/python_peer.ts";

const CHURN = new URL("../soak/churn.py", import.meta.url).pathname;

interface ProcStat {
  fds: number;
  tcp: number;
  kinds: Record<string, number>;
}

Deno.test("churn: resets at every stage, clean closes, ping floods and TLS garbage leave nothing open", async () => {
  const { cert, key } = SERVER;
  const tasks = new Set<Promise<void>>();
  const failures: Record<string, number> = {};

  const ended = (e: unknown) => {
    const code = isDillError(e) ? e.code : String(e);
    failures[code] = (failures[code] ?? 0) + 1;
  };
  const serve = (tls: boolean) => (tcp: Handle) => {
    const task = echoConnection(tcp, { tls: tls ? { cert, key } : null, sendTimeout: 5000, ended });
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  };

  const ws = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const wss = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const serving = Promise.all([acceptEach(ws, serve(false)), acceptEach(wss, serve(true))]);
  const churn = new LineChild(PYTHON, ["-u", CHURN]);
  const stat = () => churn.ask<ProcStat>(`procstat ${Deno.pid}`);
  try {
    const before = await stat();
    const { ws: w, wss: s } = { ws: tcpLocalAddr(ws).port, wss: tcpLocalAddr(wss).port };
    for (const stage of ["connect", "request", "frame", "bigframe"]) {
      assert.equal((await churn.ask(`reset ${stage} ${w} 100`)).event, "reset");
    }
    assert.equal((await churn.ask(`openclose ${w} 100`)).event, "openclose");
    assert.equal((await churn.ask(`pingflood ${w} 2 2000`)).event, "pingflood");
    assert.equal((await churn.ask(`tlsgarbage ${s} 60`)).event, "tlsgarbage");
    // Every connection the churn made ends on the server's side too.
    for (let i = 0; i < 100 && tasks.size > 0; i++) await delay(50);
    assert.equal(tasks.size, 0, `${tasks.size} connections are still being served`);
    await delay(0); // sockets of ops still in flight close on the next turn
    const after = await stat();
    assert.equal(after.tcp, before.tcp, `TCP sockets: ${before.tcp} before, ${after.tcp} after`);
    // Deno opens a few pipes and socket pairs of its own the first time some paths run.
    assert.ok(
      after.fds <= before.fds + 4,
      `descriptors: ${JSON.stringify(before.kinds)} before, ${JSON.stringify(after.kinds)} after`,
    );
    // The resets reached the server as resets (not as hangs until a deadline).
    assert.ok((failures.ECONNRESET ?? 0) >= 200, JSON.stringify(failures));
    assert.equal(failures.ETIMEDOUT ?? 0, 0, JSON.stringify(failures));
  } finally {
    await churn.send("quit").catch(() => {});
    await churn.dispose();
    hclose(ws);
    hclose(wss);
    await serving;
    await Promise.all(tasks);
  }
});
