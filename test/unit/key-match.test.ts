// Secrets are looked up by HMAC, every configured one compared whatever is presented: the count of
// constant-time comparisons does not depend on the presented value's length or on whether it matches.
import * as crypto from "node:crypto";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { callerOf, parseEnrichCallers } from "../../src/enrich/enrich-callers.ts";
import { keyMatcher } from "../../src/key-match.ts";

vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const compared = vi.mocked(crypto.timingSafeEqual);

const SHORT = "key-of-16-chars!".replace("!", "x");
const MIDDLE = "a-middle-length-key-0000001";
const LONG = "a-much-longer-api-key-for-the-third-caller-00000000001";

describe("keyMatcher", () => {
  beforeEach(() => {
    compared.mockClear();
  });

  it("compares every configured key, equal-length HMACs, whatever the presented length", () => {
    const match = keyMatcher([
      [SHORT, "short"],
      [MIDDLE, "middle"],
      [LONG, "long"],
    ]);
    for (const presented of [SHORT, MIDDLE, LONG, "x", "y".repeat(500), SHORT.slice(0, -1), `${LONG}0`]) {
      compared.mockClear();
      match(presented);
      const lengths = compared.mock.calls.map((args) => args.map((b) => (b as Buffer).length));
      expect(lengths).toEqual([
        [32, 32],
        [32, 32],
        [32, 32],
      ]);
    }
  });
});

describe("callerOf", () => {
  const { callers, problems } = parseEnrichCallers(
    `${SHORT}=dsp-short:acme,${MIDDLE}=dsp-middle:*,${LONG}=dsp-long:acme|beta`,
  );

  it("finds each caller by its key, among keys of other lengths", () => {
    expect(problems).toEqual([]);
    expect(callerOf(callers, SHORT)?.name).toBe("dsp-short");
    expect(callerOf(callers, MIDDLE)?.name).toBe("dsp-middle");
    expect(callerOf(callers, LONG)?.name).toBe("dsp-long");
  });

  it("answers null for a prefix, an extension or a one-character change of a key", () => {
    for (const key of [SHORT, MIDDLE, LONG]) {
      expect(callerOf(callers, key.slice(0, -1))).toBeNull();
      expect(callerOf(callers, `${key}0`)).toBeNull();
      expect(callerOf(callers, `${key.slice(0, -1)}Z`)).toBeNull();
    }
    expect(callerOf(callers, "")).toBeNull();
  });

  it("compares against all three keys for a key of a length none of them has", () => {
    compared.mockClear();
    expect(callerOf(callers, "z".repeat(40))).toBeNull();
    expect(compared).toHaveBeenCalledTimes(3);
  });
});
