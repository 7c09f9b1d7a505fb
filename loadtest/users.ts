// Deterministic synthetic users: the typed ID and segment list of user number i, the same in seeding and bodies.

/** Which ID a user is known by; user i has kind KINDS[i % 3]. */
export type IdKind = "ifa" | "bu" | "uid2";
export const KINDS: readonly IdKind[] = ["ifa", "bu", "uid2"];

/** The EID source whose uids are seeded (eid:uidapi.com:<id>). */
export const UID2_SOURCE = "uidapi.com";

const SEED = 0x5eed_2024;

export const kindOf = (i: number): IdKind => KINDS[i % 3] as IdKind;

/** mulberry32: a small, fast seeded PRNG returning uint32 values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The generator of user i (independent of every other user, so any index can be rebuilt on its own). */
function userRng(i: number, salt: number): () => number {
  let h = Math.imul(i ^ SEED, 0x9e3779b1) ^ salt;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return prng(h ^ (h >>> 16));
}

const hex8 = (n: number): string => n.toString(16).padStart(8, "0");
const scratch = Buffer.alloc(32);

/** The ID as it appears in a bid request (device.ifa, user.buyeruid or a uidapi.com uid). */
export function rawId(i: number): string {
  const r = userRng(i, 0x1d);
  switch (kindOf(i)) {
    case "ifa": {
      const a = hex8(r());
      const b = hex8(r());
      const c = hex8(r());
      const d = hex8(r());
      // A version-4 UUID, lower case.
      return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${((Number.parseInt(c[0] as string, 16) & 3) | 8).toString(16)}${c.slice(1, 4)}-${c.slice(4)}${d}`;
    }
    case "bu":
      return `bu-${hex8(r())}${hex8(r())}`;
    case "uid2":
      for (let k = 0; k < 32; k += 4) scratch.writeUInt32BE(r(), k);
      return scratch.toString("base64");
  }
}

/** The key the service stores the profile under (before profileKey wrapping). */
export function typedId(i: number): string {
  const kind = kindOf(i);
  const raw = rawId(i);
  return kind === "uid2" ? `eid:${UID2_SOURCE}:${raw}` : `${kind}:${raw}`;
}

/** 2 to 6 distinct segment ids out of "1001".."1099". */
export function segmentsOf(i: number): string[] {
  const r = userRng(i, 0x5e);
  const count = 2 + (r() % 5);
  const out: string[] = [];
  while (out.length < count) {
    const s = String(1001 + (r() % 99));
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** Users grouped into persons of PERSON_SIZE IDs ((g) only): user i belongs with the users of the same i / 4. */
export const PERSON_SIZE = 4;

/** The users of user i's person, i itself included. */
export function personOf(i: number): number[] {
  const first = i - (i % PERSON_SIZE);
  return Array.from({ length: PERSON_SIZE }, (_, k) => first + k);
}
