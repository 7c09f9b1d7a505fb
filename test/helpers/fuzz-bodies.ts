// Hostile request bodies, generated (fast-check), for the fuzz tests: random JSON, the samples with a field
// replaced or removed, deep nesting, huge arrays, invalid UTF-8, truncated bodies; and, written byte by byte
// where JSON.stringify cannot say it, huge numbers, duplicate keys, escapes and non-ASCII in keys and strings,
// and every field the bid-time routes read given a value of another type.
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { COMPACT_SIGNAL_FIELDS } from "../../src/privacy/privacy-signals.ts";

const SAMPLES_DIR = new URL("../../openrtb-samples/", import.meta.url);
export const samples: readonly string[] = readdirSync(SAMPLES_DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => readFileSync(new URL(f, SAMPLES_DIR), "utf8"));

// --- the generators of the in-process fuzz test ---------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 6 });
const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.constant("x".repeat(2_000)),
  fc.constant(Number.MAX_SAFE_INTEGER),
);

/** A sample with one field (at any depth) replaced by a value of another type, or removed. */
const mutatedSample = fc
  .tuple(
    fc.constantFrom(...samples),
    fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
    wrongValue,
    fc.boolean(),
  )
  .map(([text, path, value, remove]) => {
    const root = JSON.parse(text) as Record<string, unknown>;
    let node: unknown = root;
    for (let i = 0; i < path.length; i++) {
      if (typeof node !== "object" || node === null) break;
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const key = keys[(path[i] as number) % keys.length] as string;
      const last = i === path.length - 1 || typeof (node as Record<string, unknown>)[key] !== "object";
      if (last) {
        if (remove) delete (node as Record<string, unknown>)[key];
        else (node as Record<string, unknown>)[key] = value;
        break;
      }
      node = (node as Record<string, unknown>)[key];
    }
    return Buffer.from(JSON.stringify(root));
  });

const deepNesting = fc
  .tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom("[", '{"a":'))
  .map(([n, open]) => Buffer.from(open.repeat(n)));
const hugeArray = fc
  .tuple(fc.integer({ min: 1_000, max: 15_000 }), fc.constantFrom("ids", "batch", "imp", "campaigns"))
  .map(([n, key]) =>
    Buffer.from(
      JSON.stringify({
        id: "r",
        [key]: Array.from({ length: n }, (_, i) => ({ type: "bu", id: String(i) })),
      }),
    ),
  );
const invalidUtf8 = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b));
const truncated = fc
  .tuple(fc.constantFrom(...samples), fc.double({ min: 0, max: 1, noNaN: true }))
  .map(([t, f]) => Buffer.from(t.slice(0, Math.floor(t.length * f))));
const jsonBody = anyJson.map((v) => Buffer.from(JSON.stringify(v)));
const compactish = fc
  .record(
    {
      ids: fc.oneof(wrongValue, fc.array(fc.record({ type: wrongValue, id: wrongValue }), { maxLength: 5 })),
    },
    { requiredKeys: [] },
  )
  .map((v) => Buffer.from(JSON.stringify(v)));

export const body = fc.oneof(
  { weight: 4, arbitrary: mutatedSample },
  { weight: 2, arbitrary: jsonBody },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: hugeArray },
  { weight: 1, arbitrary: invalidUtf8 },
  { weight: 1, arbitrary: truncated },
  { weight: 1, arbitrary: compactish },
);
export const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        "type",
        "id",
        "campaign",
        "imp",
        "ts",
        "token",
        "format",
        "expand",
        "min_confidence",
        "campaigns",
        "exchange",
        "strict",
        "replace_segment",
      ),
      fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("bu", "ifa", "1", "gif", "%ZZ", "-1", "1e999")),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&"));

// --- JSON written byte by byte --------------------------------------------------------------------------

/** Bytes written as they are: a number JSON.stringify cannot write, invalid UTF-8, a key with escapes. */
class Raw {
  readonly bytes: Buffer;
  constructor(bytes: Buffer | string) {
    this.bytes = typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes;
  }
}

/** An object written member by member, in this order: a key may come twice, or be Raw. */
class Members {
  constructor(readonly entries: readonly (readonly [string | Raw, unknown])[]) {}
}

/** JSON text of `v`, with its Raw parts and Members written as they are. */
function jsonText(v: unknown): Buffer {
  const out: Buffer[] = [];
  write(v, out);
  return Buffer.concat(out);
}

function write(v: unknown, out: Buffer[]): void {
  if (v instanceof Raw) out.push(v.bytes);
  else if (v instanceof Members) {
    out.push(Buffer.from("{"));
    v.entries.forEach(([k, value], i) => {
      out.push(Buffer.from(i === 0 ? "" : ","));
      out.push(k instanceof Raw ? k.bytes : Buffer.from(JSON.stringify(k)));
      out.push(Buffer.from(":"));
      write(value, out);
    });
    out.push(Buffer.from("}"));
  } else if (Array.isArray(v)) {
    out.push(Buffer.from("["));
    v.forEach((e, i) => {
      if (i > 0) out.push(Buffer.from(","));
      write(e, out);
    });
    out.push(Buffer.from("]"));
  } else if (typeof v === "object" && v !== null) {
    write(new Members(Object.entries(v).filter(([, e]) => e !== undefined)), out);
  } else out.push(Buffer.from(JSON.stringify(v) ?? "null"));
}

type Path = readonly (string | number)[];
type Tree = Record<string, unknown>;

/** The container at `path` in `root`, made (an object, or an array before an index) where it is missing. */
function containerAt(root: Tree, path: Path): Record<string | number, unknown> {
  let node = root as Record<string | number, unknown>;
  for (let i = 0; i < path.length; i++) {
    const key = path[i] as string | number;
    let next = node[key];
    if (typeof next !== "object" || next === null || next instanceof Raw || next instanceof Members) {
      next = typeof path[i + 1] === "number" ? [] : {};
      node[key] = next;
    }
    node = next as Record<string | number, unknown>;
  }
  return node;
}

/** `root` with the value at `path` set (everything on the way made when missing). */
function setAt(root: Tree, path: Path, value: unknown): Tree {
  if (path.length === 0) return value as Tree;
  containerAt(root, path.slice(0, -1))[path[path.length - 1] as string | number] = value;
  return root;
}

/** `root` with the object at `path` replaced by `make(its members)`. */
function replaceObject(root: Tree, path: Path, make: (entries: [string, unknown][]) => unknown): Tree {
  const obj = containerAt(root, path);
  const entries = Array.isArray(obj) ? [] : Object.entries(obj);
  return setAt(root, path, make(entries));
}

// --- values -------------------------------------------------------------------------------------------

/** Numbers past what a double holds, negative zero, digits by the thousand: each valid JSON. */
const hugeNumberText = fc.oneof(
  fc.constantFrom(
    "1e400",
    "-1e400",
    "1E+308",
    "2e308",
    "4.9e-325",
    "0e-400",
    "-0",
    "-0.0",
    "-0e0",
    "18446744073709551616",
    "-18446744073709551616",
    "9007199254740993",
    "1e-99999999999",
    "123456789012345678901234567890e-20",
  ),
  fc.integer({ min: 20, max: 5_000 }).map((n) => `1${"0".repeat(n)}`),
  fc.integer({ min: 20, max: 5_000 }).map((n) => `-0.${"9".repeat(n)}`),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 200n }).map(String),
);

/** Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, surrogates, past U+10FFFF. */
const badUtf8Bytes = fc.oneof(
  fc.constantFrom(
    [0xff],
    [0xfe, 0xff],
    [0x80],
    [0xbf, 0x80],
    [0xc0, 0xaf],
    [0xc1, 0xbf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
    [0xc3],
  ),
  fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 8 }),
);

/** A JSON string (quotes included) with bytes that are not UTF-8 among ASCII ones. */
const badUtf8String = fc
  .tuple(fc.string({ maxLength: 10 }), badUtf8Bytes, fc.string({ maxLength: 10 }))
  .map(([a, bad, b]) =>
    Buffer.concat([
      Buffer.from(JSON.stringify(a).slice(0, -1)),
      Buffer.from(bad),
      Buffer.from(JSON.stringify(b).slice(1)),
    ]),
  );

/** `s` as a JSON string (quotes included) with the characters `escaped` picks written as \uXXXX. */
function escapedText(s: string, escaped: (i: number) => boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i] as string;
    out += escaped(i) || c < 0x20 || ch === '"' || ch === "\\" ? `\\u${c.toString(16).padStart(4, "0")}` : ch;
  }
  return `${out}"`;
}

/** Strings a reader may trip on: escapes, lone surrogates, NUL, look-alikes, every plane of Unicode. */
const trickyString = (known: readonly string[]) =>
  fc.oneof(
    fc.constantFrom(...known),
    fc.string({ unit: "binary", maxLength: 20 }),
    fc.string({ unit: "grapheme", maxLength: 10 }),
    fc.constantFrom("\ud800", "\udfff", "\udc00\ud800", "\u0000", "\u202e", "\ufeff", "İ", "ß", "\u{1f600}"),
  );

/** A JSON string whose text escapes some (or all) of its characters, some of them past ASCII. */
const escapedString = (known: readonly string[]) =>
  fc
    .tuple(trickyString(known), fc.boolean(), fc.nat())
    .map(
      ([s, all, seed]) => new Raw(Buffer.from(escapedText(s, (i) => all || (seed >> (i % 30)) % 2 === 1))),
    );

/** An object or array value nested `n` deep, closed: a valid value unless the limit refuses it. */
const deepValue = fc
  .tuple(fc.integer({ min: 60, max: 9_000 }), fc.constantFrom("array", "object", "mixed"))
  .map(([n, kind]) => {
    if (kind === "array") return new Raw(`${"[".repeat(n)}${"]".repeat(n)}`);
    if (kind === "object") return new Raw(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`);
    return new Raw(`${'[{"user":'.repeat(n >> 1)}null${"}]".repeat(n >> 1)}`);
  });

/** An object with a key given twice. */
const duplicateObject = (known: readonly string[]) =>
  fc
    .tuple(fc.constantFrom("id", "type", "buyeruid", "user", "ids", "a"), wrongValue, trickyString(known))
    .map(
      ([k, a, b]) =>
        new Members([
          [k, a],
          ["type", "bu"],
          [k, b],
        ]),
    );

/** A value of any type for any field: wrong types, huge numbers, invalid UTF-8, escapes, depth, duplicates. */
const hostileValue = (known: readonly string[]) =>
  fc.oneof(
    { weight: 4, arbitrary: wrongValue },
    { weight: 2, arbitrary: hugeNumberText.map((t) => new Raw(t)) },
    { weight: 2, arbitrary: badUtf8String.map((b) => new Raw(b)) },
    { weight: 2, arbitrary: escapedString(known) },
    { weight: 1, arbitrary: trickyString(known) },
    { weight: 1, arbitrary: deepValue },
    { weight: 1, arbitrary: duplicateObject(known) },
  );

// --- bid-time requests ----------------------------------------------------------------------------------

/**
 * Every field /v1/lookup and /v1/enrich read (request-parts.ts LOOKUP_MEMBERS, ENRICH_MEMBERS, and what the
 * readers take out of them), with an index standing for an element of an array.
 */
const READ_FIELDS: readonly Path[] = [
  ["id"],
  ["tmax"],
  ["imp"],
  ["imp", 0],
  ["imp", 0, "id"],
  ["imp", 0, "pmp"],
  ["imp", 0, "pmp", "deals"],
  ["imp", 0, "pmp", "deals", 0],
  ["imp", 0, "pmp", "deals", 0, "id"],
  ["imp", 0, "banner"],
  ["imp", 0, "banner", "w"],
  ["imp", 0, "banner", "h"],
  ["imp", 0, "banner", "format"],
  ["imp", 0, "banner", "format", 0],
  ["imp", 0, "banner", "format", 0, "w"],
  ["imp", 0, "video"],
  ["imp", 0, "video", "w"],
  ["imp", 0, "video", "h"],
  ["imp", 0, "native"],
  ["imp", 0, "audio"],
  ["user"],
  ["user", "id"],
  ["user", "buyeruid"],
  ["user", "eids"],
  ["user", "eids", 0],
  ["user", "eids", 0, "source"],
  ["user", "eids", 0, "uids"],
  ["user", "eids", 0, "uids", 0],
  ["user", "eids", 0, "uids", 0, "id"],
  ["user", "eids", 0, "uids", 0, "atype"],
  ["user", "consent"],
  ["user", "data"],
  ["user", "data", 0],
  ["user", "data", 0, "name"],
  ["user", "data", 0, "segment"],
  ["user", "data", 0, "segment", 0, "id"],
  ["user", "ext"],
  ["user", "ext", "eids"],
  ["user", "ext", "consent"],
  ["device"],
  ["device", "ifa"],
  ["device", "lmt"],
  ["device", "ext"],
  ["device", "ext", "atts"],
  ["regs"],
  ["regs", "coppa"],
  ["regs", "gdpr"],
  ["regs", "us_privacy"],
  ["regs", "gpp"],
  ["regs", "gpp_sid"],
  ["regs", "ext"],
  ["regs", "ext", "gdpr"],
  ["regs", "ext", "us_privacy"],
  ["ids"],
  ["ids", 0],
  ["ids", 0, "type"],
  ["ids", 0, "id"],
  ["batch"],
  ["batch", 0],
  ["batch", 0, "ids"],
  ["batch", 0, "ids", 0, "id"],
  ["campaigns"],
  ["campaigns", 0],
  ["expand"],
  ["min_confidence"],
  ...COMPACT_SIGNAL_FIELDS.map((f) => [f]),
];

/** Objects whose keys the readers look up: where a key given twice or spelt with escapes matters. */
const READ_OBJECTS: readonly Path[] = [
  [],
  ["user"],
  ["user", "ext"],
  ["user", "eids", 0],
  ["user", "eids", 0, "uids", 0],
  ["device"],
  ["regs"],
  ["imp", 0],
  ["imp", 0, "banner"],
  ["ids", 0],
];

/**
 * Requests that reach the store: each sample about `knownId` (a bu ID), and the compact and batch forms;
 * besides the samples as they are, whose IDs the store does not hold.
 */
const baseRequest = (knownId: string) =>
  fc.oneof(
    fc.constantFrom(...samples).map((t) => JSON.parse(t) as Tree),
    fc.constantFrom(...samples).map((t) => {
      const r = JSON.parse(t) as Tree;
      return { ...r, user: { ...(r.user as Tree | undefined), buyeruid: knownId } };
    }),
    fc.constant<Tree>({ id: "c", ids: [{ type: "bu", id: knownId }], campaigns: ["c-1"], expand: true }),
    fc.constant<Tree>({
      batch: [{ id: "a", ids: [{ type: "bu", id: knownId }] }, { ids: [{ type: "bu", id: "nobody" }] }],
    }),
  );

/** A request with one to three of the fields it reads given hostile values. */
const readFieldsHostile = (knownId: string) =>
  fc
    .tuple(
      baseRequest(knownId),
      fc.array(fc.tuple(fc.constantFrom(...READ_FIELDS), hostileValue([knownId])), {
        minLength: 1,
        maxLength: 3,
      }),
    )
    .map(([root, edits]) => jsonText(edits.reduce((r, [path, v]) => setAt(r, path, v), root)));

/** A request with a key given twice in an object the readers look into: two `user`s, two `id`s, ... */
const duplicateKeys = (knownId: string) =>
  fc
    .tuple(
      baseRequest(knownId),
      fc.constantFrom(...READ_OBJECTS),
      fc.oneof(
        fc.constantFrom("id", "user", "buyeruid", "ids", "imp", "regs", "device", "type", "eids", "ext"),
        fc.constantFrom(...READ_FIELDS).map((p) => String(p[p.length - 1])),
      ),
      fc.oneof(
        hostileValue([knownId]),
        fc.constant({ buyeruid: knownId }),
        fc.constant({ buyeruid: "someone-else" }),
        fc.constant([{ type: "bu", id: knownId }]),
      ),
      fc.boolean(),
    )
    .map(([root, at, key, extra, first]) =>
      jsonText(
        replaceObject(root, at, (entries) => {
          const i = entries.findIndex(([k]) => k === key);
          const out: [string, unknown][] = [...entries];
          if (i < 0) out.push([key, extra], [key, null]);
          else out.splice(first ? i : i + 1, 0, [key, extra]);
          return new Members(out);
        }),
      ),
    );

/** Key spellings that mean the same key (escapes) or almost (look-alikes, invalid UTF-8, a NUL). */
const keySpelling = fc.constantFrom(
  (k: string) => new Raw(escapedText(k, () => true)),
  (k: string) => new Raw(escapedText(k, (i) => i === 0)),
  (k: string) => new Raw(`"${k.replace(/./u, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase()}`)}"`),
  (k: string) => `${k}\u0000`,
  (k: string) => k.toUpperCase(),
  (k: string) => k.replace(/e/g, "é"),
  (k: string) => k.normalize("NFD").replace(/[a-z]/, (c) => `${c}\u0301`),
  (k: string) => new Raw(Buffer.concat([Buffer.from(`"${k}`), Buffer.from([0xff]), Buffer.from('"')])),
  (k: string) => `\u{1d42e}${k.slice(1)}`,
);

/** A request whose keys of one read object are spelt with escapes or look-alikes. */
const spelledKeys = (knownId: string) =>
  fc
    .tuple(baseRequest(knownId), fc.constantFrom(...READ_OBJECTS), keySpelling, fc.nat())
    .map(([root, at, spell, pick]) =>
      jsonText(
        replaceObject(
          root,
          at,
          (entries) =>
            new Members(
              entries.map(([k, v], i) => [(pick >> (i % 30)) % 2 === 1 ? k : spell(k), v] as const),
            ),
        ),
      ),
    );

/** A request with huge numbers in every numeric field it reads. */
const hugeNumbers = (knownId: string) =>
  fc
    .tuple(baseRequest(knownId), fc.array(hugeNumberText, { minLength: 12, maxLength: 12 }))
    .map(([root, nums]) => {
      const paths: Path[] = [
        ["tmax"],
        ["regs", "coppa"],
        ["regs", "gdpr"],
        ["regs", "ext", "gdpr"],
        ["device", "lmt"],
        ["device", "ext", "atts"],
        ["user", "eids", 0, "uids", 0, "atype"],
        ["imp", 0, "banner", "w"],
        ["imp", 0, "banner", "format", 0, "h"],
        ["imp", 0, "video", "h"],
        ["min_confidence"],
        ["gdpr"],
      ];
      return jsonText(paths.reduce((r, p, i) => setAt(r, p, new Raw(nums[i] as string)), root));
    });

/** A request cut anywhere, or with bytes that are not UTF-8 put anywhere. */
const brokenBytes = (inner: fc.Arbitrary<Buffer>) =>
  fc
    .tuple(inner, fc.double({ min: 0, max: 1, noNaN: true }), fc.option(badUtf8Bytes, { nil: null }))
    .map(([b, f, bad]) => {
      const at = Math.floor(b.length * f);
      return bad === null
        ? b.subarray(0, at)
        : Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]);
    });

/** Deep nesting, unclosed or closed, at the top or inside a request (within `maxBytes`). */
const deepBodies = (knownId: string) =>
  fc.oneof(
    deepNesting,
    fc
      .tuple(
        baseRequest(knownId),
        deepValue,
        fc.constantFrom<Path>(["ext"], ["user", "ext"], ["imp", 0, "ext"]),
      )
      .map(([root, v, at]) => jsonText(setAt(root, at, v))),
  );

/**
 * Bodies for the bid-time routes (/v1/lookup, /v1/enrich), at most `maxBytes` long (longer ones are cut):
 * every generator above, some requests about `knownId` so that the answers carry its segments.
 */
export function bidTimeBodies(knownId: string, maxBytes: number): fc.Arbitrary<Buffer> {
  const structured = fc.oneof(
    { weight: 4, arbitrary: readFieldsHostile(knownId) },
    { weight: 2, arbitrary: duplicateKeys(knownId) },
    { weight: 2, arbitrary: spelledKeys(knownId) },
    { weight: 1, arbitrary: hugeNumbers(knownId) },
  );
  return fc
    .oneof(
      { weight: 8, arbitrary: structured },
      { weight: 3, arbitrary: mutatedSample },
      { weight: 2, arbitrary: brokenBytes(structured) },
      { weight: 1, arbitrary: deepBodies(knownId) },
      { weight: 1, arbitrary: invalidUtf8 },
      { weight: 1, arbitrary: truncated },
      { weight: 1, arbitrary: jsonBody },
      { weight: 1, arbitrary: compactish },
      { weight: 1, arbitrary: hugeArray },
    )
    .map((b) => (b.length > maxBytes ? b.subarray(0, maxBytes) : b));
}

/** NDJSON batches of impression events, each field of each event possibly hostile. */
export function eventBatches(knownId: string, maxBytes: number): fc.Arbitrary<Buffer> {
  const event = fc
    .tuple(
      fc.record(
        {
          type: fc.constant("bu"),
          id: fc.constant(knownId),
          campaign: fc.constant("c-1"),
          imp: fc.uuid(),
          ts: fc.constant(Math.floor(Date.now() / 1000)),
        },
        { requiredKeys: [] },
      ),
      fc.array(
        fc.tuple(
          fc.constantFrom("type", "id", "token", "campaign", "line_item", "creative", "imp", "ts", "x"),
          hostileValue([knownId, "bu", "c-1"]),
        ),
        { maxLength: 3 },
      ),
    )
    .map(([ev, edits]) => jsonText(edits.reduce((r, [k, v]) => setAt(r, [k], v), ev as Tree)));
  const batch = fc
    .tuple(fc.array(event, { minLength: 1, maxLength: 20 }), fc.constantFrom("\n", "\r\n"))
    .map(([lines, nl]) => Buffer.concat(lines.flatMap((l) => [l, Buffer.from(nl)])));
  return fc
    .oneof(
      { weight: 4, arbitrary: batch },
      { weight: 1, arbitrary: brokenBytes(batch) },
      { weight: 2, arbitrary: body },
    )
    .map((b) => (b.length > maxBytes ? b.subarray(0, maxBytes) : b));
}

/** Query strings of the pixel and the bid-time routes, values possibly huge numbers or invalid %-escapes. */
export const hostileQuery = fc.oneof(
  query,
  fc
    .array(
      fc.tuple(
        fc.constantFrom("type", "id", "campaign", "imp", "ts", "token", "format", "expand", "min_confidence"),
        fc.oneof(
          hugeNumberText.map(encodeURIComponent),
          badUtf8Bytes.map((b) => b.map((x) => `%${x.toString(16).toUpperCase()}`).join("")),
          fc.constantFrom("%", "%Z", "%u0041", "%00", "a%2", "%C0%AF", "%ED%A0%80"),
          fc.string({ unit: "binary", maxLength: 10 }).map(encodeURIComponent),
        ),
      ),
      { maxLength: 6 },
    )
    .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join("&")),
);
