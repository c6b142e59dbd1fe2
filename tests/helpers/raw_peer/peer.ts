/**
 * The raw peer itself: it speaks bytes, not WebSocket. It sends raw bytes and frames built
 * by hand (masked as its role requires unless told otherwise), and reads what our side
 * sends back with deadlines: frames (checking masking, RSV bits and minimal lengths),
 * close frames, the end of the stream, and HTTP heads.
 *
 * @module
 */

import assert from "node:assert/strict";
import { now } from "../../../mod.ts";
import { bytes } from "./bytes.ts";
import {
  frame,
  type FrameSpec,
  OP,
  parseClose,
  type ParsedClose,
  type ParsedFrame,
} from "./frames.ts";
import {
  type ParsedRequest,
  type ParsedResponse,
  parseRequestHead,
  parseResponseHead,
} from "./handshake.ts";
import { type Wire, WireError } from "./wire.ts";

const decoder = new TextDecoder();

/**
 * A raw peer. `role` says which end it plays: a `"client"` masks its frames by default
 * and expects unmasked frames from us; a `"server"` the reverse.
 *
 * @example
 * ```ts
 * import { now } from "../../../mod.ts";
 * import { ConnWire } from "./conn_wire.ts";
 * import { OP } from "./frames.ts";
 * import { RawPeer } from "./peer.ts";
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 8080 });
 * const peer = new RawPeer(new ConnWire(conn), "client");
 * try {
 *   await peer.sendFrame({ opcode: OP.PING, payload: "hi" }, now() + 1000);
 *   console.log(await peer.readFrame());
 * } finally {
 *   await peer.close();
 * }
 * ```
 */
export class RawPeer {
  /**
   * @param wire the bytes underneath
   * @param role which end this peer plays
   */
  constructor(readonly wire: Wire, readonly role: "client" | "server") {}

  /** Sends raw bytes; fails the test if they cannot be written by `deadline`. */
  async send(data: Uint8Array | string, deadline = now() + 2000): Promise<void> {
    const ok = await this.wire.write(bytes(data), deadline);
    assert.ok(ok, "raw peer: write did not complete before its deadline");
  }

  /** Builds a frame masked as this peer's role requires (unless `spec.mask` says otherwise). */
  frame(spec: FrameSpec): Uint8Array {
    return frame({ mask: this.role === "client", ...spec });
  }

  /** Sends one frame (see {@link RawPeer.frame}). */
  sendFrame(spec: FrameSpec, deadline = now() + 2000): Promise<void> {
    return this.send(this.frame(spec), deadline);
  }

  /** Reads exactly `n` bytes. */
  read(n: number, deadline = now() + 2000): Promise<Uint8Array> {
    return this.wire.readExact(n, deadline);
  }

  /** Set when permessage-deflate was negotiated: RSV1 is then allowed on data frames. */
  deflate = false;

  /** Reads and unmasks one frame our side sent; checks the masking our role requires. */
  async readFrame(deadline = now() + 2000): Promise<ParsedFrame> {
    const h = await this.read(2, deadline);
    const fin = (h[0] & 0x80) !== 0;
    const rsv = (h[0] >> 4) & 7;
    const opcode = h[0] & 0x0f;
    const masked = (h[1] & 0x80) !== 0;
    let length = h[1] & 0x7f;
    if (length === 126) {
      const ext = await this.read(2, deadline);
      length = (ext[0] << 8) | ext[1];
      assert.ok(length >= 126, `our side sent a non-minimal 16-bit length ${length}`);
    } else if (length === 127) {
      const ext = await this.read(8, deadline);
      const big = new DataView(ext.buffer).getBigUint64(0);
      assert.ok(big > 0xffffn && big < 1n << 53n, `our side sent a bad 64-bit length ${big}`);
      length = Number(big);
    }
    const key = masked ? await this.read(4, deadline) : null;
    const payload = length > 0 ? await this.read(length, deadline) : new Uint8Array(0);
    if (key) { for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]; }
    assert.equal(
      masked,
      this.role === "server",
      `our ${this.role === "server" ? "client" : "server"} sent a frame ${
        masked ? "masked" : "unmasked"
      }`,
    );
    // RSV1 marks a compressed message's first frame once permessage-deflate is negotiated.
    const allowed = this.deflate && rsv === 4 && (opcode === 1 || opcode === 2);
    assert.ok(rsv === 0 || allowed, "our side set RSV bits");
    return { fin, rsv, opcode, masked, payload };
  }

  /** Reads the next frame, which must be a close frame; parses its code and reason. */
  async readClose(deadline = now() + 2000): Promise<ParsedClose> {
    const f = await this.readFrame(deadline);
    assert.equal(
      f.opcode,
      OP.CLOSE,
      `expected a close frame, got opcode ${f.opcode} (${f.payload.length} bytes)`,
    );
    return parseClose(f.payload);
  }

  /** Reads frames until a close frame, answering nothing; returns it and what came before. */
  async readUntilClose(
    deadline = now() + 2000,
  ): Promise<{ close: ParsedClose; before: ParsedFrame[] }> {
    const before: ParsedFrame[] = [];
    while (true) {
      const f = await this.readFrame(deadline);
      if (f.opcode === OP.CLOSE) return { close: parseClose(f.payload), before };
      before.push(f);
    }
  }

  /**
   * Expects the end of the stream: no more bytes, then EOF (or a reset, which is also an
   * end). Returns which one; fails if bytes arrive or nothing happens by `deadline`.
   */
  async expectEnd(deadline = now() + 2000): Promise<"eof" | "reset"> {
    try {
      const extra = await this.read(1, deadline);
      assert.fail(`expected the end of the stream, got byte 0x${extra[0].toString(16)}`);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      assert.notEqual(e.kind, "timeout", `expected the end of the stream: ${e.message}`);
      return e.kind as "eof" | "reset";
    }
  }

  /** Reads an HTTP head (up to the blank line) as text. */
  async readHead(deadline = now() + 2000, limit = 16 * 1024): Promise<string> {
    let text = "";
    while (!text.endsWith("\r\n\r\n")) {
      assert.ok(text.length < limit, "raw peer: HTTP head too long");
      text += String.fromCharCode((await this.read(1, deadline))[0]);
    }
    return text;
  }

  /** Reads an HTTP response head and its Content-Length body. */
  async readResponse(deadline = now() + 2000): Promise<ParsedResponse> {
    const head = parseResponseHead(await this.readHead(deadline));
    const length = Number(head.headers.get("content-length") ?? "0");
    const body = length > 0 ? decoder.decode(await this.read(length, deadline)) : "";
    return { ...head, body };
  }

  /** Reads an HTTP request head (what our client sends). */
  async readRequest(deadline = now() + 2000): Promise<ParsedRequest> {
    return parseRequestHead(await this.readHead(deadline));
  }

  /** Closes the wire. */
  close(): Promise<void> {
    return this.wire.close();
  }
}
