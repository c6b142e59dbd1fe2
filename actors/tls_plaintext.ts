/**
 * The plaintext side of a TLS actor as a {@link Transport}: the bytestream a TLS
 * attach returns runs over it, so TLS gets the `bsend`/`brecv` semantics, deadlines
 * and flow control of every other bytestream. Each call is a message to the actor.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { call } from "./actor.ts";
import type { TlsActor, TlsMsg } from "./tls_actor.ts";
import type { Transport } from "./transport.ts";

/**
 * The plaintext side of a {@link TlsActor}, as a transport: every call is a message.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair, tlsAttachClient, tlsAttachServer } from "../mod.ts";
 *
 * // The bytestream a TLS attach returns reads and writes through this transport.
 * const dir = new URL("../tests/fixtures/tls/", import.meta.url);
 * const read = (f: string) => Deno.readTextFileSync(new URL(f, dir));
 * const [a, b] = ipcPair();
 * const [s, c] = await Promise.all([
 *   tlsAttachServer(a, { cert: read("cert.pem"), key: read("key.pem") }, -1),
 *   tlsAttachClient(b, { hostname: "localhost", caCerts: [read("ca.pem")] }, -1),
 * ]);
 * hclose(s);
 * hclose(c);
 * ```
 */
export class PlaintextTransport implements Transport {
  constructor(readonly actor: TlsActor) {}

  read(buf: Uint8Array): Promise<number | null> {
    return call<number | null, TlsMsg>(this.actor, "tls read", -1, (req) => ({
      kind: "read",
      buf,
      req,
    }));
  }

  readChunks(): Promise<Uint8Array[] | null> {
    return call<Uint8Array[] | null, TlsMsg>(this.actor, "tls read", -1, (req) => ({
      kind: "readChunks",
      req,
    }));
  }

  write(buf: Uint8Array): Promise<number> {
    return call<number, TlsMsg>(this.actor, "tls write", -1, (req) => ({
      kind: "write",
      buf,
      req,
    }));
  }

  closeWrite(): Promise<void> {
    return call<void, TlsMsg>(this.actor, "tls close_notify", -1, (req) => ({
      kind: "closeWrite",
      req,
    }));
  }

  close(): void {
    this.actor.close(new DillError("ECANCELED", "the TLS socket was closed"));
  }
}
