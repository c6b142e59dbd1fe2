/**
 * The echo server loop the soak (soak/server.ts), the churn test and the benchmark's
 * server on our stack (bench/servers/dill.ts) share: accept until the listener closes,
 * and per connection the README's echo (optionally over TLS), reporting how each
 * connection ended. The README's example itself is kept verbatim, as a process, in
 * tests/peers/readme_echo_server.ts.
 *
 * @module
 */

import {
  type Handle,
  hclose,
  isDillError,
  now,
  type StreamOptions,
  tcpAccept,
  tlsAttachServer,
  type TlsServerConfig,
  wsAttachServer,
  wsRecv,
  wsSend,
} from "../../mod.ts";

/** How one echo connection runs. */
export interface EchoSettings {
  /** Serve wss: TLS with this certificate and key first. */
  readonly tls?: TlsServerConfig | null;
  /** Deadline of each echoed send, in ms from now; -1 waits forever. */
  readonly sendTimeout: number;
  /** Options of the TLS layer (its `sendBuffer`, for instance). */
  readonly tlsOptions?: StreamOptions;
  /**
   * Receive every message into one buffer of this many bytes, made once per connection
   * (`wsRecv(h, buf, deadline)`, libdill's way), instead of as a new `Uint8Array` each.
   */
  readonly recvBuffer?: number;
  /**
   * How the connection ended (every connection ends with an error: `EPIPE` when the
   * client closed), and whether in the handshakes or while echoing.
   */
  readonly ended: (error: unknown, stage: "handshake" | "messages") => void;
}

/**
 * The README's echo on one accepted TCP connection: handshakes (TLS, WebSocket) with a
 * 5 s deadline, then every message back with its type, until the connection ends.
 *
 * @example
 * ```ts
 * import { echoConnection } from "./echo_server.ts";
 * import { hclose, ipcPair, now, WS_NOHTTP, wsAttachClient, wsRecv, wsSend } from "../../mod.ts";
 *
 * const [a, b] = ipcPair();
 * const served = echoConnection(a, { sendTimeout: 1000, ended: () => {} });
 * const { handle: c } = await wsAttachClient(b, 0, "/", "localhost", now() + 1000);
 * await wsSend(c, 0, new Uint8Array([1]), now() + 1000);
 * console.log((await wsRecv(c, now() + 1000)).data); // Uint8Array(1) [ 1 ]
 * hclose(c);
 * await served;
 * ```
 */
export async function echoConnection(tcp: Handle, settings: EchoSettings): Promise<void> {
  let ws: Handle;
  try {
    ws = await attach(tcp, settings);
  } catch (e) {
    return settings.ended(e, "handshake"); // the attach already closed the stack
  }
  const { sendTimeout, recvBuffer } = settings;
  const deadline = () => sendTimeout < 0 ? -1 : now() + sendTimeout;
  try {
    if (recvBuffer !== undefined) {
      const buf = new Uint8Array(recvBuffer);
      for (;;) {
        const { size, type } = await wsRecv(ws, buf, -1);
        await wsSend(ws, type, buf.subarray(0, size), deadline());
      }
    }
    for (;;) {
      const message = await wsRecv(ws, -1); // text or binary, as the client sent it
      await wsSend(ws, message.type, message.data, deadline());
    }
  } catch (e) {
    settings.ended(e, "messages");
  } finally {
    hclose(ws); // closes the WebSocket layer and everything beneath
  }
}

/** The handshakes, in a frame of their own: the echo loop keeps only the handle. */
async function attach(tcp: Handle, settings: EchoSettings): Promise<Handle> {
  const s = settings.tls
    ? await tlsAttachServer(tcp, settings.tls, now() + 5000, settings.tlsOptions)
    : tcp;
  return (await wsAttachServer(s, 0, now() + 5000)).handle;
}

/**
 * Accepts connections and hands each to `serve`, until the listener is closed.
 *
 * @example
 * ```ts
 * import { acceptEach } from "./echo_server.ts";
 * import { hclose, tcpListen } from "../../mod.ts";
 *
 * const listener = tcpListen({ hostname: "127.0.0.1", port: 0 });
 * const accepting = acceptEach(listener, (tcp) => hclose(tcp));
 * hclose(listener);
 * await accepting; // returns once the listener is closed
 * ```
 */
export async function acceptEach(
  listener: Handle,
  serve: (tcp: Handle) => void,
  options?: StreamOptions,
): Promise<void> {
  for (;;) {
    let tcp: Handle;
    try {
      tcp = (await tcpAccept(listener, -1, options)).handle;
    } catch (e) {
      if (isDillError(e, "ECANCELED") || isDillError(e, "EBADF")) return; // closed
      throw e;
    }
    serve(tcp);
  }
}
