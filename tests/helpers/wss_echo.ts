/**
 * A wss echo between Deno's built-in `WebSocket` client and one of our WebSocket server
 * stacks over TLS: our side echoes every message until the client closes, the client
 * checks each echo and the close. The stack under our server is the test's business.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Handle, hclose, now, type WsMessage, wsRecv, wsSend, wsStatus } from "../../mod.ts";
import { CA } from "./tls_fixtures.ts";
import { rejectsWith, within } from "./transports.ts";

/** How long each step of the client's side may take. */
const STEP_MS = 5000;

/**
 * Echoes every message with its type until the peer closes (waiting up to `idleMs` for
 * each one); returns the peer's close status.
 */
export async function echoUntilClosed(
  h: Handle,
  idleMs: number,
): Promise<{ status: number; reason: string }> {
  try {
    for (;;) {
      const m: WsMessage = await wsRecv(h, now() + idleMs);
      await wsSend(h, m.type, m.data, now() + STEP_MS);
    }
  } catch (e) {
    await rejectsWith(Promise.reject(e), "EPIPE");
    return wsStatus(h);
  } finally {
    hclose(h);
  }
}

/**
 * Deno's `WebSocket` client talks to our server at `url` (a `wss://localhost:…` URL; the
 * test CA is trusted in-process through `Deno.createHttpClient`): `text`, then `binary`,
 * each echoed back; then a close with 1000 "bye", seen by the client as code 1000 and by
 * our side, whose `serving` resolves to the client's close status.
 */
export async function denoClientEchoes(
  url: string,
  serving: Promise<{ status: number; reason: string }>,
  text: string,
  binary: Uint8Array,
): Promise<void> {
  const client = Deno.createHttpClient({ caCerts: [CA] });
  try {
    const ws = new WebSocket(url, { client });
    ws.binaryType = "arraybuffer";
    const inbox: (string | ArrayBuffer)[] = [];
    const waiters: (() => void)[] = [];
    ws.onmessage = (e) => {
      inbox.push(e.data);
      waiters.shift()?.();
    };
    const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
    const next = () =>
      within(
        new Promise<string | ArrayBuffer>((resolve) => {
          if (inbox.length > 0) return resolve(inbox.shift()!);
          waiters.push(() => resolve(inbox.shift()!));
        }),
        STEP_MS,
        "echo from our server",
      );
    await within(
      new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = (e) => reject(new Error((e as ErrorEvent).message));
      }),
      STEP_MS,
      "wss open",
    );
    ws.send(text);
    assert.equal(await next(), text);
    ws.send(binary);
    assert.deepEqual(new Uint8Array(await next() as ArrayBuffer), binary);
    ws.close(1000, "bye");
    assert.equal((await within(closed, STEP_MS, "close event")).code, 1000);
    assert.deepEqual(await within(serving, STEP_MS, "server side"), {
      status: 1000,
      reason: "bye",
    });
  } finally {
    client.close();
  }
}
