import { readFileSync } from "node:fs";
import { Sections } from "@iabgpp/cmpapi";
import { TCString } from "@iabtechlabtcf/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ReadWarnings } from "../../src/openrtb/read-warnings.ts";
import {
  createConsentDecoder,
  decodeGppString,
  decodeTcfString,
  type GppConsent,
  hasVendor,
  MAX_GPP_STRING_LENGTH,
  MAX_TC_STRING_LENGTH,
  type TcfConsent,
} from "../../src/privacy/consent-decoder.ts";
import { GPP_US_SECTIONS } from "../../src/privacy/gpp-sections.ts";
import { DEFAULT_PRIVACY_POLICY, type PrivacyPolicy } from "../../src/privacy/privacy-config.ts";
import { decideAccess, readUsp } from "../../src/privacy/privacy-gate.ts";
import { type PrivacySignals, readPrivacySignals } from "../../src/privacy/privacy-signals.ts";
import {
  buildCorpus,
  CHECKED_VENDOR_IDS,
  CORPUS_PATH,
  type Corpus,
  VENDOR_ID,
} from "../fixtures/consent/make-corpus.ts";
import { NO_SIGNALS } from "../helpers/privacy-signals.ts";

const corpus = JSON.parse(readFileSync(CORPUS_PATH, "utf8")) as Corpus;

const POLICY: PrivacyPolicy = { ...DEFAULT_PRIVACY_POLICY, vendorId: VENDOR_ID };

/** The test policy with a case's overrides (JSON has no undefined: null stands for it). */
function policyFor(overrides: Record<string, unknown> | undefined): PrivacyPolicy {
  const out: Record<string, unknown> = { ...POLICY };
  for (const [k, v] of Object.entries(overrides ?? {})) out[k] = v === null ? undefined : v;
  return out as unknown as PrivacyPolicy;
}

const purposes = (mask: number) =>
  Array.from({ length: 24 }, (_, i) => i + 1).filter((p) => mask & (1 << (p - 1)));
const vendors = (bits: Uint8Array) => CHECKED_VENDOR_IDS.filter((id) => hasVendor(bits, id));

function summary(c: TcfConsent) {
  return {
    purposeConsents: purposes(c.purposeConsents),
    purposeLi: purposes(c.purposeLegitimateInterests),
    vendorConsents: vendors(c.vendorConsents),
    vendorLi: vendors(c.vendorLegitimateInterests),
  };
}

const signals = (over: Partial<PrivacySignals>): PrivacySignals => ({ ...NO_SIGNALS, ...over });

describe("consent corpus", () => {
  it("is in step with its generator", () => {
    expect(corpus).toEqual(buildCorpus());
  });

  it("has each kind of string the tests need", () => {
    expect(Object.keys(corpus.tcf).length).toBeGreaterThanOrEqual(10);
    expect(Object.keys(corpus.gpp).length).toBeGreaterThanOrEqual(10);
    expect(corpus.cases.length).toBeGreaterThanOrEqual(60);
  });
});

describe("decodeTcfString", () => {
  it.each(Object.entries(corpus.tcf))("%s", (_name, entry) => {
    const got = decodeTcfString(entry.string);
    if (entry.decoded === undefined) expect(got).toBeUndefined();
    else {
      expect(got).toBeDefined();
      expect(summary(got as TcfConsent)).toEqual(entry.decoded);
    }
  });
});

describe("decodeGppString", () => {
  it.each(Object.entries(corpus.gpp))("%s", (_name, entry) => {
    const got = decodeGppString(entry.string);
    if (entry.decoded === undefined) expect(got).toBeUndefined();
    else {
      expect(got).toBeDefined();
      const g = got as GppConsent;
      expect({ sectionIds: g.sectionIds, optedOut: g.optedOut, tcfEuV2: g.tcfEuV2 !== undefined }).toEqual(
        entry.decoded,
      );
    }
  });

  it("hands out the tcfeuv2 section as a TC string that decodes to the one it was made from", () => {
    const g = decodeGppString(corpus.gpp.tcfFullUsnatNone?.string ?? "");
    const tc = decodeTcfString(g?.tcfEuV2 ?? "");
    expect(tc && summary(tc)).toEqual(corpus.tcf.full?.decoded);
  });

  it("knows the GPP library's US section IDs", () => {
    const lib = new Map([...Sections.SECTION_ID_NAME_MAP].filter(([, name]) => name.startsWith("us")));
    expect(new Map(GPP_US_SECTIONS)).toEqual(lib);
  });
});

describe("readUsp", () => {
  it.each(Object.entries(corpus.usp))("%s", (_name, u) => {
    // The empty string is no signal before it is read (decideAccess); read, it is malformed.
    const want = u.string === "" ? "bad" : u.read === "optOut" ? "optout" : u.read === "bad" ? "bad" : "none";
    expect(readUsp(u.string)).toBe(want);
  });

  it("reads every 4-char string of '1' and Y, N, - by the specification, and nothing else as valid", () => {
    const flags = ["Y", "N", "-"];
    let valid = 0;
    for (const a of flags)
      for (const b of flags)
        for (const c of flags) {
          expect(readUsp(`1${a}${b}${c}`)).toBe(b === "Y" ? "optout" : "none");
          expect(readUsp(`1${a}${b.toLowerCase()}${c}`)).toBe(b === "-" ? "none" : "bad");
          valid++;
        }
    expect(valid).toBe(27);
    expect(readUsp("1-y-")).toBe("bad");
    expect(readUsp("1 Y ")).toBe("bad");
  });
});

describe("decideAccess on the corpus cases", () => {
  const decoder = createConsentDecoder({ maxEntries: 1000 });
  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const s = readPrivacySignals(c.request, new ReadWarnings());
    const policy = policyFor(c.policy);
    expect(decideAccess(s, policy, decoder)).toEqual(c.expect);
    // The same answer from a cold decoder, from the cache, and from the shared default decoder.
    expect(decideAccess(s, policy, createConsentDecoder())).toEqual(c.expect);
    expect(decideAccess(s, policy, decoder)).toEqual(c.expect);
    expect(decideAccess(s, policy)).toEqual(c.expect);
  });
});

describe("decideAccess never throws", () => {
  // A small deterministic PRNG (mulberry32) so failures reproduce.
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!";

  it("on mutated corpus strings, and denies whatever does not decode", () => {
    const next = rng(42);
    const decoder = createConsentDecoder();
    const sources = [...Object.values(corpus.tcf), ...Object.values(corpus.gpp)].map((e) => e.string);
    for (let n = 0; n < 600; n++) {
      const base = sources[n % sources.length] as string;
      const chars = [...base];
      const edits = 1 + Math.floor(next() * 3);
      for (let e = 0; e < edits && chars.length > 0; e++) {
        const at = Math.floor(next() * chars.length);
        const op = next();
        if (op < 0.4) chars[at] = ALPHABET[Math.floor(next() * ALPHABET.length)] as string;
        else if (op < 0.7) chars.splice(at, 1);
        else chars.length = at;
      }
      const s = chars.join("");
      const tcf = decideAccess(signals({ gdpr: 1, tcString: s }), POLICY, decoder);
      if (decodeTcfString(s) === undefined) expect(tcf.reasons).toEqual(["gdpr_bad_consent"]);
      const gpp = decideAccess(signals({ gpp: s, gppSid: [2, 6, 7, 8, 9, 10] }), POLICY, decoder);
      if (decodeGppString(s) === undefined) expect(gpp.thirdParties).toBe(false);
      for (const d of [tcf, gpp]) {
        expect(typeof d.personal).toBe("boolean");
        if (!d.personal) expect(d.thirdParties).toBe(false);
      }
    }
  });

  it("when the library itself throws something odd", () => {
    const decoder = createConsentDecoder({
      decodeTcf: () => decodeTcfString("x"),
      decodeGpp: () => decodeGppString("DBABLA~"),
    });
    const d = decideAccess(signals({ gdpr: 1, tcString: "a", gpp: "DBb", gppSid: [7] }), POLICY, decoder);
    expect(d).toEqual({
      personal: false,
      thirdParties: false,
      useIfa: false,
      useCaps: false,
      reasons: ["gdpr_bad_consent", "gpp_bad_string"],
    });
  });
});

describe("decideAccess details", () => {
  const full = corpus.tcf.full?.string as string;

  it("ignores an empty GPP string, and gpp_sid without a GPP string", () => {
    expect(decideAccess(signals({ gpp: "", gppSid: [7] }), POLICY).reasons).toEqual([]);
    expect(decideAccess(signals({ gppSid: [7] }), POLICY).reasons).toEqual([]);
    expect(decideAccess(signals({ gpp: "garbage", gppSid: [] }), POLICY).reasons).toEqual([]);
  });

  it("takes an empty user.consent as missing", () => {
    expect(decideAccess(signals({ gdpr: 1, tcString: "" }), POLICY).reasons).toEqual(["gdpr_bad_consent"]);
  });

  it("returns a fresh reasons array each time", () => {
    const a = decideAccess(signals({}), POLICY);
    const b = decideAccess(signals({}), POLICY);
    a.reasons.push("lmt");
    expect(b.reasons).toEqual([]);
  });

  it("an ignored uspv1 GPP section is skipped like a state", () => {
    const uspv1 = corpus.gpp.uspv1OptOut?.string as string;
    const policy = { ...POLICY, gppStates: { uspv1: "ignore" as const } };
    expect(decideAccess(signals({ gpp: uspv1, gppSid: [6] }), policy).reasons).toEqual([]);
    expect(decideAccess(signals({ gpp: uspv1, gppSid: [6] }), POLICY).reasons).toEqual(["gpp_optout"]);
  });

  it("needs vendor consent for purposes with consent, vendor LI for purposes on LI", () => {
    const li = corpus.tcf.consentP1LiRest?.string as string;
    const policy = { ...POLICY, allowLegitimateInterest: true, requiredPurposes: [1, 2, 7] };
    expect(decideAccess(signals({ gdpr: 1, tcString: li }), policy).personal).toBe(true);
    // Vendor 2002 has the same signals; vendor 3 none.
    expect(decideAccess(signals({ gdpr: 1, tcString: li }), { ...policy, vendorId: 2002 }).personal).toBe(
      true,
    );
    expect(decideAccess(signals({ gdpr: 1, tcString: li }), { ...policy, vendorId: 3 }).personal).toBe(false);
    expect(decideAccess(signals({ gdpr: 1, tcString: full }), { ...POLICY, vendorId: 65535 }).personal).toBe(
      false,
    );
  });
});

describe("consent decoding cache", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  function counting() {
    const calls = { tcf: [] as string[], gpp: [] as string[] };
    const decoder = createConsentDecoder({
      maxEntries: 2,
      decodeTcf: (s) => {
        calls.tcf.push(s);
        return decodeTcfString(s);
      },
      decodeGpp: (s) => {
        calls.gpp.push(s);
        return decodeGppString(s);
      },
    });
    return { calls, decoder };
  }

  const tcA = corpus.tcf.full?.string as string;
  const tcB = corpus.tcf.missingVendor?.string as string;
  const tcC = corpus.tcf.allPurposes?.string as string;
  const gppA = corpus.gpp.usnatSale?.string as string;

  it("decodes a string once however often it is seen", () => {
    const { calls, decoder } = counting();
    const s = signals({ gdpr: 1, tcString: tcA, gpp: gppA, gppSid: [7] });
    for (let i = 0; i < 5; i++) decideAccess(s, POLICY, decoder);
    // Equal strings that are distinct objects (as each parsed request's are) hit the same entry.
    decideAccess({ ...s, tcString: `${tcA} `.trim(), gpp: `${gppA} `.trim() }, POLICY, decoder);
    expect(calls).toEqual({ tcf: [tcA], gpp: [gppA] });
  });

  it("remembers undecodable strings too", () => {
    const { calls, decoder } = counting();
    for (let i = 0; i < 3; i++) {
      expect(decoder.tcf("garbage!")).toBeUndefined();
      expect(decoder.gpp("garbage")).toBeUndefined();
    }
    expect(calls).toEqual({ tcf: ["garbage!"], gpp: ["garbage"] });
  });

  it("is bounded: the least recently used string is decoded again", () => {
    const { calls, decoder } = counting();
    decoder.tcf(tcA);
    decoder.tcf(tcB);
    decoder.tcf(tcA); // hit; tcB is now the least recently used
    decoder.tcf(tcC); // evicts tcB
    decoder.tcf(tcA); // hit
    decoder.tcf(tcB); // decoded again
    expect(calls.tcf).toEqual([tcA, tcB, tcC, tcB]);
  });

  it("keeps TC and GPP strings apart", () => {
    const { calls, decoder } = counting();
    decoder.tcf(tcA);
    decoder.gpp(tcA);
    expect(calls).toEqual({ tcf: [tcA], gpp: [tcA] });
  });

  it("does not store a string larger than its byte bound, but still decodes it", () => {
    const calls: string[] = [];
    const decoder = createConsentDecoder({
      maxBytes: 200,
      decodeTcf: (s) => {
        calls.push(s);
        return decodeTcfString(s);
      },
    });
    expect(decoder.tcf(tcA)).toBeDefined();
    expect(decoder.tcf(tcA)).toBeDefined();
    expect(calls).toEqual([tcA, tcA]);
  });

  it("calls the TCF library once per string through the default decoders", () => {
    const spy = vi.spyOn(TCString, "decode");
    const decoder = createConsentDecoder();
    const s = signals({ gdpr: 1, tcString: tcC });
    for (let i = 0; i < 4; i++) expect(decideAccess(s, POLICY, decoder).personal).toBe(true);
    expect(spy).toHaveBeenCalledTimes(1);
  });
});

describe("consent strings longer than any real one", () => {
  const full = corpus.tcf.full?.string as string;
  const usnatSale = corpus.gpp.usnatSale?.string as string;
  /** 60 KB of base64url garbage after a TC string's first character, as the attack sends it. */
  const garbage = `C${"QLS0dAQLS0dAEsACBENBQFgALAAAAAAAAYgPpQAgH0gfSAAAAAA".repeat(1_200)}`.slice(0, 60_000);

  /** A decoder whose decodes are counted (the real ones behind). */
  function counting(maxEntries = 1_000) {
    const calls = { tcf: 0, gpp: 0 };
    const decoder = createConsentDecoder({
      maxEntries,
      decodeTcf: (s) => {
        calls.tcf++;
        return decodeTcfString(s);
      },
      decodeGpp: (s) => {
        calls.gpp++;
        return decodeGppString(s);
      },
    });
    return { decoder, calls };
  }

  it("caps TC strings at 4096 and GPP strings at 8192 characters", () => {
    expect(MAX_TC_STRING_LENGTH).toBe(4_096);
    expect(MAX_GPP_STRING_LENGTH).toBe(8_192);
  });

  it("a 60 KB TC string is malformed (gdpr_bad_consent, as any undecodable one) without being decoded", () => {
    const { decoder, calls } = counting();
    for (let i = 0; i < 3; i++) {
      expect(decideAccess(signals({ gdpr: 1, tcString: garbage }), POLICY, decoder)).toEqual({
        personal: false,
        thirdParties: false,
        useIfa: false,
        useCaps: false,
        reasons: ["gdpr_bad_consent"],
      });
    }
    expect(calls.tcf).toBe(0);
    // A consenting string padded past the cap is refused too, where the library would read its prefix.
    const padded = full + "A".repeat(MAX_TC_STRING_LENGTH + 1 - full.length);
    expect(decodeTcfString(padded)).toBeDefined();
    expect(decideAccess(signals({ gdpr: 1, tcString: padded }), POLICY, decoder).reasons).toEqual([
      "gdpr_bad_consent",
    ]);
    expect(calls.tcf).toBe(0);
    // At the cap it is decoded as before.
    const atCap = full + "A".repeat(MAX_TC_STRING_LENGTH - full.length);
    expect(decideAccess(signals({ gdpr: 1, tcString: atCap }), POLICY, decoder).reasons).toEqual([]);
    expect(calls.tcf).toBe(1);
  });

  it("a GPP string over the cap is gpp_bad_string without being decoded, and so is its tcfeuv2 section", () => {
    const { decoder, calls } = counting();
    const long = usnatSale + "A".repeat(MAX_GPP_STRING_LENGTH + 1 - usnatSale.length);
    expect(decideAccess(signals({ gpp: long, gppSid: [7] }), POLICY, decoder).reasons).toEqual([
      "gpp_bad_string",
    ]);
    expect(calls.gpp).toBe(0);
    // A GPP string under its cap whose TC string section is over the TC cap: the TC string is malformed.
    const tcfSection = `DBABMA~${garbage.slice(0, MAX_TC_STRING_LENGTH + 1)}`;
    expect(tcfSection.length).toBeLessThan(MAX_GPP_STRING_LENGTH);
    const d = decideAccess(signals({ gpp: tcfSection, gppSid: [2] }), POLICY, decoder);
    expect(calls.gpp).toBe(1);
    expect(d.reasons).toEqual(["gdpr_bad_consent"]);
    expect(calls.tcf).toBe(0);
  });

  it("is not remembered: it cannot push a real string out of the cache", () => {
    // One entry only: had the long string been stored, it would have evicted the real one.
    const { decoder, calls } = counting(1);
    decoder.tcf(full);
    expect(calls.tcf).toBe(1);
    for (let i = 0; i < 5; i++) expect(decoder.tcf(`${garbage}${i}`)).toBeUndefined();
    expect(decoder.tcf(full)).toBeDefined();
    expect(calls.tcf).toBe(1);
  });

  it("a US Privacy string of any other length than 4 is malformed: reported, and no opt-out", () => {
    expect(readUsp("1YYN")).toBe("optout");
    expect(readUsp(`1YYN${"Y".repeat(60_000)}`)).toBe("bad");
    expect(decideAccess(signals({ usPrivacy: `1YYN${"Y".repeat(60_000)}` }), POLICY)).toEqual({
      personal: true,
      thirdParties: true,
      useIfa: true,
      useCaps: true,
      reasons: ["usp_bad_string"],
    });
  });
});
