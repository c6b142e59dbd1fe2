/**
 * The `--tls <cert.pem> <key.pem>` arguments of the Deno echo servers: with them a
 * server speaks wss (TLS over TCP) with that certificate; bench/run.ts passes the
 * test certificate of tests/fixtures/tls/. Our server also takes `--tls-listen` (the
 * same files, served through tlsListen).
 *
 * @module
 */

/** The certificate chain and key, PEM text. */
export interface TlsPem {
  /** Certificate chain, leaf first. */
  readonly cert: string;
  /** Private key of the leaf. */
  readonly key: string;
}

/**
 * The PEM files named after `flag` (default `--tls`) in `args`, read; `null` without
 * that flag.
 */
export function tlsFromArgs(args: readonly string[], flag = "--tls"): TlsPem | null {
  const at = args.indexOf(flag);
  if (at < 0) return null;
  const [certFile, keyFile] = args.slice(at + 1, at + 3);
  if (!certFile || !keyFile) throw new Error(`usage: ${flag} <cert.pem> <key.pem>`);
  return { cert: Deno.readTextFileSync(certFile), key: Deno.readTextFileSync(keyFile) };
}
