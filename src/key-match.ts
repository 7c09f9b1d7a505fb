// Finds a presented secret (an admin bearer token, an enrich caller's key) among the configured ones without
// the timing telling anything about them. Both sides are compared as HMACs under a random key of this
// process only: equal-length values, each compared in constant time, and every configured one compared,
// found or not, so the timing tells neither a secret's characters, nor its length, nor its position.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A lookup of `presented` among the keys of `entries`: the value of the one it equals, else null. */
export function keyMatcher<T>(entries: Iterable<readonly [string, T]>): (presented: string) => T | null {
  const hmacKey = randomBytes(32);
  const mac = (secret: string): Buffer => createHmac("sha256", hmacKey).update(secret).digest();
  const known = [...entries].map(([secret, value]) => ({ mac: mac(secret), value }));
  return (presented) => {
    const m = mac(presented);
    let found: T | null = null;
    for (const k of known) if (timingSafeEqual(k.mac, m)) found = k.value;
    return found;
  };
}
