/**
 * `tcpListen(addr, backlog, { reusePort })` (actors/tcp.ts): several listeners on one port
 * (Linux `SO_REUSEPORT`), each accepting a share of the connections; without the option
 * the port stays exclusive; a wrong option is `EINVAL`.
 */

import assert from "node:assert/strict";
import {
  brecv,
  bsend,
  type Handle,
  hclose,
  isDillError,
  now,
  tcpAccept,
  tcpClose,
  tcpConnect,
  tcpListen,
  tcpLocalAddr,
} from "../mod.ts";

const T = 5000;
/** Connections tried before giving up on seeing both listeners (the kernel hashes each one). */
const MAX_CONNECTIONS = 64;

/** Accepts until the listener closes; answers each connection with its one-byte `tag`. */
async function tagEveryConnection(listener: Handle, tag: number): Promise<number> {
  let served = 0;
  for (;;) {
    let conn: Handle;
    try {
      conn = (await tcpAccept(listener, -1)).handle;
    } catch (e) {
      if (isDillError(e, "EBADF") || isDillError(e, "ECANCELED")) return served;
      throw e;
    }
    await bsend(conn, new Uint8Array([tag]), now() + T);
    served++;
    // The clean close flushes the byte and waits for the client to hang up.
    await tcpClose(conn, now() + T).catch(() => {});
  }
}

/** Connects once and returns the tag of the listener that took the connection. */
async function whoAnswers(port: number): Promise<number> {
  const conn = await tcpConnect({ port }, now() + T);
  try {
    const byte = new Uint8Array(1);
    await brecv(conn, byte, now() + T);
    return byte[0];
  } finally {
    hclose(conn);
  }
}

Deno.test("reusePort: two listeners on one port both accept connections", async () => {
  if (Deno.build.os !== "linux") return; // only Linux spreads connections among the listeners
  const a = tcpListen({ port: 0 }, 16, { reusePort: true });
  const port = tcpLocalAddr(a).port;
  const b = tcpListen({ port }, 16, { reusePort: true });
  assert.equal(tcpLocalAddr(b).port, port);
  const served = [tagEveryConnection(a, 1), tagEveryConnection(b, 2)];
  const seen = new Map<number, number>();
  try {
    for (let i = 0; i < MAX_CONNECTIONS && seen.size < 2; i++) {
      const tag = await whoAnswers(port);
      seen.set(tag, (seen.get(tag) ?? 0) + 1);
    }
  } finally {
    hclose(a);
    hclose(b);
  }
  const [servedA, servedB] = await Promise.all(served);
  assert.deepEqual([...seen.keys()].sort(), [1, 2], `after ${MAX_CONNECTIONS} connections`);
  assert.equal(servedA, seen.get(1));
  assert.equal(servedB, seen.get(2));
});

Deno.test("reusePort: when one listener closes, the other takes every connection", async () => {
  const a = tcpListen({ port: 0 }, 16, { reusePort: true });
  const port = tcpLocalAddr(a).port;
  const b = tcpListen({ port }, 16, { reusePort: true });
  hclose(a); // frees the port at once (a listener accepts only while a call waits)
  const served = tagEveryConnection(b, 2);
  try {
    for (let i = 0; i < 8; i++) assert.equal(await whoAnswers(port), 2);
  } finally {
    hclose(b);
  }
  assert.equal(await served, 8);
});

Deno.test("reusePort: without it on both listeners the port stays exclusive", () => {
  const a = tcpListen({ port: 0 });
  const port = tcpLocalAddr(a).port;
  try {
    assert.throws(() => tcpListen({ port }, 16, { reusePort: true }), { code: "EADDRINUSE" });
    assert.throws(() => tcpListen({ port }), { code: "EADDRINUSE" });
  } finally {
    hclose(a);
  }
  const c = tcpListen({ port: 0 }, 16, { reusePort: true });
  try {
    assert.throws(() => tcpListen({ port: tcpLocalAddr(c).port }), { code: "EADDRINUSE" });
  } finally {
    hclose(c);
  }
});

Deno.test("reusePort: a wrong option is EINVAL", () => {
  const bad = [
    { reusePort: "yes" },
    { reusePort: 1 },
    null,
    "reusePort",
  ] as unknown as { reusePort?: boolean }[];
  for (const options of bad) {
    assert.throws(() => tcpListen({ port: 0 }, 16, options), { code: "EINVAL" });
  }
  hclose(tcpListen({ port: 0 }, 16, {})); // the defaults still work
  hclose(tcpListen({ port: 0 }, 16, { reusePort: false }));
});

Deno.test("reusePort: without --unstable-net it is ENOTSUP, not the end of the process", async () => {
  // deno.json turns the flag on for this project, so the check runs in a child without it.
  const mod = new URL("../mod.ts", import.meta.url).href;
  const script = `import { tcpListen } from ${JSON.stringify(mod)};
try { tcpListen({ port: 0 }, 16, { reusePort: true }); console.log("listening"); }
catch (e) { console.log(e.code, e.message); }`;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdin: "null",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.match(out, /^ENOTSUP ENOTSUP: tcpListen: reusePort needs Deno's --unstable-net flag/);
});
