/**
 * A real browser against the chat demo: headless Debian Chromium loads the page, its script
 * opens a WebSocket to our server, chats both ways with a Deno client, and sees our close
 * code when the server stops, then reconnects by itself to a server back on the same port.
 *
 * How the browser is driven: the Chrome DevTools Protocol, spoken directly over Deno's own
 * WebSocket (no puppeteer/playwright, nothing downloaded). Chromium starts with
 * `--remote-debugging-port=0` and writes the port it picked to `DevToolsActivePort` in its
 * fresh `--user-data-dir`; we connect to the browser endpoint named there, open a page,
 * and run small scripts in it with `Runtime.evaluate`. This beats `--dump-dom`, which
 * snapshots the DOM right after the load event: it cannot wait for a chat to happen, let
 * alone for the server to close, and gives no way to type into the page mid-way.
 *
 * Needs /usr/bin/chromium (Debian package `chromium`); without it the test fails and says
 * how to install it. Everything is bounded in time: each step has its own timeout, and a
 * watchdog kills the browser after 25 s, which makes any pending step fail at once.
 */

import assert from "node:assert/strict";
import { type DemoMode, startDemo } from "../examples/demo.ts";

const CHROMIUM = "/usr/bin/chromium";
const WATCHDOG_MS = 25_000;
const STEP_MS = 5_000;

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

/** Resolves `p`, or rejects naming `what` after `ms`; the timer never outlives the call. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running Chromium: its process, its profile dir and the tail of its stderr. */
class Browser {
  readonly #child: Deno.ChildProcess;
  readonly #dir: string;
  readonly #stderr: Promise<string>;
  readonly #stderrReader: ReadableStreamDefaultReader<Uint8Array>;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(child: Deno.ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
    this.status = child.status;
    this.#stderrReader = child.stderr.getReader();
    this.#stderr = tail(this.#stderrReader);
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
    for (const start = Date.now(); Date.now() - start < 10_000; await sleep(50)) {
      if (exited) throw new Error(`Chromium exited at start:\n${await this.stderrTail()}`);
      const text = await Deno.readTextFile(`${this.#dir}/DevToolsActivePort`).catch(() => "");
      const [port, path] = text.split("\n");
      if (path?.startsWith("/devtools/browser/")) return `ws://127.0.0.1:${port}${path}`;
    }
    throw new Error(`Chromium wrote no DevToolsActivePort in 10 s:\n${await this.stderrTail()}`);
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

  stderrTail(): Promise<string> {
    return within(this.#stderr, 1_000, "stderr").catch(() => "(stderr still open)");
  }
}

/** Keeps the last 4 KiB of a stream, until it ends. */
async function tail(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let kept = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return new TextDecoder().decode(kept);
    kept = new Uint8Array([...kept, ...value]).slice(-4096);
  }
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** A minimal Chrome DevTools Protocol client over Deno's WebSocket (flattened sessions). */
class Cdp {
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
class Page {
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

/** Deno's WebSocket in the same chat room, as the browser's counterpart. */
async function denoClient(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const events: Json[] = [];
  let wake = () => {};
  ws.onmessage = (e) => {
    events.push(JSON.parse(e.data));
    wake();
  };
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  const next = (match: (e: Json) => boolean, what: string) =>
    within(
      (async () => {
        for (;;) {
          const found = events.find(match);
          if (found) return found;
          await new Promise<void>((resolve) => wake = resolve);
        }
      })(),
      STEP_MS,
      what,
    );
  const welcome = await next((e) => e.kind === "welcome", "welcome to the Deno client");
  return { name: welcome.name as string, send: (t: string) => ws.send(t), next, closed, ws };
}

/** Which chat lines the page shows, as "from: text". */
const CHAT_LINES = `[...document.querySelectorAll("#messages li.chat")]
    .map((li) => li.firstChild.textContent + ": " + li.lastChild.textContent)`;

async function browserChat(mode: DemoMode): Promise<void> {
  const demo = await startDemo({ port: 0, mode, log: () => {} });
  let browser: Browser | undefined;
  let cdp: Cdp | undefined;
  let client: Awaited<ReturnType<typeof denoClient>> | undefined;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  let graceful = false;
  try {
    browser = await Browser.launch();
    watchdog = setTimeout(() => browser?.kill(), WATCHDOG_MS);
    cdp = await Cdp.connect(await browser.devtoolsUrl());
    const page = await Page.open(cdp, `http://127.0.0.1:${demo.port}/`);

    // The page's script completed the handshake with our server and joined the room.
    const browserName = await page.until(
      `document.body.dataset.state === "open" && document.body.dataset.name`,
      "connected and named",
    );
    assert.match(browserName, /^guest-\d+$/);
    // Chromium offers permessage-deflate: the raw-TCP demo takes it (Deno.serve cannot).
    const extensions = await page.eval("ws.extensions");
    if (mode === "tcp") assert.match(String(extensions), /^permessage-deflate/);
    else assert.equal(extensions, "");

    client = await denoClient(demo.port);
    await page.until(
      `[...document.querySelectorAll("#messages li.notice")].some((li) => li.textContent === ${
        JSON.stringify(`${client.name} joined`)
      })`,
      "the Deno client's join notice",
    );

    // Browser -> server -> both: typed into the real input, sent by the real form.
    await page.eval(`document.getElementById("text").value = "hello from Chromium ✓";
      document.getElementById("composer").requestSubmit(); true`);
    const fromBrowser = await client.next((e) => e.kind === "chat", "the browser's message");
    assert.deepEqual(fromBrowser, {
      kind: "chat",
      from: browserName,
      text: "hello from Chromium ✓",
    });
    await page.until(`${CHAT_LINES}.includes("you: hello from Chromium ✓")`, "its own message");

    // Deno -> server -> browser.
    client.send("hello from Deno 👋");
    const line = `${client.name}: hello from Deno 👋`;
    await page.until(
      `${CHAT_LINES}.includes(${JSON.stringify(line)})`,
      "the Deno client's message",
    );

    // Server stops: the browser sees our close code and reason.
    await within(demo.stop(), STEP_MS, "demo.stop()");
    const close = await page.until(
      `document.body.dataset.state === "closed" &&
        [document.body.dataset.closeCode, document.body.dataset.closeReason]`,
      "the close",
    );
    assert.deepEqual(close, ["1001", "server shutting down"]);
    assert.equal((await within(client.closed, STEP_MS, "Deno client close")).code, 1001);

    // A server comes back on the same address (a restart, or a sibling in a cluster): the page
    // reconnects by itself, 1 s after the close, and is welcomed again.
    const again = await startDemo({ port: demo.port, mode, log: () => {} });
    try {
      await page.until(
        `document.body.dataset.state === "open" &&
          [...document.querySelectorAll("#messages li.notice")]
            .filter((li) => li.textContent.startsWith("You are ")).length === 2`,
        "the page back in the room",
      );
      const closeCode = await page.eval(`document.body.dataset.closeCode`);
      assert.equal(closeCode, "1001", "failed attempts (if any) do not replace the server's close");
    } finally {
      await again.stop();
    }

    await cdp.call("Browser.close").catch(() => {}); // the browser may go before it answers
    graceful = true;
  } finally {
    clearTimeout(watchdog);
    if (client && client.ws.readyState !== WebSocket.CLOSED) {
      client.ws.close();
      await within(client.closed, STEP_MS, "Deno client close").catch(() => {});
    }
    await demo.stop();
    if (!graceful) browser?.kill(); // after a failure, no need to be gentle
    if (cdp) await within(cdp.closed, STEP_MS, "CDP close").catch(() => cdp?.close());
    await browser?.dispose();
  }
}

Deno.test("demo + Chromium (tcp): a browser handshakes, chats both ways, sees close 1001", () =>
  browserChat("tcp"));

Deno.test("demo + Chromium (serve): a browser handshakes, chats both ways, sees close 1001", () =>
  browserChat("serve"));
