// Event tokens: the lookup hands one out per person so that an impression pixel can name that person
// without putting the raw ID (an IFA, a hashed e-mail) in a URL that exchanges and browsers log.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from "node:crypto";

/** Shortest secret accepted: a short one could be guessed offline from any token seen in a log. */
export const MIN_TOKEN_SECRET_LENGTH = 32;

const ALGORITHM = "aes-256-gcm";
/** GCM's standard nonce size; random per token, so the same person gets a different token each time. */
const IV_BYTES = 12;
const TAG_BYTES = 16;
/**
 * Longest token read: well above any stored key (an `eid:` namespace plus a 256-character ID, even if
 * every character takes 4 bytes), so anything longer is refused before it is decoded.
 */
const MAX_TOKEN_CHARS = 2_048;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;

/** A reason when the secret is too weak to key event tokens; null when it will do. */
export function validateTokenSecret(secret: string): string | null {
  if (secret.length < MIN_TOKEN_SECRET_LENGTH)
    return `must be at least ${MIN_TOKEN_SECRET_LENGTH} characters, got ${secret.length}`;
  return null;
}

/**
 * Issues and reads tokens: base64url (no padding) of iv | tag | ciphertext, AES-256-GCM keyed by the
 * SHA-256 of the secret. GCM authenticates, so a token that was altered, cut short or made with another
 * secret does not read at all, rather than reading as somebody else.
 */
export class EventTokens {
  /** Derived once: `issue` runs on the bid path. */
  private readonly key: KeyObject;

  constructor(secret: string) {
    // A weak secret is a configuration mistake; refusing it here keeps it from being used by accident.
    const reason = validateTokenSecret(secret);
    if (reason !== null) throw new Error(`event token secret ${reason}`);
    this.key = createSecretKey(createHash("sha256").update(secret, "utf8").digest());
  }

  /**
   * A new token naming `personKey` (a typed key such as "ifa:…"); never the same twice. An empty key names
   * nobody: its token does not read.
   */
  issue(personKey: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
    const ciphertext = Buffer.concat([cipher.update(personKey, "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString("base64url");
  }

  /** The person key a token names; null for anything this instance did not issue. Never throws. */
  read(token: string): string | null {
    if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS || !BASE64URL_RE.test(token)) return null;
    const raw = Buffer.from(token, "base64url");
    // Node's decoder ignores stray trailing bits; re-encoding refuses a second spelling of the same bytes.
    if (raw.toString("base64url") !== token) return null;
    // No ciphertext means no person, whatever the tag says.
    if (raw.length <= IV_BYTES + TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv(ALGORITHM, this.key, raw.subarray(0, IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      return plain.toString("utf8");
    } catch {
      // final() throws when the tag does not match: tampered, truncated or another secret's token.
      return null;
    }
  }
}
