/**
 * TLS record boundaries (RFC 8446 section 5.1), found without decrypting anything.
 *
 * The TLS layer feeds received ciphertext to its TLS engine in pieces cut by
 * {@link TlsRecordScanner}, so that it can stop right after the peer's `close_notify`
 * alert: whatever follows it on the connection is no longer TLS and belongs to the
 * bytestream handed back by `tlsDetach`. Under TLS 1.3 an alert is encrypted like
 * application data, so any small record may be the one; large records never are.
 *
 * @module
 */

/** Bytes in a record header: type (1), legacy version (2), length (2). */
export const RECORD_HEADER_SIZE = 5;

/** Content type of an unencrypted alert record (TLS 1.2 and earlier). */
const ALERT = 21;

/**
 * Records with a body up to this size may carry an alert. A TLS 1.3 `close_notify`
 * is 19 bytes (2 of alert, 1 of inner type, 16 of AEAD tag) unless the sender pads it,
 * which common implementations do not do.
 */
export const MAX_ALERT_RECORD = 256;

/**
 * Cuts a stream of TLS records into pieces that end right after every record that
 * may be an alert, and otherwise as late as possible (whole chunks of large records
 * stay together). It tracks one record header across chunk boundaries.
 *
 * @example
 * ```ts
 * import { TlsRecordScanner } from "./tls_records.ts";
 *
 * // A 2-byte alert record followed by the start of a 300-byte application record.
 * const bytes = new Uint8Array([21, 3, 3, 0, 2, 1, 0, 23, 3, 3, 1, 44, 9, 9]);
 * const scanner = new TlsRecordScanner();
 * console.log(scanner.nextCut(bytes, 0)); // 7: feed the alert alone, then look again
 * console.log(scanner.nextCut(bytes, 7)); // 14: the rest of the chunk
 * ```
 */
export class TlsRecordScanner {
  readonly #header = new Uint8Array(RECORD_HEADER_SIZE);
  #headerLen = 0;
  /** Body bytes of the current record still to come (valid once the header is complete). */
  #bodyLeft = 0;
  /** Whether the current record may be an alert. */
  #small = false;

  /**
   * Returns the offset in `chunk` where the piece starting at `offset` ends: right
   * after the first record that may be an alert, or `chunk.length`. Call it again
   * from the returned offset for the next piece; every byte is scanned once.
   */
  nextCut(chunk: Uint8Array, offset: number): number {
    let i = offset;
    while (i < chunk.length) {
      if (this.#headerLen < RECORD_HEADER_SIZE) {
        const n = Math.min(RECORD_HEADER_SIZE - this.#headerLen, chunk.length - i);
        this.#header.set(chunk.subarray(i, i + n), this.#headerLen);
        this.#headerLen += n;
        i += n;
        if (this.#headerLen < RECORD_HEADER_SIZE) return i;
        const h = this.#header;
        this.#bodyLeft = (h[3] << 8) | h[4];
        this.#small = h[0] === ALERT || this.#bodyLeft <= MAX_ALERT_RECORD;
      }
      const n = Math.min(this.#bodyLeft, chunk.length - i);
      this.#bodyLeft -= n;
      i += n;
      if (this.#bodyLeft > 0) return i;
      this.#headerLen = 0;
      if (this.#small) return i;
    }
    return i;
  }
}
