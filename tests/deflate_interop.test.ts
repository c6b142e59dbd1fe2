/**
 * permessage-deflate against real peers, both directions, with compression checked on
 * the wire: every connection goes through a {@link WireTap}, which records the 101
 * answer and the RSV1 bit of every frame. Peers: npm `ws` with `perMessageDeflate` (each
 * parameter combination it offers or accepts), Python `websockets` (compression is its
 * default) and Deno's own `WebSocket`, which does not offer it (the clean fallback).
 */

import assert from "node:assert/strict";
import {
  type Handle,
  tcpAccept,
  tcpConnect,
  WS_BINARY,
  wsAttachClient,
  wsAttachServer,
  type WsClientOptions,
} from "../mod.ts";
import {
  assertMessage,
  build,
  closeQuietly,
  describe,
  echoBack,
  fragmentsOf,
  listenLocal,
  sendAndCheckEchoes,
  soon,
  type Spec,
  together,
  within,
} from "./peers/common.ts";
import { NodePeer, NodeServer } from "./peers/node_peer.ts";
import { startPythonPeer } from "./peers/python_peer.ts";
import { WireTap } from "./peers/wire_tap.ts";
import { answered, assertCompressed } from "./helpers/deflate_wire.ts";

const ITEM = '{"id":1042,"user":"alice","tags":["a","b"],"ok":true},';

/** JSON-like text of 1 KiB and 16 KiB, compressible binary, and fragmented forms. */
const DEFLATE_SPECS: Spec[] = [
  { kind: "text", text: ITEM, repeat: 19 },
  { kind: "text", text: ITEM, repeat: 300 },
  { kind: "binary", size: 16 * 1024, seed: 3 },
  { kind: "text", text: ITEM, repeat: 40, split: [ITEM.length * 10, ITEM.length * 10] },
  { kind: "binary", size: 40_000, seed: 8, split: [1000, 20_000] },
];
/** The same, unfragmented (peers whose sending API has no fragments). */
const WHOLE_SPECS: Spec[] = DEFLATE_SPECS.map((s) => ({ ...s, split: undefined }));

// ---- npm ws client → our server ---------------------------------------------------------

/** What `ws` (as a client) offers with these options, and whether our server compresses. */
const NODE_CLIENT_COMBOS: { name: string; pmd: Record<string, unknown>; serverSends?: boolean }[] =
  [
    { name: "defaults", pmd: { threshold: 0 } },
    { name: "serverNoContextTakeover", pmd: { serverNoContextTakeover: true, threshold: 0 } },
    { name: "clientNoContextTakeover", pmd: { clientNoContextTakeover: true, threshold: 0 } },
    { name: "serverMaxWindowBits 10", pmd: { serverMaxWindowBits: 10, threshold: 0 } },
    { name: "clientMaxWindowBits 9", pmd: { clientMaxWindowBits: 9, threshold: 0 } },
    {
      name: "all four",
      pmd: {
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        serverMaxWindowBits: 9,
        clientMaxWindowBits: 11,
        threshold: 0,
      },
    },
    // A 256-byte window: accepted, and we (who cannot compress with it) send plain.
    {
      name: "serverMaxWindowBits 8",
      pmd: { serverMaxWindowBits: 8, threshold: 0 },
      serverSends: false,
    },
  ];

for (const combo of NODE_CLIENT_COMBOS) {
  Deno.test(`deflate interop: ws client (${combo.name}) → our server`, async () => {
    const { listener, port } = listenLocal();
    const tap = WireTap.start(port);
    const peer = NodePeer.connect(`ws://127.0.0.1:${tap.port}/`, undefined, {
      perMessageDeflate: combo.pmd,
    });
    let handle: Handle | undefined;
    try {
      ({ handle } = await wsAttachServer(
        (await tcpAccept(listener, soon())).handle,
        WS_BINARY,
        soon(),
      ));
      await within(peer.opened, "client open");
      const peerSide = async () => {
        for (const spec of DEFLATE_SPECS) {
          await peer.sendFragments(build(spec).type, fragmentsOf(spec));
        }
        for (const spec of DEFLATE_SPECS) {
          assertMessage(await peer.inbox.next("echo"), build(spec), describe(spec));
        }
      };
      await together([echoBack(handle, DEFLATE_SPECS), peerSide()], () => closeQuietly(handle));
      assert.match(answered(tap) ?? "", /^permessage-deflate/);
      assertCompressed(tap, { client: true, server: combo.serverSends ?? true });
    } finally {
      closeQuietly(handle);
      closeQuietly(listener);
      await peer.dispose();
      await tap.close();
    }
  });
}

// ---- our client → npm ws server ---------------------------------------------------------

const NODE_SERVER_COMBOS: {
  name: string;
  server: Record<string, unknown>;
  ours?: WsClientOptions["perMessageDeflate"];
}[] = [
  { name: "ws defaults", server: { threshold: 0 } },
  { name: "ws serverNoContextTakeover", server: { serverNoContextTakeover: true, threshold: 0 } },
  { name: "ws clientNoContextTakeover", server: { clientNoContextTakeover: true, threshold: 0 } },
  { name: "ws serverMaxWindowBits 10", server: { serverMaxWindowBits: 10, threshold: 0 } },
  { name: "ws clientMaxWindowBits 9", server: { clientMaxWindowBits: 9, threshold: 0 } },
  {
    name: "we ask for all four",
    server: { threshold: 0 },
    ours: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 11,
      threshold: 0,
    },
  },
];

for (const combo of NODE_SERVER_COMBOS) {
  Deno.test(`deflate interop: our client → ws server (${combo.name})`, async () => {
    const server = await NodeServer.start([], { perMessageDeflate: combo.server });
    const tap = WireTap.start(server.port);
    let handle: Handle | undefined;
    try {
      const tcp = await tcpConnect({ hostname: "127.0.0.1", port: tap.port }, soon());
      ({ handle } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", soon(), {
        perMessageDeflate: combo.ours ?? { threshold: 0 },
      }));
      const { peer } = await server.sockets.next("server connection");
      await together(
        [sendAndCheckEchoes(handle, WHOLE_SPECS), peer.echo(WHOLE_SPECS.length)],
        () => closeQuietly(handle),
      );
      assert.match(answered(tap) ?? "", /^permessage-deflate/);
      assertCompressed(tap);
    } finally {
      closeQuietly(handle);
      await server.dispose();
      await tap.close();
    }
  });
}

// ---- Python websockets, both directions ------------------------------------------------

/** `--deflate` settings of the Python peers (see py_common.deflate_kwargs). */
const PY_COMBOS: { name: string; deflate: string; compressed: boolean }[] = [
  { name: "its default", deflate: "", compressed: true },
  {
    name: "all four parameters",
    deflate: JSON.stringify({
      server_no_context_takeover: true,
      client_no_context_takeover: true,
      server_max_window_bits: 10,
      client_max_window_bits: 9,
    }),
    compressed: true,
  },
  { name: "compression off", deflate: "off", compressed: false },
];

for (const combo of PY_COMBOS) {
  Deno.test(`deflate interop: python client (${combo.name}) → our server`, async () => {
    const { listener, port } = listenLocal();
    const tap = WireTap.start(port);
    const py = startPythonPeer("py_client.py", [
      `ws://127.0.0.1:${tap.port}/`,
      "echo",
      "--specs",
      JSON.stringify(DEFLATE_SPECS),
      "--deflate",
      combo.deflate,
    ]);
    let handle: Handle | undefined;
    try {
      const tcp = (await tcpAccept(listener, soon())).handle;
      ({ handle } = await wsAttachServer(tcp, WS_BINARY, soon()));
      await py.event("open");
      await echoBack(handle, DEFLATE_SPECS);
      const report = await py.event("echoes");
      assert.deepEqual(report.mismatches, []);
      await py.expectSuccess();
      if (combo.compressed) assert.match(answered(tap) ?? "", /^permessage-deflate/);
      else assert.equal(answered(tap), null);
      assertCompressed(tap, { client: combo.compressed, server: combo.compressed });
    } finally {
      closeQuietly(handle);
      closeQuietly(listener);
      await py.dispose();
      await tap.close();
    }
  });

  Deno.test(`deflate interop: our client → python server (${combo.name})`, async () => {
    const py = startPythonPeer("py_echo_server.py", ["--deflate", combo.deflate]);
    let tap: WireTap | undefined;
    let handle: Handle | undefined;
    try {
      const { port } = await py.event("listening");
      tap = WireTap.start(port as number);
      const tcp = await tcpConnect({ hostname: "127.0.0.1", port: tap.port }, soon());
      ({ handle } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", soon(), {
        perMessageDeflate: { threshold: 0 },
      }));
      await py.event("open");
      await sendAndCheckEchoes(handle, DEFLATE_SPECS);
      if (combo.compressed) assert.match(answered(tap) ?? "", /^permessage-deflate/);
      else assert.equal(answered(tap), null);
      assertCompressed(tap, { client: combo.compressed, server: combo.compressed });
      closeQuietly(handle);
      await py.event("closed");
      await py.expectSuccess();
    } finally {
      closeQuietly(handle);
      await py.dispose();
      await tap?.close();
    }
  });
}

// ---- Deno's WebSocket: no offer, clean fallback -----------------------------------------

Deno.test("deflate interop: Deno's WebSocket → our server runs uncompressed", async () => {
  const { listener, port } = listenLocal();
  const tap = WireTap.start(port);
  const ws = new WebSocket(`ws://127.0.0.1:${tap.port}/`);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  let handle: Handle | undefined;
  try {
    ({ handle } = await wsAttachServer(
      (await tcpAccept(listener, soon())).handle,
      WS_BINARY,
      soon(),
    ));
    await new Promise((resolve) =>
      ws.readyState === WebSocket.OPEN ? resolve(0) : ws.onopen = resolve
    );
    const text = build(DEFLATE_SPECS[1]).data as string;
    const echoed = new Promise<string>((resolve) => ws.onmessage = (e) => resolve(e.data));
    ws.send(text);
    await echoBack(handle, [DEFLATE_SPECS[1]]);
    assert.equal(await within(echoed, "echo at Deno's WebSocket"), text);
    assert.equal(answered(tap), null);
    assert.doesNotMatch(tap.head("client"), /sec-websocket-extensions/i);
    assertCompressed(tap, { client: false, server: false });
  } finally {
    ws.close();
    await within(closed, "Deno WebSocket close");
    closeQuietly(handle);
    closeQuietly(listener);
    await tap.close();
  }
});

Deno.test("deflate interop: our client → Deno.upgradeWebSocket ignores the offer", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  });
  const tap = WireTap.start(server.addr.port);
  let handle: Handle | undefined;
  try {
    const tcp = await tcpConnect({ hostname: "127.0.0.1", port: tap.port }, soon());
    ({ handle } = await wsAttachClient(tcp, WS_BINARY, "/", "127.0.0.1", soon(), {
      perMessageDeflate: { threshold: 0 },
    }));
    await sendAndCheckEchoes(handle, WHOLE_SPECS.slice(0, 3));
    assert.match(tap.head("client"), /Sec-WebSocket-Extensions: permessage-deflate/);
    assert.equal(answered(tap), null);
    assertCompressed(tap, { client: false, server: false });
  } finally {
    closeQuietly(handle);
    await server.shutdown();
    await tap.close();
  }
});
