// Stored profiles stay readable across format versions: bytes the encoder of each version wrote, read by
// today's reader; and today's encoder still writes the bytes of the current version's fixtures.
import { describe, expect, it } from "vitest";
import { decodeProfile, encodeProfile, STORED_FORMAT_VERSION } from "../../src/profiles/profile-codec.ts";
import { CASES } from "../fixtures/profiles/make-fixtures.ts";
import { FIXTURE_NOW, profileFixtures } from "../helpers/profile-fixtures.ts";

describe("stored profile fixtures", () => {
  const fixtures = profileFixtures([1, 2]);
  const current = profileFixtures([STORED_FORMAT_VERSION]);

  it("hold the unlinked cases in version 1 and the linked ones in version 2, and every case in version 3", () => {
    expect(fixtures.map((f) => f.file)).toEqual([
      "linked-no-own.v2",
      "linked-person.v2",
      "unlinked-forever.v1",
      "unlinked-mixed.v1",
      "unlinked-numeric.v1",
    ]);
    expect(current.map((f) => f.name)).toEqual(Object.keys(CASES).sort());
    // The byte after the outer fixarray's is the version.
    for (const f of [...fixtures, ...current]) expect(f.bytes[1]).toBe(f.version);
  });

  it.each([...fixtures, ...current].map((f) => [f.file, f] as const))(
    "%s decodes to its expected profile",
    (_file, f) => {
      expect(decodeProfile(f.bytes, FIXTURE_NOW)).toStrictEqual(f.expected);
    },
  );

  it.each(current.map((f) => [f.file, f] as const))("%s is what the encoder writes today", (_file, f) => {
    const c = CASES[f.name];
    if (c === undefined) throw new Error(`no case ${f.name}`);
    expect(encodeProfile(c.memberships, c.link).toString("hex")).toBe(f.bytes.toString("hex"));
  });
});
