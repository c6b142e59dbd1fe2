/**
 * Fuzz target for the HTTP head reader (`protocol/http11.ts`): every input is fed whole
 * and in random pieces; both runs must match the line-based reference (`ref_http.ts`):
 * the same head and trailing bytes, or the same error (status and code) raised while
 * feeding the piece that holds the offending byte, or nothing yet.
 *
 * @module
 */

import { HttpError, HttpHeadReader } from "../protocol/http11.ts";
import { genHeadCase, type HeadCase } from "./gen_http.ts";
import type { FuzzTarget } from "./harness.ts";
import { hex, type Rng } from "./prng.ts";
import { concatBytes as concat } from "../protocol/bytes.ts";
import { referenceHead, type RefHead, type RefVerdict } from "./ref_http.ts";

const DEFAULT_MAX_HEAD_BYTES = 8192;
const DEFAULT_MAX_HEADERS = 64;

type Outcome =
  | { kind: "head"; fields: Record<string, string | number>; headers: string; rest: string }
  | { kind: "error"; status: number; code: string }
  | { kind: "incomplete" };

/** The reader's outcome, and the byte range of the piece during which it happened. */
function run(c: HeadCase, pieces: Uint8Array[]): { outcome: Outcome; from: number; to: number } {
  const limits = { maxHeadBytes: c.maxHeadBytes, maxHeaders: c.maxHeaders };
  const reader = new HttpHeadReader(c.kind, limits);
  let from = 0;
  for (let i = 0; i < pieces.length; i++) {
    const to = from + pieces[i].length;
    let done;
    try {
      done = reader.feed(pieces[i]);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      try {
        reader.feed(new Uint8Array(1));
        throw new Error("the reader accepted bytes after failing");
      } catch (again) {
        if (again !== e) throw new Error("the reader did not repeat its error");
      }
      return { outcome: { kind: "error", status: e.status, code: e.code }, from, to };
    }
    if (done) {
      const { headers, ...fields } = done.head as unknown as Record<string, unknown>;
      const rest = concat([done.rest, ...pieces.slice(i + 1)]);
      const outcome: Outcome = {
        kind: "head",
        fields: fields as Record<string, string | number>,
        headers: JSON.stringify([...(headers as Headers)]),
        rest: hex(rest),
      };
      return { outcome, from, to };
    }
    from = to;
  }
  return { outcome: { kind: "incomplete" }, from: 0, to: 0 };
}

function expected(c: HeadCase, v: RefVerdict): Outcome {
  if (v.kind === "incomplete") return v;
  if (v.kind === "error") return { kind: "error", status: v.status, code: v.code };
  return {
    kind: "head",
    fields: v.head.fields,
    headers: headersOf(v.head),
    rest: hex(c.input.subarray(v.end)),
  };
}

function headersOf(head: RefHead): string {
  const headers = new Headers();
  for (const [name, value] of head.headers) headers.append(name, value);
  return JSON.stringify([...headers]);
}

function check(what: string, c: HeadCase, pieces: Uint8Array[], v: RefVerdict): void {
  const got = run(c, pieces);
  const want = expected(c, v);
  const a = JSON.stringify(got.outcome);
  const b = JSON.stringify(want);
  if (a !== b) throw new Error(`${what}: differs from the reference\n  got:  ${a}\n  want: ${b}`);
  const at = v.kind === "error" ? v.at : v.kind === "head" ? v.last : -1;
  if (at >= 0 && (at < got.from || at >= got.to)) {
    throw new Error(`${what}: ended while feeding bytes ${got.from}..${got.to}, not at byte ${at}`);
  }
}

/** The head reader fuzz target. */
export const httpTarget: FuzzTarget<HeadCase> = {
  name: "http",
  generate: genHeadCase,
  check(c: HeadCase, rng: Rng): void {
    const v = referenceHead(c.input, c.kind, {
      maxHeadBytes: c.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES,
      maxHeaders: c.maxHeaders ?? DEFAULT_MAX_HEADERS,
    });
    check("fed whole", c, [c.input], v);
    check("fed in pieces", c, rng.split(c.input), v);
  },
  describe(c: HeadCase): string {
    return `kind=${c.kind} maxHeadBytes=${c.maxHeadBytes} maxHeaders=${c.maxHeaders} ` +
      `bytes=${hex(c.input)}`;
  },
};
