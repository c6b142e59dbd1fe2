/**
 * The chat demo as a cluster on one machine: a local `nats-server` (Debian package
 * `nats-server`) and N demo processes sharing one port (`SO_REUSEPORT`; the kernel spreads
 * the connections among them), their rooms joined through NATS. Each process's output is
 * shown with its name in front.
 *
 * Run: `deno task demo:cluster` (environment: `PROCESSES`, default 3; `PORT`, default
 * 8080; `NATS_PORT`, default 4222; `DEMO_MODE=serve` for `Deno.serve`), open http://127.0.0.1:8080/ in a few tabs: each tab
 * lands on some process, and they all chat together.
 *
 * The same pieces are what the tests use: {@link NatsServer} and {@link DemoProcess}.
 *
 * @module
 */

/** Where Debian installs `nats-server`; `PATH` is tried when it is not there. */
const NATS_SERVER_PATHS = ["/usr/sbin/nats-server", "/usr/bin/nats-server"];
/** Output lines kept per child, for waiting on them and for diagnostics. */
const MAX_LINES = 500;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const DEMO = new URL("./demo.ts", import.meta.url).pathname;

/** The output of a child process, line by line, with bounded waits for a matching line. */
class Lines {
  readonly #lines: string[] = [];
  readonly #waiters = new Set<() => void>();
  #dropped = 0;
  #ended = false;
  readonly done: Promise<void>;

  constructor(streams: ReadableStream<Uint8Array>[], echo?: (line: string) => void) {
    this.done = Promise.all(streams.map((s) => this.#read(s, echo))).then(() => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** The first line (kept or to come) matching `pattern`, from line index `from` on. */
  async wait(pattern: RegExp, ms: number, from = 0): Promise<{ line: string; index: number }> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = Math.max(from - this.#dropped, 0); i < this.#lines.length; i++) {
        if (pattern.test(this.#lines[i])) return { line: this.#lines[i], index: i + this.#dropped };
      }
      if (this.#ended) throw new Error(`no line matching ${pattern}; output:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}; output:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        let timer: ReturnType<typeof setTimeout> | undefined = undefined;
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  /** How many lines were seen so far (an index for {@link wait}'s `from`). */
  get count(): number {
    return this.#dropped + this.#lines.length;
  }

  /** The last lines, for error messages. */
  tail(n = 30): string {
    return this.#lines.slice(-n).join("\n");
  }

  async #read(stream: ReadableStream<Uint8Array>, echo?: (line: string) => void): Promise<void> {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      pending += text;
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        echo?.(line);
        this.#lines.push(line);
        if (this.#lines.length > MAX_LINES) {
          this.#lines.shift();
          this.#dropped++;
        }
        this.#wake();
      }
    }
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/** A child process with its output; `stop` ends it (SIGTERM, then SIGKILL) and awaits it. */
class Child {
  readonly #process: Deno.ChildProcess;
  readonly lines: Lines;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(
    command: string,
    args: string[],
    env: Record<string, string>,
    echo?: (line: string) => void,
  ) {
    this.#process = new Deno.Command(command, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.lines = new Lines([this.#process.stdout, this.#process.stderr], echo);
    this.status = this.#process.status;
  }

  get pid(): number {
    return this.#process.pid;
  }

  /** Sends `signal`, waits up to {@link STOP_TIMEOUT_MS}, then kills; resolves once it is gone. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    this.#signal(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, STOP_TIMEOUT_MS));
    const status = await Promise.race([this.status, late.then(() => null)]);
    clearTimeout(timer);
    if (!status) this.#signal("SIGKILL");
    const final = await this.status;
    await this.lines.done;
    return final;
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#process.kill(signal);
    } catch {
      // It already exited.
    }
  }
}

/** Options of {@link NatsServer.start}. */
export interface NatsServerOptions {
  /** Client port; 0 (the default) picks a free one. */
  port?: number;
  /** Also serve NATS's HTTP monitoring (`/varz`, `/connz`) on a free port. */
  monitor?: boolean;
  /** Called with every line the server logs. */
  echo?: (line: string) => void;
}

/** A `nats-server` on 127.0.0.1; it can be stopped and started again on the same port. */
export class NatsServer {
  readonly port: number;
  /** The monitoring port, or 0. */
  readonly monitorPort: number;
  readonly #echo?: (line: string) => void;
  #child: Child | null = null;

  private constructor(port: number, monitorPort: number, echo?: (line: string) => void) {
    this.port = port;
    this.monitorPort = monitorPort;
    this.#echo = echo;
  }

  /** Starts one and waits until it listens. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const port = options.port || freePort();
    const server = new NatsServer(port, options.monitor ? freePort() : 0, options.echo);
    await server.restart();
    return server;
  }

  /** One of the monitoring endpoints as JSON, e.g. `varz` (needs `monitor`). */
  async monitoring(endpoint: string): Promise<Record<string, unknown>> {
    const response = await fetch(`http://127.0.0.1:${this.monitorPort}/${endpoint}`);
    return await response.json();
  }

  /** The URL to give the demo processes. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts it again after {@link stop} (or the first time) and waits until it listens. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("nats-server is already running");
    const child = new Child(
      await natsServerPath(),
      [
        ...["-a", "127.0.0.1", "-p", String(this.port)],
        ...(this.monitorPort ? ["-m", String(this.monitorPort)] : []),
      ],
      {},
      this.#echo,
    );
    this.#child = child;
    try {
      await child.lines.wait(/Server is ready/, START_TIMEOUT_MS);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops it (SIGTERM: it closes its client connections). */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    await child?.stop();
  }
}

/** One demo process (examples/demo.ts), on NATS or alone, sharing its port with others. */
export class DemoProcess {
  readonly name: string;
  readonly #child: Child;

  private constructor(name: string, child: Child) {
    this.name = name;
    this.#child = child;
  }

  /**
   * Starts it and waits until it listens and (with `natsUrl`) its hub is connected. Without
   * `natsUrl` its rooms stay in the process.
   */
  static async start(
    name: string,
    port: number,
    natsUrl: string | null,
    options: { echo?: (line: string) => void; mode?: "tcp" | "serve" } = {},
  ): Promise<DemoProcess> {
    const { echo, mode = "tcp" } = options;
    const env: Record<string, string> = {
      PORT: String(port),
      NODE_NAME: name,
      REUSE_PORT: "1",
      DEMO_MODE: mode,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
    };
    if (natsUrl) env.NATS_URL = natsUrl;
    const child = new Child(
      Deno.execPath(),
      [
        "run",
        "--unstable-net",
        "--allow-net=127.0.0.1",
        "--allow-env=PORT,HOST,NATS_URL,NODE_NAME,REUSE_PORT,DEMO_MODE,MAX_CONNECTIONS",
        DEMO,
      ],
      env,
      echo,
    );
    const demo = new DemoProcess(name, child);
    try {
      await child.lines.wait(/^chat demo on /, START_TIMEOUT_MS);
      if (natsUrl) await child.lines.wait(/hub \(nats\) up/, START_TIMEOUT_MS);
    } catch (e) {
      await child.stop("SIGKILL");
      throw e;
    }
    return demo;
  }

  /** Its output lines. */
  get lines(): Lines {
    return this.#child.lines;
  }

  /** Stops it the way Ctrl-C does: its clients get close 1001. */
  stop(): Promise<Deno.CommandStatus> {
    return this.#child.stop("SIGTERM");
  }

  /** Kills it outright, as a crash would: its clients see the connection drop. */
  kill(): Promise<Deno.CommandStatus> {
    return this.#child.stop("SIGKILL");
  }
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The `nats-server` binary, or an error saying how to install it. */
export async function natsServerPath(): Promise<string> {
  const candidates = [
    ...NATS_SERVER_PATHS,
    ...(Deno.env.get("PATH") ?? "").split(":").filter((d) => d).map((d) => `${d}/nats-server`),
  ];
  for (const path of candidates) {
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // Not there; try the next.
    }
  }
  throw new Error(
    "nats-server not found: install it with `sudo apt-get install -y nats-server` " +
      "(Debian/Ubuntu) or run `bash tests/peers/install.sh` as root",
  );
}

async function main(): Promise<void> {
  const count = Number(Deno.env.get("PROCESSES") ?? "3");
  const port = Number(Deno.env.get("PORT") ?? "8080");
  const natsPort = Number(Deno.env.get("NATS_PORT") ?? "4222");
  const mode = Deno.env.get("DEMO_MODE") === "serve" ? "serve" : "tcp";
  if (!Number.isInteger(count) || count < 1 || count > 64) {
    throw new Error("PROCESSES must be 1-64");
  }
  const echo = (line: string) => console.log(`[nats] ${line}`);
  const nats = await NatsServer.start({ port: natsPort, echo });
  const processes: DemoProcess[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const name = `p${i}`;
      processes.push(
        await DemoProcess.start(name, port, nats.url, {
          echo: (line) => console.log(`[${name}] ${line}`),
          mode,
        }),
      );
    }
    console.log(
      `cluster: ${count} processes on http://127.0.0.1:${port}/ through ${nats.url} ` +
        "(Ctrl-C to stop)",
    );
    await nextStopSignal();
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await nats.stop();
  }
  console.log("cluster stopped");
}

/** Resolves on the first Ctrl-C (or SIGTERM), after removing the listeners. */
function nextStopSignal(): Promise<void> {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    const onSignal = () => {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, onSignal);
  });
}

if (import.meta.main) {
  main().catch((e) => {
    console.error(`demo:cluster: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  });
}
