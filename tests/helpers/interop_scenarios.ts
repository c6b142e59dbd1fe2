/**
 * The interop scenarios every real peer runs, in both directions: a table of client
 * scenarios (the peer's client against our server) and one of server scenarios (our
 * client against the peer's server). Each `tests/interop_*.test.ts` file registers them
 * for its peer through its adapters (`interop_peers.ts`); a scenario a peer cannot run
 * (Deno's WebSocket API sends neither fragments nor pings) is left out by the adapter's
 * fields, and the test names say which peer ran.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Handle,
  mrecv,
  mrecvText,
  msend,
  tcpAccept,
  tcpConnect,
  WS_BINARY,
  WS_NOHTTP,
  WS_TEXT,
  wsAttachClient,
  wsAttachServer,
  wsDone,
  wsRecv,
  wsStatus,
} from "../../mod.ts";
import {
  acceptWs,
  assertMessage,
  build,
  closeQuietly,
  connectWs,
  describe,
  ECHO_SPECS,
  echoBack,
  handmadeClientUpgrade,
  handmadeServerUpgrade,
  listenLocal,
  rejectsWith,
  sendAndCheckEchoes,
  soon,
  type Spec,
  together,
} from "../peers/common.ts";
import {
  type ClientPeer,
  type ClientPeerKind,
  type ClientScript,
  type CloseReport,
  LAST_WORDS,
  OUR_CLOSE,
  PEER_CLOSE,
  PING_TEXT,
  type ServerConnection,
  type ServerPeer,
  type ServerPeerKind,
} from "./interop_peers.ts";

/** What the `WS_NOHTTP` scenarios exchange: text and binary. */
const RAW_SPECS: Spec[] = [
  { kind: "text", text: "über raw ✓" },
  { kind: "binary", size: 300, seed: 8 },
];

/** What the subprotocol scenarios exchange once "b" is agreed. */
const ON_B: Spec = { kind: "text", text: "on b" };

/** After the peer closed: receiving fails with EPIPE and wsStatus reports its close. */
async function assertPeerClosed(h: Handle, close: CloseReport): Promise<void> {
  await rejectsWith(mrecv(h, soon()), "EPIPE");
  assert.deepEqual(await wsStatus(h), { status: close.code, reason: close.reason });
}

/** Our handles of one scenario: closed (last first) when it ends, however it ends. */
class Owned {
  readonly #handles: Handle[] = [];

  /** Keeps `h` to close at the end; returns it. */
  add(h: Handle): Handle {
    this.#handles.push(h);
    return h;
  }

  closeAll(): void {
    for (const h of this.#handles.splice(0).reverse()) closeQuietly(h);
  }
}

// ---- the peer's client → our server ---------------------------------------------

interface ClientContext {
  kind: ClientPeerKind;
  peer: ClientPeer;
  listener: Handle;
  port: number;
  owned: Owned;
}

interface ClientScenario {
  title(kind: ClientPeerKind): string;
  /** Left out for peers where this is false. */
  runsOn?(kind: ClientPeerKind): boolean;
  path?: string;
  protocols?: string[];
  script(kind: ClientPeerKind): ClientScript;
  run(ctx: ClientContext): Promise<void>;
}

/** Our side of the peer's `echo` script: it checks the echoes, then closes with 1000. */
async function echoForClient(h: Handle, peer: ClientPeer, specs: Spec[]): Promise<void> {
  await together([echoBack(h, specs), peer.finished()], () => closeQuietly(h));
  await assertPeerClosed(h, { code: 1000, reason: "" });
}

const CLIENT_SCENARIOS: ClientScenario[] = [
  {
    title: () => "text, binary, empty, 125..65536 and 4 MiB echo",
    path: "/echo?x=1",
    script: () => ({ kind: "echo", specs: ECHO_SPECS }),
    async run({ kind, peer, listener, port, owned }) {
      const { handle, resource, host, headers } = await acceptWs(listener, WS_BINARY);
      owned.add(handle);
      assert.equal(resource, "/echo?x=1");
      assert.equal(host, `127.0.0.1:${port}`);
      assert.equal(headers.get("sec-websocket-version"), "13");
      assert.equal(await peer.opened(), kind.noSubprotocol);
      await echoForClient(handle, peer, ECHO_SPECS);
    },
  },
  {
    title: (kind) => kind.fragments!.title,
    runsOn: (kind) => kind.fragments !== undefined,
    script: (kind) => ({ kind: "echo", specs: kind.fragments!.specs }),
    async run({ kind, peer, listener, owned }) {
      const handle = owned.add((await acceptWs(listener, WS_BINARY)).handle);
      assert.equal(await peer.opened(), kind.noSubprotocol);
      await echoForClient(handle, peer, kind.fragments!.specs);
    },
  },
  {
    title: () => "pings get pongs while we do not read",
    runsOn: (kind) => kind.pings,
    script: () => ({ kind: "ping" }),
    async run({ kind, peer, listener, owned }) {
      const handle = owned.add((await acceptWs(listener, WS_TEXT)).handle);
      assert.equal(await peer.opened(), kind.noSubprotocol);
      await peer.finished(); // every pong checked; we have not called mrecv yet
      assert.equal(await mrecvText(handle, soon()), PING_TEXT);
      await assertPeerClosed(handle, { code: 1000, reason: "" });
    },
  },
  {
    title: () => "our close status and reason reach the client",
    script: () => ({ kind: "close-ours" }),
    async run({ kind, peer, listener, owned }) {
      const handle = owned.add((await acceptWs(listener, WS_TEXT)).handle);
      assert.equal(await peer.opened(), kind.noSubprotocol);
      await wsDone(handle, OUR_CLOSE.code, OUR_CLOSE.reason, soon());
      assert.deepEqual(await peer.closed(), OUR_CLOSE);
      await assertPeerClosed(handle, OUR_CLOSE); // the client echoes our status and reason
      await rejectsWith(msend(handle, "late", soon()), "EPIPE");
    },
  },
  {
    title: () => "the client's close status and reason reach us",
    script: () => ({ kind: "close-peer" }),
    async run({ kind, peer, listener, owned }) {
      const handle = owned.add((await acceptWs(listener, WS_TEXT)).handle);
      assert.equal(await peer.opened(), kind.noSubprotocol);
      assert.equal(await mrecvText(handle, soon()), LAST_WORDS);
      await assertPeerClosed(handle, PEER_CLOSE);
      // We echo its status (without a reason).
      assert.deepEqual(await peer.closed(), { code: PEER_CLOSE.code, reason: "" });
    },
  },
  {
    title: () => "subprotocol offered [a, b], server speaks [b]",
    protocols: ["a", "b"],
    script: () => ({ kind: "echo", specs: [ON_B] }),
    async run({ kind, peer, listener, owned }) {
      const { handle, protocol, headers } = await acceptWs(listener, WS_TEXT, { protocols: ["b"] });
      owned.add(handle);
      assert.equal(protocol, "b");
      assert.equal(headers.get("sec-websocket-protocol"), kind.offeredHeader);
      assert.equal(await peer.opened(), "b");
      await echoForClient(handle, peer, [ON_B]);
    },
  },
  {
    title: () => "WS_NOHTTP after a hand-made 101",
    path: "/raw",
    script: () => ({ kind: "echo", specs: RAW_SPECS }),
    async run({ kind, peer, listener, owned }) {
      const tcp = owned.add((await tcpAccept(listener, soon())).handle);
      const request = await handmadeServerUpgrade(tcp);
      assert.equal(request.startLine, "GET /raw HTTP/1.1");
      const ws = owned.add((await wsAttachServer(tcp, WS_NOHTTP | WS_BINARY, soon())).handle);
      assert.equal(await peer.opened(), kind.noSubprotocol);
      await echoForClient(ws, peer, RAW_SPECS);
    },
  },
];

async function runClientScenario(kind: ClientPeerKind, scenario: ClientScenario): Promise<void> {
  const { listener, port } = listenLocal();
  const url = `ws://127.0.0.1:${port}${scenario.path ?? "/"}`;
  const peer = kind.start(url, scenario.protocols, scenario.script(kind));
  const owned = new Owned();
  try {
    try {
      await scenario.run({ kind, peer, listener, port, owned });
    } finally {
      owned.closeAll();
    }
    await peer.settle();
  } finally {
    closeQuietly(listener);
    await peer.dispose();
  }
}

/** Registers every client scenario `kind` can run, named "<kind> → our server: ...". */
export function registerClientScenarios(kind: ClientPeerKind): void {
  for (const scenario of CLIENT_SCENARIOS) {
    if (scenario.runsOn && !scenario.runsOn(kind)) continue;
    Deno.test(
      `${kind.name} → our server: ${scenario.title(kind)}`,
      () => runClientScenario(kind, scenario),
    );
  }
}

// ---- our client → the peer's server ---------------------------------------------

interface ServerContext {
  kind: ServerPeerKind;
  server: ServerPeer;
  owned: Owned;
}

interface ServerScenario {
  title(kind: ServerPeerKind): string;
  /** Left out for peers where this is false. */
  runsOn?(kind: ServerPeerKind): boolean;
  /** What the server speaks. */
  protocols?: string[];
  run(ctx: ServerContext): Promise<void>;
}

/** Our WebSocket client on `resource`, kept in `owned`. */
async function connect(
  { server, owned }: ServerContext,
  flags: number,
  resource: string,
): Promise<Handle> {
  return owned.add((await connectWs(server.port, flags, resource)).handle);
}

/**
 * The server's side of the connection `ours` made to `resource` without a subprotocol;
 * checks what the server saw of the request.
 */
async function accepted(
  { kind, server }: ServerContext,
  ours: Handle,
  resource: string,
): Promise<ServerConnection> {
  const conn = await server.accepted(ours);
  assert.equal(conn.url, kind.url(server.port, resource));
  assert.equal(conn.offered, null);
  assertAnswered(conn, kind.noSubprotocol);
  return conn;
}

/** Checks the subprotocol the server answered, where it reports one. */
function assertAnswered(conn: ServerConnection, want: string | null): void {
  if (conn.protocol === undefined) return; // this server does not tell (see its adapter)
  assert.equal(conn.protocol, want);
}

/** Closes from our side with 1000 and checks both sides saw it. */
async function closeFromUs(h: Handle, conn: ServerConnection): Promise<void> {
  const close = { code: 1000, reason: "done" };
  await wsDone(h, close.code, close.reason, soon());
  await assertPeerClosed(h, close); // the server echoes our status and reason
  assert.deepEqual(await conn.closed(), close);
}

const SERVER_SCENARIOS: ServerScenario[] = [
  {
    title: () => "text, binary, empty, 125..65536 and 4 MiB echo",
    async run(ctx) {
      const handle = await connect(ctx, WS_BINARY, "/echo?y=2");
      const conn = await accepted(ctx, handle, "/echo?y=2");
      await together(
        [sendAndCheckEchoes(handle, ECHO_SPECS), conn.echo(ECHO_SPECS.length)],
        () => closeQuietly(handle),
      );
      await closeFromUs(handle, conn);
    },
  },
  {
    title: (kind) => kind.fragments!.title,
    runsOn: (kind) => kind.fragments !== undefined,
    async run(ctx) {
      const specs = ctx.kind.fragments!.specs;
      const handle = await connect(ctx, WS_BINARY, "/");
      const conn = await accepted(ctx, handle, "/");
      assert.ok(conn.sendFragmented, `the ${ctx.kind.name} cannot send fragments`);
      const ourSide = async () => {
        for (const spec of specs) {
          assertMessage(await wsRecv(handle, soon()), build(spec), `our ${describe(spec)}`);
        }
      };
      await together([ourSide(), conn.sendFragmented(specs)], () => closeQuietly(handle));
      await closeFromUs(handle, conn);
    },
  },
  {
    title: () => "its pings get pongs while we do not read",
    runsOn: (kind) => kind.pings,
    async run(ctx) {
      const handle = await connect(ctx, WS_TEXT, "/");
      const conn = await accepted(ctx, handle, "/");
      assert.ok(conn.pingUnread, `the ${ctx.kind.name} cannot ping`);
      const text = await conn.pingUnread(); // every pong checked; we have not called mrecv yet
      assert.equal(await mrecvText(handle, soon()), text);
      await closeFromUs(handle, conn);
    },
  },
  {
    title: () => "our close status and reason reach the server",
    async run(ctx) {
      const handle = await connect(ctx, WS_TEXT, "/");
      const conn = await accepted(ctx, handle, "/");
      await msend(handle, "before close", soon());
      assert.deepEqual(await conn.received(), { type: WS_TEXT, data: "before close" });
      await wsDone(handle, OUR_CLOSE.code, OUR_CLOSE.reason, soon());
      await assertPeerClosed(handle, OUR_CLOSE); // the server echoes our status and reason
      assert.deepEqual(await conn.closed(), OUR_CLOSE);
    },
  },
  {
    title: () => "the server's close status and reason reach us",
    async run(ctx) {
      const handle = await connect(ctx, WS_TEXT, "/");
      const conn = await accepted(ctx, handle, "/");
      await conn.send({ type: WS_TEXT, data: LAST_WORDS });
      await conn.close(PEER_CLOSE.code, PEER_CLOSE.reason);
      assert.equal(await mrecvText(handle, soon()), LAST_WORDS);
      await assertPeerClosed(handle, PEER_CLOSE);
      // We echo its status (without a reason).
      assert.deepEqual(await conn.closed(), { code: PEER_CLOSE.code, reason: "" });
    },
  },
  {
    title: () => "subprotocol offered [a, b], server speaks [b]",
    protocols: ["b"],
    async run({ kind, server, owned }) {
      const { handle, protocol, headers } = await connectWs(server.port, WS_TEXT, "/", {
        protocols: ["a", "b"],
      });
      owned.add(handle);
      assert.equal(protocol, "b");
      assert.equal(headers.get("sec-websocket-protocol"), "b");
      const conn = await server.accepted(handle);
      assert.equal(conn.url, kind.url(server.port, "/"));
      assert.equal(conn.offered, "a, b");
      assertAnswered(conn, "b");
      const onB = build(ON_B);
      await msend(handle, onB.data, soon());
      assert.deepEqual(await conn.received(), onB);
      await closeFromUs(handle, conn);
    },
  },
  {
    title: () => "WS_NOHTTP after a hand-made upgrade request",
    async run(ctx) {
      const { port } = ctx.server;
      const tcp = ctx.owned.add(await tcpConnect({ hostname: "127.0.0.1", port }, soon()));
      await handmadeClientUpgrade(tcp, port, "/raw");
      const ws = ctx.owned.add(
        (await wsAttachClient(tcp, WS_NOHTTP | WS_TEXT, "", "", soon())).handle,
      );
      const conn = await accepted(ctx, ws, "/raw");
      const ourSide = async () => {
        await msend(ws, "über raw ✓", soon());
        assert.equal(await mrecvText(ws, soon()), "über raw ✓");
      };
      await together([conn.echo(1), ourSide()], () => closeQuietly(ws));
      await closeFromUs(ws, conn);
    },
  },
];

async function runServerScenario(kind: ServerPeerKind, scenario: ServerScenario): Promise<void> {
  const server = await kind.start(scenario.protocols);
  const owned = new Owned();
  try {
    try {
      await scenario.run({ kind, server, owned });
    } finally {
      owned.closeAll();
    }
    await server.settle();
  } finally {
    await server.dispose();
  }
}

/** Registers every server scenario `kind` can run, named "our client → <kind>: ...". */
export function registerServerScenarios(kind: ServerPeerKind): void {
  for (const scenario of SERVER_SCENARIOS) {
    if (scenario.runsOn && !scenario.runsOn(kind)) continue;
    Deno.test(
      `our client → ${kind.name}: ${scenario.title(kind)}`,
      () => runServerScenario(kind, scenario),
    );
  }
}
