/**
 * The test certificates in `tests/fixtures/tls/` (SAN `localhost`, `127.0.0.1`) and the
 * TLS configurations most tests use with them.
 *
 * @module
 */

const FIXTURES = new URL("../fixtures/tls/", import.meta.url);

/** The path of a file in the TLS fixtures folder. */
export const fixture = (name: string): string => new URL(name, FIXTURES).pathname;

/** The text of a PEM file in the TLS fixtures folder. */
export const pem = (name: string): string => Deno.readTextFileSync(fixture(name));

/** The test CA's certificate. */
export const CA: string = pem("ca.pem");

/** A server's certificate and key. */
export const SERVER: { cert: string; key: string } = { cert: pem("cert.pem"), key: pem("key.pem") };

/** A client that trusts the test CA and checks the name `localhost`. */
export const CLIENT: { hostname: string; caCerts: string[] } = {
  hostname: "localhost",
  caCerts: [CA],
};
