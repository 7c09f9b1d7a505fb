// Bid request bodies of `audience loadtest`: OpenRTB templates whose user IDs are replaced, request by request, by
// known IDs from the user's file or by random IDs no store has seen.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KnownId } from "./ids-file.ts";

/** The samples shipped with the package: found from this file, in src/ or dist/ alike, as data/ is. */
export const DEFAULT_BODIES_DIR = fileURLToPath(new URL("../../openrtb-samples/", import.meta.url));

/** A template that cannot be used, or a bodies directory without any: the message names the file. */
export class BodiesError extends Error {}

/**
 * What goes into one ID place of a template: `bu` (user.buyeruid), `ifa` (device.ifa), `xu` (user.id, typed
 * `xu:<exchange>` by the service from the x-exchange header), `eid:<source>` (a uid of that source in user.eids or
 * user.ext.eids), `noise` (an ID the service ignores: device.ifa under device.lmt = 1, which is always random), or
 * `reqid` (the request's own id, unique per request).
 */
export type SlotKind = string;

export interface Template {
  readonly name: string;
  /** The template's JSON cut at its ID places: parts[i] + <value of slots[i]> + parts[i + 1] ... */
  readonly parts: readonly string[];
  readonly slots: readonly SlotKind[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const MARK = "@@loadtest-slot-";
const MARK_RE = /"@@loadtest-slot-(\d+)@@"/g;

/** Cuts a bid request at its ID places; null when it is not a JSON object. */
export function templateOf(name: string, request: unknown): Template | null {
  if (!isObj(request)) return null;
  const req = structuredClone(request);
  const kinds: SlotKind[] = [];
  const mark = (kind: SlotKind): string => `${MARK}${kinds.push(kind) - 1}@@`;
  req.id = mark("reqid");
  const user = isObj(req.user) ? req.user : null;
  const device = isObj(req.device) ? req.device : null;
  if (user !== null && typeof user.buyeruid === "string") user.buyeruid = mark("bu");
  if (user !== null && typeof user.id === "string") user.id = mark("xu");
  if (device !== null && typeof device.ifa === "string")
    device.ifa = mark(device.lmt === 1 ? "noise" : "ifa");
  const eidLists = [user?.eids, isObj(user?.ext) ? user.ext.eids : undefined];
  for (const eids of eidLists) {
    if (!Array.isArray(eids)) continue;
    for (const eid of eids) {
      if (!isObj(eid) || typeof eid.source !== "string" || !Array.isArray(eid.uids)) continue;
      for (const uid of eid.uids) {
        if (isObj(uid) && typeof uid.id === "string") uid.id = mark(`eid:${eid.source.toLowerCase()}`);
      }
    }
  }
  const text = JSON.stringify(req);
  const parts: string[] = [];
  const slots: SlotKind[] = [];
  let from = 0;
  for (const m of text.matchAll(MARK_RE)) {
    parts.push(text.slice(from, m.index));
    slots.push(kinds[Number(m[1])] as SlotKind);
    from = m.index + m[0].length;
  }
  parts.push(text.slice(from));
  return { name, parts, slots };
}

/** Every *.json file of `dir`, in name order, each one bid request. */
export function loadTemplates(dir: string): Template[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new BodiesError(`${dir}: not a directory`);
    names = readdirSync(dir)
      .filter((f) => f.endsWith(".json"))
      .sort();
  } catch (err) {
    if (err instanceof BodiesError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new BodiesError(`${dir}: ${code === "ENOENT" ? "no such directory" : (err as Error).message}`);
  }
  if (names.length === 0) throw new BodiesError(`${dir}: no *.json bid requests in it`);
  return names.map((name) => {
    const path = join(dir, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new BodiesError(`${path}: not JSON: ${(err as Error).message}`);
    }
    const t = templateOf(name, parsed);
    if (t === null) throw new BodiesError(`${path}: not a bid request (a JSON object)`);
    return t;
  });
}

/** xoshiro128** seeded through splitmix32: 32-bit outputs, the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const HEX = "0123456789abcdef";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** A random version-4 UUID (lower case): the shape of a buyeruid or an IFA. */
function randomUuid(next: () => number): string {
  let hex = "";
  for (let w = 0; w < 4; w++) {
    const v = next();
    for (let i = 28; i >= 0; i -= 4) hex += HEX[(v >>> i) & 15];
  }
  const variant = HEX[8 + (parseInt(hex[16] as string, 16) & 3)];
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20)}`;
}

/** 43 base64 characters and "=": the shape of a UID2 token's 32 bytes. */
function randomToken(next: () => number): string {
  let out = "";
  for (let i = 0; i < 43; i++) out += B64[next() & 63];
  return `${out}=`;
}

function randomIdOf(kind: SlotKind, next: () => number): string {
  return kind.startsWith("eid:") ? randomToken(next) : randomUuid(next);
}

export interface FactoryOptions {
  /** Share of requests (0..1) that carry only IDs never seen; ignored without known IDs (all are unknown). */
  readonly unknownShare: number;
  readonly seed: number;
}

export interface BuiltBody {
  readonly body: string;
  /** True when every ID in it is random. */
  readonly unknown: boolean;
  readonly template: number;
  /** The exchange of the known `xu` ID in user.id, for the x-exchange header; null when there is none. */
  readonly exchange: string | null;
}

/** The kind of slot a known ID of this type fills; null for types no bid request carries (hem, email). */
export function slotKindOf(type: string): SlotKind | null {
  if (type === "bu" || type === "ifa") return type;
  if (type.startsWith("xu:")) return "xu";
  if (type.startsWith("eid:")) return type;
  return null;
}

/**
 * Makes the request bodies of a run, one per call, the same sequence for the same templates, IDs and seed.
 * With known IDs, a request is unknown with probability `unknownShare`; a known one takes a template that has a
 * place for some kind of ID in the file and gets a known ID, drawn uniformly among those of its kind, in every
 * place of a kind the file has, and a random ID in the others. An unknown request gets random IDs everywhere.
 */
export class BodyFactory {
  readonly #templates: readonly Template[];
  /** Templates a request may use: all of them without known IDs, else those with a place for a known kind. */
  readonly eligible: readonly number[];
  /** Known IDs by slot kind, as JSON strings (escaped once); for `xu`, their exchanges alongside. */
  readonly #known = new Map<SlotKind, { json: string[]; exchange: (string | null)[] }>();
  /** Known IDs no template has a place for, by type (hem, email, an eid source no template carries). */
  readonly unused = new Map<string, number>();
  readonly #next: () => number;
  readonly #unknownBelow: number;
  readonly #seed: number;
  #n = 0;

  constructor(templates: readonly Template[], known: readonly KnownId[] | null, opts: FactoryOptions) {
    this.#templates = templates;
    this.#seed = opts.seed >>> 0;
    this.#next = prng(this.#seed);
    const carried = new Set(templates.flatMap((t) => t.slots));
    for (const k of known ?? []) {
      const kind = slotKindOf(k.type);
      if (kind === null || !carried.has(kind)) {
        this.unused.set(k.type, (this.unused.get(k.type) ?? 0) + 1);
        continue;
      }
      let list = this.#known.get(kind);
      if (list === undefined) {
        list = { json: [], exchange: [] };
        this.#known.set(kind, list);
      }
      list.json.push(JSON.stringify(k.id));
      list.exchange.push(kind === "xu" ? k.type.slice(3) : null);
    }
    const all = templates.map((_, i) => i);
    this.eligible =
      known === null ? all : all.filter((i) => templates[i]?.slots.some((s) => this.#known.has(s)));
    // Without known IDs every request is unknown; with them, `unknownShare` of them, drawn per request.
    this.#unknownBelow =
      known === null ? 2 ** 32 : Math.floor(Math.min(1, Math.max(0, opts.unknownShare)) * 2 ** 32);
  }

  /** Whether any known ID can be placed: false when the file had none a template carries. */
  get hasKnown(): boolean {
    return this.#known.size > 0;
  }

  next(): BuiltBody {
    const rand = this.#next;
    const n = this.#n++;
    const unknown = rand() < this.#unknownBelow;
    const template = this.eligible[rand() % this.eligible.length] as number;
    const t = this.#templates[template] as Template;
    let exchange: string | null = null;
    let body = t.parts[0] as string;
    for (let i = 0; i < t.slots.length; i++) {
      const kind = t.slots[i] as SlotKind;
      let value: string;
      const list = unknown ? undefined : this.#known.get(kind);
      if (kind === "reqid") value = `"lt-${this.#seed}-${n}"`;
      else if (list !== undefined) {
        const j = rand() % list.json.length;
        value = list.json[j] as string;
        if (kind === "xu") exchange = list.exchange[j] as string;
      } else value = `"${randomIdOf(kind, rand)}"`;
      body += value + (t.parts[i + 1] as string);
    }
    return { body, unknown, template, exchange };
  }
}
