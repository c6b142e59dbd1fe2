/**
 * The chat page the demo serves on `/`: one self-contained HTML document (inline CSS and
 * script, no external resources). Its script opens a WebSocket to `/ws` on the same host
 * (with the page's own query, so `?room=name` picks the room) and mirrors the connection in
 * the DOM: `<body data-state>` is `connecting`, `open` or `closed`; once joined `data-name`
 * holds the chat name; after the close `data-close-code` and `data-close-reason` hold what
 * the server sent. After a close 1001 (going away) or 1006 (no close at all) it tries again a few
 * times, as a cluster has other processes on the same address. The browser test reads those.
 * Below the page: how it is served.
 *
 * @module
 */

/**
 * The HTML page of the chat demo.
 *
 * @example
 * ```ts
 * import { DEMO_PAGE } from "./demo_page.ts";
 *
 * console.log(DEMO_PAGE.startsWith("<!doctype html>")); // true
 * ```
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>dill-ws chat</title>
<style>
  :root { --bg: #f4f1ea; --card: #fffdf8; --ink: #1f2328; --muted: #6b7078; --accent: #2f6f5e;
          --line: #e4dfd3; --me: #e3f0ea; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg);
         color: var(--ink); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
  main { width: min(640px, 100vw - 24px); height: min(720px, 100vh - 24px); display: flex;
         flex-direction: column; background: var(--card); border: 1px solid var(--line);
         border-radius: 14px; box-shadow: 0 10px 30px rgb(0 0 0 / 8%); overflow: hidden; }
  header { display: flex; align-items: center; justify-content: space-between; gap: 12px;
           padding: 14px 18px; border-bottom: 1px solid var(--line); }
  h1 { margin: 0; min-width: 0; font-size: 17px; white-space: nowrap; overflow: hidden;
       text-overflow: ellipsis; }
  h1 small { color: var(--muted); font-weight: 400; }
  #status { font-size: 13px; padding: 3px 10px 3px 8px; border-radius: 999px;
            background: #eee; color: var(--muted); white-space: nowrap; }
  #status::before { content: ""; display: inline-block; width: 8px; height: 8px;
                    margin-right: 6px; border-radius: 50%; background: #b9b9b9; }
  body[data-state="open"] #status { background: #e3f0ea; color: var(--accent); }
  body[data-state="open"] #status::before { background: #2fa36b; }
  body[data-state="closed"] #status { background: #f6e3e1; color: #9b3b30; }
  body[data-state="closed"] #status::before { background: #d0584a; }
  #messages { flex: 1; margin: 0; padding: 14px 18px; list-style: none; overflow-y: auto; }
  #messages li { margin: 6px 0; max-width: 85%; overflow-wrap: anywhere; }
  #messages li.chat { width: fit-content; padding: 7px 11px; border-radius: 10px;
                      background: #f1eee6; }
  #messages li.chat.mine { margin-left: auto; background: var(--me); }
  #messages li.chat b { display: block; font-size: 12px; color: var(--accent); }
  #messages li.notice { max-width: none; text-align: center; color: var(--muted);
                        font-size: 13px; }
  form { display: flex; gap: 8px; padding: 12px; border-top: 1px solid var(--line); }
  input { flex: 1; padding: 10px 12px; font: inherit; border: 1px solid var(--line);
          border-radius: 9px; background: #fff; }
  input:focus { outline: 2px solid var(--accent); outline-offset: -1px; }
  button { padding: 10px 18px; font: inherit; font-weight: 600; color: #fff;
           background: var(--accent); border: 0; border-radius: 9px; cursor: pointer; }
  button:disabled, input:disabled { opacity: .5; cursor: not-allowed; }
</style>
</head>
<body data-state="connecting">
<main>
  <header>
    <h1>dill-ws chat <small>· WebSocket over WS_NOHTTP</small></h1>
    <span id="status">connecting…</span>
  </header>
  <ul id="messages" aria-live="polite"></ul>
  <form id="composer" autocomplete="off">
    <input id="text" maxlength="500" placeholder="Say something…" aria-label="Message" disabled>
    <button id="send" disabled>Send</button>
  </form>
</main>
<script>
"use strict";
const body = document.body;
const list = document.getElementById("messages");
const form = document.getElementById("composer");
const input = document.getElementById("text");
const button = document.getElementById("send");
const status = document.getElementById("status");
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
// A server that went away (1001) or vanished (1006) may have siblings on the same address
// (a cluster): the page tries again, waiting 1 s, 2 s, ... at most this many times.
const MAX_RETRIES = 5;
let ws = null;
let me = null;
let retries = 0;

function setState(state, text) {
  body.dataset.state = state;
  status.textContent = text;
  input.disabled = button.disabled = state !== "open";
}

function add(className, text, from) {
  const item = document.createElement("li");
  item.className = className;
  if (from) {
    const who = document.createElement("b");
    who.textContent = from;
    item.append(who);
  }
  item.append(text); // text nodes only: whatever people type is never parsed as HTML
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function connect() {
  let opened = false;
  // The page's query (?room=name) picks the room.
  ws = new WebSocket(scheme + location.host + "/ws" + location.search);
  ws.onopen = () => {
    opened = true;
    setState("open", "connected");
  };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.kind === "welcome") {
      retries = 0;
      me = body.dataset.name = msg.name;
      setState("open", "connected as " + me);
      add("notice", "You are " + me + " in " + msg.room + ". Online: " + msg.online.join(", "));
    } else if (msg.kind === "join") {
      add("notice", msg.name + " joined");
    } else if (msg.kind === "leave") {
      add("notice", msg.name + " left");
    } else if (msg.kind === "notice") {
      add("notice", msg.text);
    } else if (msg.kind === "chat") {
      add(msg.from === me ? "chat mine" : "chat", msg.text, msg.from === me ? "you" : msg.from);
    }
  };
  ws.onclose = (event) => {
    const why = event.code + (event.reason ? " " + event.reason : "");
    if (opened) { // what the server said; a failed attempt to reconnect keeps it
      body.dataset.closeCode = String(event.code);
      body.dataset.closeReason = event.reason;
    }
    setState("closed", "disconnected (" + why + ")");
    if ((event.code === 1001 || event.code === 1006) && retries < MAX_RETRIES) {
      retries++;
      if (opened) add("notice", "Connection closed: " + why + ". Reconnecting…");
      setTimeout(() => {
        setState("connecting", "reconnecting…");
        connect();
      }, 1000 * retries);
    } else {
      add("notice", "Connection closed: " + why + ". Reload to rejoin.");
    }
  };
}

connect();
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (text === "" || ws.readyState !== WebSocket.OPEN) return;
  ws.send(text);
  input.value = "";
  input.focus();
});
</script>
</body>
</html>
`;

/**
 * The headers the page is served with, whatever serves it: no caching, and a Content
 * Security Policy that lets it load nothing from elsewhere and connect only to its own host.
 *
 * @example
 * ```ts
 * import { PAGE_HEADERS } from "./demo_page.ts";
 *
 * console.log(new Headers(PAGE_HEADERS).get("content-type")); // text/html; charset=utf-8
 * ```
 */
export const PAGE_HEADERS: [string, string][] = [
  ["Content-Type", "text/html; charset=utf-8"],
  ["Cache-Control", "no-store"],
  [
    "Content-Security-Policy",
    "default-src 'none'; style-src 'unsafe-inline'; " +
    "script-src 'unsafe-inline'; connect-src 'self'; img-src data:",
  ],
];

/**
 * The WebSocket upgrade's Origin check: browsers send `Origin`, and only pages served by
 * this host may join (no cross-site WebSocket hijacking). Clients that are not browsers
 * send none and are let in.
 *
 * @example
 * ```ts
 * import { sameOrigin } from "./demo_page.ts";
 *
 * const headers = new Headers({ host: "chat.example:8080" });
 * console.log(sameOrigin("http://chat.example:8080", { headers })); // true
 * console.log(sameOrigin("http://evil.example", { headers })); // false
 * ```
 */
export function sameOrigin(origin: string | null, request: { headers: Headers }): boolean {
  if (origin === null) return true; // not a browser
  try {
    return new URL(origin).host === request.headers.get("host");
  } catch {
    return false;
  }
}
