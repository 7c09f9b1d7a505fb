// The rows of a load waiting to be written, grouped by ID. Redis' cost of a load is one read-modify-write
// per ID per write, whatever the number of rows it merges: an ID whose rows are spread over a file (one
// not sorted by ID) is written once per row unless its rows wait for each other. The window holds the most
// recent rows, up to its capacity, and hands out the IDs that came in first, each with every row it
// gathered meanwhile: rows of an ID that lie within the window of each other are merged in one write.
//
// Its memory is fixed by its capacity, never by the file, and kept off the JavaScript heap: rows are held in
// typed arrays rather than as one object per row, each row's numbers side by side so that adding one touches
// one cache line, not one per field; segments and sources as numbers into a table of the distinct ones; IDs
// as their UTF-8 bytes in a ring, in order of arrival. Strings and arrays kept for as long as a window of
// hundreds of thousands of rows outlive the young generation: held that way, they made the heap (and the
// resident memory) swing by a few dozen MiB more between collections, where typed arrays cost the
// collector nothing.
import type { MembershipOp } from "../profiles/profile-codec.ts";

/**
 * Distinct segment and source strings the rows may name (a file names a few hundred). A new one past it waits
 * until the window is empty, when the table starts again.
 */
const TEXTS_MAX = 65_536;
/**
 * Numbers per row: expiresAt, generation, minGeneration, next row * 2 + (1 for add, 0 for remove), and
 * segment * TEXTS_MAX + source (their numbers in the table of texts).
 */
const ROW = 5;
/** Numbers per ID: first row, last row, row count, key hash, key bytes' offset and length. */
const ID = 6;
/** Key bytes held per row of capacity (an ifa key is 40, a hem key 68); past them, the window counts as full. */
const KEY_BYTES_PER_ROW = 64;
/** At least this many key bytes, so that any one key fits (an ID is at most 256 characters, its type 70). */
const MIN_KEY_BYTES = 64 * 1024;

export class MembershipWindow {
  readonly capacity: number;
  #rows = 0;
  readonly #row: Float64Array;
  readonly #texts: string[] = [];
  readonly #textNumber = new Map<string, number>();
  /** Free row slots, a stack. */
  readonly #free: Int32Array;
  #freeTop: number;
  // IDs in a ring in order of arrival (an ID holds at least one row: never more IDs than rows), their keys'
  // bytes in a ring of their own, in the same order: taking the oldest IDs frees the oldest bytes.
  readonly #id: Int32Array;
  #oldest = 0;
  #ids = 0;
  readonly #keys: Buffer;
  /** Where the next key's bytes go. */
  #keyTail = 0;
  // The IDs' index: open addressing with linear probing over a table at least twice the capacity, each
  // entry the ID's slot + 1 (0: free) beside its key's hash, so that a probe compares strings only when
  // hashes match. A Map here cost four times as much per row once it held hundreds of thousands of IDs
  // (each lookup hashed the new key string and walked entries spread over memory).
  readonly #table: Int32Array;
  readonly #mask: number;
  readonly #seed = (Math.random() * 2 ** 32) | 0;
  // The ID of the last row pushed, and its slot: in a file sorted by ID most rows are of the same ID as
  // the row before, found without hashing.
  #lastKey = "";
  #lastSlot = -1;

  /** `hash` replaces the key hash: the tests give one that collides, to exercise the index's probe runs. */
  constructor(capacity: number, hash?: (key: string) => number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("window capacity must be >= 1");
    this.capacity = capacity;
    this.#row = new Float64Array(capacity * ROW);
    this.#free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.#free[i] = capacity - 1 - i;
    this.#freeTop = capacity;
    this.#id = new Int32Array(capacity * ID);
    this.#keys = Buffer.alloc(Math.max(capacity * KEY_BYTES_PER_ROW, MIN_KEY_BYTES));
    let size = 2;
    while (size < capacity * 2) size *= 2;
    this.#table = new Int32Array(size * 2);
    this.#mask = size - 1;
    if (hash !== undefined) this.#hashOf = (key) => hash(key) | 0;
    // Written through once now: fresh typed arrays are mapped lazily, and the rings would take their pages
    // one by one as they go round, the resident memory creeping up over the first rows of a load instead
    // of standing at its size from the start.
    this.#row.fill(0);
    this.#id.fill(0);
    this.#table.fill(0);
    this.#keys.fill(0);
  }

  /** Rows held. */
  get rows(): number {
    return this.#rows;
  }

  /** IDs held. */
  get ids(): number {
    return this.#ids;
  }

  /** No row can be added (an ID new to the window may find no room even before: push says so). */
  get full(): boolean {
    return this.#rows >= this.capacity;
  }

  /**
   * Adds a row after the earlier rows of its ID. False when there is no room for it (the window is full, or
   * has no room left for a new ID's key): take IDs out, then push it again.
   */
  push(op: MembershipOp): boolean {
    if (this.#rows >= this.capacity) return false;
    const key = op.key;
    const table = this.#table;
    const id = this.#id;
    let h = 0;
    let e = 0;
    let s = -1;
    if (this.#lastSlot >= 0 && key === this.#lastKey) s = this.#lastSlot * ID;
    else {
      const mask = this.#mask;
      h = this.#hashOf(key);
      e = h & mask;
      for (let v = table[2 * e] as number; v !== 0; v = table[2 * e] as number) {
        if (table[2 * e + 1] === h && this.#keyIs(v - 1, key)) {
          s = (v - 1) * ID;
          break;
        }
        e = (e + 1) & mask;
      }
    }
    let keyAt = 0;
    let keyLength = 0;
    if (s < 0) {
      keyLength = Buffer.byteLength(key, "utf8");
      keyAt = this.#keyRoom(keyLength);
      if (keyAt < 0) return false;
    }
    // An empty window lets its table of texts start again (no row names them any more) before it is full.
    if (this.#rows === 0 && this.#texts.length >= TEXTS_MAX - 1) {
      this.#texts.length = 0;
      this.#textNumber.clear();
    }
    const segment = this.#textOf(op.segment);
    const source = this.#textOf(op.source);
    if (segment < 0 || source < 0) return false;
    const r = this.#free[--this.#freeTop] as number;
    const row = this.#row;
    const at = r * ROW;
    row[at] = op.expiresAt;
    row[at + 1] = op.generation;
    row[at + 2] = op.minGeneration;
    row[at + 3] = -2 + (op.op === "add" ? 1 : 0);
    row[at + 4] = segment * TEXTS_MAX + source;
    this.#rows++;
    if (s >= 0) {
      // Linked after the ID's last row.
      const last = (id[s + 1] as number) * ROW + 3;
      row[last] = r * 2 + ((row[last] as number) & 1);
      id[s + 1] = r;
      id[s + 2] = (id[s + 2] as number) + 1;
      this.#lastKey = key;
      this.#lastSlot = s / ID;
      return true;
    }
    const slot = (this.#oldest + this.#ids) % this.capacity;
    this.#lastKey = key;
    this.#lastSlot = slot;
    this.#ids++;
    table[2 * e] = slot + 1;
    table[2 * e + 1] = h;
    this.#keys.write(key, keyAt, keyLength, "utf8");
    this.#keyTail = keyAt + keyLength;
    const n = slot * ID;
    id[n] = r;
    id[n + 1] = r;
    id[n + 2] = 1;
    id[n + 3] = h;
    id[n + 4] = keyAt;
    id[n + 5] = keyLength;
    return true;
  }

  /**
   * Takes out the IDs that came in first, each with all its rows in the order they came, until at least
   * `rows` rows are taken or the window is empty.
   */
  take(rows: number): { groups: Map<string, MembershipOp[]>; rows: number } {
    const groups = new Map<string, MembershipOp[]>();
    const row = this.#row;
    const id = this.#id;
    let taken = 0;
    this.#lastSlot = -1;
    while (this.#ids > 0 && taken < rows) {
      const slot = this.#oldest;
      const s = slot * ID;
      const keyAt = id[s + 4] as number;
      const key = this.#keys.toString("utf8", keyAt, keyAt + (id[s + 5] as number));
      const n = id[s + 2] as number;
      const ops = new Array<MembershipOp>(n);
      let r = id[s] as number;
      for (let i = 0; i < n; i++) {
        const at = r * ROW;
        const link = row[at + 3] as number;
        const texts = row[at + 4] as number;
        ops[i] = {
          key,
          op: (link & 1) === 1 ? "add" : "remove",
          segment: this.#texts[Math.floor(texts / TEXTS_MAX)] as string,
          expiresAt: row[at] as number,
          source: this.#texts[texts % TEXTS_MAX] as string,
          generation: row[at + 1] as number,
          minGeneration: row[at + 2] as number,
        };
        this.#free[this.#freeTop++] = r;
        r = link >> 1;
      }
      groups.set(key, ops);
      this.#unindex(slot);
      this.#oldest = (slot + 1) % this.capacity;
      this.#ids--;
      this.#rows -= n;
      taken += n;
    }
    if (this.#ids === 0) this.#keyTail = 0;
    return { groups, rows: taken };
  }

  /**
   * Where a new key of `length` bytes goes, or -1 when there is no room. The keys in use lie from the
   * oldest ID's to #keyTail, wrapped past the end of the buffer or not; a key never wraps itself.
   */
  #keyRoom(length: number): number {
    if (this.#ids === 0) return length <= this.#keys.length ? 0 : -1;
    const head = this.#id[this.#oldest * ID + 4] as number;
    const tail = this.#keyTail;
    if (tail > head) {
      if (tail + length <= this.#keys.length) return tail;
      return length <= head ? 0 : -1;
    }
    return tail + length <= head ? tail : -1;
  }

  /** Whether ID slot `slot` holds `key` (its hash matched already). */
  #keyIs(slot: number, key: string): boolean {
    const s = slot * ID;
    const at = this.#id[s + 4] as number;
    const length = this.#id[s + 5] as number;
    const bytes = this.#keys;
    // An ASCII key (every ID in practice) is compared in place; any other is decoded to compare.
    if (key.length === length) {
      let i = 0;
      while (i < length && key.charCodeAt(i) === bytes[at + i]) i++;
      if (i === length) return true;
      if (key.charCodeAt(i) < 0x80) return false;
    }
    return bytes.toString("utf8", at, at + length) === key;
  }

  /** Removes ID slot `slot` from the index, moving later entries of its probe run back (no tombstones). */
  #unindex(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let hole = (this.#id[slot * ID + 3] as number) & mask;
    while (table[2 * hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let j = (hole + 1) & mask; table[2 * j] !== 0; j = (j + 1) & mask) {
      const home = (table[2 * j + 1] as number) & mask;
      // The entry at j stays unless its home lies cyclically outside (hole, j]: then it moves into the hole.
      const stays = hole < j ? home > hole && home <= j : home > hole || home <= j;
      if (!stays) {
        table[2 * hole] = table[2 * j] as number;
        table[2 * hole + 1] = table[2 * j + 1] as number;
        hole = j;
      }
    }
    table[2 * hole] = 0;
  }

  #hashOf = (key: string): number => this.#seededHash(key);

  /** A seeded 32-bit hash of the key (murmur3's mixing per character): a file cannot aim IDs at one probe run. */
  #seededHash(key: string): number {
    let h = this.#seed;
    for (let i = 0; i < key.length; i++) {
      let k = Math.imul(key.charCodeAt(i), 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, 0x1b873593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    h ^= key.length;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The number of a segment or source in the table of texts; -1 when the table is full (see TEXTS_MAX). */
  #textOf(text: string): number {
    const known = this.#textNumber.get(text);
    if (known !== undefined) return known;
    if (this.#texts.length >= TEXTS_MAX) return -1;
    this.#textNumber.set(text, this.#texts.length);
    this.#texts.push(text);
    return this.#texts.length - 1;
  }
}
