/**
 * The peers that need an install before a run, each into its own directory under the
 * cache directory (BENCH_CACHE_DIR), with npm, at the start of each run:
 *
 * - `<cache>/node`: `npm install --no-save --prefix <dir> ws@8 bufferutil@4` for the
 *   Node servers. bufferutil ships prebuilt native addons (no compiler needed); the
 *   pure-JS Node server runs with `WS_NO_BUFFER_UTIL=1`, so `ws` leaves it unused.
 *   Each Node server reports which masking `ws` actually uses (an `INFO` line).
 * - `<cache>/bun`: `npm install --no-save --prefix <dir> @oven/bun-linux-x64@1`, the
 *   Bun binary as an npm package; then `bun --version` must run. When it cannot
 *   (another platform, no network, a CPU without AVX2), Bun is left out with a note.
 *
 * Separate prefixes, because `npm install --no-save` into one prefix prunes what an
 * earlier `--no-save` install put there.
 *
 * @module
 */

import { type Children, runCommand } from "./children.ts";

/** Where `ws` (and maybe bufferutil) is ready for Node, or why Node is left out. */
export type NodeWs =
  | {
    readonly dir: string;
    readonly version: string;
    /** bufferutil's version when installed. */
    readonly bufferutil: string | null;
    readonly note: string | null;
  }
  | { readonly dir: null; readonly note: string };

/** Where the Bun binary is, or why Bun is left out. */
export type BunBin =
  | { readonly bin: string; readonly version: string; readonly note: null }
  | { readonly bin: null; readonly note: string };

/** Both installs. */
export interface Peers {
  readonly node: NodeWs;
  readonly bun: BunBin;
}

const NODE = "/usr/bin/node";
const INSTALL_TIMEOUT_MS = 180_000;

function packageVersion(dir: string, name: string): string | null {
  try {
    const pkg = JSON.parse(Deno.readTextFileSync(`${dir}/node_modules/${name}/package.json`));
    return typeof pkg.version === "string" ? pkg.version : null;
  } catch {
    return null;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** `npm install --no-save` of `packages` into `dir`; returns a problem or `null`. */
async function npmInstall(
  children: Children,
  dir: string,
  packages: string[],
  root: string,
): Promise<string | null> {
  Deno.mkdirSync(dir, { recursive: true });
  try {
    const r = await runCommand(
      children,
      "npm",
      ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", dir, ...packages],
      root,
      INSTALL_TIMEOUT_MS,
    );
    if (r.code === 0) return null;
    return `npm install ${packages.join(" ")} failed (${r.stderr.split("\n").slice(-2).join(" ")})`;
  } catch (e) {
    return `npm install ${packages.join(" ")} failed (${e instanceof Error ? e.message : e})`;
  }
}

/** Installs `ws@8` and `bufferutil@4` for Node into `dir`. */
export async function prepareNodeWs(
  children: Children,
  dir: string,
  root: string,
): Promise<NodeWs> {
  if (!exists(NODE)) return { dir: null, note: `${NODE} not found: npm ws on Node left out` };
  let note = await npmInstall(children, dir, ["ws@8", "bufferutil@4"], root);
  if (note !== null && packageVersion(dir, "ws") === null) {
    // bufferutil may be what failed; the pure-JS server still needs only ws.
    note = await npmInstall(children, dir, ["ws@8"], root) ?? note;
  }
  const version = packageVersion(dir, "ws");
  if (version === null || !version.startsWith("8.")) {
    return { dir: null, note: `${note ?? "ws 8 not installed"}: Node left out` };
  }
  return { dir, version, bufferutil: packageVersion(dir, "bufferutil"), note };
}

/** Installs the Bun binary into `dir` and checks that it runs. */
export async function prepareBun(children: Children, dir: string, root: string): Promise<BunBin> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return { bin: null, note: `Bun left out: its npm binary here is for Linux x64 only` };
  }
  const pkg = "@oven/bun-linux-x64";
  const problem = await npmInstall(children, dir, [`${pkg}@1`], root);
  const bin = `${dir}/node_modules/${pkg}/bin/bun`;
  if (!exists(bin)) return { bin: null, note: `Bun left out: ${problem ?? `no ${bin}`}` };
  try {
    const r = await runCommand(children, bin, ["--version"], root, 15_000);
    if (r.code !== 0) {
      return { bin: null, note: `Bun left out: \`bun --version\` exited ${r.code} ${r.stderr}` };
    }
    return { bin, version: r.stdout.trim(), note: null };
  } catch (e) {
    return {
      bin: null,
      note: `Bun left out: it does not run here (${e instanceof Error ? e.message : e})`,
    };
  }
}

/** Prepares both peers (each install bounded to 3 minutes). */
export async function preparePeers(
  children: Children,
  cacheDir: string,
  root: string,
  withBun: boolean,
): Promise<Peers> {
  const node = await prepareNodeWs(children, `${cacheDir}/node`, root);
  const bun: BunBin = withBun
    ? await prepareBun(children, `${cacheDir}/bun`, root)
    : { bin: null, note: "Bun left out (BENCH_BUN=0)" };
  return { node, bun };
}
