/**
 * Interop with Python `websockets` 10.x (Debian's python3-websockets, run with
 * /usr/bin/python3), both directions: tests/peers/py_client.py against our server and
 * our client against tests/peers/py_echo_server.py. The peers report what they saw as
 * JSON lines on stdout; they exit by themselves (also on a timeout) and are killed and
 * awaited in `finally` regardless.
 */

import assert from "node:assert/strict";
import {
  type Handle,
  mrecv,
  mrecvText,
  msend,
  tcpAccept,
  tcpConnect,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsDone,
  wsRecv,
  wsSend,
  wsStatus,
} from "../mod.ts";
import {
  acceptWs,
  assertMessage,
  build,
  closeQuietly,
  connectWs,
  describe,
  ECHO_SPECS,
  echoBack,
  FRAGMENT_SPECS,
  handmadeClientUpgrade,
  handmadeServerUpgrade,
  listenLocal,
  rejectsWith,
  sendAndCheckEchoes,
  soon,
  type Spec,
} from "./peers/common.ts";
import type { LineChild } from "./helpers/child.ts";
import { startPythonPeer } from "./peers/python_peer.ts";

const PONG_SIZES = [0, 14, 125]; // the PING_PAYLOADS the Python peers send

/** After the peer closed: receiving fails with EPIPE and wsStatus reports its close. */
async function assertPeerClosed(h: Handle, status: number, reason: string): Promise<void> {
  await rejectsWith(mrecv(h, soon()), "EPIPE");
  assert.deepEqual(await wsStatus(h), { status, reason });
}

// ---- Python client → our server ---------------------------------------------------

interface ClientRun {
  path?: string;
  specs?: Spec[];
  subprotocols?: string;
}

/** Our listener and py_client.py running `scenario` against it. */
async function withPyClient(
  scenario: string,
  run: ClientRun,
  body: (ctx: { listener: Handle; port: number; py: LineChild }) => Promise<void>,
): Promise<void> {
  const { listener, port } = listenLocal();
  const args = [`ws://127.0.0.1:${port}${run.path ?? "/"}`, scenario];
  if (run.specs) args.push("--specs", JSON.stringify(run.specs));
  if (run.subprotocols) args.push("--subprotocols", run.subprotocols);
  const py = startPythonPeer("py_client.py", args);
  try {
    await body({ listener, port, py });
    await py.expectSuccess();
  } finally {
    closeQuietly(listener);
    await py.dispose();
  }
}

/** Our side of py_client.py's "echo" scenario; it closes with 1000 at the end. */
async function serveEcho(h: Handle, py: LineChild, specs: Spec[]): Promise<void> {
  assert.deepEqual(await py.event("open"), { event: "open", subprotocol: null });
  await echoBack(h, specs);
  const report = await py.event("echoes");
  assert.deepEqual(report, { event: "echoes", count: specs.length, mismatches: [] });
  await assertPeerClosed(h, 1000, "");
}

Deno.test("python client → our server: text, binary, empty, 125..65536 and 4 MiB echo", async () => {
  await withPyClient("echo", { path: "/echo?x=1", specs: ECHO_SPECS }, async (ctx) => {
    const { handle, resource, host } = await acceptWs(ctx.listener, WS_BINARY);
    try {
      assert.equal(resource, "/echo?x=1");
      assert.equal(host, `127.0.0.1:${ctx.port}`);
      await serveEcho(handle, ctx.py, ECHO_SPECS);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("python client → our server: fragmented messages", async () => {
  await withPyClient("echo", { specs: FRAGMENT_SPECS }, async ({ listener, py }) => {
    const { handle } = await acceptWs(listener, WS_BINARY);
    try {
      await serveEcho(handle, py, FRAGMENT_SPECS);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("python client → our server: pings get pongs while we do not read", async () => {
  await withPyClient("ping", {}, async ({ listener, py }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await py.event("open");
      // Python awaits each pong (matched by payload) while we have not called mrecv.
      assert.deepEqual(await py.event("pongs"), { event: "pongs", sizes: PONG_SIZES });
      assert.equal(await mrecvText(handle, soon()), "queued before the pings");
      await assertPeerClosed(handle, 1000, "");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("python client → our server: our close status and reason reach the client", async () => {
  await withPyClient("close-ours", {}, async ({ listener, py }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await py.event("open");
      await wsDone(handle, 4001, "bye ü", soon());
      assert.deepEqual(await py.event("closed"), { event: "closed", code: 4001, reason: "bye ü" });
      await assertPeerClosed(handle, 4001, "bye ü"); // websockets echoes our close frame
      await rejectsWith(msend(handle, "late", soon()), "EPIPE");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("python client → our server: the client's close status and reason reach us", async () => {
  await withPyClient("close-peer", {}, async ({ listener, py }) => {
    const { handle } = await acceptWs(listener, WS_TEXT);
    try {
      await py.event("open");
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await assertPeerClosed(handle, 4002, "ciao é");
      // We echo its status (without a reason).
      assert.deepEqual(await py.event("closed"), { event: "closed", code: 4002, reason: "" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("python client → our server: subprotocol offered [a, b], server speaks [b]", async () => {
  await withPyClient("close-peer", { subprotocols: "a,b" }, async ({ listener, py }) => {
    const attached = await acceptWs(listener, WS_TEXT, { protocols: ["b"] });
    const { handle } = attached;
    try {
      assert.equal(attached.protocol, "b");
      assert.equal(attached.headers.get("sec-websocket-protocol"), "a, b");
      assert.deepEqual(await py.event("open"), { event: "open", subprotocol: "b" });
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await assertPeerClosed(handle, 4002, "ciao é");
      await py.event("closed");
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("python client → our server: WS_NOHTTP after a hand-made 101", async () => {
  const specs: Spec[] = [{ kind: "text", text: "über raw ✓" }, {
    kind: "binary",
    size: 300,
    seed: 8,
  }];
  await withPyClient("echo", { path: "/raw", specs }, async ({ listener, py }) => {
    const { handle: tcp } = await tcpAccept(listener, soon());
    let ws: Handle | undefined;
    try {
      const request = await handmadeServerUpgrade(tcp);
      assert.equal(request.startLine, "GET /raw HTTP/1.1");
      ws = (await wsAttachServer(tcp, WS_NOHTTP | WS_BINARY, soon())).handle;
      await serveEcho(ws, py, specs);
    } finally {
      closeQuietly(ws);
      closeQuietly(tcp);
    }
  });
});

// ---- our client → Python server ---------------------------------------------------

/** py_echo_server.py (one connection) and its port. */
async function withPyServer(
  subprotocols: string | undefined,
  body: (ctx: { port: number; py: LineChild }) => Promise<void>,
): Promise<void> {
  const py = startPythonPeer(
    "py_echo_server.py",
    subprotocols ? ["--subprotocols", subprotocols] : [],
  );
  try {
    const { port } = await py.event("listening");
    assert.equal(typeof port, "number");
    await body({ port: port as number, py });
    await py.expectSuccess();
  } finally {
    await py.dispose();
  }
}

/** Sends a command to py_echo_server.py. */
function command(h: Handle, cmd: Record<string, unknown>): Promise<void> {
  return wsSend(h, WS_TEXT, "cmd:" + JSON.stringify(cmd), soon());
}

/** Closes from our side with 1000 and checks both sides saw it. */
async function closeFromUs(h: Handle, py: LineChild): Promise<void> {
  await wsDone(h, 1000, "done", soon());
  await assertPeerClosed(h, 1000, "done");
  assert.deepEqual(await py.event("closed"), { event: "closed", code: 1000, reason: "done" });
}

Deno.test("our client → python server: text, binary, empty, 125..65536 and 4 MiB echo", async () => {
  await withPyServer(undefined, async ({ port, py }) => {
    const { handle } = await connectWs(port, WS_BINARY, "/echo?y=2");
    try {
      assert.deepEqual(await py.event("open"), {
        event: "open",
        path: "/echo?y=2",
        subprotocol: null,
      });
      await sendAndCheckEchoes(handle, ECHO_SPECS);
      await closeFromUs(handle, py);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → python server: its fragmented messages", async () => {
  await withPyServer(undefined, async ({ port, py }) => {
    const { handle } = await connectWs(port, WS_BINARY, "/");
    try {
      await py.event("open");
      await command(handle, { op: "fragments", specs: FRAGMENT_SPECS });
      for (const spec of FRAGMENT_SPECS) {
        assertMessage(await wsRecv(handle, soon()), build(spec), `our ${describe(spec)}`);
      }
      await closeFromUs(handle, py);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → python server: its pings get pongs while we do not read", async () => {
  await withPyServer(undefined, async ({ port, py }) => {
    const { handle } = await connectWs(port, WS_TEXT, "/");
    try {
      await py.event("open");
      await command(handle, { op: "ping" });
      // Python awaits each pong (matched by payload) while we have not called mrecv.
      assert.deepEqual(await py.event("pongs"), { event: "pongs", sizes: PONG_SIZES });
      assert.equal(await mrecvText(handle, soon()), "pings answered");
      await closeFromUs(handle, py);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → python server: our close status and reason reach the server", async () => {
  await withPyServer(undefined, async ({ port, py }) => {
    const { handle } = await connectWs(port, WS_TEXT, "/");
    try {
      await py.event("open");
      await msend(handle, "before close", soon());
      // Wait for the echo first: once websockets got our close frame it sends no more data.
      assert.equal(await mrecvText(handle, soon()), "before close");
      await wsDone(handle, 4001, "bye ü", soon());
      await assertPeerClosed(handle, 4001, "bye ü"); // websockets echoes our close frame
      assert.deepEqual(await py.event("closed"), { event: "closed", code: 4001, reason: "bye ü" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → python server: the server's close status and reason reach us", async () => {
  await withPyServer(undefined, async ({ port, py }) => {
    const { handle } = await connectWs(port, WS_TEXT, "/");
    try {
      await py.event("open");
      await msend(handle, "last words ✓", soon());
      await command(handle, { op: "close", code: 4002, reason: "ciao é" });
      assert.equal(await mrecvText(handle, soon()), "last words ✓");
      await assertPeerClosed(handle, 4002, "ciao é");
      // We echo its status (without a reason).
      assert.deepEqual(await py.event("closed"), { event: "closed", code: 4002, reason: "" });
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → python server: subprotocol offered [a, b], server speaks [b]", async () => {
  await withPyServer("b", async ({ port, py }) => {
    const attached = await connectWs(port, WS_TEXT, "/", { protocols: ["a", "b"] });
    const { handle } = attached;
    try {
      assert.equal(attached.protocol, "b");
      assert.equal(attached.headers.get("sec-websocket-protocol"), "b");
      assert.deepEqual(await py.event("open"), { event: "open", path: "/", subprotocol: "b" });
      await closeFromUs(handle, py);
    } finally {
      closeQuietly(handle);
    }
  });
});

Deno.test("our client → python server: WS_NOHTTP after a hand-made upgrade request", async () => {
  await withPyServer(undefined, async ({ port, py }) => {
    const tcp = await tcpConnect({ hostname: "127.0.0.1", port }, soon());
    let ws: Handle | undefined;
    try {
      await handmadeClientUpgrade(tcp, port, "/raw");
      ws = (await wsAttachClient(tcp, WS_NOHTTP | WS_TEXT, "", "", soon())).handle;
      assert.deepEqual(await py.event("open"), { event: "open", path: "/raw", subprotocol: null });
      await msend(ws, "über raw ✓", soon());
      assert.equal(await mrecvText(ws, soon()), "über raw ✓");
      await closeFromUs(ws, py);
    } finally {
      closeQuietly(ws);
      closeQuietly(tcp);
    }
  });
});
