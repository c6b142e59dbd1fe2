/**
 * Which of our two sides a hostile test runs against (our client against a raw server,
 * or our server against a raw client), and tests that open a rig on that side, run their
 * body on it and close it afterwards whatever happened.
 *
 * @module
 */

import {
  type ClientRigOptions,
  openClient,
  openServer,
  type Rig,
  type ServerRigOptions,
  type Transport,
} from "./rig.ts";

/**
 * One of our sides: its name in test names and how a rig is opened on it.
 *
 * @example
 * ```ts
 * import { OUR_SERVER, type OurSide } from "./our_side.ts";
 * import type { ServerRigOptions } from "./rig.ts";
 *
 * const side: OurSide<ServerRigOptions> = OUR_SERVER;
 * await (await side.open("pipe")).close();
 * ```
 */
export interface OurSide<Setup> {
  /** How test names call it: `ws client/tcp: …`, `ws server/pipe: …`. */
  readonly name: "client" | "server";
  /** Our side attached after a valid handshake, a raw peer at the other end. */
  open(transport: Transport, setup?: Setup): Promise<Rig>;
}

/**
 * Our client (wsAttachClient) against a raw server.
 *
 * @example
 * ```ts
 * import { OUR_CLIENT } from "./our_side.ts";
 *
 * await (await OUR_CLIENT.open("tcp", { extra: ["X-Extra: 1"] })).close();
 * ```
 */
export const OUR_CLIENT: OurSide<ClientRigOptions> = { name: "client", open: openClient };

/**
 * Our server (wsAttachServer) against a raw client.
 *
 * @example
 * ```ts
 * import { OUR_SERVER } from "./our_side.ts";
 *
 * await (await OUR_SERVER.open("tcp", { options: { maxMessageSize: 1000 } })).close();
 * ```
 */
export const OUR_SERVER: OurSide<ServerRigOptions> = { name: "server", open: openServer };

/** What a rig test does with the rig; the rig is closed afterwards in any case. */
type RigBody = (rig: Rig) => Promise<void>;

/**
 * Registers a Deno test named `ws <side>/<transport>: <name>` that opens a rig (with
 * `setup`, if given), runs `body` on it and closes it.
 *
 * @example
 * ```ts
 * import { mrecv, now } from "../../../mod.ts";
 * import { OP } from "./frames.ts";
 * import { OUR_SERVER, rigTests } from "./our_side.ts";
 *
 * const test = rigTests(OUR_SERVER, "pipe");
 * test("a text frame arrives", { options: { maxMessageSize: 10 } }, async (rig) => {
 *   await rig.peer.sendFrame({ opcode: OP.TEXT, payload: "hi" });
 *   console.log(await mrecv(rig.ws, now() + 1000));
 * });
 * ```
 */
export function rigTests<Setup>(side: OurSide<Setup>, transport: Transport): {
  (name: string, body: RigBody): void;
  (name: string, setup: Setup, body: RigBody): void;
} {
  return (name: string, setupOrBody: Setup | RigBody, maybeBody?: RigBody) => {
    const [setup, body] = maybeBody
      ? [setupOrBody as Setup, maybeBody]
      : [undefined, setupOrBody as RigBody];
    Deno.test(`ws ${side.name}/${transport}: ${name}`, async () => {
      const rig = await side.open(transport, setup);
      try {
        await body(rig);
      } finally {
        await rig.close();
      }
    });
  };
}
