/**
 * npm `ws` for the Node server: installed at the start of each run into a cache
 * directory with `npm install --no-save --prefix <dir> ws@8` (no bufferutil, no
 * utf-8-validate: they are optional peers npm leaves out).
 *
 * @module
 */

import { type Children, runCommand } from "./children.ts";

/** Where `ws` is ready for Node, or why the Node server is left out. */
export type NodeWs =
  | { readonly dir: string; readonly version: string; readonly note: string | null }
  | { readonly dir: null; readonly note: string };

const NODE = "/usr/bin/node";

function installedVersion(dir: string): string | null {
  try {
    const pkg = JSON.parse(Deno.readTextFileSync(`${dir}/node_modules/ws/package.json`));
    return typeof pkg.version === "string" && pkg.version.startsWith("8.") ? pkg.version : null;
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

/** Installs `ws@8` for Node into `dir` (bounded to 2 minutes). */
export async function prepareNodeWs(
  children: Children,
  dir: string,
  root: string,
): Promise<NodeWs> {
  if (!exists(NODE)) return { dir: null, note: `${NODE} not found: npm ws on Node left out` };
  Deno.mkdirSync(dir, { recursive: true });
  let note: string | null = null;
  try {
    const r = await runCommand(
      children,
      "npm",
      ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", dir, "ws@8"],
      root,
      120_000,
    );
    if (r.code !== 0) note = `npm install failed (${r.stderr.split("\n").slice(-2).join(" ")})`;
  } catch (e) {
    note = `npm install failed (${e instanceof Error ? e.message : e})`;
  }
  const version = installedVersion(dir);
  if (version === null) return { dir: null, note: `${note ?? "ws not installed"}: Node left out` };
  for (const native of ["bufferutil", "utf-8-validate"]) {
    if (exists(`${dir}/node_modules/${native}`)) {
      note = `${note ? note + "; " : ""}${native} is present in ${dir} (ws may use it)`;
    }
  }
  return { dir, version, note };
}
