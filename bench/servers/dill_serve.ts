/**
 * Echo server on our `Deno.serve` entry point (`@dill/ws/serve`, what a Deno Deploy
 * service uses): `Deno.serve` + `wsUpgrade`, then the same echo loop as our stack's
 * server (`wsRecv`/`wsSend`, the message type kept). Deno's own WebSocket does the
 * framing underneath, so against `deno_native.ts` this measures what the handle and its
 * calls cost. With `--tls <cert.pem> <key.pem>`, `Deno.serve` gets the certificate and
 * key (wss). Prints its port when ready.
 *
 * @module
 */

import {
  type Handle,
  hclose,
  isDillError,
  WS_BINARY,
  wsRecv,
  wsSend,
  wsUpgrade,
} from "../../serve.ts";
import { announcePort, Endings, exitOnStdinEnd } from "./lifecycle.ts";
import { tlsFromArgs } from "./tls_args.ts";

const endings = new Endings();
exitOnStdinEnd(endings);
const tls = tlsFromArgs(Deno.args);

async function echo(ws: Handle): Promise<void> {
  try {
    for (;;) {
      const message = await wsRecv(ws, -1);
      await wsSend(ws, message.type, message.data, -1);
    }
  } catch (e) {
    endings.add(isDillError(e) ? e.code : String(e));
  } finally {
    hclose(ws);
  }
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  ...(tls ?? {}),
  onListen: ({ port }) => announcePort(port),
}, (req) => {
  const { response, handle } = wsUpgrade(req, WS_BINARY); // each echo keeps its own type
  echo(handle);
  return response;
});
