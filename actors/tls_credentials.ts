/**
 * What a TLS server presents and a TLS client trusts, read and checked before any
 * handshake: certificates and keys are PEM text (`cert`, `key`, `caCerts`), as with
 * `Deno.connectTls` and `Deno.serve`, or PEM files named by `certFile`, `keyFile` and
 * `caCertFiles` (reading them needs `--allow-read`). A bad certificate, a key that is not
 * the certificate's, or a bad ALPN list is `EINVAL` here, not a failed handshake later.
 *
 * @module
 */

import type { X509Certificate } from "node:crypto";
import { DillError } from "../protocol/errors.ts";
import { LazyModule } from "../protocol/lazy_module.ts";

/** `node:crypto`, for checking certificates and keys: imported on first need (see lazy_module.ts). */
const cryptoModule = new LazyModule("node:crypto", () => import("node:crypto"));

/** Credentials of a TLS server. Give each of certificate and key as PEM text or as a file. */
export interface TlsServerConfig {
  /** The certificate chain (leaf first), PEM text. */
  cert?: string;
  /** The private key of the leaf certificate, PEM text. */
  key?: string;
  /** Path of a PEM file with the certificate chain, instead of `cert`. */
  certFile?: string;
  /** Path of a PEM file with the private key, instead of `key`. */
  keyFile?: string;
  /** Application protocols offered through ALPN, most preferred first. */
  alpn?: string[];
}

/** What a TLS client checks and offers. */
export interface TlsClientConfig {
  /** The name (or IP address) the server's certificate must be valid for; also sent as SNI. */
  hostname: string;
  /** CA certificates to trust, PEM text; by default the runtime's root store (Mozilla's roots). */
  caCerts?: string[];
  /** Paths of PEM files with CA certificates to trust, added to `caCerts`. */
  caCertFiles?: string[];
  /** Application protocols to ask for through ALPN, most preferred first. */
  alpn?: string[];
}

/** A server's certificate chain, key and ALPN list, read and checked. */
export interface ServerCredentials {
  /** The certificate chain, PEM text. */
  readonly cert: string;
  /** The private key of the leaf, PEM text. */
  readonly key: string;
  /** ALPN protocols offered, most preferred first (possibly none). */
  readonly alpn: string[];
}

/**
 * Reads (from files if so configured) and checks a {@link TlsServerConfig}: `EINVAL`
 * for missing, unreadable or mismatched credentials and a bad ALPN list.
 *
 * @example
 * ```ts
 * import { serverCredentials } from "./tls_credentials.ts";
 *
 * await serverCredentials("tlsListen", { cert: "nope", key: "nope" })
 *   .catch((e) => console.log(e.code)); // EINVAL
 * ```
 */
export async function serverCredentials(
  op: string,
  config: TlsServerConfig,
): Promise<ServerCredentials> {
  if (!config || typeof config !== "object") {
    throw new DillError("EINVAL", `${op}: config must be { cert, key } or { certFile, keyFile }`);
  }
  const cert = await pemOf(op, "cert", config.cert, config.certFile, "CERTIFICATE");
  const key = await pemOf(op, "key", config.key, config.keyFile, "PRIVATE KEY");
  await cryptoModule.load();
  checkCredentials(op, cert, key);
  return { cert, key, alpn: alpnOf(op, config.alpn) };
}

/** A client's server name, trusted CA certificates and ALPN list, read and checked. */
export interface ClientTrust {
  /** The name (or IP address) the server's certificate must be valid for. */
  readonly hostname: string;
  /** CA certificates to trust (PEM text), or `undefined` for the runtime's root store. */
  readonly caCerts: string[] | undefined;
  /** ALPN protocols asked for, most preferred first (possibly none). */
  readonly alpn: string[];
}

/**
 * Reads (from files if so configured) and checks a {@link TlsClientConfig}: `EINVAL`
 * for a missing host name, unreadable or invalid CA certificates and a bad ALPN list.
 *
 * @example
 * ```ts
 * import { clientTrust } from "./tls_credentials.ts";
 *
 * console.log((await clientTrust("tlsAttachClient", { hostname: "localhost" })).alpn); // []
 * ```
 */
export async function clientTrust(op: string, config: TlsClientConfig): Promise<ClientTrust> {
  if (!config || typeof config.hostname !== "string" || config.hostname === "") {
    throw new DillError("EINVAL", `${op}: config.hostname must name the server to verify`);
  }
  const caCerts = await caCertsOf(op, config.caCerts, config.caCertFiles);
  return { hostname: config.hostname, caCerts, alpn: alpnOf(op, config.alpn) };
}

async function pemOf(
  op: string,
  field: string,
  text: unknown,
  file: unknown,
  label: string,
): Promise<string> {
  const fileField = `${field}File`;
  if (text !== undefined && file !== undefined) {
    throw new DillError("EINVAL", `${op}: give ${field} (PEM text) or ${fileField}, not both`);
  }
  if (text === undefined && file === undefined) {
    throw new DillError("EINVAL", `${op}: ${field} (PEM text) or ${fileField} is required`);
  }
  const pem = text !== undefined ? text : await readPem(op, fileField, file);
  checkPem(op, text !== undefined ? field : fileField, pem, label);
  return pem as string;
}

async function caCertsOf(
  op: string,
  texts: unknown,
  files: unknown,
): Promise<string[] | undefined> {
  if (texts === undefined && files === undefined) return undefined;
  await cryptoModule.load();
  const out: string[] = [];
  if (texts !== undefined) {
    if (!Array.isArray(texts)) throw new DillError("EINVAL", `${op}: caCerts must be an array`);
    for (const pem of texts) {
      checkPem(op, "caCerts", pem, "CERTIFICATE");
      parseCert(op, "caCerts", pem);
      out.push(pem);
    }
  }
  if (files !== undefined) {
    if (!Array.isArray(files)) {
      throw new DillError("EINVAL", `${op}: caCertFiles must be an array of paths`);
    }
    for (const file of files) {
      const pem = await readPem(op, "caCertFiles", file);
      checkPem(op, "caCertFiles", pem, "CERTIFICATE");
      parseCert(op, "caCertFiles", pem);
      out.push(pem);
    }
  }
  return out;
}

async function readPem(op: string, field: string, path: unknown): Promise<string> {
  if (typeof path !== "string" && !(path instanceof URL)) {
    throw new DillError("EINVAL", `${op}: ${field} must be a path`);
  }
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new DillError("EINVAL", `${op}: cannot read ${field} ${path} (${detail})`, { cause: e });
  }
}

function checkPem(op: string, field: string, pem: unknown, label: string): void {
  if (typeof pem === "string" && pem.includes("-----BEGIN ") && pem.includes(label)) return;
  const pathField = { cert: "certFile", key: "keyFile", caCerts: "caCertFiles" }[field];
  const hint = pathField ? `; to give a path, use ${pathField}` : "";
  throw new DillError("EINVAL", `${op}: ${field} must be PEM text with a "${label}" block${hint}`);
}

/** Certificate/key pairs already checked (cert → key), so servers pay once per pair. */
const checkedPairs = new Map<string, string>();
const MAX_CHECKED_PAIRS = 32;

/** Parses the certificate and key up front, so that a bad pair is `EINVAL`, not a failed handshake. */
function checkCredentials(op: string, cert: string, key: string): void {
  if (checkedPairs.get(cert) === key) return;
  const leaf = parseCert(op, "cert", cert);
  let privateKey;
  try {
    privateKey = cryptoModule.get(op).createPrivateKey(key);
  } catch (e) {
    throw new DillError("EINVAL", `${op}: key is not a usable private key (${message(e)})`, {
      cause: e,
    });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new DillError(
      "EINVAL",
      `${op}: key is not the private key of the first certificate in cert`,
    );
  }
  if (checkedPairs.size >= MAX_CHECKED_PAIRS) checkedPairs.clear();
  checkedPairs.set(cert, key);
}

function parseCert(op: string, field: string, pem: string): X509Certificate {
  try {
    return new (cryptoModule.get(op).X509Certificate)(pem);
  } catch (e) {
    throw new DillError("EINVAL", `${op}: ${field} holds no valid certificate (${message(e)})`, {
      cause: e,
    });
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function alpnOf(op: string, alpn: unknown): string[] {
  if (alpn === undefined) return [];
  if (
    !Array.isArray(alpn) ||
    !alpn.every((p) => typeof p === "string" && p.length > 0 && p.length < 256)
  ) {
    throw new DillError("EINVAL", `${op}: alpn must be a list of protocol names`);
  }
  return alpn;
}
