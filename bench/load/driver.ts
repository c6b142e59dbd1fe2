/**
 * The orchestrator's side of the load client process (bench/load/client.ts) and of
 * the one-shot client-library processes (bench/load/lib_client.ts).
 *
 * The client processes run with `--allow-all` for one reason: Deno grants reading
 * /proc/<pid>/stat, /proc/<pid>/status and /proc/stat only with it. Their code
 * connects to 127.0.0.1 and nowhere else.
 *
 * @module
 */

import { type Children, DENO, killQuietly, LineReader, withTimeout } from "./children.ts";
import type { Answer, Command, LibClientCommand } from "./commands.ts";

const CLIENT_ARGS = ["run", "--no-lock", "--allow-all"];

/** A running load client process, answering one command at a time. */
export class LoadClient {
  readonly #child: Deno.ChildProcess;
  readonly #out: LineReader;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: string[] = [];

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#out = new LineReader(child.stdout);
    this.#writer = child.stdin.getWriter();
    new LineReader(child.stderr).drain(this.#stderr);
  }

  /** Starts the load client process. */
  static start(children: Children, root: string): LoadClient {
    return new LoadClient(children.spawn(DENO, [...CLIENT_ARGS, "bench/load/client.ts"], root));
  }

  /** Runs one command; rejects (and the client must be replaced) after `timeoutMs`. */
  async run(cmd: Command, timeoutMs: number): Promise<Answer> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
    const line = await withTimeout(this.#out.next(), timeoutMs, `load client ${cmd.op}`);
    if (line === null) {
      throw new Error(`load client exited: ${this.#stderr.slice(-5).join(" | ")}`);
    }
    return JSON.parse(line) as Answer;
  }

  /** Ends the process (closing stdin makes it exit; killed after 2 s). */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await withTimeout(this.#child.status, 2000, "load client exit").catch(() => {
      killQuietly(this.#child);
    });
    await this.#child.status;
  }
}

/** Runs one client-library measurement in its own process, bounded by `timeoutMs`. */
export async function runLibClient(
  children: Children,
  root: string,
  cmd: LibClientCommand,
  timeoutMs: number,
): Promise<Answer> {
  const child = children.spawn(
    DENO,
    [...CLIENT_ARGS, "bench/load/lib_client.ts", JSON.stringify(cmd)],
    root,
  );
  await child.stdin.close();
  const stderr: string[] = [];
  const stderrDone = new LineReader(child.stderr).drain(stderr);
  const out = new LineReader(child.stdout);
  try {
    const line = await withTimeout(out.next(), timeoutMs, `${cmd.client} client`);
    if (line === null) throw new Error(`client exited: ${stderr.slice(-5).join(" | ")}`);
    return JSON.parse(line) as Answer;
  } finally {
    await withTimeout(child.status, 2000, "client exit").catch(() => killQuietly(child));
    await child.status;
    await out.drain([]);
    await stderrDone;
  }
}
