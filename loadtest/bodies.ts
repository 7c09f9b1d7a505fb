// Bid request bodies: the OpenRTB samples as templates, their user IDs replaced by synthetic known or unknown users.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO_TCF_VENDOR_ID } from "../src/config.ts";
import type { Json } from "../src/json-fields.ts";
import { ReadWarnings } from "../src/openrtb/read-warnings.ts";
import { DEFAULT_PRIVACY_POLICY } from "../src/privacy/privacy-config.ts";
import { decideAccess, type PrivacyDecision } from "../src/privacy/privacy-gate.ts";
import { readPrivacySignals } from "../src/privacy/privacy-signals.ts";
import { type IdKind, KINDS, personOf, prng, rawId, segmentsOf, UID2_SOURCE } from "./users.ts";

/** The TCF vendor the bench's services run as (TCF_VENDOR_ID): the one the samples' TC strings consent to. */
export const BENCH_TCF_VENDOR_ID = String(DEMO_TCF_VENDOR_ID);

/** What the service's privacy gate allows for a request, under the bench's configuration. */
export function benchAccess(req: Json): PrivacyDecision {
  return decideAccess(readPrivacySignals(req, new ReadWarnings()), {
    ...DEFAULT_PRIVACY_POLICY,
    vendorId: DEMO_TCF_VENDOR_ID,
  });
}

type Obj = Record<string, unknown>;

/** One ID place in a template, and the kind of synthetic ID written there. */
interface Slot {
  readonly kind: IdKind;
  readonly set: (req: Obj, id: string) => void;
}

interface Template {
  readonly name: string;
  readonly text: string;
  readonly slots: readonly Slot[];
}

export interface Body {
  readonly bytes: Buffer;
  /**
   * Indices of the known (seeded) users whose segments the answer holds; empty for an unknown user, and
   * for a request whose consent signals withhold them (COPPA; a US opt-out, as no bench segment is
   * first-party).
   */
  readonly known: readonly number[];
  /** The privacy gate allows caps state for this request (not under COPPA). */
  readonly capsAllowed: boolean;
  /** Indices of the known users in the body, whatever the gate says. */
  readonly seeded: readonly number[];
}

export interface PoolSpec {
  readonly size: number;
  /** Known users are drawn uniformly from 0..knownUsers-1. */
  readonly knownUsers: number;
  /** Total seeded users: unknown IDs are drawn from users..users+unknownUsers-1, never seeded. */
  readonly users: number;
  readonly unknownUsers: number;
  /** Share of bodies whose IDs are all unknown. */
  readonly unknownShare: number;
  readonly seed: number;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const child = (o: Obj, key: string): Obj => (isObj(o[key]) ? o[key] : {});

/** The ID places of a sample: user.buyeruid, device.ifa (unless lmt=1), uidapi.com uids in user.eids/user.ext.eids. */
function slotsOf(sample: Obj): Slot[] {
  const slots: Slot[] = [];
  const user = child(sample, "user");
  const device = child(sample, "device");
  if (typeof user.buyeruid === "string") {
    slots.push({ kind: "bu", set: (r, id) => Object.assign(child(r, "user"), { buyeruid: id }) });
  }
  if (typeof device.ifa === "string" && device.lmt !== 1) {
    slots.push({ kind: "ifa", set: (r, id) => Object.assign(child(r, "device"), { ifa: id }) });
  }
  const eidPlaces: ((r: Obj) => unknown)[] = [
    (r) => child(r, "user").eids,
    (r) => child(child(r, "user"), "ext").eids,
  ];
  for (const get of eidPlaces) {
    const eids = get(sample);
    if (!Array.isArray(eids)) continue;
    eids.forEach((eid, e) => {
      if (!isObj(eid) || eid.source !== UID2_SOURCE || !Array.isArray(eid.uids)) return;
      eid.uids.forEach((_, u) => {
        slots.push({
          kind: "uid2",
          set: (r, id) => {
            const uids = ((get(r) as Obj[])[e] as Obj).uids as Obj[];
            (uids[u] as Obj).id = id;
          },
        });
      });
    });
  }
  return slots;
}

/** Every sample in dir; one without any replaceable ID gets a user.buyeruid so that it takes part too. */
export function loadTemplates(dir: string): Template[] {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  if (names.length === 0) throw new Error(`no OpenRTB samples (*.json) in ${dir}`);
  return names.map((name) => {
    const sample = JSON.parse(readFileSync(join(dir, name), "utf8")) as Obj;
    let slots = slotsOf(sample);
    if (slots.length === 0) {
      sample.user = { ...child(sample, "user"), buyeruid: "placeholder" };
      slots = slotsOf(sample);
    }
    return { name, text: JSON.stringify(sample), slots };
  });
}

/** A user index of the given kind, uniform in [from, from + range); range must be at least 3. */
function drawOfKind(next: () => number, kind: IdKind, from: number, range: number): number {
  const k = KINDS.indexOf(kind);
  for (;;) {
    let j = from + (next() % range);
    j -= ((j % 3) - k + 3) % 3;
    if (j < from) j += 3;
    if (j < from + range) return j;
  }
}

/** `size` bodies cycling through the templates; deterministic for a given spec. */
export function buildPool(templates: readonly Template[], spec: PoolSpec): Body[] {
  const next = prng(spec.seed);
  const out = new Array<Body>(spec.size);
  const threshold = Math.floor(spec.unknownShare * 0x1_0000_0000);
  for (let n = 0; n < spec.size; n++) {
    const t = templates[n % templates.length] as Template;
    const req = JSON.parse(t.text) as Obj;
    req.id = `bench-${spec.seed.toString(16)}-${n}`;
    const unknown = next() < threshold;
    const known: number[] = [];
    for (const slot of t.slots) {
      const i = unknown
        ? drawOfKind(next, slot.kind, spec.users, spec.unknownUsers)
        : drawOfKind(next, slot.kind, 0, spec.knownUsers);
      if (!unknown) known.push(i);
      slot.set(req, rawId(i));
    }
    out[n] = gated(req, known);
  }
  return out;
}

function gated(req: Obj, seeded: readonly number[]): Body {
  const access = benchAccess(req as Json);
  return {
    bytes: Buffer.from(JSON.stringify(req)),
    known: access.personal && access.thirdParties ? seeded : [],
    capsAllowed: access.useCaps,
    seeded,
  };
}

/**
 * The same bodies as requests where GDPR applies (regs.gdpr = 1), each carrying one of `tcStrings` in
 * user.consent: what the privacy gate costs when it has a TC string to check.
 */
export function withConsent(pool: readonly Body[], tcStrings: readonly string[]): Body[] {
  return pool.map((b, n) => {
    const req = JSON.parse(b.bytes.toString("utf8")) as Obj;
    req.regs = { ...child(req, "regs"), gdpr: 1 };
    req.user = { ...child(req, "user"), consent: tcStrings[n % tcStrings.length] };
    return gated(req, b.seeded);
  });
}

/**
 * The segments the service should answer for a body: the sorted union of its known users' segments, or,
 * where users are linked into persons ((g)), of their persons' segments.
 */
export function expectedSegments(body: Body, linked = false): string[] {
  const all = new Set<string>();
  for (const i of body.known) {
    for (const u of linked ? personOf(i) : [i]) for (const s of segmentsOf(u)) all.add(s);
  }
  return [...all].sort();
}
