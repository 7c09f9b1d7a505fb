// Event tokens: a token reads back only as issued, by the instance with the same secret.
import { describe, expect, it } from "vitest";
import { EventTokens, MIN_TOKEN_SECRET_LENGTH, validateTokenSecret } from "../../src/capping/event-token.ts";

const SECRET = "correct-horse-battery-staple-0123456789";
const OTHER_SECRET = "another-secret-of-sufficient-length-42";
const KEY = "ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc";

/** Replaces the character at `i` with a different base64url character. */
function flipAt(token: string, i: number): string {
  const c = token[i] === "A" ? "B" : "A";
  return token.slice(0, i) + c + token.slice(i + 1);
}

describe("EventTokens", () => {
  const tokens = new EventTokens(SECRET);

  it.each([
    KEY,
    "hem:b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514",
    "eid:uidapi.com:A4AAABsd-wKLu8tZ",
    "bu:ünïcødé-用户-🙂",
  ])("reads back what it issued: %s", (key) => {
    expect(tokens.read(tokens.issue(key))).toBe(key);
  });

  it("is URL-safe base64 without padding", () => {
    for (let i = 0; i < 50; i++) expect(tokens.issue(KEY)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("does not carry the key in the clear", () => {
    const t = tokens.issue(KEY);
    expect(t).not.toContain("6d92078a");
    expect(Buffer.from(t, "base64url").toString("latin1")).not.toContain("6d92078a");
  });

  it("gives a different token each time for the same key (random IV), all reading back", () => {
    const issued = Array.from({ length: 100 }, () => tokens.issue(KEY));
    expect(new Set(issued).size).toBe(100);
    for (const t of issued) expect(tokens.read(t)).toBe(KEY);
  });

  it("is read by another instance made with the same secret", () => {
    expect(new EventTokens(SECRET).read(tokens.issue(KEY))).toBe(KEY);
  });

  it("is not read with another secret", () => {
    const t = tokens.issue(KEY);
    expect(new EventTokens(OTHER_SECRET).read(t)).toBeNull();
    expect(tokens.read(new EventTokens(OTHER_SECRET).issue(KEY))).toBeNull();
  });

  it("refuses a token with any one character changed", () => {
    const t = tokens.issue(KEY);
    for (let i = 0; i < t.length; i++) expect(tokens.read(flipAt(t, i)), `position ${i}`).toBeNull();
  });

  it("refuses a second spelling of the same bytes (unused trailing bits set)", () => {
    // 12 + 16 + 40 bytes = 68 bytes -> 91 characters, the last carrying 2 unused bits.
    const t = tokens.issue(KEY);
    expect(t.length % 4).toBe(3);
    const last = t.at(-1) as string;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const same = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const respelt = t.slice(0, -1) + same;
    expect(Buffer.from(respelt, "base64url").equals(Buffer.from(t, "base64url"))).toBe(true);
    expect(tokens.read(respelt)).toBeNull();
  });

  it("refuses a truncated or extended token", () => {
    const t = tokens.issue(KEY);
    for (const cut of [1, 2, 4, 10, t.length - 38, t.length - 1]) {
      expect(tokens.read(t.slice(0, t.length - cut)), `cut ${cut}`).toBeNull();
    }
    expect(tokens.read(`${t}A`)).toBeNull();
    expect(tokens.read(`${t}AAAA`)).toBeNull();
  });

  it("refuses a token whose ciphertext is cut off, even with a valid prefix", () => {
    const raw = Buffer.from(tokens.issue(KEY), "base64url");
    expect(tokens.read(raw.subarray(0, 28).toString("base64url"))).toBeNull();
    expect(tokens.read(raw.subarray(0, raw.length - 1).toString("base64url"))).toBeNull();
  });

  it.each([
    ["empty", ""],
    ["one character", "A"],
    ["not base64url", "abc$def!ghi"],
    ["standard base64 with padding", Buffer.alloc(60, 7).toString("base64")],
    ["spaces", "AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA"],
    ["random bytes of a plausible length", Buffer.alloc(68, 0x5a).toString("base64url")],
    ["the key itself", KEY],
    ["far too long", "A".repeat(100_000)],
  ])("refuses garbage: %s", (_label, garbage) => {
    expect(tokens.read(garbage)).toBeNull();
  });

  it("refuses a token over 2048 characters undecoded, even its own: no stored key is that long", () => {
    const long = `bu:${"x".repeat(1_000)}`;
    expect(tokens.read(tokens.issue(long))).toBe(long);
    const tooLong = tokens.issue(`bu:${"x".repeat(1_600)}`);
    expect(tooLong.length).toBeGreaterThan(2_048);
    expect(tokens.read(tooLong)).toBeNull();
  });

  it("never throws, even for a value that is not a string", () => {
    expect(tokens.read(42 as unknown as string)).toBeNull();
    expect(tokens.read(null as unknown as string)).toBeNull();
  });

  it("an empty key's token does not read: it names nobody", () => {
    expect(tokens.read(tokens.issue(""))).toBeNull();
  });

  it("refuses to be made with a weak secret", () => {
    expect(() => new EventTokens("short")).toThrow(/at least 32 characters/);
    expect(() => new EventTokens("x".repeat(MIN_TOKEN_SECRET_LENGTH))).not.toThrow();
  });
});

describe("validateTokenSecret", () => {
  it("accepts 32 characters or more", () => {
    expect(validateTokenSecret("x".repeat(32))).toBeNull();
    expect(validateTokenSecret(SECRET)).toBeNull();
  });

  it.each([0, 1, 16, 31])("gives a reason for %i characters", (n) => {
    expect(validateTokenSecret("x".repeat(n))).toBe(`must be at least 32 characters, got ${n}`);
  });

  it("does not repeat the secret in its reason", () => {
    expect(validateTokenSecret("hunter2")).not.toContain("hunter2");
  });
});
