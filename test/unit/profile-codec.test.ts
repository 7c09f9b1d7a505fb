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
  type Membership,
  type MembershipOp,
  PROFILE_FORMAT_VERSION,
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

  it("writes plain msgpack arrays [1, [[segment, expiresAt, source, generation]]]", () => {
    expect(PROFILE_FORMAT_VERSION).toBe(1);
    const bytes = encodeProfile([m("sports", 0, "crm"), m("autos", NOW + 60, "dmp", 4)]);
    expect(unpack(bytes)).toEqual([
      1,
      [
        ["sports", 0, "crm", 0],
        ["autos", NOW + 60, "dmp", 4],
      ],
    ]);
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
    expect(codecError(pack([3, []])).message).toBe("unsupported profile format (version 3)");
  });

  it("throws CodecError when the value is not [version, rows]", () => {
    expect(codecError(pack({ v: 1 })).message).toBe("unsupported profile format (version ?)");
    expect(codecError(pack("x")).message).toBe("unsupported profile format (version ?)");
    expect(codecError(pack([1, "rows"])).message).toBe("unsupported profile format (version 1)");
    expect(codecError(pack([1])).message).toBe("unsupported profile format (version 1)");
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
