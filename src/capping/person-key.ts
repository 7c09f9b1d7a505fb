// Which ID frequency counters key on. Until the identity graph links a person's IDs, counters key on the
// strongest ID in the request: the most durable and least shared. The identity graph will map any ID to its
// person's key here, and nothing else on the hot path changes.
import { typeOfKey } from "../identity/typed-id.ts";

/** Strongest first: a hashed e-mail or an e-mail-based universal ID outlives a device or a cookie. */
const RANK: readonly ((type: string) => boolean)[] = [
  (t) => t === "hem",
  (t) => t === "eid:uidapi.com" || t === "eid:liveramp.com",
  (t) => t.startsWith("eid:"),
  (t) => t === "ifa",
  (t) => t === "bu",
  (t) => t.startsWith("xu:"),
];

/** The key counters are kept under for the person behind these typed IDs; null when there are none. */
export function personKeyOf(keys: readonly string[]): string | null {
  let best: string | null = null;
  let bestRank = RANK.length;
  for (const key of keys) {
    const type = typeOfKey(key);
    const rank = RANK.findIndex((matches) => matches(type));
    if (rank >= 0 && rank < bestRank) {
      best = key;
      bestRank = rank;
    }
  }
  return best;
}
