/**
 * What a fresh process does the first time it needs a feature whose `node:` module is
 * imported lazily (tests/lazy_modules.test.ts): a codec used before
 * `PerMessageDeflate.ready()`, a WebSocket attach that negotiates compression, and a TLS
 * attach. Prints one JSON line per step; the test checks them.
 *
 * @module
 */

import {
  brecv,
  bsend,
  hclose,
  ipcPair,
  isDillError,
  mrecv,
  msend,
  now,
  PerMessageDeflate,
  tlsAttachClient,
  tlsAttachServer,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
} from "../../mod.ts";
import { CLIENT, SERVER } from "../helpers/tls_fixtures.ts";

const print = (event: string, fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ event, ...fields }));

// A codec used on its own before ready(): a clear error, not a crash.
const params = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};
const codec = new PerMessageDeflate(params, "server", { level: 6, memLevel: 8, threshold: 0 });
try {
  codec.compress(new TextEncoder().encode("hello hello hello"));
  print("codec", { code: null });
} catch (e) {
  print("codec", { code: isDillError(e) ? e.code : String(e), message: String(e) });
} finally {
  codec.close();
}

// The first WebSocket attach of the process, with compression negotiated.
{
  const [a, b] = ipcPair();
  const deadline = now() + 5000;
  const [server, client] = await Promise.all([
    wsAttachServer(a, WS_TEXT, deadline),
    wsAttachClient(b, WS_TEXT, "/", "localhost", deadline),
  ]);
  const text = "compress me ".repeat(400);
  await msend(client.handle, text, deadline);
  await msend(server.handle, await mrecv(server.handle, deadline), deadline);
  const echoed = new TextDecoder().decode(await mrecv(client.handle, deadline));
  print("ws", {
    extensions: client.headers.get("sec-websocket-extensions"),
    echoed: echoed === text,
  });
  hclose(server.handle);
  hclose(client.handle);
}

// The first TLS attach of the process.
{
  const [a, b] = ipcPair();
  const deadline = now() + 5000;
  const [server, client] = await Promise.all([
    tlsAttachServer(a, SERVER, deadline),
    tlsAttachClient(b, CLIENT, deadline),
  ]);
  await bsend(client, new TextEncoder().encode("hello"), deadline);
  const got = new Uint8Array(5);
  await brecv(server, got, deadline);
  print("tls", { received: new TextDecoder().decode(got) });
  hclose(server);
  hclose(client);
}
