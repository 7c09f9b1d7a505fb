// Notice tokens: a token reads back only as issued, by an instance with the same secret, until it expires;
// it binds the person, the campaigns and the uses it was issued for, and stays small enough for a URL macro.
import { createDecipheriv, hkdfSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  MIN_TOKEN_SECRET_LENGTH,
  NoticeTokens,
  validateTokenSecret,
} from "../../src/capping/notice-token.ts";

const SECRET = "correct-horse-battery-staple-0123456789";
const OTHER_SECRET = "another-secret-of-sufficient-length-42";
const KEY = "ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc";
const NOW = 1_750_000_000;
const TTL = 3_600;

/** Replaces the character at `i` with a different base64url character. */
function flipAt(token: string, i: number): string {
  const c = token[i] === "A" ? "B" : "A";
  return token.slice(0, i) + c + token.slice(i + 1);
}

describe("NoticeTokens", () => {
  const tokens = new NoticeTokens(SECRET, TTL);
  const issue = (key = KEY, campaigns: string[] | null = ["camp-a"], uses = 1) =>
    tokens.issue(key, campaigns, uses, NOW);

  it.each([
    KEY,
    "hem:b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514",
    "eid:uidapi.com:A4AAABsd-wKLu8tZ",
    "bu:ünïcødé-用户-🙂",
  ])("reads back what it issued: %s", (key) => {
    expect(tokens.read(issue(key, ["c1", "c2"], 3), NOW)).toEqual({
      personKey: key,
      campaigns: ["c1", "c2"],
      uses: 3,
      expiresAtSec: NOW + TTL,
      nonce: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
    });
  });

  it("binds any campaign when the lookup named none, and no campaign when none of them has a rule", () => {
    expect(tokens.read(issue(KEY, null), NOW)).toMatchObject({ campaigns: null });
    expect(tokens.read(issue(KEY, []), NOW)).toMatchObject({ campaigns: [] });
  });

  it("keeps uses from 1 to 16 (a bid request's imp objects)", () => {
    for (const [asked, kept] of [
      [0, 1],
      [1, 1],
      [5, 5],
      [16, 16],
      [17, 16],
      [400, 16],
    ] as const) {
      expect(tokens.read(issue(KEY, null, asked), NOW)).toMatchObject({ uses: kept });
    }
  });

  it("is small enough for an nurl macro: a 40-character IFA with 3 campaigns in 150 characters or less", () => {
    const t = tokens.issue(`ifa:${"a".repeat(40)}`, ["campaign-1", "campaign-2", "campaign-3"], 1, NOW);
    // 1 version + 12 nonce + 16 MAC + (4 expiry + 1 uses + 2 + 44 key + 1 + 3 * 11 campaigns) = 114 bytes.
    expect(t.length).toBe(152);
    const short = tokens.issue(`ifa:${"a".repeat(40)}`, ["camp-a", "camp-b", "camp-c"], 1, NOW);
    expect(short.length).toBe(136);
    expect(short.length).toBeLessThanOrEqual(150);
  });

  it("expires: honoured through its last second, refused after", () => {
    const t = issue();
    expect(tokens.read(t, NOW + TTL)).toMatchObject({ personKey: KEY });
    expect(tokens.read(t, NOW + TTL + 1)).toBe("expired");
  });

  it("is AES-256-CTR as the standard defines it: Node's own aes-256-ctr decrypts it", () => {
    // Format: version, 12-byte nonce, ciphertext, 16-byte MAC; IV = nonce | 32-bit block counter from 0.
    const campaigns = Array.from({ length: 20 }, (_, i) => `campaign-${i}`); // several AES blocks
    const raw = Buffer.from(tokens.issue(KEY, campaigns, 3, NOW), "base64url");
    const key = Buffer.from(hkdfSync("sha256", SECRET, "", "audience notice token v1 aes-256-ctr", 32));
    const iv = Buffer.concat([raw.subarray(1, 13), Buffer.alloc(4)]);
    const d = createDecipheriv("aes-256-ctr", key, iv);
    const plain = Buffer.concat([d.update(raw.subarray(13, raw.length - 16)), d.final()]);
    expect(plain.readUInt32BE(0)).toBe(NOW + TTL);
    expect(plain.readUInt8(4)).toBe(3);
    expect(plain.subarray(7, 7 + plain.readUInt16BE(5)).toString()).toBe(KEY);
    expect(plain.toString()).toContain("campaign-19");
  });

  it("is URL-safe base64 without padding", () => {
    for (let i = 0; i < 50; i++) expect(issue()).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("does not carry the key or the campaigns in the clear", () => {
    const t = issue(KEY, ["visible-campaign"]);
    expect(t).not.toContain("6d92078a");
    const bytes = Buffer.from(t, "base64url").toString("latin1");
    expect(bytes).not.toContain("6d92078a");
    expect(bytes).not.toContain("visible-campaign");
  });

  it("gives a different token and nonce each time for the same grant, all reading back", () => {
    const issued = Array.from({ length: 1_000 }, () => issue());
    expect(new Set(issued).size).toBe(1_000);
    const nonces = new Set(issued.map((t) => (tokens.read(t, NOW) as { nonce: string }).nonce));
    expect(nonces.size).toBe(1_000);
  });

  it("is read by another instance made with the same secret, never with another", () => {
    const t = issue();
    expect(new NoticeTokens(SECRET, TTL).read(t, NOW)).toMatchObject({ personKey: KEY });
    expect(new NoticeTokens(OTHER_SECRET, TTL).read(t, NOW)).toBe("forged");
    expect(tokens.read(new NoticeTokens(OTHER_SECRET, TTL).issue(KEY, null, 1, NOW), NOW)).toBe("forged");
  });

  it("refuses a token with any one character changed (expiry, uses, campaigns and person included)", () => {
    const t = issue(KEY, ["camp-a", "camp-b"], 2);
    for (let i = 0; i < t.length; i++) expect(tokens.read(flipAt(t, i), NOW), `position ${i}`).toBe("forged");
  });

  it("refuses a second spelling of the same bytes (unused trailing bits set)", () => {
    let t = issue();
    // Find a length whose last character carries unused bits.
    for (let n = 0; t.length % 4 === 0 && n < 10; n++) t = issue(`${KEY}${"x".repeat(n + 1)}`);
    expect(t.length % 4).not.toBe(0);
    const last = t.at(-1) as string;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const same = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const respelt = t.slice(0, -1) + same;
    expect(Buffer.from(respelt, "base64url").equals(Buffer.from(t, "base64url"))).toBe(true);
    expect(tokens.read(respelt, NOW)).toBe("forged");
  });

  it("refuses a truncated or extended token", () => {
    const t = issue();
    for (const cut of [1, 2, 4, 10, 22, t.length - 1]) {
      expect(tokens.read(t.slice(0, t.length - cut), NOW), `cut ${cut}`).toBe("forged");
    }
    expect(tokens.read(`${t}A`, NOW)).toBe("forged");
    expect(tokens.read(`${t}AAAA`, NOW)).toBe("forged");
  });

  it.each([
    ["empty", ""],
    ["one character", "A"],
    ["not base64url", "abc$def!ghi"],
    ["standard base64 with padding", Buffer.alloc(60, 7).toString("base64")],
    ["spaces", "AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA"],
    ["random bytes of a plausible length", Buffer.alloc(80, 0x5a).toString("base64url")],
    ["version 1 and zeros", Buffer.concat([Buffer.from([1]), Buffer.alloc(60)]).toString("base64url")],
    ["the key itself", KEY],
    ["far too long", "A".repeat(100_000)],
  ])("refuses garbage: %s", (_label, garbage) => {
    expect(tokens.read(garbage, NOW)).toBe("forged");
  });

  it("never throws, even for a value that is not a string", () => {
    expect(tokens.read(42 as unknown as string, NOW)).toBe("forged");
    expect(tokens.read(null as unknown as string, NOW)).toBe("forged");
  });

  it("an empty key's token does not read: it names nobody", () => {
    expect(tokens.read(tokens.issue("", null, 1, NOW), NOW)).toBe("forged");
  });

  it("refuses to be made with a weak secret", () => {
    expect(() => new NoticeTokens("short", TTL)).toThrow(/at least 32 characters/);
    expect(() => new NoticeTokens("x".repeat(MIN_TOKEN_SECRET_LENGTH), TTL)).not.toThrow();
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
