// Notice tokens: a lookup answer issues one per person, and only an impression notice (nurl/burl pixel) that
// carries it is counted. It names the person without putting the raw ID (an IFA, a hashed e-mail) in a URL
// that exchanges and browsers log, and it binds what the lookup was about: the candidate campaigns, an
// expiry, and how many impressions it may count (the bid request's imp objects).
//
// Encrypt-then-MAC: base64url (no padding) of
//   version (1) | nonce (12) | AES-256-CTR(payload) | HMAC-SHA256(version | nonce | ciphertext)[0..16)
// payload = expiry (u32, epoch s) | uses (u8) | key length (u16) | person key | campaign count (u8, 255 = any) |
//           per campaign: length (u8) | id
// Keys are derived once from the secret with HKDF-SHA256 (one for AES, one for HMAC). The MAC is checked, in
// constant time, before anything is decrypted or parsed. 16 bytes of MAC leave a forger a 2^-128 chance per
// try, and every try is a request to us: more would only lengthen a URL that must fit an nurl macro.
import {
  type Cipher,
  createCipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";

/** Shortest secret accepted: a short one could be guessed offline from any token seen in a log. */
export const MIN_TOKEN_SECRET_LENGTH = 32;
/** Most impressions one token may count: a bid request rarely has more imp objects than this. */
export const MAX_TOKEN_USES = 16;

const VERSION = 1;
/** Random per token: the CTR counter block's start (never reused under one key, 2^96 choices) and the id of its uses. */
const NONCE_BYTES = 12;
const MAC_BYTES = 16;
const HEAD_BYTES = 1 + NONCE_BYTES;
const ANY_CAMPAIGN = 255;
/** Longest token read: far above any real one (a 300-byte key and 100 campaigns of 64), refused before decoding. */
const MAX_TOKEN_CHARS = 12_000;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;
/** Nonces are drawn from a pool filled 512 at a time: issue runs on the bid path. */
const POOL_NONCES = 512;

/** A reason when the secret is too weak to key notice tokens; null when it will do. */
export function validateTokenSecret(secret: string): string | null {
  if (secret.length < MIN_TOKEN_SECRET_LENGTH)
    return `must be at least ${MIN_TOKEN_SECRET_LENGTH} characters, got ${secret.length}`;
  return null;
}

/**
 * A random secret for a process started without EVENT_TOKEN_SECRET: made once, before the worker threads,
 * and handed to each, so a token one thread issued reads in every other. It dies with the process.
 */
export function ephemeralSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** What a token grants. */
export interface NoticeGrant {
  readonly personKey: string;
  /** Campaigns an event may count toward; null = any campaign (the lookup named no candidates). */
  readonly campaigns: readonly string[] | null;
  /** Epoch seconds after which the token is refused. */
  readonly expiresAtSec: number;
  /** Distinct impression ids the token may count (1-16). */
  readonly uses: number;
  /** The token's nonce, base64url: the store keeps its uses under it. */
  readonly nonce: string;
}

/** Why a token was refused: `forged` (altered, cut, another secret's, or not a token at all) or `expired`. */
export type TokenRefusal = "forged" | "expired";

export class NoticeTokens {
  /**
   * AES-256 in ECB mode, made once and used only to encrypt counter blocks: that is CTR mode (the keystream of
   * aes-256-ctr with IV nonce|0), without creating a cipher per token (about 3 µs of the lookup's time each).
   * ECB keeps no state between whole blocks, so one instance serves every token.
   */
  readonly #blocks: Cipher;
  readonly #macKey: Buffer;
  readonly #ttlSec: number;
  #pool = Buffer.alloc(0);
  #poolAt = 0;

  /** `ttlSec`: how long an issued token is honoured (NOTICE_TOKEN_TTL_SEC). */
  constructor(secret: string, ttlSec: number) {
    // A weak secret is a configuration mistake; refusing it here keeps it from being used by accident.
    const reason = validateTokenSecret(secret);
    if (reason !== null) throw new Error(`event token secret ${reason}`);
    const encKey = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 aes-256-ctr", 32));
    this.#blocks = createCipheriv("aes-256-ecb", encKey, null).setAutoPadding(false);
    this.#macKey = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 hmac-sha256", 32));
    this.#ttlSec = ttlSec;
  }

  /**
   * A new token for `personKey` (a typed key such as "ifa:…") allowing `uses` impressions (clamped to
   * 1-16) of `campaigns` (null: any), valid for the configured time from `nowSec`. Never the same twice.
   */
  issue(personKey: string, campaigns: readonly string[] | null, uses: number, nowSec: number): string {
    const key = Buffer.from(personKey, "utf8");
    const ids = campaigns?.map((c) => Buffer.from(c, "utf8")) ?? [];
    let size = 4 + 1 + 2 + key.length + 1;
    for (const id of ids) size += 1 + id.length;
    const plain = Buffer.allocUnsafe(size);
    let at = plain.writeUInt32BE(nowSec + this.#ttlSec, 0);
    at = plain.writeUInt8(Math.min(MAX_TOKEN_USES, Math.max(1, Math.floor(uses))), at);
    at = plain.writeUInt16BE(key.length, at);
    at += key.copy(plain, at);
    // Campaign ids are at most 64 characters and a lookup names at most 100 (lookup-handler.ts).
    at = plain.writeUInt8(campaigns === null ? ANY_CAMPAIGN : ids.length, at);
    for (const id of ids) {
      at = plain.writeUInt8(id.length, at);
      at += id.copy(plain, at);
    }
    const out = Buffer.allocUnsafe(HEAD_BYTES + size + MAC_BYTES);
    out[0] = VERSION;
    this.#nonce().copy(out, 1);
    this.#crypt(out.subarray(1, HEAD_BYTES), plain, out.subarray(HEAD_BYTES));
    this.#mac(out.subarray(0, HEAD_BYTES + size)).copy(out, HEAD_BYTES + size, 0, MAC_BYTES);
    return out.toString("base64url");
  }

  /** What the token grants, or why it is refused. Never throws. */
  read(token: string, nowSec: number): NoticeGrant | TokenRefusal {
    if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS || !BASE64URL_RE.test(token))
      return "forged";
    const raw = Buffer.from(token, "base64url");
    // Node's decoder ignores stray trailing bits; re-encoding refuses a second spelling of the same bytes.
    if (raw.toString("base64url") !== token) return "forged";
    if (raw.length < HEAD_BYTES + 8 + MAC_BYTES || raw[0] !== VERSION) return "forged";
    const body = raw.subarray(0, raw.length - MAC_BYTES);
    const expected = this.#mac(body).subarray(0, MAC_BYTES);
    if (!timingSafeEqual(expected, raw.subarray(raw.length - MAC_BYTES))) return "forged";
    const plain = Buffer.allocUnsafe(body.length - HEAD_BYTES);
    this.#crypt(raw.subarray(1, HEAD_BYTES), body.subarray(HEAD_BYTES), plain);
    // Authentic, so well formed (only this class writes them); the bounds are checked all the same.
    const grant = parse(plain, raw.subarray(1, HEAD_BYTES).toString("base64url"));
    if (grant === null) return "forged";
    return grant.expiresAtSec < nowSec ? "expired" : grant;
  }

  /** AES-256-CTR from block nonce|0: `to` = `from` XOR the keystream (encrypting and decrypting alike). */
  #crypt(nonce: Buffer, from: Buffer, to: Buffer): void {
    const count = Math.ceil(from.length / 16);
    const counters = Buffer.alloc(count * 16);
    for (let b = 0; b < count; b++) {
      nonce.copy(counters, b * 16);
      counters.writeUInt32BE(b, b * 16 + 12);
    }
    const stream = this.#blocks.update(counters);
    for (let i = 0; i < from.length; i++) to[i] = (from[i] as number) ^ (stream[i] as number);
  }

  #mac(data: Buffer): Buffer {
    return createHmac("sha256", this.#macKey).update(data).digest();
  }

  #nonce(): Buffer {
    if (this.#poolAt + NONCE_BYTES > this.#pool.length) {
      this.#pool = randomFillSync(Buffer.allocUnsafe(POOL_NONCES * NONCE_BYTES));
      this.#poolAt = 0;
    }
    const n = this.#pool.subarray(this.#poolAt, this.#poolAt + NONCE_BYTES);
    this.#poolAt += NONCE_BYTES;
    return n;
  }
}

function parse(plain: Buffer, nonce: string): NoticeGrant | null {
  if (plain.length < 8) return null;
  const expiresAtSec = plain.readUInt32BE(0);
  const uses = plain.readUInt8(4);
  const keyLength = plain.readUInt16BE(5);
  let at = 7 + keyLength;
  if (at + 1 > plain.length || keyLength === 0 || uses < 1 || uses > MAX_TOKEN_USES) return null;
  const personKey = plain.toString("utf8", 7, at);
  const count = plain.readUInt8(at++);
  let campaigns: string[] | null = null;
  if (count !== ANY_CAMPAIGN) {
    campaigns = [];
    for (let i = 0; i < count; i++) {
      if (at >= plain.length) return null;
      const n = plain.readUInt8(at++);
      if (at + n > plain.length) return null;
      campaigns.push(plain.toString("utf8", at, at + n));
      at += n;
    }
  }
  if (at !== plain.length) return null;
  return { personKey, campaigns, expiresAtSec, uses, nonce };
}
