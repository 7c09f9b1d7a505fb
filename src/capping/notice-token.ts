// Notice tokens: a lookup answer issues one per person, and only an impression notice (nurl/burl pixel) that
// carries it is counted. It names the person without putting the raw ID (an IFA, a hashed e-mail) in a URL
// that exchanges and browsers log, and it binds what the lookup was about: the candidate campaigns, an
// expiry, and how many impressions it may count (the bid request's imp objects).
//
// Encrypt-then-MAC: base64url (no padding) of
//   version (2) | nonce (12) | AES-256-CTR(payload) | SipHash-2-4-128(version | nonce | ciphertext) (16)
// payload = expiry (u32, epoch s) | uses (u8) | key length (u16) | person key (UTF-8) |
//           campaign count (u8, 255 = any) | per campaign: length (u8) | id (UTF-8)
// CTR's counter blocks are nonce | 32-bit big-endian block number from 0 (Node's aes-256-ctr with IV
// nonce | 0 gives the same keystream). Version 1, still read but no longer issued, differs only in its MAC:
// HMAC-SHA256 of the same bytes, cut to 16 bytes. It is read for the tokens in flight when instances are
// upgraded (they live NOTICE_TOKEN_TTL_SEC) and can go once no instance has issued one for that long.
//
// Keys are derived once from the secret with HKDF-SHA256: one AES key (both versions), one HMAC key
// (version 1), one 16-byte SipHash key (version 2). The MAC is checked, in constant time, before anything
// is decrypted or parsed. SipHash-2-4 is a PRF with a 128-bit key, made for short messages and fit for a MAC
// (its 128-bit output is the reference implementation's, not the paper's); a forger has a 2^-128 chance per
// try, and every try is a request to us. 16 bytes of MAC are also what an nurl macro has room for.
//
// Issuing runs on the bid path of every lookup that has caps state, so its cost is kept near a microsecond:
// a Node crypto call costs about 1 µs whatever its size (an HMAC 3.5 µs), so version 2 makes none per token.
// Nonces come from a pool filled 512 at a time, and with each fill one ECB call encrypts the first 12 counter
// blocks of every nonce in the pool: a token takes its nonce's precomputed keystream (192 bytes), and only a
// payload longer than that (many or long campaign ids) makes a call for the rest. The MAC is SipHash in plain
// JavaScript (siphash.ts), and the token is written straight into one reused buffer, encrypted in place,
// and encoded from there.
import {
  type Cipher,
  createCipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";
import { type SipKey, sipHash128, sipKey } from "./siphash.ts";

/** Shortest secret accepted: a short one could be guessed offline from any token seen in a log. */
export const MIN_TOKEN_SECRET_LENGTH = 32;
/** Most impressions one token may count: a bid request rarely has more imp objects than this. */
export const MAX_TOKEN_USES = 16;

/** The version issued. */
const VERSION = 2;
/** The version still read: HMAC-SHA256 as the MAC. */
const VERSION_HMAC = 1;
/** Random per token: the CTR counter block's start (never reused under one key, 2^96 choices) and the id of its uses. */
const NONCE_BYTES = 12;
const MAC_BYTES = 16;
const HEAD_BYTES = 1 + NONCE_BYTES;
/** Shortest payload: expiry, uses, key length, campaign count. */
const MIN_PAYLOAD_BYTES = 8;
const ANY_CAMPAIGN = 255;
/** Longest token read: far above any real one (a 300-byte key and 100 campaigns of 64), refused before decoding. */
const MAX_TOKEN_CHARS = 12_000;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;
const AES_BLOCK = 16;
/** Nonces are drawn from a pool filled 512 at a time: issue runs on the bid path. */
const POOL_NONCES = 512;
/**
 * AES blocks of keystream precomputed per pooled nonce: 192 bytes of payload, enough for a hashed e-mail and
 * five campaign ids of 22 characters, or an IFA and five of 27. A longer payload computes the rest when it is
 * issued (a cipher call: about 2 µs more). Measured per issue, against 12: 8 blocks (128 bytes) made no
 * difference beyond the noise on a short token and cost 2 µs more on a hashed e-mail with five campaigns of
 * 21 characters; 16 made none on either.
 */
const STREAM_BLOCKS = 12;
const STREAM_BYTES = STREAM_BLOCKS * AES_BLOCK;
/**
 * Where a token starts in the buffer it is issued in: its nonce and payload then start on 4-byte boundaries,
 * copied and encrypted a 32-bit word at a time.
 */
const OUT_AT = 3;
const PAYLOAD_AT = OUT_AT + HEAD_BYTES;

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
   * AES-256 in ECB mode, made once and used only to encrypt counter blocks: that is CTR mode, without a
   * cipher per token. ECB keeps no state between whole blocks, so one instance serves every token.
   */
  readonly #blocks: Cipher;
  readonly #macKey: SipKey;
  /** Version 1's MAC key: read only. */
  readonly #hmacKey: Buffer;
  readonly #ttlSec: number;
  /**
   * The pool: POOL_NONCES nonces, for each its STREAM_BLOCKS counter blocks, and their keystream, each in an
   * ArrayBuffer of its own and read as 32-bit words (the same machine's memory, so bytes keep their order).
   */
  readonly #nonces = new Int32Array(POOL_NONCES * (NONCE_BYTES / 4));
  readonly #counters = new Int32Array(POOL_NONCES * (STREAM_BYTES / 4));
  readonly #stream = new Int32Array(POOL_NONCES * (STREAM_BYTES / 4));
  /** The next unused nonce of the pool; POOL_NONCES when it is spent. */
  #poolAt = POOL_NONCES;
  /**
   * Where a token is written (from OUT_AT), encrypted and MACed before it is encoded, and its 32-bit words:
   * grown when a token does not fit.
   */
  #out = Buffer.alloc(512);
  #outWords = new Int32Array(this.#out.buffer, 0, this.#out.length / 4);
  /** A version 2 tag computed on reading. */
  readonly #tag = new Uint8Array(MAC_BYTES);

  /** `ttlSec`: how long an issued token is honoured (NOTICE_TOKEN_TTL_SEC). */
  constructor(secret: string, ttlSec: number) {
    // A weak secret is a configuration mistake; refusing it here keeps it from being used by accident.
    const reason = validateTokenSecret(secret);
    if (reason !== null) throw new Error(`event token secret ${reason}`);
    const encKey = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 aes-256-ctr", 32));
    this.#blocks = createCipheriv("aes-256-ecb", encKey, null).setAutoPadding(false);
    this.#hmacKey = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 hmac-sha256", 32));
    this.#macKey = sipKey(
      new Uint8Array(hkdfSync("sha256", secret, "", "audience notice token v2 siphash-2-4-128", 16)),
    );
    this.#ttlSec = ttlSec;
    // Each counter block's block number (its last 4 bytes) stays as written here; a fill writes the nonces.
    const view = new DataView(this.#counters.buffer);
    for (let at = 0; at < view.byteLength; at += AES_BLOCK) {
      view.setUint32(at + NONCE_BYTES, (at / AES_BLOCK) % STREAM_BLOCKS);
    }
  }

  /**
   * A new token for `personKey` (a typed key such as "ifa:…") allowing `uses` impressions (clamped to
   * 1-16) of `campaigns` (null: any; at most 254, each at most 255 bytes), valid for the configured time
   * from `nowSec`. Never the same twice.
   */
  issue(personKey: string, campaigns: readonly string[] | null, uses: number, nowSec: number): string {
    // Lookups name at most 100 campaigns of at most 64 characters (lookup-handler.ts); 255 means "any".
    if (campaigns !== null && campaigns.length >= ANY_CAMPAIGN)
      throw new RangeError(`a token binds at most ${ANY_CAMPAIGN - 1} campaigns, got ${campaigns.length}`);
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: room for the token before its strings are written.
    let bound = OUT_AT + HEAD_BYTES + MIN_PAYLOAD_BYTES + 3 * personKey.length + MAC_BYTES;
    if (campaigns !== null) for (const c of campaigns) bound += 1 + 3 * c.length;
    if (bound > this.#out.length) {
      this.#out = Buffer.alloc(8 * Math.ceil(bound / 4));
      this.#outWords = new Int32Array(this.#out.buffer, 0, this.#out.length / 4);
    }
    const out = this.#out;
    const words = this.#outWords;
    if (this.#poolAt === POOL_NONCES) this.#fill();
    const slot = this.#poolAt++;

    out[OUT_AT] = VERSION;
    const nonces = this.#nonces;
    words[(OUT_AT + 1) / 4] = nonces[3 * slot] as number;
    words[(OUT_AT + 1) / 4 + 1] = nonces[3 * slot + 1] as number;
    words[(OUT_AT + 1) / 4 + 2] = nonces[3 * slot + 2] as number;
    const expiry = nowSec + this.#ttlSec;
    out[PAYLOAD_AT] = expiry >>> 24;
    out[PAYLOAD_AT + 1] = expiry >>> 16;
    out[PAYLOAD_AT + 2] = expiry >>> 8;
    out[PAYLOAD_AT + 3] = expiry;
    out[PAYLOAD_AT + 4] = Math.min(MAX_TOKEN_USES, Math.max(1, Math.floor(uses)));
    const keyBytes = writeUtf8(out, personKey, PAYLOAD_AT + 7);
    if (keyBytes > 0xffff) throw new RangeError(`person key of ${keyBytes} bytes is too long for a token`);
    out[PAYLOAD_AT + 5] = keyBytes >>> 8;
    out[PAYLOAD_AT + 6] = keyBytes;
    let at = PAYLOAD_AT + 7 + keyBytes;
    if (campaigns === null) out[at++] = ANY_CAMPAIGN;
    else {
      out[at++] = campaigns.length;
      for (const c of campaigns) {
        const n = writeUtf8(out, c, at + 1);
        if (n > 0xff) throw new RangeError(`campaign id of ${n} bytes is too long for a token`);
        out[at] = n;
        at += 1 + n;
      }
    }

    // Encrypt in place with the nonce's precomputed keystream, a word at a time (the last word's bytes past
    // the payload are overwritten by the MAC), and compute the rest if the payload is longer.
    const stream = this.#stream;
    const pooled = Math.min(at, PAYLOAD_AT + STREAM_BYTES);
    const streamAt = (slot * STREAM_BYTES) / 4 - PAYLOAD_AT / 4;
    for (let w = PAYLOAD_AT / 4, last = (pooled + 3) >> 2; w < last; w++) {
      words[w] = (words[w] as number) ^ (stream[streamAt + w] as number);
    }
    if (at > pooled) this.#ctr(out, OUT_AT, pooled, at, STREAM_BLOCKS);
    sipHash128(this.#macKey, out, OUT_AT, at, out, at);
    return out.toString("base64url", OUT_AT, at + MAC_BYTES);
  }

  /** What the token grants, or why it is refused. Never throws. */
  read(token: string, nowSec: number): NoticeGrant | TokenRefusal {
    if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS || !BASE64URL_RE.test(token))
      return "forged";
    const raw = Buffer.from(token, "base64url");
    // Node's decoder ignores stray trailing bits; re-encoding refuses a second spelling of the same bytes.
    if (raw.toString("base64url") !== token) return "forged";
    if (raw.length < HEAD_BYTES + MIN_PAYLOAD_BYTES + MAC_BYTES) return "forged";
    const end = raw.length - MAC_BYTES;
    if (raw[0] === VERSION) {
      sipHash128(this.#macKey, raw, 0, end, this.#tag, 0);
      if (!sameTag(this.#tag, raw, end)) return "forged";
    } else if (raw[0] === VERSION_HMAC) {
      const expected = createHmac("sha256", this.#hmacKey).update(raw.subarray(0, end)).digest();
      if (!timingSafeEqual(expected.subarray(0, MAC_BYTES), raw.subarray(end))) return "forged";
    } else return "forged";
    // Authentic: decrypt in place (the decoded bytes are this call's own), then parse.
    this.#ctr(raw, 0, HEAD_BYTES, end, 0);
    // Only this class writes them, so they are well formed; the bounds are checked all the same.
    const grant = parse(raw.subarray(HEAD_BYTES, end), raw.toString("base64url", 1, HEAD_BYTES));
    if (grant === null) return "forged";
    return grant.expiresAtSec < nowSec ? "expired" : grant;
  }

  /**
   * AES-256-CTR on `data[from, to)` in place, for the token at `data[t]` (its nonce at `data[t + 1, t + 13)`),
   * with the keystream from block `firstBlock` (the block `from` starts at): encrypting and decrypting alike.
   * One ECB call.
   */
  #ctr(data: Uint8Array, t: number, from: number, to: number, firstBlock: number): void {
    const count = Math.ceil((to - from) / AES_BLOCK);
    // Every byte is written: no need to zero it.
    const counters = Buffer.allocUnsafe(count * AES_BLOCK);
    for (let b = 0, at = 0; b < count; b++, at += AES_BLOCK) {
      for (let i = 0; i < NONCE_BYTES; i++) counters[at + i] = data[t + 1 + i] as number;
      const n = firstBlock + b;
      counters[at + 12] = n >>> 24;
      counters[at + 13] = n >>> 16;
      counters[at + 14] = n >>> 8;
      counters[at + 15] = n;
    }
    const stream = this.#blocks.update(counters);
    for (let i = from; i < to; i++) data[i] = (data[i] as number) ^ (stream[i - from] as number);
  }

  /** New random nonces, and in one ECB call the first STREAM_BLOCKS blocks of keystream of each. */
  #fill(): void {
    const nonces = this.#nonces;
    const counters = this.#counters;
    randomFillSync(nonces);
    for (let n = 0, w = 0; n < POOL_NONCES; n++) {
      const a = nonces[3 * n] as number;
      const b = nonces[3 * n + 1] as number;
      const c = nonces[3 * n + 2] as number;
      for (let k = 0; k < STREAM_BLOCKS; k++, w += 4) {
        counters[w] = a;
        counters[w + 1] = b;
        counters[w + 2] = c;
      }
    }
    const stream = this.#blocks.update(new Uint8Array(counters.buffer));
    new Uint8Array(this.#stream.buffer).set(stream);
    this.#poolAt = 0;
  }
}

/**
 * Writes `s` as UTF-8 at `at` and answers its length in bytes. ASCII, as campaign ids (CAP_ID_RE) and most
 * person keys are, is copied by this loop: a call of Buffer#write costs about 0.1 µs, and a token writes
 * several strings. Anything else goes through Buffer#write (it has room: the caller sized for 3 bytes a
 * UTF-16 unit).
 */
function writeUtf8(out: Buffer, s: string, at: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return out.write(s, at, "utf8");
    out[at + i] = c;
  }
  return n;
}

/** `tag` equals `raw[at, at + 16)`, compared in constant time (no early exit). */
function sameTag(tag: Uint8Array, raw: Uint8Array, at: number): boolean {
  let diff = 0;
  for (let i = 0; i < MAC_BYTES; i++) diff |= (tag[i] as number) ^ (raw[at + i] as number);
  return diff === 0;
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
