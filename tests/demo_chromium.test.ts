/**
 * A real browser against the chat demo: headless Debian Chromium loads the page, its script
 * opens a WebSocket to our server, chats both ways with a Deno client, and sees our close
 * code when the server stops, then reconnects by itself to a server back on the same port.
 *
 * The browser is driven over the Chrome DevTools Protocol (tests/peers/chromium.ts).
 * Needs /usr/bin/chromium (Debian package `chromium`); without it the test fails and says
 * how to install it. Everything is bounded in time: each step has its own timeout, and a
 * watchdog kills the browser after 25 s, which makes any pending step fail at once.
 */

import assert from "node:assert/strict";
import { type DemoMode, startDemo } from "../examples/demo.ts";
import { Browser, Cdp, type Json, Page, STEP_MS, WATCHDOG_MS } from "./peers/chromium.ts";
import { within } from "./helpers/transports.ts";

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
    const devtools = await browser.devtoolsUrl(); // its own start limit
    watchdog = setTimeout(() => browser?.kill(), WATCHDOG_MS);
    cdp = await Cdp.connect(devtools);
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
