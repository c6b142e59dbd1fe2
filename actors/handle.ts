/**
 * Opaque handles. A handle names the top actor of a socket stack; attaching a
 * protocol moves that stack under a new handle (the old one then fails with
 * `EBADF`), and {@link hclose} closes the whole stack at once.
 *
 * @module
 */

import { DillError } from "../protocol/errors.ts";
import { Actor, type Message } from "./actor.ts";

/** What a socket layer offers: a bytestream, a message socket or a listener. */
export type LayerKind = "bytestream" | "message" | "listener";

/** An actor that can stand at the top of a handle. */
export abstract class SocketLayer<M extends Message> extends Actor<M> {
  /** Which family of calls this layer answers. */
  abstract readonly kind: LayerKind;
}

// deno-lint-ignore no-explicit-any
type AnyLayer = SocketLayer<any>;

const layers = new WeakMap<Handle, AnyLayer>();
let nextId = 1;

/**
 * An opaque socket handle. Pass it to the API functions; close it with
 * {@link hclose} or `await using`.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * console.log(String(a)); // e.g. "Handle#1(pipe)"
 * hclose(a);
 * hclose(b);
 * ```
 */
export class Handle {
  readonly #id = nextId++;
  readonly #label: string;

  /** @internal Handles are made by the API functions, not by users. */
  constructor(label: string) {
    this.#label = label;
  }

  /** Closes the stack if it is still open (for `using`). */
  [Symbol.dispose](): void {
    if (layers.has(this)) hclose(this);
  }

  /** Closes the stack if it is still open (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    this[Symbol.dispose]();
    return Promise.resolve();
  }

  /** A label for logs, such as `Handle#3(ws)`. */
  toString(): string {
    return `Handle#${this.#id}(${this.#label})`;
  }
}

/**
 * Makes a new handle for `layer`.
 *
 * @example
 * ```ts
 * import { hclose, layerOf, openHandle } from "./handle.ts";
 * import { ipcPair } from "./ipc.ts";
 *
 * const [a, b] = ipcPair();
 * const h = openHandle(layerOf(a, "demo", "bytestream"), "again"); // a second handle, same layer
 * console.log(String(h).endsWith("(again)")); // true
 * hclose(h); // closes the layer: a is closed too
 * hclose(b);
 * ```
 */
export function openHandle(layer: AnyLayer, label: string): Handle {
  const h = new Handle(label);
  layers.set(h, layer);
  return h;
}

/**
 * The layer behind `h`, checked for its kind.
 * Throws `EBADF` for an invalid handle and `ENOTSUP` for a layer of another kind.
 *
 * @example
 * ```ts
 * import { hclose, layerOf } from "./handle.ts";
 * import { ipcPair } from "./ipc.ts";
 *
 * const [a, b] = ipcPair();
 * console.log(layerOf(a, "demo", "bytestream").kind); // "bytestream"
 * try {
 *   layerOf(a, "demo", "message");
 * } catch (e) {
 *   console.log((e as { code: string }).code); // "ENOTSUP"
 * }
 * hclose(a);
 * hclose(b);
 * ```
 */
export function layerOf<L extends AnyLayer = AnyLayer>(
  h: Handle,
  op: string,
  kind?: LayerKind,
): L {
  const layer = h instanceof Handle ? layers.get(h) : undefined;
  if (!layer) throw badHandle(op, h);
  if (kind && layer.kind !== kind) {
    throw new DillError(
      "ENOTSUP",
      `${op}: ${h} is a ${layer.kind} socket; ${op} needs a ${kind} socket`,
    );
  }
  return layer as L;
}

/**
 * Takes the layer out of `h` to put it under a new protocol: `h` becomes invalid.
 * Throws like {@link layerOf}.
 *
 * @example
 * ```ts
 * import { hclose, layerOf, openHandle, takeLayer } from "./handle.ts";
 * import { ipcPair } from "./ipc.ts";
 *
 * const [a, b] = ipcPair();
 * const top = openHandle(takeLayer(a, "demo", "bytestream"), "moved");
 * try {
 *   layerOf(a, "demo");
 * } catch (e) {
 *   console.log((e as { code: string }).code); // "EBADF": the layer is top's now
 * }
 * hclose(top);
 * hclose(b);
 * ```
 */
export function takeLayer<L extends AnyLayer = AnyLayer>(
  h: Handle,
  op: string,
  kind?: LayerKind,
): L {
  const layer = layerOf<L>(h, op, kind);
  layers.delete(h);
  return layer;
}

/**
 * Closes `h` and everything beneath it, immediately and without a clean shutdown.
 * Calls pending on it fail with `ECANCELED`; later calls fail with `EBADF`.
 *
 * @example
 * ```ts
 * import { hclose, ipcPair } from "../mod.ts";
 *
 * const [a, b] = ipcPair();
 * hclose(a);
 * hclose(b);
 * ```
 */
export function hclose(h: Handle): void {
  const layer = takeLayer(h, "hclose");
  layer.close(new DillError("ECANCELED", `${h} was closed while the call was pending`));
}

function badHandle(op: string, h: unknown): DillError {
  const what = h instanceof Handle
    ? `${h} is closed or was attached to another protocol`
    : `${describe(h)} is not a handle`;
  return new DillError("EBADF", `${op}: ${what}`);
}

function describe(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}
