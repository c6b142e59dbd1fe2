/**
 * Interop with Python `websockets` 10.x (Debian's python3-websockets, run with
 * /usr/bin/python3), both directions: tests/peers/py_client.py against our server and
 * our client against tests/peers/py_echo_server.py. The shared scenarios
 * (tests/helpers/interop_scenarios.ts) run through the adapters below. The peers report
 * what they saw as JSON lines on stdout; they exit by themselves (also on a timeout) and
 * are killed and awaited in `finally` regardless.
 *
 * Unlike the peers driven from TypeScript, py_client.py runs its whole script by itself
 * once started, and py_echo_server.py echoes every message and obeys commands sent to it
 * as text messages: that is how it is made to send, close, fragment and ping.
 */

import assert from "node:assert/strict";
import { type Handle, WS_TEXT, wsRecv, wsSend } from "../mod.ts";
import { FRAGMENT_SPECS, soon } from "./peers/common.ts";
import type { ChildEvent, LineChild } from "./helpers/child.ts";
import { startPythonPeer } from "./peers/python_peer.ts";
import type {
  ClientPeerKind,
  CloseReport,
  ServerConnection,
  ServerPeerKind,
} from "./helpers/interop_peers.ts";
import { registerClientScenarios, registerServerScenarios } from "./helpers/interop_scenarios.ts";

const PONG_SIZES = [0, 14, 125]; // the PING_PAYLOADS the Python peers send

/** The fields of `event` besides its name, which must be exactly `fields`. */
function fieldsOf<K extends string>(got: ChildEvent, ...fields: K[]): Record<K, unknown> {
  const { event, ...rest } = got;
  assert.deepEqual(Object.keys(rest).sort(), [...fields].sort(), `fields of ${event}`);
  return rest as Record<K, unknown>;
}

/** The "closed" event a Python peer reports, as a close report. */
async function closeReport(py: LineChild): Promise<CloseReport> {
  const { code, reason } = fieldsOf(await py.event("closed"), "code", "reason");
  return { code: code as number, reason: reason as string };
}

// ---- Python client → our server ---------------------------------------------------

const pythonClient: ClientPeerKind = {
  name: "python client",
  noSubprotocol: null,
  offeredHeader: "a, b",
  fragments: { specs: FRAGMENT_SPECS, title: "fragmented messages" },
  pings: true,
  start(url, protocols, script) {
    const args = [url, script.kind];
    if (script.kind === "echo") args.push("--specs", JSON.stringify(script.specs));
    if (protocols) args.push("--subprotocols", protocols.join(","));
    const py = startPythonPeer("py_client.py", args);
    return {
      async opened() {
        const { subprotocol } = fieldsOf(await py.event("open"), "subprotocol");
        return subprotocol as string | null;
      },
      async finished() {
        if (script.kind === "echo") {
          const report = await py.event("echoes");
          assert.deepEqual(report, { event: "echoes", count: script.specs.length, mismatches: [] });
        } else if (script.kind === "ping") {
          // Python awaits each pong (matched by payload) before its next ping.
          assert.deepEqual(await py.event("pongs"), { event: "pongs", sizes: PONG_SIZES });
        }
      },
      closed: () => closeReport(py),
      settle: () => py.expectSuccess(),
      dispose: () => py.dispose(),
    };
  },
};

registerClientScenarios(pythonClient);

// ---- our client → Python server ---------------------------------------------------

/** Sends a command to py_echo_server.py. */
function command(h: Handle, cmd: Record<string, unknown>): Promise<void> {
  return wsSend(h, WS_TEXT, "cmd:" + JSON.stringify(cmd), soon());
}

/** py_echo_server.py's side of the connection `ours`, from its "open" event. */
async function pythonConnection(py: LineChild, ours: Handle): Promise<ServerConnection> {
  const open = fieldsOf(await py.event("open"), "path", "subprotocol", "offered");
  return {
    url: open.path as string,
    offered: open.offered as string | null,
    protocol: open.subprotocol as string | null,
    echo: () => Promise.resolve(), // it echoes every message by itself
    received: () => wsRecv(ours, soon()), // what it received, seen in its echo
    send: (m) => wsSend(ours, m.type, m.data, soon()), // it sends m as its echo of m
    close: (code, reason) => command(ours, { op: "close", code, reason }),
    closed: () => closeReport(py),
    sendFragmented: (specs) => command(ours, { op: "fragments", specs }),
    async pingUnread() {
      await command(ours, { op: "ping" });
      // Python awaits each pong (matched by payload) while we have not called mrecv.
      assert.deepEqual(await py.event("pongs"), { event: "pongs", sizes: PONG_SIZES });
      return "pings answered";
    },
  };
}

const pythonServer: ServerPeerKind = {
  name: "python server",
  url: (_port, resource) => resource,
  noSubprotocol: null,
  fragments: { specs: FRAGMENT_SPECS, title: "its fragmented messages" },
  pings: true,
  async start(protocols) {
    const args = protocols ? ["--subprotocols", protocols.join(",")] : [];
    const py = startPythonPeer("py_echo_server.py", args); // one connection
    try {
      const { port } = await py.event("listening");
      assert.equal(typeof port, "number");
      return {
        port: port as number,
        accepted: (ours) => pythonConnection(py, ours),
        settle: () => py.expectSuccess(),
        dispose: () => py.dispose(),
      };
    } catch (e) {
      await py.dispose();
      throw e;
    }
  },
};

registerServerScenarios(pythonServer);
