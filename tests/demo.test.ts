/**
 * The chat demo (examples/demo.ts) end to end over real TCP: the page, 404, the chat room
 * with Deno's own WebSocket client, a frame sent right behind the request head, refused
 * upgrades, the 1009 size limit, and stop() closing everybody with 1001.
 */

import assert from "node:assert/strict";
import { type Demo, type DemoMode, startDemo } from "../examples/demo.ts";
import { encodeFrame, Opcode } from "../protocol/frame.ts";
import { HttpHeadReader } from "../protocol/http11.ts";
import { Receiver, type ReceiverEvent } from "../protocol/receiver.ts";
import { wsRequestKey } from "../protocol/handshake_keys.ts";
import { ChatClient } from "./helpers/chat_client.ts";
import { within } from "./helpers/transports.ts";

/** Both ways the demo takes connections: its own HTTP on tcpListen, and Deno.serve. */
const MODES: DemoMode[] = ["tcp", "serve"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs `fn` against a fresh demo on a free port, and always stops it. */
async function withDemo(
  fn: (demo: Demo, log: string[]) => Promise<void>,
  mode: DemoMode = "tcp",
  options: { maxConnections?: number } = {},
): Promise<void> {
  const log: string[] = [];
  const demo = await startDemo({ port: 0, mode, log: (line) => log.push(line), ...options });
  try {
    await fn(demo, log);
  } finally {
    await demo.stop();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Sends `request` on a raw connection and reads the whole answer, up to the server's close. */
async function rawExchange(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, encoder.encode(request));
    const answer = new Response(conn.readable).text();
    return await within(answer, 3000, "the server did not answer and close");
  } finally {
    try {
      conn.close();
    } catch {
      // The readable stream already closed it.
    }
  }
}

function upgradeRequest(port: number, version = "13"): string {
  return `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${wsRequestKey()}\r\n` +
    `Sec-WebSocket-Version: ${version}\r\n\r\n`;
}

for (const mode of MODES) {
  Deno.test(`demo (${mode}): GET / serves the chat page`, async () => {
    await withDemo(async (demo, log) => {
      const response = await fetch(`http://127.0.0.1:${demo.port}/`);
      const page = await response.text();
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(page, /<script>/);
      assert.match(page, /new WebSocket\(scheme \+ location\.host \+ "\/ws" \+ location\.search\)/);
      assert.doesNotMatch(page, /(src|href)="https?:/, "no external resources");
      assert.match(log.join("\n"), /GET \/ -> 200/);
    }, mode);
  });
}

for (const mode of MODES) {
  Deno.test(`demo (${mode}): other paths get 404, other methods on / get 405`, async () => {
    await withDemo(async (demo) => {
      const missing = await fetch(`http://127.0.0.1:${demo.port}/nope?x=1`);
      assert.equal(missing.status, 404);
      assert.equal(await missing.text(), "not found\n");
      const post = await fetch(`http://127.0.0.1:${demo.port}/`, { method: "POST", body: "" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
      const head = await fetch(`http://127.0.0.1:${demo.port}/`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
    }, mode);
  });
}

for (const mode of MODES) {
  Deno.test(`demo (${mode}): two clients chat; text is broadcast to both; join and leave notices`, async () => {
    await withDemo(async (demo, log) => {
      const a = await ChatClient.join(demo.port);
      const b = await ChatClient.join(demo.port);
      assert.match(a.name, /^guest-\d+$/);
      assert.notEqual(a.name, b.name);
      assert.deepEqual(b.events[0].online.sort(), [a.name, b.name].sort());
      await a.next((e) => e.kind === "join" && e.name === b.name);

      a.send("hello, room");
      const said = { kind: "chat", from: a.name, text: "hello, room" };
      assert.deepEqual(await a.next((e) => e.kind === "chat"), said);
      assert.deepEqual(await b.next((e) => e.kind === "chat"), said);

      b.send("héllo ✓ 👋");
      await a.next((e) => e.kind === "chat" && e.from === b.name && e.text === "héllo ✓ 👋");

      b.close(1000);
      const bClosed = await within(b.closed, 3000, "b's close");
      assert.equal(bClosed.code, 1000, "the server echoes the client's close");
      assert.equal(bClosed.wasClean, true);
      await a.next((e) => e.kind === "leave" && e.name === b.name);
      assert.match(log.join("\n"), new RegExp(`joined lobby as ${a.name}`));

      await demo.stop();
      const aClosed = await within(a.closed, 3000, "a's close");
      assert.equal(aClosed.code, 1001);
    }, mode);
  });
}

for (const mode of MODES) {
  Deno.test(`demo (${mode}): stop() closes every client with 1001 and stops listening`, async () => {
    const demo = await startDemo({ port: 0, mode, log: () => {} });
    const clients = [await ChatClient.join(demo.port), await ChatClient.join(demo.port)];
    await within(demo.stop(), 5000, "stop()");
    for (const c of clients) {
      const closed = await within(c.closed, 3000, "client close");
      assert.equal(closed.code, 1001);
      assert.equal(closed.reason, "server shutting down");
      assert.equal(closed.wasClean, true);
    }
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: demo.port }));
    await demo.stop(); // a second stop is harmless
  });
}

Deno.test("demo (tcp): a frame sent right behind the request head stays in the stream", async () => {
  // The demo reads the head one byte at a time with brecv precisely so that this works.
  await withDemo(async (demo) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: demo.port });
    try {
      const frame = encodeFrame(Opcode.TEXT, encoder.encode("early bird"), { masked: true });
      await writeAll(
        conn,
        new Uint8Array([...encoder.encode(upgradeRequest(demo.port)), ...frame[0]]),
      );
      const events = readServer(conn);
      const head = await within(events.head, 3000, "101 answer");
      assert.equal(head.status, 101);
      const got: ReceiverEvent[] = [];
      for (;;) {
        const ev = await within(events.next(), 3000, "server frames");
        got.push(ev);
        if (ev.type === "message" && decoder.decode(ev.data).includes("early bird")) break;
      }
      const texts = got.map((ev) =>
        ev.type === "message" ? JSON.parse(decoder.decode(ev.data)) : ev
      );
      assert.equal(texts[0].kind, "welcome");
      assert.deepEqual(texts.at(-1), { kind: "chat", from: texts[0].name, text: "early bird" });
      // Close cleanly: our close frame, the server's echo, then the server closes TCP first.
      const close = encodeFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]), { masked: true });
      await writeAll(conn, close[0]);
      assert.deepEqual(await within(events.next(), 3000, "close echo"), {
        type: "close",
        code: 1000,
        reason: "",
      });
      assert.equal(await within(events.end, 3000, "server's FIN"), true);
    } finally {
      conn.close();
    }
  });
});

/** Reads a server's answer: the HTTP head, then WebSocket frames, then the end of stream. */
function readServer(conn: Deno.Conn) {
  const headReader = new HttpHeadReader("response");
  const frames = new Receiver({ role: "client", maxMessageSize: 1 << 20 });
  let resolveHead!: (h: { status: number }) => void;
  const head = new Promise<{ status: number }>((resolve) => resolveHead = resolve);
  let wake: () => void = () => {};
  let ended = false;
  const end = (async () => {
    const buf = new Uint8Array(4096);
    let inHead = true;
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      let chunk: Uint8Array = buf.slice(0, n);
      if (inHead) {
        const done = headReader.feed(chunk);
        if (!done) continue;
        inHead = false;
        resolveHead(done.head);
        chunk = done.rest;
      }
      frames.feed(chunk);
      wake();
    }
    ended = true;
    wake();
    return true;
  })();
  const next = async (): Promise<ReceiverEvent> => {
    for (;;) {
      const ev = frames.next();
      if (ev) return ev;
      if (ended) throw new Error("the server closed the connection");
      await new Promise<void>((resolve) => wake = resolve);
    }
  };
  return { head, next, end };
}

Deno.test("demo (tcp): a bad upgrade gets the handshake's HTTP error", async () => {
  await withDemo(async (demo) => {
    const v12 = await rawExchange(demo.port, upgradeRequest(demo.port, "12"));
    assert.match(v12, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(v12, /\r\nSec-WebSocket-Version: 13\r\n/);
    const plain = await rawExchange(demo.port, `GET /ws HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(plain, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const foreign = upgradeRequest(demo.port).replace(
      "\r\n\r\n",
      "\r\nOrigin: http://evil.example\r\n\r\n",
    );
    assert.match(await rawExchange(demo.port, foreign), /^HTTP\/1\.1 403 /);
    const garbage = await rawExchange(demo.port, "GET / HTTP/1.1\nHost: x\n\n");
    assert.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/, "bare LF is refused");
  });
});

Deno.test("demo (tcp): maxConnections holds further clients in the kernel's queue until one leaves", async () => {
  await withDemo(
    async (demo) => {
      const silent = [];
      for (let i = 0; i < 2; i++) {
        silent.push(await Deno.connect({ hostname: "127.0.0.1", port: demo.port }));
      }
      try {
        const waiting = fetch(`http://127.0.0.1:${demo.port}/`, {
          signal: AbortSignal.timeout(400),
        });
        await assert.rejects(waiting, (e: Error) => e.name === "TimeoutError");
        silent.shift()!.close();
        const page = await fetch(`http://127.0.0.1:${demo.port}/`);
        assert.equal(page.status, 200);
        await page.body?.cancel();
      } finally {
        for (const c of silent) c.close();
      }
    },
    "tcp",
    { maxConnections: 2 },
  );
});

Deno.test("demo (tcp): HTTP/1.1 without Host is 400; HEAD gets the page's head alone", async () => {
  await withDemo(async (demo) => {
    const noHost = await rawExchange(demo.port, "GET / HTTP/1.1\r\n\r\n");
    assert.match(noHost, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const get = await rawExchange(demo.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const head = await rawExchange(demo.port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(head, get.slice(0, get.indexOf("\r\n\r\n") + 4), "the same head, no body");
    const post = await rawExchange(demo.port, "POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(post, /^HTTP\/1\.1 405 [^]*\r\nAllow: GET, HEAD\r\n/);
  });
});

for (const mode of MODES) {
  Deno.test(`demo (${mode}): a message above the 4 KiB limit is refused with close 1009`, async () => {
    await withDemo(async (demo) => {
      const a = await ChatClient.join(demo.port);
      a.send("x".repeat(5000));
      const closed = await within(a.closed, 3000, "close 1009");
      assert.equal(closed.code, 1009);
    }, mode);
  });
}

for (const mode of MODES) {
  Deno.test(`demo (${mode}): rooms are separate; the welcome names the room`, async () => {
    await withDemo(async (demo) => {
      const a = await ChatClient.join(demo.port, "kitchen");
      const b = await ChatClient.join(demo.port, "garden");
      const c = await ChatClient.join(demo.port, "kitchen");
      assert.equal(a.events[0].room, "kitchen");
      assert.equal(b.events[0].room, "garden");
      assert.deepEqual(b.events[0].online, [b.name]);
      assert.deepEqual(c.events[0].online.sort(), [a.name, c.name].sort());
      a.send("in the kitchen");
      b.send("in the garden");
      await c.next((e) => e.kind === "chat" && e.text === "in the kitchen");
      await b.next((e) => e.kind === "chat" && e.text === "in the garden");
      a.send("done");
      await c.next((e) => e.kind === "chat" && e.text === "done");
      assert.equal(c.events.some((e) => e.text === "in the garden"), false);
      assert.equal(b.events.some((e) => e.kind === "join"), false, "nobody joined the garden");
      for (const x of [a, b, c]) x.close(1000);
      await Promise.all([a, b, c].map((x) => within(x.closed, 3000, "close")));
    }, mode);
  });
}

for (const mode of MODES) {
  Deno.test(`demo (${mode}): a bad room name is refused with 400 before the upgrade`, async () => {
    await withDemo(async (demo) => {
      for (const room of ["No%20Way", "a".repeat(33), ""]) {
        const refused = await fetch(`http://127.0.0.1:${demo.port}/ws?room=${room}`);
        assert.equal(refused.status, 400);
        assert.equal(await refused.text(), "room names are a-z, 0-9 and -, at most 32\n");
      }
    }, mode);
  });
}
