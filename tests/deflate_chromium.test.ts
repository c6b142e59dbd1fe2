/**
 * permessage-deflate with a real browser: headless Chromium (which always offers it)
 * opens a WebSocket to our server through a {@link WireTap}, sends JSON-like text and
 * binary messages and checks our echoes. The page comes from 127.0.0.1 (Chromium will not
 * open a loopback WebSocket from `about:blank`). On the wire: the 101 answer accepts
 * permessage-deflate, and every data message both ways has RSV1. Twice: with our HTTP
 * handshake, and with a `WS_NOHTTP` server that answers the upgrade itself the way
 * `examples/demo.ts` does, handing its negotiation over as `negotiatedDeflate`.
 */

import assert from "node:assert/strict";
import { bsend, type Handle, tcpAccept, WS_BINARY, WS_NOHTTP, wsAttachServer } from "../mod.ts";
import { wsDeflate } from "../actors/ws_deflate.ts";
import { acceptUpgrade } from "../protocol/handshake.ts";
import {
  closeQuietly,
  echoBack,
  listenLocal,
  parseHead,
  readHead,
  soon,
  type Spec,
} from "./peers/common.ts";
import { Browser, Cdp, Page, STEP_MS, WATCHDOG_MS } from "./peers/chromium.ts";
import { within } from "./helpers/transports.ts";
import { WireTap } from "./peers/wire_tap.ts";

const ITEM = '{"id":1042,"user":"alice","tags":["a","b"],"ok":true},';
const SPECS: Spec[] = [
  { kind: "text", text: ITEM, repeat: 19 },
  { kind: "text", text: ITEM, repeat: 300 },
  { kind: "binary", size: 16 * 1024, seed: 3 },
];

/** The page's side: sends the specs (built as common.ts builds them), checks the echoes. */
function pageScript(port: number): string {
  return `new Promise((resolve, reject) => {
    const specs = ${JSON.stringify(SPECS)};
    const build = (s) => s.kind === "text" ? s.text.repeat(s.repeat ?? 1)
      : Uint8Array.from({ length: s.size }, (_, i) => (i + s.seed) % 251);
    const ws = new WebSocket("ws://127.0.0.1:${port}/");
    ws.binaryType = "arraybuffer";
    const got = [];
    ws.onopen = () => { for (const s of specs) ws.send(build(s)); };
    ws.onerror = () => reject(new Error("the page's WebSocket failed"));
    ws.onmessage = (e) => {
      got.push(e.data);
      if (got.length < specs.length) return;
      const same = specs.map((s, i) => {
        const want = build(s);
        if (typeof want === "string") return got[i] === want;
        const bytes = new Uint8Array(got[i]);
        return bytes.length === want.length && bytes.every((b, j) => b === want[j]);
      });
      ws.close(1000);
      resolve({ same, extensions: ws.extensions });
    };
  })`;
}

/**
 * Our side of one connection: the HTTP handshake by `wsAttachServer` itself, or, with
 * `WS_NOHTTP` as the demo does it, by the test (acceptUpgrade with perMessageDeflate,
 * the 101 sent by hand, the negotiation handed over as `negotiatedDeflate`).
 */
async function attach(tcp: Handle, mode: "http" | "nohttp"): Promise<Handle> {
  if (mode === "http") return (await wsAttachServer(tcp, WS_BINARY, soon())).handle;
  const { startLine, headers } = parseHead(await readHead(tcp));
  const [method, target, version] = startLine.split(" ");
  const up = acceptUpgrade({ method, target, version, headers }, {
    perMessageDeflate: wsDeflate({}, "server")!,
  });
  try {
    await bsend(tcp, up.response, soon());
  } catch (e) {
    up.deflate?.release();
    throw e;
  }
  const options = { negotiatedDeflate: up.deflate ?? undefined };
  return (await wsAttachServer(tcp, WS_BINARY | WS_NOHTTP, soon(), options)).handle;
}

for (const mode of ["http", "nohttp"] as const) {
  Deno.test(`deflate + Chromium (${mode}): the offer is accepted; RSV1 both ways`, async () => {
    const { listener, port } = listenLocal();
    const tap = WireTap.start(port);
    const web = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response("<!doctype html><title>deflate</title>", {
          headers: { "content-type": "text/html" },
        }),
    );
    let browser: Browser | undefined;
    let cdp: Cdp | undefined;
    let handle: Handle | undefined;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    let graceful = false;
    try {
      browser = await Browser.launch();
      const devtools = await browser.devtoolsUrl(); // its own start limit
      watchdog = setTimeout(() => browser?.kill(), WATCHDOG_MS);
      cdp = await Cdp.connect(devtools);
      const page = await Page.open(cdp, `http://127.0.0.1:${web.addr.port}/`);
      const result = page.eval(pageScript(tap.port));
      result.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
      handle = await attach((await tcpAccept(listener, soon())).handle, mode);
      await echoBack(handle, SPECS);
      const { same, extensions } = await within(result, STEP_MS, "the page's echoes");
      assert.deepEqual(same, [true, true, true]);
      assert.match(extensions, /^permessage-deflate/);
      assert.match(tap.head("client"), /Sec-WebSocket-Extensions: permessage-deflate/i);
      for (const from of ["client", "server"] as const) {
        const firsts = tap.dataFrames(from).filter((f) => f.opcode !== 0);
        assert.equal(firsts.length, SPECS.length, `${from} data messages`);
        assert.ok(firsts.every((f) => f.rsv === 4), `${from}: ${JSON.stringify(firsts)}`);
      }
      await cdp.call("Browser.close").catch(() => {});
      graceful = true;
    } finally {
      clearTimeout(watchdog);
      closeQuietly(handle);
      closeQuietly(listener);
      if (!graceful) browser?.kill();
      if (cdp) await within(cdp.closed, STEP_MS, "CDP close").catch(() => cdp?.close());
      await browser?.dispose();
      await web.shutdown();
      await tap.close();
    }
  });
}
