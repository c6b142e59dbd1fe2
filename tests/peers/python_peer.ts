/**
 * How the Python peers in this folder (py_client.py, py_echo_server.py, py_wss.py,
 * rst_clients.py) are started: with Debian's Python, which has the `websockets` package,
 * unbuffered, as a {@link LineChild} that prints one JSON event per line.
 *
 * @example
 * ```ts
 * import { startPythonPeer } from "./python_peer.ts";
 *
 * const py = startPythonPeer("py_echo_server.py", []);
 * try {
 *   const { port } = await py.event("listening");
 *   console.log(port);
 * } finally {
 *   await py.dispose();
 * }
 * ```
 *
 * @module
 */

import { LineChild } from "../helpers/child.ts";

/**
 * Debian's Python: the one with python3-websockets (not whatever python3 is on PATH).
 *
 * @example
 * ```ts
 * import { PYTHON } from "./python_peer.ts";
 *
 * const { success } = await new Deno.Command(PYTHON, { args: ["-c", "import websockets"] }).output();
 * console.log(success);
 * ```
 */
export const PYTHON = "/usr/bin/python3";

/**
 * Starts `tests/peers/<script>` with `args`; the peer writes no bytecode cache next to it.
 *
 * @example
 * ```ts
 * import { startPythonPeer } from "./python_peer.ts";
 *
 * const py = startPythonPeer("py_client.py", ["ws://127.0.0.1:8080/", "echo"]);
 * await py.dispose();
 * ```
 */
export function startPythonPeer(script: string, args: string[]): LineChild {
  const path = new URL(script, import.meta.url).pathname;
  return new LineChild(PYTHON, ["-u", path, ...args], { PYTHONDONTWRITEBYTECODE: "1" });
}
