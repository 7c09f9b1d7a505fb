// Notice tokens: a token reads back only as issued, by an instance with the same secret, until it expires;
// it binds the person, the campaigns and the uses it was issued for, and stays small enough for a URL macro.
// Version 2 is issued (SipHash-2-4-128 MAC, keystream precomputed per pooled nonce); version 1 (HMAC) tokens,
// issued before the upgrade and still in flight, still read.
import { createDecipheriv, hkdfSync } from "node:crypto";
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MIN_TOKEN_SECRET_LENGTH,
  NoticeTokens,
  validateTokenSecret,
} from "../../src/capping/notice-token.ts";
import { NoticeTokensV1 } from "../helpers/notice-token-v1.ts";

const SECRET = "correct-horse-battery-staple-0123456789";
const OTHER_SECRET = "another-secret-of-sufficient-length-42";
const KEY = "ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc";
const NOW = 1_750_000_000;
const TTL = 3_600;

// An implementation of SipHash-2-4-128 other than ours (siphash.test.ts checks both against the reference
// vectors): it answers [second.h, second.l, first.h, first.l] of the 16 bytes SipHash writes.
const sipHash128Lib = (
  createRequire(import.meta.url)("siphash/lib/siphash-double.js") as {
    hash(key: ArrayLike<number>, m: Uint8Array): Uint32Array;
  }
).hash;

/** The version 2 tag of `data` under `secret`, computed from the documented format with the package. */
function expectedTag(secret: string, data: Uint8Array): Buffer {
  const k = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v2 siphash-2-4-128", 16));
  const key = [k.readUInt32LE(0), k.readUInt32LE(4), k.readUInt32LE(8), k.readUInt32LE(12)];
  const [secondH, secondL, firstH, firstL] = sipHash128Lib(key, data) as unknown as number[];
  const tag = Buffer.alloc(16);
  tag.writeUInt32LE(firstL as number, 0);
  tag.writeUInt32LE(firstH as number, 4);
  tag.writeUInt32LE(secondL as number, 8);
  tag.writeUInt32LE(secondH as number, 12);
  return tag;
}

/** A token's payload, decrypted by Node's own aes-256-ctr (IV = nonce | 32-bit block counter from 0). */
function decrypt(secret: string, token: string): Buffer {
  const raw = Buffer.from(token, "base64url");
  const key = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 aes-256-ctr", 32));
  const d = createDecipheriv("aes-256-ctr", key, Buffer.concat([raw.subarray(1, 13), Buffer.alloc(4)]));
  return Buffer.concat([d.update(raw.subarray(13, raw.length - 16)), d.final()]);
}

/** The payload of a grant as the documented format writes it. */
function payload(expiry: number, uses: number, key: string, campaigns: readonly string[] | null): Buffer {
  const k = Buffer.from(key);
  const head = Buffer.alloc(7);
  head.writeUInt32BE(expiry, 0);
  head.writeUInt8(uses, 4);
  head.writeUInt16BE(k.length, 5);
  const ids = (campaigns ?? []).map((c) => Buffer.from(c));
  return Buffer.concat([
    head,
    k,
    Buffer.from([campaigns === null ? 255 : ids.length]),
    ...ids.flatMap((id) => [Buffer.from([id.length]), id]),
  ]);
}

/** `count` campaign ids making a payload of exactly `bytes` with `key` (ids of 1 to 64 characters). */
function campaignsFilling(key: string, bytes: number): string[] {
  let left = bytes - (7 + Buffer.byteLength(key) + 1);
  const ids: string[] = [];
  for (let i = 0; left > 0; i++) {
    const n = Math.min(64, left - 1);
    if (n < 1) throw new Error(`cannot fill ${bytes} bytes`);
    ids.push(`${i}-${"c".repeat(64)}`.slice(0, n));
    left -= 1 + n;
  }
  return ids;
}

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

describe("NoticeTokens version 2 (issued)", () => {
  const tokens = new NoticeTokens(SECRET, TTL);
  const CAMPAIGNS = ["cap-1", "cap-2", "cap-3", "cap-4", "cap-5"];

  it("is version 2: its payload decrypts with Node's aes-256-ctr, its MAC is SipHash-2-4-128 of the rest", () => {
    const t = tokens.issue(KEY, CAMPAIGNS, 2, NOW);
    const raw = Buffer.from(t, "base64url");
    expect(raw[0]).toBe(2);
    expect(raw.length).toBe(1 + 12 + payload(0, 2, KEY, CAMPAIGNS).length + 16);
    expect(decrypt(SECRET, t).equals(payload(NOW + TTL, 2, KEY, CAMPAIGNS))).toBe(true);
    expect(raw.subarray(-16).equals(expectedTag(SECRET, raw.subarray(0, -16)))).toBe(true);
    expect(tokens.read(t, NOW)).toEqual({
      personKey: KEY,
      campaigns: CAMPAIGNS,
      uses: 2,
      expiresAtSec: NOW + TTL,
      nonce: raw.subarray(1, 13).toString("base64url"),
    });
  });

  it("refuses a token with any one byte changed, by any single bit", () => {
    const raw = Buffer.from(tokens.issue(KEY, CAMPAIGNS, 2, NOW), "base64url");
    for (let i = 0; i < raw.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const altered = Buffer.from(raw);
        altered[i] = (altered[i] as number) ^ (1 << bit);
        expect(tokens.read(altered.toString("base64url"), NOW), `byte ${i} bit ${bit}`).toBe("forged");
      }
    }
    expect(tokens.read(raw.toString("base64url"), NOW)).toMatchObject({ personKey: KEY });
  });

  it("refuses it cut at any length, or with any byte added", () => {
    const raw = Buffer.from(tokens.issue(KEY, CAMPAIGNS, 2, NOW), "base64url");
    for (let n = 0; n < raw.length; n++) {
      expect(tokens.read(raw.subarray(0, n).toString("base64url"), NOW), `${n} bytes`).toBe("forged");
      // The MAC left off: the last 16 bytes before the cut taken as the tag.
      expect(tokens.read(raw.subarray(raw.length - n).toString("base64url"), NOW)).toBe("forged");
    }
    for (const extra of [0x00, 0x41, 0xff]) {
      const longer = Buffer.concat([raw, Buffer.from([extra])]).toString("base64url");
      expect(tokens.read(longer, NOW), `with ${extra}`).toBe("forged");
    }
  });

  it("refuses it read with another secret, and another secret's token", () => {
    const other = new NoticeTokens(OTHER_SECRET, TTL);
    expect(other.read(tokens.issue(KEY, CAMPAIGNS, 1, NOW), NOW)).toBe("forged");
    expect(tokens.read(other.issue(KEY, CAMPAIGNS, 1, NOW), NOW)).toBe("forged");
  });

  it("refuses it with its version changed to 1 or to any other", () => {
    const raw = Buffer.from(tokens.issue(KEY, CAMPAIGNS, 1, NOW), "base64url");
    for (const version of [0, 1, 3, 255]) {
      const other = Buffer.from(raw);
      other[0] = version;
      expect(tokens.read(other.toString("base64url"), NOW), `version ${version}`).toBe("forged");
    }
  });

  it("expires: honoured through its last second, refused after", () => {
    const t = tokens.issue(KEY, CAMPAIGNS, 1, NOW);
    expect(tokens.read(t, NOW + TTL)).toMatchObject({ personKey: KEY, expiresAtSec: NOW + TTL });
    expect(tokens.read(t, NOW + TTL + 1)).toBe("expired");
  });

  it.each([
    // The keystream precomputed per nonce is 192 bytes of payload: below, at and past it.
    8, 100, 188, 191, 192, 193, 194, 207, 208, 209, 400, 1_000, 4_000,
  ])("reads back, and decrypts with Node's aes-256-ctr, a payload of %i bytes", (bytes) => {
    const key = bytes === 8 ? "" : KEY;
    const campaigns = bytes === 8 ? [] : campaignsFilling(KEY, bytes);
    const expected = payload(NOW + TTL, 3, key, campaigns);
    expect(expected.length).toBe(bytes);
    const t = tokens.issue(key, campaigns, 3, NOW);
    expect(decrypt(SECRET, t).equals(expected)).toBe(true);
    const raw = Buffer.from(t, "base64url");
    expect(raw.subarray(-16).equals(expectedTag(SECRET, raw.subarray(0, -16)))).toBe(true);
    if (key !== "") expect(tokens.read(t, NOW)).toMatchObject({ personKey: KEY, campaigns, uses: 3 });
  });

  it("writes a short token after a long one with none of the long one's bytes", () => {
    const long = tokens.issue(KEY, campaignsFilling(KEY, 900), 1, NOW);
    const t = tokens.issue("bu:x", ["c"], 1, NOW);
    expect(Buffer.from(t, "base64url").length).toBe(1 + 12 + payload(0, 1, "bu:x", ["c"]).length + 16);
    expect(decrypt(SECRET, t).equals(payload(NOW + TTL, 1, "bu:x", ["c"]))).toBe(true);
    expect(tokens.read(t, NOW)).toMatchObject({ personKey: "bu:x", campaigns: ["c"] });
    expect(tokens.read(long, NOW)).toMatchObject({ personKey: KEY });
  });

  it("writes keys and campaign ids that are not ASCII as UTF-8, wherever the first such character is", () => {
    for (const [key, campaign] of [
      ["bu:é", "ünï"],
      ["bu:abcdefé", "abc-é"],
      ["bu:🙂", "x🙂y"],
      ["xu:exchange:用户-1234567890", "用"],
    ] as const) {
      const t = tokens.issue(key, [campaign, "plain"], 1, NOW);
      expect(decrypt(SECRET, t).equals(payload(NOW + TTL, 1, key, [campaign, "plain"]))).toBe(true);
      expect(tokens.read(t, NOW)).toMatchObject({ personKey: key, campaigns: [campaign, "plain"] });
    }
  });

  it("reads back any grant, written as the format says, for random keys and campaign lists", () => {
    // Mostly ASCII, and characters of each UTF-8 length (2, 3 and 4 bytes).
    const CHAR = fc.oneof(
      { arbitrary: fc.char(), weight: 6 },
      { arbitrary: fc.integer({ min: 0x80, max: 0x7ff }).map((c) => String.fromCharCode(c)), weight: 1 },
      { arbitrary: fc.integer({ min: 0x800, max: 0xd7ff }).map((c) => String.fromCharCode(c)), weight: 1 },
      {
        arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
        weight: 1,
      },
    );
    const fresh = new NoticeTokens(SECRET, TTL);
    fc.assert(
      fc.property(
        fc.stringOf(CHAR, { minLength: 1, maxLength: 120 }),
        fc.option(fc.array(fc.stringOf(CHAR, { maxLength: 63 }), { maxLength: 12 })),
        fc.integer({ min: 1, max: 16 }),
        (key, campaigns, uses) => {
          const t = fresh.issue(key, campaigns, uses, NOW);
          expect(decrypt(SECRET, t).equals(payload(NOW + TTL, uses, key, campaigns))).toBe(true);
          expect(fresh.read(t, NOW)).toMatchObject({ personKey: key, campaigns, uses });
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("keeps every token readable and every nonce new across refills of the nonce pool (512 at a time)", () => {
    // A fresh instance, so that the pool's edges fall at known tokens: 0, 512, 1024, ...
    const fresh = new NoticeTokens(SECRET, TTL);
    const issued = Array.from({ length: 512 * 3 + 7 }, (_, i) =>
      fresh.issue(`bu:${i}`, [`c-${i % 7}`], 1 + (i % 16), NOW),
    );
    const nonces = new Set<string>();
    issued.forEach((t, i) => {
      const grant = fresh.read(t, NOW);
      expect(grant, `token ${i}`).toMatchObject({ personKey: `bu:${i}`, campaigns: [`c-${i % 7}`] });
      nonces.add((grant as { nonce: string }).nonce);
    });
    expect(nonces.size).toBe(issued.length);
    // The keystream of each is CTR's for its own nonce, on both sides of each refill.
    for (const i of [0, 1, 510, 511, 512, 513, 1023, 1024, 1025, issued.length - 1]) {
      const expected = payload(NOW + TTL, 1 + (i % 16), `bu:${i}`, [`c-${i % 7}`]);
      expect(decrypt(SECRET, issued[i] as string).equals(expected), `token ${i}`).toBe(true);
    }
  });

  it("is never the same twice: 20,000 tokens for one grant, 20,000 nonces", () => {
    const issued = Array.from({ length: 20_000 }, () => tokens.issue(KEY, CAMPAIGNS, 1, NOW));
    expect(new Set(issued).size).toBe(20_000);
    const nonces = new Set(issued.map((t) => Buffer.from(t, "base64url").subarray(1, 13).toString("hex")));
    expect(nonces.size).toBe(20_000);
  });

  it("refuses to issue what its format cannot hold", () => {
    expect(() =>
      tokens.issue(
        KEY,
        Array.from({ length: 255 }, (_, i) => `c${i}`),
        1,
        NOW,
      ),
    ).toThrow("a token binds at most 254 campaigns, got 255");
    expect(() => tokens.issue(KEY, ["x".repeat(256)], 1, NOW)).toThrow(
      "campaign id of 256 bytes is too long for a token",
    );
    expect(() => tokens.issue(KEY, ["é".repeat(128)], 1, NOW)).toThrow(
      "campaign id of 256 bytes is too long for a token",
    );
    expect(() => tokens.issue(`bu:${"k".repeat(65_533)}`, null, 1, NOW)).toThrow(
      "person key of 65536 bytes is too long for a token",
    );
    const most = Array.from({ length: 254 }, (_, i) => `c${i}`);
    expect(tokens.read(tokens.issue(KEY, most, 1, NOW), NOW)).toMatchObject({ campaigns: most });
    const longest = "y".repeat(255);
    expect(tokens.read(tokens.issue(KEY, [longest], 1, NOW), NOW)).toMatchObject({ campaigns: [longest] });
  });
});

describe("NoticeTokens version 1 (read, no longer issued)", () => {
  const tokens = new NoticeTokens(SECRET, TTL);
  const v1 = new NoticeTokensV1(SECRET, TTL);
  const CAMPAIGNS = ["cap-1", "cap-2"];

  it("reads a version 1 token as it was issued", () => {
    const t = v1.issue(KEY, CAMPAIGNS, 4, NOW);
    const raw = Buffer.from(t, "base64url");
    expect(raw[0]).toBe(1);
    expect(tokens.read(t, NOW)).toEqual({
      personKey: KEY,
      campaigns: CAMPAIGNS,
      uses: 4,
      expiresAtSec: NOW + TTL,
      nonce: raw.subarray(1, 13).toString("base64url"),
    });
    expect(tokens.read(v1.issue("bu:ünïcødé-用户-🙂", null, 1, NOW), NOW)).toMatchObject({
      personKey: "bu:ünïcødé-用户-🙂",
      campaigns: null,
    });
    // Past the keystream version 2 precomputes: version 1 never had one.
    const many = campaignsFilling(KEY, 600);
    expect(tokens.read(v1.issue(KEY, many, 1, NOW), NOW)).toMatchObject({ campaigns: many });
  });

  it("expires as version 2 does", () => {
    const t = v1.issue(KEY, CAMPAIGNS, 1, NOW);
    expect(tokens.read(t, NOW + TTL)).toMatchObject({ personKey: KEY });
    expect(tokens.read(t, NOW + TTL + 1)).toBe("expired");
  });

  it("refuses one with any byte changed, cut, from another secret, or relabelled version 2", () => {
    const raw = Buffer.from(v1.issue(KEY, CAMPAIGNS, 2, NOW), "base64url");
    for (let i = 0; i < raw.length; i++) {
      for (const flip of [0x01, 0x80]) {
        const altered = Buffer.from(raw);
        altered[i] = (altered[i] as number) ^ flip;
        expect(tokens.read(altered.toString("base64url"), NOW), `byte ${i} ^ ${flip}`).toBe("forged");
      }
    }
    for (let n = 0; n < raw.length; n++) {
      expect(tokens.read(raw.subarray(0, n).toString("base64url"), NOW), `${n} bytes`).toBe("forged");
    }
    expect(tokens.read(new NoticeTokensV1(OTHER_SECRET, TTL).issue(KEY, null, 1, NOW), NOW)).toBe("forged");
    expect(new NoticeTokens(OTHER_SECRET, TTL).read(raw.toString("base64url"), NOW)).toBe("forged");
    const relabelled = Buffer.from(raw);
    relabelled[0] = 2;
    expect(tokens.read(relabelled.toString("base64url"), NOW)).toBe("forged");
    expect(tokens.read(raw.toString("base64url"), NOW)).toMatchObject({ personKey: KEY, uses: 2 });
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
