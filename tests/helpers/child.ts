/**
 * A child process driven by lines: commands go to its stdin, answers come back as
 * lines on its stdout, each read with a bounded wait. Disposing kills the child if it
 * still runs and awaits everything it owns, so tests keep their sanitizers on.
 *
 * @module
 */

/** A running child process that talks in lines. */
export class LineChild {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: string[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  readonly #stdoutDone: Promise<void>;
  readonly #stderr: Promise<string>;
  #status: Deno.CommandStatus | null = null;

  /** Starts `command` with `args`; stderr is collected for diagnostics. */
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
    this.#stdoutDone = this.#read();
    this.#stderr = new Response(this.#child.stderr).text();
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

  /** The next stdout line, waiting at most `ms`. */
  async line(what: string, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.#lines.length === 0) {
      if (this.#ended) throw new Error(`${what}: the child ended\n${await this.#diagnostics()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no answer within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    return this.#lines.shift()!;
  }

  /** The next stdout line parsed as JSON. */
  async json<T = Record<string, unknown>>(what: string, ms = 10_000): Promise<T> {
    return JSON.parse(await this.line(what, ms)) as T;
  }

  /** Sends `line` and returns the JSON answer. */
  async ask<T = Record<string, unknown>>(line: string, ms = 10_000): Promise<T> {
    await this.send(line);
    return await this.json<T>(line, ms);
  }

  /** Sends a signal to the child (SIGSTOP/SIGCONT to freeze a server, for instance). */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the child to exit on its own within `ms`; returns its status. */
  async wait(ms = 10_000): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
    const status = await Promise.race([this.#child.status, timeout]);
    clearTimeout(timer);
    if (!status) throw new Error(`the child did not exit within ${ms} ms`);
    this.#status = status;
    return status;
  }

  /** What the child wrote to stderr (after it ended). */
  stderr(): Promise<string> {
    return this.#stderr;
  }

  /** Kills the child if it still runs, then awaits its status and its streams. */
  async dispose(): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // the child is gone already
    }
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

  async #read(): Promise<void> {
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

  async #diagnostics(): Promise<string> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    return `stderr:\n${(await this.#stderr).slice(-4000)}`;
  }
}
