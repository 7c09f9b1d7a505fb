// Decodes TCF v2 TC strings (@iabtechlabtcf/core) and GPP strings (@iabgpp/cmpapi) into the few facts the
// privacy gate needs, behind bounded LRU caches keyed by the raw string: bidders see the same strings over
// and over, and one TCF decode costs tens of microseconds. Decoding never throws: an undecodable string
// is remembered as such (so a repeated bad string is not decoded again) and reported as undefined. A string
// longer than any real one is undecodable at once: neither decoded nor remembered.
import { GppModel } from "@iabgpp/cmpapi";
import { TCString } from "@iabtechlabtcf/core";
import { LRUCache } from "lru-cache";
import { GPP_TCFEUV2_ID, GPP_US_SECTION_NAME_BY_ID, GPP_USPV1_ID } from "./gpp-sections.ts";

/**
 * Longest TC string decoded. CMPs keep the TC string in the euconsent-v2 cookie, and a cookie holds at most
 * 4096 bytes (RFC 6265 §6.1, what browsers keep): real strings are a few hundred characters, under 2 KB with
 * every vendor and publisher restrictions. Decoding costs time in the length (a 60 KB string of garbage 5-8
 * ms, against 0.1 ms), so a longer one is malformed without being decoded.
 */
export const MAX_TC_STRING_LENGTH = 4_096;

/**
 * Longest GPP string decoded: a header and its sections, which may be a whole TC string (tcfeuv2) and the
 * US sections (tens of characters each); twice a TC string's cap leaves room for all of them.
 */
export const MAX_GPP_STRING_LENGTH = 8_192;

/** A set of vendor IDs as a bitset: bit (id & 7) of byte (id >> 3). */
export type VendorBits = Uint8Array;

/** What a TC string says, reduced to what the gate reads. */
export interface TcfConsent {
  /** Bit p-1 set: the user consented to purpose p (1..24). */
  readonly purposeConsents: number;
  /** Bit p-1 set: legitimate interest for purpose p was established and not objected to. */
  readonly purposeLegitimateInterests: number;
  readonly vendorConsents: VendorBits;
  readonly vendorLegitimateInterests: VendorBits;
}

/** What a GPP string says, reduced to what the gate reads. */
export interface GppConsent {
  /** Section IDs present in the string, in header order. */
  readonly sectionIds: readonly number[];
  /**
   * US sections (uspv1, usnat, states) whose user opted out: SaleOptOut, SharingOptOut or
   * TargetedAdvertisingOptOut = 1 (whichever the section has), or uspv1 OptOutSale = 'Y'.
   */
  readonly optedOut: readonly number[];
  /** The tcfeuv2 section's text, which is a TC string, when the string has one. */
  readonly tcfEuV2: string | undefined;
}

export function hasVendor(bits: VendorBits, id: number): boolean {
  const byte = bits[id >> 3];
  return byte !== undefined && (byte & (1 << (id & 7))) !== 0;
}

function toBits(vector: { readonly maxId: number; values(): IterableIterator<number> }): VendorBits {
  const bits = new Uint8Array((vector.maxId >> 3) + 1);
  for (const id of vector.values()) bits[id >> 3] = (bits[id >> 3] as number) | (1 << (id & 7));
  return bits;
}

function toMask(vector: { values(): IterableIterator<number> }): number {
  let mask = 0;
  for (const p of vector.values()) if (p >= 1 && p <= 24) mask |= 1 << (p - 1);
  return mask;
}

/** Decodes a TC string without caching; undefined when it is not a decodable TCF v2 string. */
export function decodeTcfString(tcString: string): TcfConsent | undefined {
  if (tcString === "") return undefined;
  try {
    const m = TCString.decode(tcString);
    if (Number(m.version) !== 2) return undefined;
    return {
      purposeConsents: toMask(m.purposeConsents),
      purposeLegitimateInterests: toMask(m.purposeLegitimateInterests),
      vendorConsents: toBits(m.vendorConsents),
      vendorLegitimateInterests: toBits(m.vendorLegitimateInterests),
    };
  } catch {
    // The library throws DecodingError, but also TypeError and RangeError on some garbage.
    return undefined;
  }
}

const OPT_OUT_FIELDS = ["SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut"] as const;

/** Decodes a GPP string without caching; undefined when it is not a decodable GPP v1 string. */
export function decodeGppString(gpp: string): GppConsent | undefined {
  // The library also takes a bare TC string ("C...") as a GPP string; regs.gpp must be a GPP string.
  if (!gpp.startsWith("DB")) return undefined;
  try {
    // GppModel decodes lazily: the constructor never throws, the first read does. Every US section is
    // read here, once, so a malformed section makes the whole string undecodable.
    const model = new GppModel(gpp);
    const sectionIds = model.getSectionIds() as number[];
    const optedOut: number[] = [];
    let tcfEuV2: string | undefined;
    for (let i = 0; i < sectionIds.length; i++) {
      const id = sectionIds[i] as number;
      if (id === GPP_TCFEUV2_ID) {
        // The section text is the TC string itself; the header's order is the order of the parts.
        tcfEuV2 = gpp.split("~")[i + 1];
        continue;
      }
      const name = GPP_US_SECTION_NAME_BY_ID[id];
      if (name === undefined) continue;
      if (id === GPP_USPV1_ID) {
        if (String(model.getFieldValue(name, "OptOutSale")).toUpperCase() === "Y") optedOut.push(id);
        continue;
      }
      let out = false;
      for (const field of OPT_OUT_FIELDS) {
        if (model.hasField(name, field) && model.getFieldValue(name, field) === 1) out = true;
      }
      if (out) optedOut.push(id);
    }
    return { sectionIds, optedOut, tcfEuV2 };
  } catch {
    return undefined;
  }
}

export interface ConsentDecoder {
  /** The decoded TC string, or undefined when it cannot be decoded. */
  tcf(tcString: string): TcfConsent | undefined;
  /** The decoded GPP string, or undefined when it cannot be decoded. */
  gpp(gppString: string): GppConsent | undefined;
}

export interface ConsentDecoderOptions {
  /** Most strings remembered, for TC and for GPP strings each. Default 10000. */
  readonly maxEntries?: number;
  /** Upper bound on the estimated bytes held, for TC and for GPP strings each. Default 16 MiB. */
  readonly maxBytes?: number;
  /** The uncached decoders (tests inject counting ones). */
  readonly decodeTcf?: (tcString: string) => TcfConsent | undefined;
  readonly decodeGpp?: (gppString: string) => GppConsent | undefined;
}

/** Stands for "undecodable" in a cache (lru-cache stores no nullish values). */
const BAD = Object.freeze({ bad: true });
type Cached<T> = T | typeof BAD;

function cached<T extends object>(
  decode: (s: string) => T | undefined,
  maxLength: number,
  maxEntries: number,
  maxBytes: number,
  valueBytes: (v: T) => number,
): (s: string) => T | undefined {
  const cache = new LRUCache<string, Cached<T>>({
    max: maxEntries,
    maxSize: maxBytes,
    // Keys are UTF-16 in V8 at worst; a string larger than maxBytes is decoded every time, never stored.
    sizeCalculation: (v, key) => 64 + key.length * 2 + (v === BAD ? 0 : valueBytes(v as T)),
  });
  return (s) => {
    // Over the cap: undecodable, and not remembered either, so that garbage cannot fill the cache.
    if (s.length > maxLength) return undefined;
    let v = cache.get(s);
    if (v === undefined) {
      v = decode(s) ?? BAD;
      cache.set(s, v);
    }
    return v === BAD ? undefined : (v as T);
  };
}

export function createConsentDecoder(opts: ConsentDecoderOptions = {}): ConsentDecoder {
  const maxEntries = opts.maxEntries ?? 10_000;
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const tcf = cached(
    opts.decodeTcf ?? decodeTcfString,
    MAX_TC_STRING_LENGTH,
    maxEntries,
    maxBytes,
    (v) => 96 + v.vendorConsents.byteLength + v.vendorLegitimateInterests.byteLength,
  );
  const gpp = cached(
    opts.decodeGpp ?? decodeGppString,
    MAX_GPP_STRING_LENGTH,
    maxEntries,
    maxBytes,
    (v) => 128 + (v.sectionIds.length + v.optedOut.length) * 8 + (v.tcfEuV2?.length ?? 0) * 2,
  );
  return { tcf, gpp };
}
