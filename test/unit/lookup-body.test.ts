// The lookup's reduced body reader (request-parts.ts readLookupBody, over openrtb/bid-request-scan.ts) against
// JSON.parse of the whole body: for every sample, every peer-corpus request and 100,000 generated bodies,
// either the same members the lookup reads, or the same 400 (code, message, field).
import { existsSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.ts";
import type { Json } from "../../src/json-fields.ts";
import { LOOKUP_MEMBERS, parseJsonObject, readLookupBody } from "../../src/lookup/request-parts.ts";
import { createObjectReader, Each, type MemberSpec } from "../../src/openrtb/bid-request-scan.ts";
import { visibleMembers } from "../helpers/member-spec.ts";
import { CORPUS_DIR, filesOf, SAMPLES_DIR } from "../helpers/request-files.ts";

type Outcome = { members: Json } | { error: Record<string, unknown> };

function outcome(read: (bytes: Buffer) => Json, bytes: Buffer): Outcome {
  try {
    return { members: visibleMembers(read(bytes), LOOKUP_MEMBERS) as Json };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { error: { status: err.status, code: err.code, message: err.message, field: err.field } };
  }
}

/** Fails with the body in the message: a generated body is useless without it. */
function expectSame(bytes: Buffer): Outcome {
  const reduced = outcome(readLookupBody, bytes);
  const full = outcome(parseJsonObject, bytes);
  // expect() only on a difference: 100,000 of them would cost most of the test's time.
  if (!isDeepStrictEqual(reduced, full)) expect(reduced, bytes.toString("latin1")).toEqual(full);
  return full;
}

/** The reader on its own, with no fallback: null where readLookupBody would parse the whole body. */
const readOwn = createObjectReader(LOOKUP_MEMBERS);

describe("readLookupBody", () => {
  it("reads every OpenRTB sample itself, as JSON.parse does", () => {
    const files = filesOf(SAMPLES_DIR);
    expect(files.length).toBeGreaterThan(10);
    for (const { name, bytes } of files) {
      expect("members" in expectSame(bytes), name).toBe(true);
      expect(readOwn(bytes), name).not.toBeNull();
    }
  });

  it.skipIf(!existsSync(CORPUS_DIR))(
    "reads every peer-corpus request as JSON.parse does (the four refused with the same 400)",
    () => {
      const files = filesOf(CORPUS_DIR);
      expect(files.length).toBeGreaterThan(400);
      let refused = 0;
      let ownReads = 0;
      for (const { bytes } of files) {
        if ("error" in expectSame(bytes)) refused++;
        if (readOwn(bytes) !== null) ownReads++;
      }
      // Two are not valid JSON, two are not objects.
      expect(refused).toBe(4);
      // Every valid one is read without the whole-body fallback.
      expect(ownReads).toBe(files.length - refused);
    },
  );

  it("keeps what an imp array is (its length), not its elements", () => {
    const body = readOwn(Buffer.from('{"id":"r","imp":[{"id":"1"},{"id":"2","banner":{"w":3}}],"site":{}}'));
    const imp = body?.imp as unknown[];
    expect(Array.isArray(imp)).toBe(true);
    expect(imp.length).toBe(2);
    expect(0 in imp).toBe(false);
    expect(body).toEqual({ id: "r", imp: [undefined, undefined] });
    expect(Object.hasOwn(body as Json, "site")).toBe(false);
  });

  it("builds of user, device and regs only the members the lookup reads", () => {
    const text = JSON.stringify({
      id: "r",
      user: { id: "u", data: [{ id: "d" }], ext: { eids: [], consent: "c", other: 1 } },
      device: { ua: "Mozilla", ifa: "x", geo: { lat: 1 }, ext: { atts: 3, ifv: "y" } },
      regs: { coppa: 0, ext: { gdpr: 1, dsa: {} } },
      site: { page: "p" },
    });
    expect(readOwn(Buffer.from(text))).toEqual({
      id: "r",
      user: { id: "u", ext: { eids: [], consent: "c" } },
      device: { ifa: "x", ext: { atts: 3 } },
      regs: { coppa: 0, ext: { gdpr: 1 } },
    });
    // A member of the wrong type is kept as it is, for the lookup to refuse as before.
    expect(readOwn(Buffer.from('{"user":[1],"device":"d","imp":{"a":1}}'))).toEqual({
      user: [1],
      device: "d",
      imp: { a: 1 },
    });
  });

  it("leaves to JSON.parse what it could read differently: escaped keys, duplicates, deep nesting", () => {
    expect(readOwn(Buffer.from('{"\\u0069d":"a"}'))).toBeNull();
    expect(readOwn(Buffer.from('{"id":"a","id":"b"}'))).toBeNull();
    expect(readLookupBody(Buffer.from('{"id":"a","id":"b"}')).id).toBe("b");
    expect(readLookupBody(Buffer.from('{"\\u0069d":"a"}')).id).toBe("a");
    const deep = `{"ext":${"[".repeat(5000)}${"]".repeat(5000)},"id":"x"}`;
    expect(readOwn(Buffer.from(deep))).toBeNull();
    expect(readLookupBody(Buffer.from(deep)).id).toBe("x");
    // Skipped duplicates do not matter: nothing of them is kept.
    expect(readOwn(Buffer.from('{"site":1,"site":{},"id":"a"}'))).toEqual({ id: "a" });
  });

  it("answers invalid JSON anywhere in the body with JSON.parse's own 400", () => {
    for (const text of [
      "",
      " ",
      '{"id":"a","site":{"page":"x",}}',
      '{"id":"a","imp":[1,]}',
      '{"id":"a","ext":01}',
      '{"id":"a","ext":"\\x"}',
      '{"id":"a","ext":"tab\there"}',
      '{"id":"a"} x',
      "[1]",
      '"s"',
      "\ufeff{}",
    ]) {
      const out = expectSame(Buffer.from(text));
      expect("error" in out, text).toBe(true);
    }
  });

  /** Every member name LOOKUP_MEMBERS names, at any depth: the keys generated bodies use most. */
  function memberNames(spec: MemberSpec): string[] {
    return Object.entries(spec).flatMap(([k, kind]) =>
      kind === true || kind === "length" ? [k] : [k, ...memberNames(kind instanceof Each ? kind.spec : kind)],
    );
  }

  // Raw JSON text, built piece by piece so that whitespace, escapes, number spellings and duplicate keys are
  // all in play. Valid by construction; the invalid bodies come from the mutations further down.
  const space = fc.constantFrom("", "", "", " ", "\n", "\t", "\r\n  ");
  const numberText = fc.oneof(
    { weight: 12, arbitrary: fc.double().map((d) => (Number.isFinite(d) ? String(d) : "1e400")) },
    { weight: 8, arbitrary: fc.integer().map(String) },
    {
      weight: 8,
      arbitrary: fc
        .tuple(
          fc.constantFrom("", "-"),
          fc.constantFrom("0", "7", "12", "900719925474099312345"),
          fc.constantFrom("", ".5", ".000", ".25e3"),
          fc.constantFrom("", "e5", "E+2", "e-07", "E400"),
        )
        .map((p) => p.join("")),
    },
  );
  const stringPiece = fc.oneof(
    { weight: 30, arbitrary: fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s).slice(1, -1)) },
    {
      weight: 9,
      arbitrary: fc.fullUnicodeString({ maxLength: 4 }).map((s) => JSON.stringify(s).slice(1, -1)),
    },
    {
      weight: 9,
      arbitrary: fc.constantFrom(
        '\\"',
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u00e9",
        "\\uD800",
      ),
    },
  );
  const stringText = fc.array(stringPiece, { maxLength: 4 }).map((p) => `"${p.join("")}"`);
  const keyText = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...memberNames(LOOKUP_MEMBERS)).map((k) => `"${k}"`) },
    {
      weight: 4,
      arbitrary: fc
        .constantFrom("site", "app", "source", "ext", "at", "__proto__", "bcat")
        .map((k) => `"${k}"`),
    },
    { weight: 2, arbitrary: stringText },
    {
      weight: 1,
      arbitrary: fc.constantFrom('"\\u0069d"', '"us\\u005fprivacy"', '"ïd"', '"id\u00e9"', '"constructor"'),
    },
  );
  /** Not JSON: whitespace JSON does not allow, numbers, escapes, literals and punctuation it refuses. */
  const INVALID_PIECES = [
    "\u00a0",
    "\f",
    "\v",
    "01",
    "-",
    "1.",
    ".5",
    "+1",
    "1e",
    "1e+",
    "0x1f",
    "NaN",
    "--1",
    "\\x",
    "\\u12",
    "\\uZZZZ",
    "\t",
    "\u0001",
    "\\",
    "tru",
    "True",
    "nul",
    ",",
    ",]",
    ",}",
    '"',
    '"id',
    ":",
    "]",
    "}",
    "[",
    "{",
  ];
  const { value } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { weight: 4, arbitrary: numberText },
      { weight: 5, arbitrary: stringText },
      {
        weight: 2,
        arbitrary: fc.constantFrom("true", "false", "null"),
      },
      { weight: 3, arbitrary: tie("array") },
      { weight: 3, arbitrary: tie("object") },
    ),
    array: fc
      .tuple(space, fc.array(fc.tuple(tie("value"), space), { maxLength: 4 }))
      .map(([s, items]) => `[${s}${items.map(([v, w]) => `${v}${w}`).join(",")}]`),
    object: fc
      .array(fc.tuple(space, keyText, space, tie("value"), space), { maxLength: 4 })
      .map((es) => `{${es.map(([a, k, b, v, c]) => `${a}${k}${b}:${v}${c}`).join(",")}}`),
  }));
  const nested = fc
    .tuple(fc.integer({ min: 1, max: 400 }), fc.boolean(), value)
    .map(([n, obj, v]) =>
      obj ? `${'{"a":'.repeat(n)}${v}${"}".repeat(n)}` : `${"[".repeat(n)}${v}${"]".repeat(n)}`,
    );
  const memberValue = fc.oneof(
    { weight: 10, arbitrary: value },
    { weight: 1, arbitrary: nested },
    { weight: 2, arbitrary: fc.array(value, { maxLength: 5 }).map((vs) => `[${vs.join(",")}]`) },
  );
  const topLevel = fc
    .tuple(space, fc.array(fc.tuple(space, keyText, space, memberValue, space), { maxLength: 8 }), space)
    .map(([a, es, z]) => `${a}{${es.map(([b, k, c, v, d]) => `${b}${k}${c}:${v}${d}`).join(",")}}${z}`);
  const body = fc.oneof(
    { weight: 10, arbitrary: topLevel.map((t) => Buffer.from(t)) },
    { weight: 1, arbitrary: value.map((t) => Buffer.from(t)) },
    // Truncated anywhere.
    {
      weight: 2,
      arbitrary: fc
        .tuple(topLevel, fc.nat())
        .map(([t, at]) => Buffer.from(t).subarray(0, at % (Buffer.byteLength(t) + 1))),
    },
    // An invalid token, or a lone character out of place, put anywhere.
    {
      weight: 2,
      arbitrary: fc.tuple(topLevel, fc.nat(), fc.constantFrom(...INVALID_PIECES)).map(([t, at, piece]) => {
        const p = at % (t.length + 1);
        return Buffer.from(t.slice(0, p) + piece + t.slice(p));
      }),
    },
    // One byte changed or inserted anywhere, invalid UTF-8 included.
    {
      weight: 2,
      arbitrary: fc
        .tuple(topLevel, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean())
        .map(([t, at, b, ins]) => {
          const src = Buffer.from(t);
          const p = at % (src.length + 1);
          return ins || p === src.length
            ? Buffer.concat([src.subarray(0, p), Buffer.from([b]), src.subarray(p)])
            : Buffer.concat([src.subarray(0, p), Buffer.from([b]), src.subarray(p + 1)]);
        }),
    },
  );

  it("gives what JSON.parse gives for 100,000 generated bodies", () => {
    let read = 0;
    let refused = 0;
    let own = 0;
    // Half the bodies end in two thrown errors; their stack traces would be most of the test's time, and
    // neither the code, the message nor the field depends on them.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      fc.assert(
        fc.property(body, (bytes) => {
          if ("error" in expectSame(bytes)) refused++;
          else read++;
          if (readOwn(bytes) !== null) own++;
        }),
        // FUZZ_SEED replays a failing run (fast-check prints the seed of one).
        process.env.FUZZ_SEED === undefined
          ? { numRuns: 100_000 }
          : { numRuns: 100_000, seed: Number(process.env.FUZZ_SEED) },
      );
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    // Both sides of the comparison are exercised: many bodies read, many refused.
    expect(read).toBeGreaterThan(20_000);
    expect(refused).toBeGreaterThan(10_000);
    // And most of those read are read by the reader itself, not by the whole-body fallback.
    expect(own).toBeGreaterThan(read / 2);
  }, 60_000);
});
