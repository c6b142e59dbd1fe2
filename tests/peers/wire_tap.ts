/**
 * A TCP relay that records the WebSocket frames passing through it: it listens on
 * 127.0.0.1, forwards each connection to a target port, keeps both HTTP heads and
 * parses frame headers (FIN, RSV bits, opcode, length) in each direction, so interop
 * tests can check on the wire that a real peer and our side really compressed
 * (RSV1) and what the handshake said. Payloads are forwarded untouched.
 *
 * @module
 */

/** One frame seen on the wire. */
export interface TappedFrame {
  /** Which side sent it. */
  readonly from: "client" | "server";
  readonly fin: boolean;
  /** RSV bits as a 3-bit number: 4 = RSV1. */
  readonly rsv: number;
  readonly opcode: number;
  /** Payload length on the wire. */
  readonly length: number;
}

/** Parses one direction: the HTTP head, then frame headers, skipping payloads. */
class DirectionParser {
  head = "";
  #headDone = false;
  #buffer = new Uint8Array(0);
  #skip = 0;

  /**
   * @param from which side's bytes this parses
   * @param frames where frames go
   * @param upgraded whether the connection became a WebSocket (else after the head
   *   there are no frames to parse, such as a page load)
   */
  constructor(
    readonly from: "client" | "server",
    readonly frames: TappedFrame[],
    readonly upgraded: () => boolean,
  ) {}

  push(chunk: Uint8Array): void {
    let data = chunk;
    if (!this.#headDone) {
      const text = new TextDecoder("latin1").decode(data);
      const end = (this.head + text).indexOf("\r\n\r\n");
      if (end < 0) {
        this.head += text;
        return;
      }
      const used = end + 4 - this.head.length;
      this.head = (this.head + text).slice(0, end + 4);
      this.#headDone = true;
      data = data.subarray(used);
    }
    if (!this.upgraded()) return;
    const joined = new Uint8Array(this.#buffer.length + data.length);
    joined.set(this.#buffer);
    joined.set(data, this.#buffer.length);
    let p = 0;
    for (;;) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, joined.length - p);
        this.#skip -= n;
        p += n;
        if (this.#skip > 0) break;
      }
      if (joined.length - p < 2) break;
      const b0 = joined[p], b1 = joined[p + 1];
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) header = 4;
      else if (length === 127) header = 10;
      if (b1 & 0x80) header += 4;
      if (joined.length - p < header) break;
      if (length === 126) length = (joined[p + 2] << 8) | joined[p + 3];
      else if (length === 127) {
        length = 0;
        for (let i = 2; i < 10; i++) length = length * 256 + joined[p + i];
      }
      this.frames.push({
        from: this.from,
        fin: (b0 & 0x80) !== 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        length,
      });
      p += header;
      this.#skip = length;
    }
    this.#buffer = joined.slice(p);
  }
}

/** The relay. Start it with {@link WireTap.start}; always {@link WireTap.close} it. */
export class WireTap {
  /** Every frame seen, in the order they passed, both directions. */
  readonly frames: TappedFrame[] = [];
  readonly #listener: Deno.Listener;
  readonly #conns: Deno.Conn[] = [];
  readonly #pumps: Promise<void>[] = [];
  readonly #parsers: DirectionParser[] = [];
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.Listener, target: number) {
    this.#listener = listener;
    this.#accepting = this.#accept(target);
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `targetPort` there. */
  static start(targetPort: number): WireTap {
    return new WireTap(Deno.listen({ hostname: "127.0.0.1", port: 0 }), targetPort);
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** The HTTP head each side sent on the first WebSocket connection (`""` if none yet). */
  head(from: "client" | "server"): string {
    return this.#parsers.find((p) => p.from === from && p.upgraded())?.head ?? "";
  }

  /** Frames of one side, data frames only (no control frames) unless `all`. */
  dataFrames(from: "client" | "server"): TappedFrame[] {
    return this.frames.filter((f) => f.from === from && f.opcode < 8);
  }

  async #accept(target: number): Promise<void> {
    for (;;) {
      let inbound: Deno.Conn;
      try {
        inbound = await this.#listener.accept();
      } catch {
        return; // closed
      }
      let outbound: Deno.Conn;
      try {
        outbound = await Deno.connect({ hostname: "127.0.0.1", port: target });
      } catch {
        inbound.close();
        continue;
      }
      this.#conns.push(inbound, outbound);
      const up: DirectionParser = new DirectionParser(
        "client",
        this.frames,
        () => /^upgrade:\s*websocket/im.test(up.head),
      );
      const down: DirectionParser = new DirectionParser(
        "server",
        this.frames,
        (): boolean => / 101 /.test(down.head),
      );
      this.#parsers.push(up, down);
      this.#pumps.push(pump(inbound, outbound, up), pump(outbound, inbound, down));
    }
  }

  /** Stops listening, closes every relayed connection and waits for the pumps. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // already closed by its pump
      }
    }
    await Promise.all(this.#pumps);
  }
}

/** Copies `from` to `to`, parsing as it goes; half-closes `to` at EOF. */
async function pump(from: Deno.Conn, to: Deno.Conn, parser: DirectionParser): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      parser.push(chunk);
      let written = 0;
      while (written < n) written += await to.write(chunk.subarray(written));
    }
    await to.closeWrite();
  } catch {
    // a side went away (or close() closed it): the relay of this direction ends
  }
}
