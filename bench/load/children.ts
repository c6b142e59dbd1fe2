/**
 * Child processes of the benchmark: every one is registered so that it can be
 * killed at the end, on error and on Ctrl-C; plus a line reader for their output.
 *
 * @module
 */

/** The `deno` binary running this process. */
export const DENO = Deno.execPath();

/** Environment for child processes: no colours, no update check. */
const CHILD_ENV = { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };

/** A registry of spawned processes. */
export class Children {
  readonly #live = new Set<Deno.ChildProcess>();

  /** Spawns `cmd` with piped stdin, stdout and stderr and registers it. */
  spawn(
    cmd: string,
    args: string[],
    cwd: string,
    env: Record<string, string> = {},
  ): Deno.ChildProcess {
    const child = new Deno.Command(cmd, {
      args,
      cwd,
      env: { ...CHILD_ENV, ...env },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#live.add(child);
    child.status.finally(() => this.#live.delete(child));
    return child;
  }

  /** Kills every process still running (SIGKILL) and waits for them. */
  async killAll(): Promise<void> {
    const live = [...this.#live];
    for (const child of live) killQuietly(child);
    await Promise.allSettled(live.map((c) => c.status));
  }

  /** Kills every process still running, without waiting (for signal handlers). */
  killAllNow(): void {
    for (const child of this.#live) killQuietly(child);
  }
}

/** Sends SIGKILL, ignoring "already exited". */
export function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // already gone
  }
}

/** Reads a byte stream as text lines. */
export class LineReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #pending = "";
  #ended = false;

  /** @param stream a child's stdout or stderr */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line, or `null` at the end of the stream. */
  async next(): Promise<string | null> {
    for (;;) {
      const nl = this.#pending.indexOf("\n");
      if (nl >= 0) {
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        return line;
      }
      if (this.#ended) {
        const rest = this.#pending;
        this.#pending = "";
        return rest === "" ? null : rest;
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#ended = true;
      else this.#pending += value;
    }
  }

  /** Reads every remaining line into `sink` (at most `limit` kept). */
  async drain(sink: string[], limit = 200): Promise<void> {
    for (let line = await this.next(); line !== null; line = await this.next()) {
      if (sink.length < limit) sink.push(line);
    }
  }
}

/** `p`'s value, or a rejection saying what did not finish within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its output. */
export async function runCommand(
  children: Children,
  cmd: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = children.spawn(cmd, args, cwd);
  await child.stdin.close();
  const out: string[] = [];
  const err: string[] = [];
  const done = Promise.all([
    new LineReader(child.stdout).drain(out, 10_000),
    new LineReader(child.stderr).drain(err, 10_000),
    child.status,
  ]);
  try {
    const [, , status] = await withTimeout(done, timeoutMs, `${cmd} ${args.join(" ")}`);
    return { code: status.code, stdout: out.join("\n"), stderr: err.join("\n") };
  } catch (e) {
    killQuietly(child);
    await child.status;
    throw e;
  }
}
