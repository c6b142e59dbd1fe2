/**
 * A read full of small compressed messages must not be inflated all at once: the WS actor
 * holds parsing while its inbox is over `maxBufferedBytes` (or `maxQueuedMessages`), so a
 * peer's 256 KiB of deflate bombs costs about one inflated message at a time (as the
 * application takes them), not the read size times the compression ratio. The attack is real: raw TCP, 64 messages of
 * 4 MiB each compressed to about 4 KiB, written in one burst.
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  hclose,
  mrecv,
  now,
  tcpAccept,
  tcpListen,
  tcpLocalAddr,
  WS_BINARY,
  wsAttachServer,
} from "../mod.ts";
import { concat } from "./helpers/raw_peer/bytes.ts";
import { frame } from "./helpers/raw_peer/frames.ts";
import { upgradeRequest } from "./helpers/raw_peer/handshake.ts";
import { retainedExternal } from "./helpers/memory.ts";

const MIB = 1024 * 1024;

Deno.test("attack/ws actor: one read full of compressed messages is not inflated all at once", async () => {
  const full = new Uint8Array(
    zlib.deflateRawSync(new Uint8Array(4 * MIB - 64), { finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  );
  const bomb = frame({ opcode: 2, rsv: 4, payload: full.subarray(0, full.length - 4), mask: true });
  const ls = tcpListen({ hostname: "127.0.0.1", port: 0 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcpLocalAddr(ls).port });
  const accepted = await tcpAccept(ls, now() + 2000);
  hclose(ls);
  await conn.write(
    upgradeRequest({ headers: { "Sec-WebSocket-Extensions": "permessage-deflate" } }),
  );
  const ws = (await wsAttachServer(accepted.handle, WS_BINARY, now() + 2000)).handle;
  try {
    await conn.read(new Uint8Array(1024)); // the 101 answer
    const before = retainedExternal();
    await conn.write(concat(...Array.from({ length: 64 }, () => bomb)));
    // The application does not read yet: whatever was inflated stays held by the socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const held = (retainedExternal() - before) / MIB;
    assert.ok(held < 12, `${held.toFixed(0)} MiB held for the unread messages`);
    for (let got = 0; got < 64; got++) {
      const message = await mrecv(ws, now() + 5000);
      assert.equal(message.length, 4 * MIB - 64);
    }
  } finally {
    hclose(ws);
    conn.close();
  }
});
