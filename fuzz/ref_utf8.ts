/**
 * Reference UTF-8 check for the fuzzers, written straight from the table of well-formed
 * byte sequences (Unicode, Table 3-7): each row gives the allowed range of every byte.
 * Slow and simple on purpose; it is compared against the streaming validator.
 *
 * @module
 */

/** Table 3-7: each well-formed sequence as the ranges of its bytes, inclusive. */
const ROWS: [number, number][][] = [
  [[0x00, 0x7f]],
  [[0xc2, 0xdf], [0x80, 0xbf]],
  [[0xe0, 0xe0], [0xa0, 0xbf], [0x80, 0xbf]],
  [[0xe1, 0xec], [0x80, 0xbf], [0x80, 0xbf]],
  [[0xed, 0xed], [0x80, 0x9f], [0x80, 0xbf]],
  [[0xee, 0xef], [0x80, 0xbf], [0x80, 0xbf]],
  [[0xf0, 0xf0], [0x90, 0xbf], [0x80, 0xbf], [0x80, 0xbf]],
  [[0xf1, 0xf3], [0x80, 0xbf], [0x80, 0xbf], [0x80, 0xbf]],
  [[0xf4, 0xf4], [0x80, 0x8f], [0x80, 0xbf], [0x80, 0xbf]],
];

/** For each first byte, its row of the table (found by search once, at load time). */
const ROW_OF = Array.from(
  { length: 256 },
  (_, b) => ROWS.find(([[lo, hi]]) => b >= lo && b <= hi) ?? null,
);

/**
 * `"valid"`: well-formed UTF-8; `"incomplete"`: well-formed except that it stops inside
 * a sequence (more bytes could complete it); `"invalid"`: no continuation can fix it.
 */
export type Utf8Verdict = "valid" | "incomplete" | "invalid";

/** Classifies `bytes` per Table 3-7. */
export function utf8Verdict(bytes: Uint8Array): Utf8Verdict {
  let i = 0;
  while (i < bytes.length) {
    const row = ROW_OF[bytes[i]];
    if (!row) return "invalid";
    for (let k = 1; k < row.length; k++) {
      if (i + k >= bytes.length) return "incomplete";
      const [lo, hi] = row[k];
      if (bytes[i + k] < lo || bytes[i + k] > hi) return "invalid";
    }
    i += row.length;
  }
  return "valid";
}

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Cross-checks the table against the platform's fatal decoder; throws if they disagree. */
export function assertAgreesWithDecoder(bytes: Uint8Array, verdict: Utf8Verdict): void {
  let decoded = true;
  try {
    fatal.decode(bytes);
  } catch {
    decoded = false;
  }
  if (decoded !== (verdict === "valid")) {
    throw new Error(`reference UTF-8 table says ${verdict}, TextDecoder says ${decoded}`);
  }
}
