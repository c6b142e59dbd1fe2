/**
 * Headless Debian Chromium driven over the Chrome DevTools Protocol, spoken directly over
 * Deno's own WebSocket: launch it, open a page, evaluate scripts in it.
 *
 * Nothing like puppeteer/playwright, nothing downloaded. Chromium starts with
 * `--remote-debugging-port=0` and writes the port it picked to `DevToolsActivePort` in its
 * fresh `--user-data-dir`; we connect to the browser endpoint named there, open a page,
 * and run small scripts in it with `Runtime.evaluate`. This beats `--dump-dom`, which
 * snapshots the DOM right after the load event: it cannot wait for a chat to happen, let
 * alone for the server to close, and gives no way to type into the page mid-way.
 *
 * @module
 */

import { within } from "../helpers/transports.ts";

const CHROMIUM = "/usr/bin/chromium";
/** The whole test, once the browser listens; a busy CI machine starts renderers slowly. */
export const WATCHDOG_MS = 40_000;
/** One CDP call or one awaited step in the page. */
export const STEP_MS = 10_000;
/**
 * How long Chromium may take to listen. Usually well under a second, but the first launch on a
 * fresh, busy CI machine once took longer than 10 s (cold disk cache, first font scan).
 */
export const START_MS = 60_000;

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-proxy-server", // a proxy from the environment must not stand between us and 127.0.0.1
  "--remote-debugging-port=0",
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running Chromium: its process, its profile dir and the tail of its stderr. */
export class Browser {
  readonly #child: Deno.ChildProcess;
  readonly #dir: string;
  readonly #stderr: Promise<string>;
  readonly #stderrSoFar = { kept: new Uint8Array(0) };
  readonly #stderrReader: ReadableStreamDefaultReader<Uint8Array>;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(child: Deno.ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
    this.status = child.status;
    this.#stderrReader = child.stderr.getReader();
    this.#stderr = tail(this.#stderrReader, this.#stderrSoFar);
  }

  static async launch(): Promise<Browser> {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      throw new Error(
        `${CHROMIUM} not found: this test drives a real headless Chromium. Install it with ` +
          "`sudo apt-get install -y chromium` (Debian/Ubuntu), " +
          "or run `bash tests/peers/install.sh` as root.",
      );
    }
    const dir = await Deno.makeTempDir({ prefix: "dill-ws-chromium-" });
    const child = new Deno.Command(CHROMIUM, {
      args: [...FLAGS, `--user-data-dir=${dir}`, "about:blank"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    return new Browser(child, dir);
  }

  /** The browser's DevTools WebSocket URL, from the file Chromium writes once it listens. */
  async devtoolsUrl(): Promise<string> {
    let exited = false;
    this.status.then(() => exited = true);
    for (const start = Date.now(); Date.now() - start < START_MS; await sleep(50)) {
      if (exited) throw new Error(`Chromium exited at start:\n${await this.stderrTail()}`);
      const text = await Deno.readTextFile(`${this.#dir}/DevToolsActivePort`).catch(() => "");
      const [port, path] = text.split("\n");
      if (path?.startsWith("/devtools/browser/")) return `ws://127.0.0.1:${port}${path}`;
    }
    const waited = `${START_MS / 1000} s`;
    throw new Error(
      `Chromium wrote no DevToolsActivePort in ${waited}:\n${await this.stderrTail()}`,
    );
  }

  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }

  /** Waits for the browser to exit (killing it if it lingers), then removes its profile. */
  async dispose(): Promise<void> {
    try {
      await within(this.status, 5_000, "Chromium exit");
    } catch {
      this.kill();
      await this.status;
    }
    // Chromium's helpers may keep stderr open a moment longer; never wait for them long.
    await within(this.#stderr, 2_000, "stderr").catch(() => this.#stderrReader.cancel());
    for (let attempt = 0;; attempt++) {
      try {
        return await Deno.remove(this.#dir, { recursive: true });
      } catch (e) {
        if (attempt === 5) throw e;
        await sleep(100); // a helper may still be writing its last files
      }
    }
  }

  /** The last 4 KiB of stderr: once it ended, or (a browser still running) what came so far. */
  stderrTail(): Promise<string> {
    return within(this.#stderr, 1_000, "stderr").catch(() =>
      `(stderr still open; so far:)\n${new TextDecoder().decode(this.#stderrSoFar.kept)}`
    );
  }
}

/** Keeps the last 4 KiB of a stream in `soFar` as it comes; resolves to them when it ends. */
async function tail(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  soFar: { kept: Uint8Array },
): Promise<string> {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return new TextDecoder().decode(soFar.kept);
    soFar.kept = new Uint8Array([...soFar.kept, ...value]).slice(-4096);
  }
}

/** A CDP message or result (JSON of any shape). */
// deno-lint-ignore no-explicit-any
export type Json = any;

/** A minimal Chrome DevTools Protocol client over Deno's WebSocket (flattened sessions). */
export class Cdp {
  readonly #ws: WebSocket;
  readonly closed: Promise<void>;
  #nextId = 1;
  readonly #calls = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  readonly #listeners = new Set<(msg: Json) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      const call = this.#calls.get(msg.id);
      if (call) {
        this.#calls.delete(msg.id);
        if (msg.error) call.reject(new Error(`CDP: ${JSON.stringify(msg.error)}`));
        else call.resolve(msg.result);
      }
      for (const listen of this.#listeners) listen(msg);
    };
    this.closed = new Promise((resolve) => {
      ws.onclose = () => {
        for (const call of this.#calls.values()) call.reject(new Error("CDP connection closed"));
        this.#calls.clear();
        resolve();
      };
    });
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    const cdp = new Cdp(ws);
    const opened = new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error(`CDP connect: ${(e as ErrorEvent).message}`));
    });
    try {
      await within(opened, STEP_MS, "CDP connect");
    } catch (e) {
      ws.close();
      await cdp.closed;
      throw e;
    }
    return cdp;
  }

  call(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#nextId++;
    const result = new Promise<Json>((resolve, reject) => this.#calls.set(id, { resolve, reject }));
    this.#ws.send(JSON.stringify({ id, method, params, sessionId }));
    return within(result, STEP_MS, method);
  }

  /** Resolves on the next event `method` (of `sessionId`); start waiting before causing it. */
  event(method: string, sessionId?: string): Promise<Json> {
    const seen = new Promise<Json>((resolve) => {
      const listen = (msg: Json) => {
        if (msg.method !== method || msg.sessionId !== sessionId) return;
        this.#listeners.delete(listen);
        resolve(msg.params);
      };
      this.#listeners.add(listen);
    });
    return within(seen, STEP_MS, method);
  }

  async close(): Promise<void> {
    this.#ws.close();
    await this.closed;
  }
}

/** One page of the browser, attached through a flattened CDP session. */
export class Page {
  private constructor(readonly cdp: Cdp, readonly session: string) {}

  static async open(cdp: Cdp, url: string): Promise<Page> {
    const { targetId } = await cdp.call("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.call("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(cdp, sessionId);
    await cdp.call("Page.enable", {}, sessionId);
    const loaded = cdp.event("Page.loadEventFired", sessionId);
    const { errorText } = await cdp.call("Page.navigate", { url }, sessionId);
    if (errorText) throw new Error(`navigating to ${url}: ${errorText}`);
    await loaded;
    return page;
  }

  /** Runs `expression` in the page (awaiting a promise it yields) and returns its value. */
  async eval(expression: string): Promise<Json> {
    const { result, exceptionDetails } = await this.cdp.call("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }, this.session);
    if (exceptionDetails) {
      throw new Error(
        `in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`,
      );
    }
    return result.value;
  }

  /** Polls `condition` in the page until it is truthy; returns its value. */
  until(condition: string, what: string): Promise<Json> {
    return this.eval(`new Promise((resolve, reject) => {
      const start = Date.now();
      const poll = () => {
        const value = (${condition});
        if (value) return resolve(value);
        if (Date.now() - start > ${STEP_MS - 500}) {
          return reject(new Error(${JSON.stringify(`page never showed: ${what}`)}));
        }
        setTimeout(poll, 20);
      };
      poll();
    })`);
  }
}
