/**
 * A module imported the first time a feature needs it, then at hand synchronously.
 *
 * Importing a `node:` built-in costs Deno 2.9.6 tens of milliseconds of start-up each
 * (measured alone in a fresh process: `node:zlib`, `node:tls`, `node:crypto` 30 to 45 ms
 * each, much of it shared), and most programs need none of them: a server without
 * compression or TLS, or one on `Deno.serve`, whose WebSocket compresses natively. So
 * the modules that need one load it from the asynchronous call that first needs it
 * (an attach, a listen) and use it synchronously after that.
 *
 * @module
 */

import { DillError } from "./errors.ts";

/** The last import started by any {@link LazyModule}: the next one waits for it. */
let importsDone: Promise<unknown> = Promise.resolve();

/**
 * One lazily imported module. The importer must be a function around an `import()`
 * of a string literal, so that bundlers and Deno Deploy still see the dependency.
 *
 * @example
 * ```ts
 * import { LazyModule } from "./lazy_module.ts";
 *
 * const path = new LazyModule("node:path", () => import("node:path"));
 * console.log(path.loaded); // false
 * await path.load();
 * console.log(path.get("example").join("a", "b")); // a/b
 * ```
 */
export class LazyModule<T> {
  #module: T | null = null;
  #loading: Promise<T> | null = null;

  /**
   * @param name the specifier, for error messages
   * @param importer imports the module (`() => import("node:zlib")`)
   */
  constructor(readonly name: string, readonly importer: () => Promise<T>) {}

  /** Whether the module is loaded, so that {@link LazyModule.get} works. */
  get loaded(): boolean {
    return this.#module !== null;
  }

  /**
   * Imports the module once; every later call shares that import.
   *
   * @throws {DillError} `ENOTSUP` when the runtime cannot import it (a later call tries again)
   */
  load(): Promise<T> {
    if (this.#module !== null) return Promise.resolve(this.#module);
    if (this.#loading !== null) return this.#loading;
    // The import starts from a later microtask, after `#loading` is set: Deno evaluates a
    // built-in inside `import()` and may run queued microtasks meanwhile, and a second
    // import of a module still evaluating gets its bindings uninitialized (a
    // ReferenceError). Imports also run one at a time, as one built-in imports another.
    const loading = importsDone.then(() => this.importer()).then(
      (module) => (this.#module = module),
      (e) => {
        this.#loading = null;
        const detail = e instanceof Error ? e.message : String(e);
        throw new DillError("ENOTSUP", `${this.name} cannot be imported here: ${detail}`, {
          cause: e,
        });
      },
    );
    this.#loading = loading;
    importsDone = loading.catch(() => {});
    return loading;
  }

  /**
   * The module, once {@link LazyModule.load} resolved.
   *
   * @param user what needs it, for the error message
   * @throws {DillError} `ENOTSUP` when it is not loaded yet (a missing `await load()`)
   */
  get(user: string): T {
    if (this.#module === null) {
      throw new DillError(
        "ENOTSUP",
        `${user}: ${this.name} is not loaded yet (await its load first)`,
      );
    }
    return this.#module;
  }
}
