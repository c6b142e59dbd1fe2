/**
 * Raw WebSocket client connections for the load client: connect (over TLS for wss,
 * with Deno's native TLS), the upgrade by hand, full writes, and a bounded closing
 * handshake. Every wait has a time limit.
 *
 * @module
 */

import { acceptKey, closeFrame, FrameCounter, upgradeRequest } from "./frames.ts";

const decoder = new TextDecoder();
const CLOSE_FRAME = closeFrame();

/** The test CA that signed tests/fixtures/tls/cert.pem, which the TLS servers present. */
const CA_URL = new URL("../../tests/fixtures/tls/ca.pem", import.meta.url);
let caPem: string | null = null;

/** An open WebSocket connection: the socket and bytes that came after the 101 head. */
export interface RawWs {
  /** The TCP connection, or the TLS connection over it (wss). */
  readonly conn: Deno.Conn;
  /** Bytes received after the handshake head (normally empty). */
  readonly leftover: Uint8Array;
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Closes `conn`, ignoring "already closed". */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/**
 * Runs `fn`, closing `conn` if it has not finished within `ms` (which makes its
 * pending reads and writes fail); the error then says what timed out.
 */
export async function within<T>(
  conn: Deno.Conn,
  ms: number,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  try {
    return await fn();
  } catch (e) {
    throw timedOut ? new Error(`${what}: no answer within ${ms} ms`) : e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Connects to `127.0.0.1:port` (with `tls`, then starts TLS for `localhost`,
 * trusting the test CA) and runs the opening handshake by hand. With
 * `checkAccept`, also verifies `Sec-WebSocket-Accept`. Fails after `timeoutMs`.
 */
export async function openWs(
  port: number,
  timeoutMs: number,
  checkAccept: boolean,
  tls = false,
): Promise<RawWs> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  let conn: Deno.Conn = tcp;
  try {
    tcp.setNoDelay(true);
    if (tls) {
      caPem ??= Deno.readTextFileSync(CA_URL);
      conn = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [caPem] });
    }
    return await within(conn, timeoutMs, "handshake", async () => {
      const { bytes, key } = upgradeRequest(port);
      await writeAll(conn, bytes);
      const { head, leftover } = await readHead(conn);
      if (!head.startsWith("HTTP/1.1 101")) {
        throw new Error(`handshake refused: ${head.split("\r\n")[0]}`);
      }
      if (checkAccept) {
        const m = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head);
        if (!m || m[1] !== await acceptKey(key)) throw new Error("wrong Sec-WebSocket-Accept");
      }
      return { conn, leftover };
    });
  } catch (e) {
    closeQuietly(conn);
    throw e;
  }
}

/** Reads up to the end of the HTTP head (at most 16 KiB). */
async function readHead(conn: Deno.Conn): Promise<{ head: string; leftover: Uint8Array }> {
  const buf = new Uint8Array(16384);
  let len = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) throw new Error("connection closed during the handshake");
    len += n;
    const end = findHeadEnd(buf, len);
    if (end >= 0) {
      return { head: decoder.decode(buf.subarray(0, end)), leftover: buf.slice(end, len) };
    }
    if (len === buf.length) throw new Error("handshake answer head larger than 16 KiB");
  }
}

function findHeadEnd(buf: Uint8Array, len: number): number {
  for (let i = 3; i < len; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/**
 * The client's side of the closing handshake on a connection nobody else reads:
 * sends a close frame, reads (counting with `counter`) until the server's close
 * frame and then the end of the stream, and closes the socket. Returns a problem
 * description, or `null` when the server answered and closed within `timeoutMs`.
 */
export async function closeWs(
  conn: Deno.Conn,
  counter: FrameCounter,
  timeoutMs: number,
): Promise<string | null> {
  try {
    return await within(conn, timeoutMs, "closing handshake", async () => {
      await writeAll(conn, CLOSE_FRAME);
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return counter.closed ? null : "server closed TCP without a close frame";
        counter.feed(buf.subarray(0, n));
      }
    });
  } catch (e) {
    return counter.closed
      ? `server sent its close frame but did not close TCP (${message(e)})`
      : `no close frame from the server (${message(e)})`;
  } finally {
    closeQuietly(conn);
  }
}

/** A short description of an error. */
export function message(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
