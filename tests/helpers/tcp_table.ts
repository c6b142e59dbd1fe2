/**
 * The kernel's TCP table (`/proc/net/tcp` and `/proc/net/tcp6`), for tests that check
 * what is really open and queued on a socket: whether a descriptor still holds a
 * server's end of a connection, and how many bytes wait unsent or unread.
 *
 * @module
 */

/** One row of the kernel's TCP table. */
export interface TcpRow {
  /** The socket's own port. */
  readonly localPort: number;
  /** The peer's port. */
  readonly remotePort: number;
  /** The state in hex: `0A` is listening. */
  readonly state: string;
  /** Bytes sent and not acknowledged by the peer. */
  readonly txQueue: number;
  /** Bytes received and not read by the application. */
  readonly rxQueue: number;
  /** `"0"` once no descriptor refers to the socket (closed, finishing in the kernel). */
  readonly inode: string;
}

/**
 * Reads the TCP table now.
 *
 * @example
 * ```ts
 * import { tcpTable } from "./tcp_table.ts";
 *
 * const listening = tcpTable().filter((row) => row.state === "0A").length;
 * console.log(listening >= 0); // true
 * ```
 */
export function tcpTable(): TcpRow[] {
  // Read by a child process: Deno asks for --allow-all to read /proc/net directly.
  const out = new Deno.Command("cat", { args: ["/proc/net/tcp", "/proc/net/tcp6"] })
    .outputSync();
  const rows: TcpRow[] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !f[1].includes(":")) continue;
    const [tx, rx] = f[4].split(":").map((hex) => parseInt(hex, 16));
    rows.push({
      localPort: parseInt(f[1].split(":")[1], 16),
      remotePort: parseInt(f[2].split(":")[1], 16),
      state: f[3],
      txQueue: tx,
      rxQueue: rx,
      inode: f[9],
    });
  }
  return rows;
}

/**
 * How many server-side ends of connections to `port` a descriptor still holds open.
 *
 * @example
 * ```ts
 * import { serverSocketsOn } from "./tcp_table.ts";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(serverSocketsOn(listener.addr.port)); // 0: a listener is not counted
 * listener.close();
 * ```
 */
export function serverSocketsOn(port: number): number {
  return tcpTable().filter((r) => r.localPort === port && r.state !== "0A" && r.inode !== "0")
    .length;
}
