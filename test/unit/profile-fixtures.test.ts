// Profiles stored by earlier format versions stay readable: bytes their encoder wrote, read by today's reader.
import { describe, expect, it } from "vitest";
import { decodeProfile } from "../../src/profiles/profile-codec.ts";
import { FIXTURE_NOW, profileFixtures } from "../helpers/profile-fixtures.ts";

describe("stored profile fixtures", () => {
  const fixtures = profileFixtures([1, 2]);

  it("hold the unlinked cases in version 1 and the linked ones in version 2", () => {
    expect(fixtures.map((f) => f.file)).toEqual([
      "linked-no-own.v2",
      "linked-person.v2",
      "unlinked-forever.v1",
      "unlinked-mixed.v1",
      "unlinked-numeric.v1",
    ]);
    // The byte after the outer fixarray's is the version.
    for (const f of fixtures) expect(f.bytes[1]).toBe(f.version);
  });

  it.each(fixtures.map((f) => [f.file, f] as const))("%s decodes to its expected profile", (_file, f) => {
    expect(decodeProfile(f.bytes, FIXTURE_NOW)).toStrictEqual(f.expected);
  });
});
