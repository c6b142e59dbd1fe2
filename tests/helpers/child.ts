/**
 * A child process the tests drive by lines: a Python peer, a Deno or shell server. Commands
 * go to its stdin; answers and events come back as lines on its stdout, each taken with a
 * bounded wait. When a wait fails, the child is killed and the error carries its exit code
 * and the end of its stderr. Disposing kills the child if it still runs and awaits
 * everything it owns, so tests keep their sanitizers on.
 *
 * This is the one place where tests spawn such a child; `tests/peers/python_peer.ts` only
 * says how to start the Python peers with it.
 *
 * @example
 * ```ts
 * import { LineChild } from "./child.ts";
 *
 * const child = new LineChild("/bin/echo", ['{"event": "hello", "n": 1}']);
 * try {
 *   console.log(await child.event("hello"));
 *   await child.expectSuccess();
 * } finally {
 *   await child.dispose();
 * }
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { within } from "./transports.ts";

/** Milliseconds one answer, event or exit may take before the test fails instead of hanging. */
export const CHILD_STEP_MS = 10_000;

/** How much of the child's stderr a failure shows: its end, where the error usually is. */
const STDERR_TAIL = 4000;

/** How long a failure waits for the rest of the child's stderr (a grandchild may hold it). */
const STDERR_GRACE_MS = 1000;

/**
 * One JSON event line a child printed, such as `{"event": "open", "path": "/"}`.
 *
 * @example
 * ```ts
 * import type { ChildEvent } from "./child.ts";
 *
 * const listening: ChildEvent = { event: "listening", port: 8080 };
 * ```
 */
export type ChildEvent = { event: string } & Record<string, unknown>;

/**
 * A running child process that talks in lines.
 *
 * @example
 * ```ts
 * import { LineChild } from "./child.ts";
 *
 * const server = new LineChild(Deno.execPath(), ["run", "--allow-net", "server.ts"]);
 * try {
 *   const port = Number(await server.line("the server's port"));
 *   console.log(port);
 * } finally {
 *   await server.dispose();
 * }
 * ```
 */
export class LineChild {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: string[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  readonly #stdoutDone: Promise<void>;
  #stderr = "";
  readonly #stderrDone: Promise<void>;
  #status: Deno.CommandStatus | null = null;

  /**
   * Starts `command` with `args`; `env` is added to the inherited environment. Stderr is
   * collected as it comes, for the diagnostics of a failure.
   */
  constructor(command: string, args: string[], env: Record<string, string> = {}) {
    this.#child = new Deno.Command(command, {
      args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#child.status.then((status) => this.#status = status);
    this.#stdoutDone = this.#readLines();
    this.#stderrDone = this.#readStderr();
  }

  /** The child's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether the child has exited (known once its status promise settled). */
  get exited(): boolean {
    return this.#status !== null;
  }

  /** Sends one command line. */
  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** The next stdout line, waiting at most `ms`; `what` names it in the error. */
  async line(what: string, ms = CHILD_STEP_MS): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.#lines.length === 0) {
      if (this.#ended) throw await this.#failure(`${what}: the child closed its stdout`);
      const left = deadline - Date.now();
      if (left <= 0) throw await this.#failure(`${what}: no answer within ${ms} ms`);
      await this.#moreOutput(left);
    }
    return this.#lines.shift()!;
  }

  /** The next stdout line parsed as JSON. */
  async json<T = Record<string, unknown>>(what: string, ms = CHILD_STEP_MS): Promise<T> {
    const line = await this.line(what, ms);
    try {
      return JSON.parse(line) as T;
    } catch {
      throw await this.#failure(`${what}: the child printed ${JSON.stringify(line)}, not JSON`);
    }
  }

  /** The next JSON event; it must be named `event`. */
  async event(event: string, ms = CHILD_STEP_MS): Promise<ChildEvent> {
    const got = await this.json<ChildEvent>(`event "${event}"`, ms);
    assert.equal(got.event, event, `the child said ${JSON.stringify(got)}`);
    return got;
  }

  /** Sends `line` and returns the JSON answer. */
  async ask<T = Record<string, unknown>>(line: string, ms = CHILD_STEP_MS): Promise<T> {
    await this.send(line);
    return await this.json<T>(line, ms);
  }

  /** Sends a signal to the child (SIGSTOP/SIGCONT to freeze a server, for instance). */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the child to exit on its own within `ms`; returns its status. */
  async wait(ms = CHILD_STEP_MS): Promise<Deno.CommandStatus> {
    const status = await within(this.#child.status, ms, "the child's exit");
    this.#status = status;
    return status;
  }

  /** Waits for the child to exit on its own within `ms` and fails unless it succeeded. */
  async expectSuccess(ms = CHILD_STEP_MS): Promise<void> {
    const status = await this.wait(ms);
    if (!status.success) {
      assert.fail(await this.#diagnostics(`the child exited with ${status.code}`));
    }
  }

  /** Kills the child if it still runs, then awaits its status and its streams. */
  async dispose(): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // the child is gone already
    }
    if (!this.#status) {
      this.#killHard();
      this.#status = await this.#child.status;
    }
    await this.#stdoutDone;
    await this.#stderrDone;
  }

  /** Waits until more output arrives, stdout ends, or `ms` pass. */
  async #moreOutput(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wake = null;
  }

  async #readLines(): Promise<void> {
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of this.#child.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        this.#lines.push(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
      this.#wake?.();
    }
    this.#ended = true;
    this.#wake?.();
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.#child.stderr) {
      this.#stderr += decoder.decode(chunk, { stream: true });
    }
  }

  /** A failed wait: the child is killed (a test that failed needs it no more) and described. */
  async #failure(message: string): Promise<Error> {
    this.#killHard();
    return new Error(await this.#diagnostics(message));
  }

  /** `message`, the child's exit code and the end of its stderr (each waited for briefly). */
  async #diagnostics(message: string): Promise<string> {
    const exit = await within(this.#child.status, CHILD_STEP_MS, "the child's exit").then(
      (status) => {
        this.#status = status;
        return `the child's exit code: ${status.code}`;
      },
      (e: Error) => e.message,
    );
    const open = await within(this.#stderrDone, STDERR_GRACE_MS, "stderr").then(
      () => "",
      () => " (still open)",
    );
    return `${message}\n${exit}; its stderr${open}:\n${this.#stderr.slice(-STDERR_TAIL)}`;
  }

  #killHard(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // it exited meanwhile
    }
  }
}
