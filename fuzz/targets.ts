/**
 * Every fuzz target, in the order `deno task fuzz` runs them.
 *
 * @module
 */

import type { FuzzTarget } from "./harness.ts";
import { handshakeTarget } from "./handshake_target.ts";
import { httpTarget } from "./http_target.ts";
import { inPlaceTarget } from "./in_place_target.ts";
import { receiverTarget } from "./receiver_target.ts";

/** The fuzz targets. */
// deno-lint-ignore no-explicit-any
export const TARGETS: FuzzTarget<any>[] = [
  receiverTarget,
  inPlaceTarget,
  httpTarget,
  handshakeTarget,
];
