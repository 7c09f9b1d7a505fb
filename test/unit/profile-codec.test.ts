import fc from "fast-check";
import { pack, unpack } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  applyOps,
  CodecError,
  decodeProfile,
  encodeOps,
  encodeOpsByKey,
  encodeProfile,
  keyExpiry,
  LINKED_FORMAT_VERSION,
  type LinkedMember,
  type Membership,
  type MembershipOp,
  PROFILE_FORMAT_VERSION,
  type Profile,
  STORED_FORMAT_VERSION,
} from "../../src/profiles/profile-codec.ts";

const NOW = 1_700_000_000;

const m = (segment: string, expiresAt: number, source = "", generation = 0): Membership => ({
  segment,
  expiresAt,
  source,
  generation,
});
const add = (
  segment: string,
  expiresAt: number,
  source = "src",
  generation = 0,
  minGeneration = 0,
): MembershipOp => ({
  key: "bu:k",
  op: "add",
  segment,
  expiresAt,
  source,
  generation,
  minGeneration,
});
const remove = (segment: string): MembershipOp => ({
  key: "bu:k",
  op: "remove",
  segment,
  expiresAt: 0,
  source: "",
  generation: 0,
  minGeneration: 0,
});

function codecError(bytes: Uint8Array): CodecError {
  try {
    decodeProfile(bytes, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    expect((err as CodecError).code).toBe("AUD_ERR_CODEC");
    return err as CodecError;
  }
  throw new Error("decodeProfile accepted the bytes");
}

describe("encodeProfile / decodeProfile", () => {
  it("round-trips memberships in order", () => {
    const ms = [m("sports", 0, "crm"), m("autos", NOW + 3600, "dmp"), m("ünïcode-seg", NOW + 1, "")];
    expect(decodeProfile(encodeProfile(ms), NOW)).toEqual({ memberships: ms });
  });

  it("round-trips an empty profile", () => {
    expect(decodeProfile(encodeProfile([]), NOW)).toEqual({ memberships: [] });
  });

  it("writes plain msgpack arrays [3, base, sources, runs of count, expiry, sourceIndex, generation, segments]", () => {
    expect(STORED_FORMAT_VERSION).toBe(3);
    const bytes = encodeProfile([
      m("sports", 0, "crm"),
      m("1001", NOW + 60, "dmp", 4),
      m("007", NOW + 60, "dmp", 4),
      m("0", NOW + 60, "crm", 4),
      m("1234567890", NOW + 7, "dmp", 4),
      m("999999999", 0, "crm"),
    ]);
    expect(unpack(bytes)).toEqual([
      3,
      NOW + 7,
      ["crm", "dmp"],
      [
        1,
        -1,
        0,
        0,
        "sports",
        2,
        53,
        1,
        4,
        1001,
        "007",
        1,
        53,
        0,
        4,
        0,
        1,
        0,
        1,
        4,
        "1234567890",
        1,
        -1,
        0,
        0,
        999_999_999,
      ],
    ]);
  });

  it("writes a linked profile with its members' runs on the same base and sources", () => {
    const bytes = encodeProfile([m("1", NOW + 100, "a")], {
      version: 6,
      members: [
        {
          key: "ifa:x",
          confidence: 0.5,
          version: 2,
          memberships: [m("2", NOW + 10, "b", 1), m("3", 0, "a")],
        },
        { key: "hem:y", confidence: 1, version: 0, memberships: [] },
      ],
    });
    expect(unpack(bytes)).toEqual([
      3,
      NOW + 10,
      ["a", "b"],
      [1, 90, 0, 0, 1],
      6,
      [
        ["ifa:x", 0.5, 2, [1, 0, 1, 1, 2, 1, -1, 0, 0, 3]],
        ["hem:y", 1, 0, []],
      ],
    ]);
  });

  it("writes a profile whose memberships never expire on base 0", () => {
    expect(unpack(encodeProfile([m("x", 0, ""), m("y", 0, "")]))).toEqual([
      3,
      0,
      [""],
      [2, -1, 0, 0, "x", "y"],
    ]);
    expect(unpack(encodeProfile([]))).toEqual([3, 0, [], []]);
  });

  it("writes 10 segments of 4 digits, one source and one 30-day expiry in exactly 47 bytes", () => {
    const expiresAt = NOW + 30 * 86_400;
    const bytes = encodeProfile(Array.from({ length: 10 }, (_, i) => m(String(1001 + i), expiresAt, "crm")));
    // 0x94 (array of 4) 1 + version 3 1 + base 1,702,592,000 as uint32 (0xce + 4) 5
    // + sources: 0x91 1 + "crm" (0xa3 + 3) 4 = 5
    // + runs: 0x9e (array of 14) 1 + count 10, expiry 0, source 0, generation 0 (a fixint each) 4
    //   + 10 segments 1001..1010 as uint16 (0xcd + 2) 30
    // = 1 + 1 + 5 + 5 + 1 + 4 + 30 = 47.
    expect(bytes.length).toBe(47);
    const segments = Array.from({ length: 10 }, (_, i) => `cd${(1001 + i).toString(16).padStart(4, "0")}`);
    expect(bytes.toString("hex")).toBe(
      `9403ce${expiresAt.toString(16)}91a363726d9e0a000000${segments.join("")}`,
    );
    expect(decodeProfile(bytes, NOW).memberships.map((x) => x.segment)).toEqual(
      Array.from({ length: 10 }, (_, i) => String(1001 + i)),
    );
  });

  it("reads format 1 and 2 as written before format 3", () => {
    expect(PROFILE_FORMAT_VERSION).toBe(1);
    expect(LINKED_FORMAT_VERSION).toBe(2);
    expect(
      decodeProfile(
        pack([
          1,
          [
            ["sports", 0, "crm", 0],
            ["autos", NOW + 60, "dmp", 4],
          ],
        ]),
        NOW,
      ),
    ).toEqual({ memberships: [m("sports", 0, "crm"), m("autos", NOW + 60, "dmp", 4)] });
    const member: LinkedMember = {
      key: "ifa:x",
      confidence: 0.5,
      version: 2,
      memberships: [m("2", 0, "b", 1)],
    };
    expect(
      decodeProfile(pack([2, [["1", 0, "a", 0]], 6, [["ifa:x", 0.5, 2, [["2", 0, "b", 1]]]]]), NOW),
    ).toEqual({
      memberships: [m("1", 0, "a")],
      link: { version: 6, members: [member] },
    });
  });

  it("reads integer segments back as their decimal strings, and keeps every other id a string", () => {
    const ids = [
      "0",
      "7",
      "1001",
      "999999999",
      "007",
      "00",
      "1234567890",
      "-5",
      "+5",
      "1e3",
      " 1",
      "1.0",
      "٣",
    ];
    const bytes = encodeProfile(ids.map((id) => m(id, 0, "s")));
    const runs = (unpack(bytes) as unknown[])[3] as unknown[];
    expect(runs.slice(4)).toEqual([
      0,
      7,
      1001,
      999_999_999,
      "007",
      "00",
      "1234567890",
      "-5",
      "+5",
      "1e3",
      " 1",
      "1.0",
      "٣",
    ]);
    expect(decodeProfile(bytes, NOW).memberships.map((x) => x.segment)).toEqual(ids);
  });

  it("reads what another msgpack writer produced, a row without generation as generation 0", () => {
    const bytes = pack([
      1,
      [
        ["a", 0, "x"],
        ["b", 0, "y", 3],
      ],
    ]);
    expect(decodeProfile(bytes, NOW)).toEqual({ memberships: [m("a", 0, "x"), m("b", 0, "y", 3)] });
  });

  it("drops memberships expired at nowSec: expiresAt == nowSec is expired, nowSec+1 is live, 0 never expires", () => {
    const bytes = encodeProfile([m("past", NOW - 1), m("edge", NOW), m("next", NOW + 1), m("forever", 0)]);
    expect(decodeProfile(bytes, NOW)).toEqual({ memberships: [m("next", NOW + 1), m("forever", 0)] });
  });

  it("reads a missing or non-string source as empty", () => {
    const bytes = pack([
      1,
      [
        ["a", 0],
        ["b", 0, 7],
      ],
    ]);
    expect(decodeProfile(bytes, NOW)).toEqual({ memberships: [m("a", 0, ""), m("b", 0, "")] });
  });

  it("throws CodecError on bytes that are not msgpack", () => {
    expect(codecError(Buffer.from([0x92])).message).toMatch(/^profile is not msgpack: /);
    expect(codecError(Buffer.alloc(0)).message).toMatch(/^profile is not msgpack: /);
    expect(codecError(Buffer.from("hello")).message).toMatch(/^profile is not msgpack: /);
  });

  it("throws CodecError on a higher format version", () => {
    expect(codecError(pack([4, 0, [], []])).message).toBe("unsupported profile format (version 4)");
    expect(codecError(pack([4, []])).message).toBe("unsupported profile format (version 4)");
  });

  it("throws CodecError when the value is not [version, rows]", () => {
    expect(codecError(pack({ v: 1 })).message).toBe("unsupported profile format (version ?)");
    expect(codecError(pack("x")).message).toBe("unsupported profile format (version ?)");
    expect(codecError(pack([1, "rows"])).message).toBe("unsupported profile format (version 1)");
    expect(codecError(pack([1])).message).toBe("unsupported profile format (version 1)");
    expect(codecError(pack([3, []])).message).toBe("unsupported profile format (version 3)");
    expect(codecError(pack([3, "0", [], []])).message).toBe("unsupported profile format (version 3)");
    expect(codecError(pack([3, 0, ["a", 1], []])).message).toBe("unsupported profile format (version 3)");
    expect(codecError(pack([3, 0, [], {}])).message).toBe("unsupported profile format (version 3)");
    expect(codecError(pack([3, 0, [], [], 1])).message).toBe("linked profile is malformed");
    expect(codecError(pack([3, 0, [], [], 1, [["k", 1, 0]]])).message).toBe("linked member 0 is malformed");
  });

  it.each([
    ["a zero count", [0, -1, 0, 0], 0],
    ["a count past the end", [1, -1, 0, 0, "a", 2, -1, 0, 0, "b"], 1],
    ["a fractional count", [1.5, -1, 0, 0, "a"], 0],
    ["a negative expiry other than -1", [1, -1, 0, 0, "a", 1, -2, 0, 0, "b"], 1],
    ["a source index out of range", [1, -1, 1, 0, "a"], 0],
    ["a non-number generation", [1, -1, 0, "0", "a"], 0],
    ["a negative integer segment", [2, -1, 0, 0, "a", -1], 1],
    ["a fractional segment", [1, -1, 0, 0, 1.5], 0],
    ["a segment that is neither string nor number", [3, -1, 0, 0, "a", "b", true], 2],
  ])("throws CodecError on format 3 runs with %s", (_label, runs, row) => {
    expect(codecError(pack([3, 0, ["s"], runs])).message).toBe(`profile row ${row} is malformed`);
    const linked = pack([3, 0, ["s"], [], 0, [["k", 1, 0, runs]]]);
    expect(codecError(linked).message).toBe(`linked member 0 row ${row} is malformed`);
  });

  it("drops expired rows of format 3, own and members', on the profile's base", () => {
    const bytes = encodeProfile([m("past", NOW - 1), m("edge", NOW), m("next", NOW + 1), m("forever", 0)], {
      version: 1,
      members: [{ key: "k", confidence: 1, version: 0, memberships: [m("old", NOW - 9), m("new", NOW + 9)] }],
    });
    expect(decodeProfile(bytes, NOW)).toEqual({
      memberships: [m("next", NOW + 1), m("forever", 0)],
      link: {
        version: 1,
        members: [{ key: "k", confidence: 1, version: 0, memberships: [m("new", NOW + 9)] }],
      },
    });
  });

  it.each([
    ["a row that is not an array", [1, [["ok", 0, ""], "bad"]], 1],
    ["a non-string segment", [1, [[5, 0, ""]]], 0],
    [
      "a non-number expiry",
      [
        1,
        [
          ["ok", 0, ""],
          ["s", "0", ""],
        ],
      ],
      1,
    ],
    ["an empty row", [1, [[]]], 0],
  ])("throws CodecError on %s", (_label, value, row) => {
    expect(codecError(pack(value)).message).toBe(`profile row ${row} is malformed`);
  });
});

describe("encodeProfile / decodeProfile, generated", () => {
  const segment = fc.oneof(
    fc.nat(999_999_999).map(String),
    fc.nat(10_000).map((n) => `0${n}`),
    fc.constantFrom("0", "1234567890", "4294967296", "-1", "1e3"),
    fc.string({ unit: "grapheme", maxLength: 12 }),
  );
  const expiresAt = fc.oneof(
    fc.constant(0),
    fc.integer({ min: NOW - 100, max: NOW + 100 }),
    fc.integer({ min: 1, max: 2 ** 32 + 10 }),
  );
  const membership: fc.Arbitrary<Membership> = fc.record({
    segment,
    expiresAt,
    source: fc.oneof(fc.constantFrom("", "crm", "dmp"), fc.string({ unit: "grapheme", maxLength: 8 })),
    generation: fc.oneof(fc.constant(0), fc.nat(2 ** 40)),
  });
  // Runs come from neighbours that share expiry, source and generation: repeat some.
  const memberships = fc
    .array(fc.tuple(membership, fc.nat(3), segment), { maxLength: 20 })
    .map((parts) =>
      parts.flatMap(([x, repeat, other]) => [
        x,
        ...Array.from({ length: repeat }, () => ({ ...x, segment: other })),
      ]),
    );
  const member: fc.Arbitrary<LinkedMember> = fc.record({
    key: fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
    confidence: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    version: fc.nat(),
    memberships,
  });
  const profile: fc.Arbitrary<Profile> = fc.oneof(
    fc.record({ memberships }),
    fc.record({
      memberships,
      link: fc.record({ version: fc.nat(), members: fc.array(member, { minLength: 1, maxLength: 4 }) }),
    }),
  );
  const live = (ms: readonly Membership[], now: number): Membership[] =>
    ms.filter((x) => x.expiresAt === 0 || x.expiresAt > now);

  it("round-trips any profile exactly, less the memberships expired at the time read", () => {
    fc.assert(
      fc.property(profile, fc.integer({ min: NOW - 50, max: NOW + 50 }), (p, now) => {
        const expected: Profile =
          p.link === undefined
            ? { memberships: live(p.memberships, now) }
            : {
                memberships: live(p.memberships, now),
                link: {
                  version: p.link.version,
                  members: p.link.members.map((e) => ({ ...e, memberships: live(e.memberships, now) })),
                },
              };
        expect(decodeProfile(encodeProfile(p.memberships, p.link), now)).toStrictEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe("applyOps", () => {
  it("adds a membership to an empty list", () => {
    expect(applyOps([], [add("sports", 0, "crm")], NOW)).toEqual([m("sports", 0, "crm")]);
  });

  it("an add replaces the same segment (expiry and source), keeping others; the new row goes last", () => {
    const current = [m("sports", NOW + 10, "old"), m("autos", 0, "x")];
    expect(applyOps(current, [add("sports", NOW + 500, "new")], NOW)).toEqual([
      m("autos", 0, "x"),
      m("sports", NOW + 500, "new"),
    ]);
  });

  it("keeps a newer generation beside the live one and drops rows older than minGeneration", () => {
    const current = [m("s", 0, "", 1), m("s", 0, "", 2), m("t", 0, "", 0)];
    // A replace writing generation 5 while 2 is live: generation 1 is garbage, 2 stays until 5 goes live.
    expect(applyOps(current, [add("s", 0, "r", 5, 2)], NOW)).toEqual([
      m("s", 0, "", 2),
      m("t", 0, "", 0),
      m("s", 0, "r", 5),
    ]);
  });

  it("a remove drops the segment", () => {
    const current = [m("sports", 0), m("autos", 0)];
    expect(applyOps(current, [remove("sports")], NOW)).toEqual([m("autos", 0)]);
  });

  it("a remove of a segment not held changes nothing", () => {
    expect(applyOps([m("autos", 0)], [remove("sports")], NOW)).toEqual([m("autos", 0)]);
  });

  it("an add whose expiry has passed acts as a remove", () => {
    const current = [m("sports", 0), m("autos", 0)];
    expect(applyOps(current, [add("sports", NOW)], NOW)).toEqual([m("autos", 0)]);
    expect(applyOps(current, [add("sports", NOW - 100)], NOW)).toEqual([m("autos", 0)]);
    expect(applyOps([], [add("new", NOW)], NOW)).toEqual([]);
  });

  it("drops existing memberships already expired", () => {
    const current = [m("gone", NOW), m("older", NOW - 5), m("live", NOW + 1), m("forever", 0)];
    expect(applyOps(current, [], NOW)).toEqual([m("live", NOW + 1), m("forever", 0)]);
  });

  it("applies ops in order", () => {
    expect(applyOps([], [add("a", 0), remove("a"), add("b", 0), add("a", NOW + 9)], NOW)).toEqual([
      m("b", 0, "src"),
      m("a", NOW + 9, "src"),
    ]);
    expect(applyOps([], [add("a", 0), remove("a")], NOW)).toEqual([]);
  });

  it("does not change the input list", () => {
    const current = [m("sports", 0)];
    applyOps(current, [remove("sports")], NOW);
    expect(current).toEqual([m("sports", 0)]);
  });
});

describe("keyExpiry", () => {
  it("is the latest expiry", () => {
    expect(keyExpiry([m("a", NOW + 5), m("b", NOW + 50), m("c", NOW + 20)])).toBe(NOW + 50);
  });

  it("is 0 when any membership never expires", () => {
    expect(keyExpiry([m("a", NOW + 5), m("b", 0), m("c", NOW + 20)])).toBe(0);
  });

  it("is 0 for no memberships", () => {
    expect(keyExpiry([])).toBe(0);
  });
});

describe("encodeOps", () => {
  it("writes [[op (1 add, 0 remove), segment, expiresAt, source, generation, minGeneration], ...]", () => {
    const bytes = encodeOps([add("sports", NOW + 60, "crm", 5, 2), remove("autos"), add("news", 0, "")]);
    expect(unpack(bytes)).toEqual([
      [1, "sports", NOW + 60, "crm", 5, 2],
      [0, "autos", 0, "", 0, 0],
      [1, "news", 0, "", 0, 0],
    ]);
  });

  it("writes an empty list for no ops", () => {
    expect(unpack(encodeOps([]))).toEqual([]);
  });
});

describe("encodeOpsByKey", () => {
  it("writes each ID's op count then its ops, flat, in order", () => {
    const other: MembershipOp = { ...remove("x"), key: "bu:other" };
    const ops = unpack(encodeOpsByKey([[add("a", 0, "s", 2, 1)], [other, add("b", NOW, "")], []]));
    const first = [1, 1, "a", 0, "s", 2, 1];
    const second = [2, 0, "x", 0, "", 0, 0, 1, "b", NOW, "", 0, 0];
    const none = [0];
    expect(ops).toEqual([...first, ...second, ...none]);
  });
});
