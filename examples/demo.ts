/**
 * A tiny chat server: the page on `/`, the chat on `/ws` (rooms with `?room=name`). It
 * puts together the demo's parts, one concept per file:
 * - `demo_tcp.ts`: HTTP and the WebSocket upgrade on a raw TCP listener (`WS_NOHTTP`);
 * - `demo_serve.ts`: the same under `Deno.serve` with `wsUpgrade` (the Deno Deploy path);
 * - `chat_rooms.ts`: the rooms, whatever the transport;
 * - `hub.ts` / `nats_hub.ts`: what carries a room's messages to other processes;
 * - `demo_cluster.ts`: a local NATS server and several of these processes on one port.
 *
 * Run: `deno task demo`, then open http://127.0.0.1:8080/. Environment:
 * - `PORT` (default 8080) and `HOST` (default 127.0.0.1; `0.0.0.0` for every interface);
 * - `NATS_URL`: NATS server(s), comma-separated; without it the rooms live in this process;
 * - `NODE_NAME`: this process's name in guest names (default: random when on NATS);
 * - `REUSE_PORT=1`: share the port with other processes (`SO_REUSEPORT`, needs
 *   `--unstable-net`);
 * - `MAX_CONNECTIONS`: connections held at once in `tcp` mode (default 4096), below the
 *   descriptor limit;
 * - `DEMO_MODE=serve`: serve with `Deno.serve` + `wsUpgrade` instead of `tcpListen` +
 *   `wsAttachServer` (default `tcp`). The rooms are the same code either way; what Deno's
 *   `WebSocket` does beneath (no bound on a fragmented message, a peer that never answers
 *   our close keeps its connection) is in the README's "Deno.serve and Deno Deploy".
 *
 * @module
 */

import { tcpListen, tcpLocalAddr } from "../mod.ts";
import { ChatRooms } from "./chat_rooms.ts";
import type { Hub } from "./hub.ts";
import { TcpChatServer } from "./demo_tcp.ts";
import { ServeChatServer } from "./demo_serve.ts";

/**
 * Default connections the raw TCP listener holds at once (`MAX_CONNECTIONS`); more
 * clients wait in the kernel's queue, so that a flood of clients leaves the process
 * descriptors for everything else (NATS, its own files). Keep it below the descriptor
 * limit (`ulimit -n`, which Deno raises to the hard limit).
 */
export const DEFAULT_MAX_CONNECTIONS = 4096;

/** How the demo takes its connections. */
export type DemoMode = "tcp" | "serve";

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Port; `0` picks a free one. Default 8080. */
  port?: number;
  /** Address to listen on. Default `127.0.0.1`. */
  hostname?: string;
  /** Share the port with other processes (`SO_REUSEPORT`). Default `false`. */
  reusePort?: boolean;
  /**
   * Connections held at once in `tcp` mode (the listener's `maxConnections`). Default
   * {@link DEFAULT_MAX_CONNECTIONS}.
   */
  maxConnections?: number;
  /**
   * `tcp` (default): `tcpListen`, HTTP read by the demo, `wsAttachServer` with `WS_NOHTTP`.
   * `serve`: `Deno.serve` and `wsUpgrade`.
   */
  mode?: DemoMode;
  /** What carries room messages to other processes. Default: this process only. */
  hub?: Hub;
  /** This process's name, appended to guest names. */
  node?: string;
  /** Where the one-line connection events go. Default: `console.log` with a timestamp. */
  log?: (line: string) => void;
}

/** A running demo server. */
export interface Demo {
  /** The port it listens on. */
  readonly port: number;
  /** Stops accepting, closes every chat client with 1001, waits until all is closed. */
  stop(): Promise<void>;
}

/**
 * Starts the chat demo.
 *
 * @example
 * ```ts
 * import { startDemo } from "./demo.ts";
 *
 * const demo = await startDemo({ port: 0, log: () => {} });
 * console.log(`open http://127.0.0.1:${demo.port}/`);
 * await demo.stop();
 * ```
 */
export function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const log = options.log ?? logWithTime;
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 8080;
  const reusePort = options.reusePort ?? false;
  let rooms: ChatRooms | null = null;
  try {
    rooms = new ChatRooms({ hub: options.hub, node: options.node, log });
    let server: { stop(): Promise<void> };
    let boundPort: number;
    if (options.mode === "serve") {
      const serve = new ServeChatServer(rooms, log, { hostname, port, reusePort });
      [server, boundPort] = [serve, serve.port];
    } else {
      const listener = tcpListen({ hostname, port }, undefined, {
        reusePort,
        maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      });
      server = new TcpChatServer(listener, rooms, log);
      boundPort = tcpLocalAddr(listener).port;
    }
    const opened = rooms;
    let stopped: Promise<void> | null = null;
    const stop = async () => {
      await server.stop();
      await opened.close();
      log("stopped");
    };
    return Promise.resolve({ port: boundPort, stop: () => stopped ??= stop() });
  } catch (e) {
    void rooms?.close();
    return Promise.reject(e);
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function logWithTime(line: string): void {
  console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

/** Resolves on the first Ctrl-C (or SIGTERM), after removing the listeners. */
function nextStopSignal(): Promise<void> {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    const onSignal = () => {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, onSignal);
  });
}

/** The demo's settings from the environment (see the module doc). */
function settings() {
  const env = (name: string) => Deno.env.get(name);
  const raw = env("PORT") ?? "8080";
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new Error(`PORT must be 0-65535, not "${raw}"`);
  const nats = env("NATS_URL")?.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const node = env("NODE_NAME") ?? (nats ? crypto.randomUUID().slice(0, 4) : undefined);
  if (node !== undefined && !/^[A-Za-z0-9_-]{1,16}$/.test(node)) {
    throw new Error(`NODE_NAME must be 1-16 letters, digits, _ or -, not "${node}"`);
  }
  const maxRaw = env("MAX_CONNECTIONS") ?? String(DEFAULT_MAX_CONNECTIONS);
  const maxConnections = Number(maxRaw);
  if (!/^\d+$/.test(maxRaw) || maxConnections < 1) {
    throw new Error(`MAX_CONNECTIONS must be a whole number >= 1, not "${maxRaw}"`);
  }
  const mode = env("DEMO_MODE") ?? "tcp";
  if (mode !== "tcp" && mode !== "serve") {
    throw new Error(`DEMO_MODE must be tcp or serve, not "${mode}"`);
  }
  return {
    port,
    mode: mode as DemoMode,
    hostname: env("HOST") ?? "127.0.0.1",
    nats: nats?.length ? nats : undefined,
    node,
    reusePort: env("REUSE_PORT") === "1",
    maxConnections,
  };
}

async function main(): Promise<void> {
  const config = settings();
  let hub: Hub | undefined;
  if (config.nats) {
    // Loaded only when asked for. (A first run in this repository still fetches every npm
    // package pinned in deno.lock, whatever is imported: see README "Scale-out: many processes".)
    const { NatsHub } = await import("./nats_hub.ts");
    hub = new NatsHub({ servers: config.nats, name: `dill-chat ${config.node}`, log: logWithTime });
  }
  const demo = await startDemo({ ...config, hub });
  const where = `http://${config.hostname}:${demo.port}/`;
  const how = `${config.mode === "serve" ? "Deno.serve" : "tcpListen"}, ` +
    (config.nats ? `rooms on NATS ${config.nats.join(",")}` : "rooms in this process");
  console.log(`chat demo on ${where} (${how}; node ${config.node ?? "-"}; Ctrl-C to stop)`);
  await nextStopSignal();
  await demo.stop();
  console.log("bye");
  Deno.exit(0);
}

if (import.meta.main) {
  main().catch((e) => {
    console.error(`demo: ${describe(e)}`);
    Deno.exit(1);
  });
}
