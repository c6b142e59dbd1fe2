/**
 * Runs a Python peer script (with Debian's /usr/bin/python3, which has the
 * `websockets` package) and reads the JSON events it prints, one per line, with
 * bounded waits. Disposing kills the child if it still runs and awaits everything.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Inbox, STEP_MS, within } from "./common.ts";

/** Debian's Python: the one with python3-websockets (not whatever python3 is on PATH). */
export const PYTHON = "/usr/bin/python3";

/** One event line a Python peer printed. */
export type PeerEvent = { event: string } & Record<string, unknown>;

/** A running Python peer. */
export class PythonPeer {
  readonly #child: Deno.ChildProcess;
  readonly #events: Inbox<PeerEvent> = new Inbox();
  readonly #stdoutDone: Promise<void>;
  readonly #stderr: Promise<string>;
  #status: Deno.CommandStatus | null = null;

  /** Starts `tests/peers/<script>` with `args`. */
  constructor(script: string, args: string[]) {
    const path = new URL(script, import.meta.url).pathname;
    this.#child = new Deno.Command(PYTHON, {
      args: ["-u", path, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { PYTHONDONTWRITEBYTECODE: "1" },
    }).spawn();
    this.#stdoutDone = this.#readEvents();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** The next event; it must be named `event`. */
  async next(event: string, ms = STEP_MS): Promise<PeerEvent> {
    let got: PeerEvent;
    try {
      got = await this.#events.next(`python event "${event}"`, ms);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await this.#diagnostics()}`);
    }
    assert.equal(got.event, event, `python said ${JSON.stringify(got)}`);
    return got;
  }

  /** Waits until the script exits by itself and checks it succeeded. */
  async exited(ms = STEP_MS): Promise<void> {
    const status = await within(this.#child.status, "python peer exit", ms);
    this.#status = status;
    if (!status.success) {
      assert.fail(`python peer exited with ${status.code}\n${await this.#diagnostics()}`);
    }
  }

  /** Kills the child if it still runs, then awaits its status and its output streams. */
  async dispose(): Promise<void> {
    if (!this.#status) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // it exited meanwhile
      }
      this.#status = await this.#child.status;
    }
    await this.#stdoutDone;
    await this.#stderr;
  }

  async #diagnostics(): Promise<string> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    const status = await within(this.#child.status, "python peer exit");
    this.#status = status;
    const stderr = await within(this.#stderr, "python peer stderr");
    return `python exit code ${status.code}; stderr:\n${stderr}`;
  }

  async #readEvents(): Promise<void> {
    let pending = "";
    for await (const text of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += text;
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line) this.#events.push(parseEvent(line));
      }
    }
    this.#events.end(new Error("the python peer closed its stdout"));
  }
}

function parseEvent(line: string): PeerEvent {
  try {
    return JSON.parse(line) as PeerEvent;
  } catch {
    return { event: "unparsable output", line };
  }
}
