// Version 1 notice tokens as the service issued them before version 2 (the issuing code as it shipped, AES-256-CTR
// and HMAC-SHA256), for the tests that check such tokens still read while they are in flight, and for the
// micro-benchmark that measures version 2 against it. The service itself no longer issues them.
import { type Cipher, createCipheriv, createHmac, hkdfSync, randomFillSync } from "node:crypto";

const NONCE_BYTES = 12;
const MAC_BYTES = 16;
const HEAD_BYTES = 1 + NONCE_BYTES;
const ANY_CAMPAIGN = 255;
const POOL_NONCES = 512;

export class NoticeTokensV1 {
  readonly #blocks: Cipher;
  readonly #macKey: Buffer;
  readonly #ttlSec: number;
  #pool = Buffer.alloc(0);
  #poolAt = 0;

  constructor(secret: string, ttlSec: number) {
    const encKey = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 aes-256-ctr", 32));
    this.#blocks = createCipheriv("aes-256-ecb", encKey, null).setAutoPadding(false);
    this.#macKey = Buffer.from(hkdfSync("sha256", secret, "", "audience notice token v1 hmac-sha256", 32));
    this.#ttlSec = ttlSec;
  }

  issue(personKey: string, campaigns: readonly string[] | null, uses: number, nowSec: number): string {
    const key = Buffer.from(personKey, "utf8");
    const ids = campaigns?.map((c) => Buffer.from(c, "utf8")) ?? [];
    let size = 4 + 1 + 2 + key.length + 1;
    for (const id of ids) size += 1 + id.length;
    const plain = Buffer.allocUnsafe(size);
    let at = plain.writeUInt32BE(nowSec + this.#ttlSec, 0);
    at = plain.writeUInt8(Math.min(16, Math.max(1, Math.floor(uses))), at);
    at = plain.writeUInt16BE(key.length, at);
    at += key.copy(plain, at);
    at = plain.writeUInt8(campaigns === null ? ANY_CAMPAIGN : ids.length, at);
    for (const id of ids) {
      at = plain.writeUInt8(id.length, at);
      at += id.copy(plain, at);
    }
    const out = Buffer.allocUnsafe(HEAD_BYTES + size + MAC_BYTES);
    out[0] = 1;
    this.#nonce().copy(out, 1);
    this.#crypt(out.subarray(1, HEAD_BYTES), plain, out.subarray(HEAD_BYTES));
    this.#mac(out.subarray(0, HEAD_BYTES + size)).copy(out, HEAD_BYTES + size, 0, MAC_BYTES);
    return out.toString("base64url");
  }

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
