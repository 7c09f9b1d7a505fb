// The stored-profile fixtures of test/fixtures/profiles (make-fixtures.ts): bytes written by the encoder of
// each format version, and what a reader must make of them.
import { readdirSync, readFileSync } from "node:fs";
import type { Profile } from "../../src/profiles/profile-codec.ts";

const DIR = new URL("../fixtures/profiles/", import.meta.url);

export interface ProfileFixture {
  /** The case's name and the format version of its bytes, e.g. "linked-person.v2". */
  readonly file: string;
  readonly name: string;
  readonly version: number;
  readonly bytes: Buffer;
  /** decodeProfile(bytes, nowSec) must equal this. */
  readonly expected: Profile;
}

const expectedFile = JSON.parse(readFileSync(new URL("expected.json", DIR), "utf8")) as {
  nowSec: number;
  profiles: Record<string, Profile>;
};

/** The time the expected profiles hold at (their live rows are live until 2100). */
export const FIXTURE_NOW = expectedFile.nowSec;

/** Every fixture of these format versions, in file name order. */
export function profileFixtures(versions: readonly number[]): ProfileFixture[] {
  const out: ProfileFixture[] = [];
  for (const f of readdirSync(DIR).sort()) {
    const match = /^(.+)\.v(\d+)\.hex$/.exec(f);
    if (match === null || !versions.includes(Number(match[2]))) continue;
    const name = match[1] as string;
    const expected = expectedFile.profiles[name];
    if (expected === undefined) throw new Error(`no expected profile for ${f}`);
    out.push({
      file: f.slice(0, -".hex".length),
      name,
      version: Number(match[2]),
      bytes: Buffer.from(readFileSync(new URL(f, DIR), "utf8").trim(), "hex"),
      expected,
    });
  }
  return out;
}
