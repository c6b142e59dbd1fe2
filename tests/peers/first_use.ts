/**
 * What a fresh process does the first time it needs a feature whose `node:` module is
 * imported lazily (tests/lazy_modules.test.ts). Its argument picks one case, so that each
 * runs in a process where nothing loaded the module before; the peer is written by hand
 * (raw bytes over an `ipcPair`), so that only the side under test can load it. Prints one
 * JSON line with what it saw.
 *
 * @module
 */

import {
  brecv,
  bsend,
  DeflateBudget,
  hclose,
  ipcPair,
  isDillError,
  mrecv,
  msend,
  now,
  PerMessageDeflate,
  tlsAttachClient,
  tlsAttachServer,
  WS_NOHTTP,
  WS_TEXT,
  wsAcceptUpgrade,
  wsAttachClient,
  wsAttachServer,
} from "../../mod.ts";
import type { Handle } from "../../mod.ts";
import { zlibLoaded } from "../../protocol/zlib_sync.ts";
import { CLIENT, SERVER } from "../helpers/tls_fixtures.ts";

const print = (fields: Record<string, unknown>) => console.log(JSON.stringify(fields));
const text = new TextEncoder();
const deadline = () => now() + 5000;
/** "Hello" compressed, as in RFC 7692 section 7.2.3.1. */
const HELLO_DEFLATED = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
/** A client's compressed text frame of "Hello", masked with the key 0 (bytes unchanged). */
const MASKED_HELLO = new Uint8Array([0xc1, 0x80 | 7, 0, 0, 0, 0, ...HELLO_DEFLATED]);
/** The same from a server: unmasked. */
const SERVER_HELLO = new Uint8Array([0xc1, 7, ...HELLO_DEFLATED]);
const OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/** Reads an HTTP head byte by byte (up to its blank line). */
async function readHead(h: Handle): Promise<string> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  while (!(bytes.length >= 4 && bytes.slice(-4).join() === "13,10,13,10")) {
    await brecv(h, one, deadline());
    bytes.push(one[0]);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Reads one frame's first byte and skips the rest; returns that byte. */
async function readFrameStart(h: Handle): Promise<number> {
  const head = new Uint8Array(2);
  await brecv(h, head, deadline());
  let length = head[1] & 0x7f;
  if (length === 126) {
    const ext = new Uint8Array(2);
    await brecv(h, ext, deadline());
    length = (ext[0] << 8) | ext[1];
  }
  await brecv(h, new Uint8Array(length), deadline());
  return head[0];
}

function upgradeRequest(offer: boolean): Uint8Array {
  return text.encode(
    "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
      (offer ? OFFER : "") + "\r\n",
  );
}

const cases: Record<string, () => Promise<void> | void> = {
  /** A codec used on its own before ready(): a clear error, not a crash. */
  codec() {
    const params = {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    const codec = new PerMessageDeflate(params, "server", { level: 6, memLevel: 8, threshold: 0 });
    try {
      codec.compress(text.encode("hello hello hello"));
      print({ code: null });
    } catch (e) {
      print({ code: isDillError(e) ? e.code : String(e), message: String(e) });
    } finally {
      codec.close();
    }
  },

  /** Our server, the first attach of the process; a raw client offers compression. */
  async server() {
    const [a, b] = ipcPair();
    const attached = wsAttachServer(a, WS_TEXT, deadline());
    await bsend(b, upgradeRequest(true), deadline());
    const head = await readHead(b);
    const { handle } = await attached;
    await bsend(b, MASKED_HELLO, deadline());
    const got = new TextDecoder().decode(await mrecv(handle, deadline()));
    await msend(handle, "compress me ".repeat(40), deadline());
    const first = await readFrameStart(b);
    print({
      extensions: /sec-websocket-extensions: ([^\r]*)/i.exec(head)?.[1] ?? null,
      received: got,
      sentCompressed: (first & 0x40) !== 0,
    });
    hclose(handle);
    hclose(b);
  },

  /** Our client, the first attach of the process; a raw server accepts compression. */
  async client() {
    const [a, b] = ipcPair();
    const attached = wsAttachClient(b, WS_TEXT, "/", "localhost", deadline());
    const request = await readHead(a);
    const key = /sec-websocket-key: ([^\r]*)/i.exec(request)![1];
    const digest = await crypto.subtle.digest(
      "SHA-1",
      text.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await bsend(
      a,
      text.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
      ),
      deadline(),
    );
    const { handle } = await attached;
    await bsend(a, SERVER_HELLO, deadline());
    print({
      offered: /sec-websocket-extensions: permessage-deflate/i.test(request),
      received: new TextDecoder().decode(await mrecv(handle, deadline())),
    });
    hclose(handle);
    hclose(a);
  },

  /** A handshake done by wsAcceptUpgrade, then a WS_NOHTTP attach with its deflate. */
  async nohttp() {
    const headers = new Headers({
      Host: "localhost",
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Extensions": "permessage-deflate",
    });
    const up = wsAcceptUpgrade(
      { method: "GET", target: "/", version: "HTTP/1.1", headers },
      { perMessageDeflate: true },
    );
    const [a, b] = ipcPair();
    const { handle } = await wsAttachServer(a, WS_NOHTTP | WS_TEXT, deadline(), {
      negotiatedDeflate: up.deflate!,
    });
    await bsend(b, MASKED_HELLO, deadline());
    print({ received: new TextDecoder().decode(await mrecv(handle, deadline())) });
    hclose(handle);
    hclose(b);
  },

  /** WS_NOHTTP with nothing negotiated cannot compress: zlib stays unloaded. */
  async "nohttp-plain"() {
    const [a, b] = ipcPair();
    const [s, c] = await Promise.all([
      wsAttachServer(a, WS_NOHTTP, deadline()),
      wsAttachClient(b, WS_NOHTTP, "", "", deadline()),
    ]);
    await msend(c.handle, new Uint8Array(300), deadline());
    const got = await mrecv(s.handle, deadline());
    print({ received: got.length, zlibLoaded: zlibLoaded() });
    hclose(s.handle);
    hclose(c.handle);
  },

  /**
   * The signal aborts while the first attaches wait for zlib: ECANCELED, their handles
   * untouched (still usable), no reservation left behind.
   */
  async abort() {
    const [a, b] = ipcPair();
    const server = new AbortController();
    const client = new AbortController();
    const attaches = [
      wsAttachServer(a, 0, { signal: server.signal }),
      wsAttachClient(b, 0, "/", "localhost", { signal: client.signal }),
    ];
    server.abort();
    client.abort();
    const codes = [];
    for (const p of attaches) codes.push(await p.then(() => "attached", (e) => e.code));
    // Both handles are still plain bytestreams.
    await bsend(b, text.encode("ok"), deadline());
    const two = new Uint8Array(2);
    await brecv(a, two, deadline());
    print({
      codes,
      stillUsable: new TextDecoder().decode(two),
      reserved: DeflateBudget.shared.reserved,
    });
    hclose(a);
    hclose(b);
  },

  /** The first TLS attach of the process. */
  async tls() {
    const [a, b] = ipcPair();
    const [server, client] = await Promise.all([
      tlsAttachServer(a, SERVER, deadline()),
      tlsAttachClient(b, CLIENT, deadline()),
    ]);
    await bsend(client, text.encode("hello"), deadline());
    const got = new Uint8Array(5);
    await brecv(server, got, deadline());
    print({ received: new TextDecoder().decode(got) });
    hclose(server);
    hclose(client);
  },
};

const run = cases[Deno.args[0]];
if (!run) throw new Error(`first_use.ts: unknown case ${Deno.args[0]}`);
await run();
