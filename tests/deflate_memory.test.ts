// Memory of permessage-deflate, measured: the zlib state a connection keeps (what the
// README documents in KiB), and the process-wide budget holding 10,000 connections that
// all compress and inflate at once. Native zlib memory shows in RSS, not in the JS heap,
// so the measure is RSS minus the heap, after a collection.
import assert from "node:assert/strict";
import { DeflateBudget } from "../protocol/deflate_budget.ts";
import { PerMessageDeflate } from "../protocol/deflate_codec.ts";
import { acceptUpgrade } from "../protocol/handshake.ts";
import { resolveDeflateOptions } from "../protocol/permessage_deflate.ts";
import { collectGarbage } from "./helpers/memory.ts";

// The codecs here are used on their own, not through an attach that loads zlib.
await PerMessageDeflate.ready();

/** Native (non-heap) memory of the process now. */
function nativeBytes(): number {
  collectGarbage();
  const m = Deno.memoryUsage();
  return m.rss - m.heapTotal;
}

/** A 1 KiB JSON-like message, different per call (so nothing is shared). */
function message(seed: number): Uint8Array {
  const items = [];
  for (let i = 0; items.join().length < 900; i++) {
    items.push({ id: seed * 100 + i, name: `user-${seed}-${i}`, active: i % 3 === 0 });
  }
  return new TextEncoder().encode(JSON.stringify(items));
}

function request(offer: string) {
  const headers = new Headers({
    Host: "example.com",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Extensions": offer,
  });
  return { method: "GET", target: "/", version: "HTTP/1.1", headers };
}

Deno.test({
  name: "memory: 10,000 connections compressing at once stay within the budget",
  fn() {
    const budget = new DeflateBudget(8 * 1024 * 1024);
    const options = resolveDeflateOptions({ threshold: 0 });
    const peerParams = {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    const peer = new PerMessageDeflate(peerParams, "client", { ...options, threshold: 0 });
    const fromPeer = peer.compress(message(1))!;
    const codecs: PerMessageDeflate[] = [];
    let kept = 0;
    const before = nativeBytes();
    for (let i = 0; i < 10_000; i++) {
      const up = acceptUpgrade(request("permessage-deflate; client_max_window_bits"), {
        perMessageDeflate: { options, budget },
      });
      const { params } = up.deflate!;
      if (!params.serverNoContextTakeover) kept++;
      const codec = new PerMessageDeflate(params, "server", options, budget);
      // Every connection compresses and inflates: the kept ones allocate their windows.
      assert.notEqual(codec.compress(message(i)), null);
      assert.ok(codec.inflate(fromPeer, 1 << 20) instanceof Uint8Array);
      codecs.push(codec);
    }
    const grown = nativeBytes() - before;
    console.log(
      `10,000 connections: ${kept} keep windows, native memory grew ${
        (grown / 1024 / 1024).toFixed(1)
      } MiB for a budget of 8 MiB`,
    );
    assert.ok(kept > 0 && kept < 100, `${kept}`);
    assert.ok(budget.reserved <= budget.maxBytes);
    // The budget, plus the JS objects of 10,000 connections and allocator slack.
    assert.ok(grown < 8 * 1024 * 1024 * 1.25 + 16 * 1024 * 1024, `${grown}`);
    for (const codec of codecs) codec.close();
    peer.close();
    assert.equal(budget.reserved, 0);
  },
});

Deno.test({
  name: "memory: a connection with context takeover keeps at most what it reserves",
  fn() {
    for (const [bits, memLevel] of [[12, 5], [15, 8]]) {
      const params = {
        serverNoContextTakeover: false,
        clientNoContextTakeover: false,
        serverMaxWindowBits: bits,
        clientMaxWindowBits: bits,
      };
      const settings = { level: 6, memLevel, threshold: 0 };
      const peer = new PerMessageDeflate(params, "client", settings);
      const packed = peer.compress(message(0))!;
      const count = 200;
      const codecs: PerMessageDeflate[] = [];
      const before = nativeBytes();
      for (let i = 0; i < count; i++) {
        const codec = new PerMessageDeflate(params, "server", settings);
        codec.compress(message(i));
        codec.inflate(packed, 1 << 20);
        codecs.push(codec);
      }
      const perConnection = (nativeBytes() - before) / count;
      const reserved = PerMessageDeflate.reservation(params, "server", memLevel);
      console.log(
        `window ${bits} bits, memLevel ${memLevel}: measured ${
          (perConnection / 1024).toFixed(1)
        } KiB per connection, reserved ${(reserved / 1024).toFixed(1)} KiB`,
      );
      assert.ok(perConnection <= reserved * 1.25, `${perConnection} > ${reserved}`);
      for (const codec of codecs) codec.close();
      peer.close();
    }
  },
});
