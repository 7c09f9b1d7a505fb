import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Json } from "../../src/json-fields.ts";
import { ReadWarnings } from "../../src/openrtb/read-warnings.ts";
import {
  MALFORMED_STRING,
  type PrivacySignals,
  readPrivacySignals as readLeniently,
} from "../../src/privacy/privacy-signals.ts";

/** Reads as a bid request is read, expecting no warning. */
const readPrivacySignals = (body: Json): PrivacySignals => {
  const w = new ReadWarnings();
  const s = readLeniently(body, w);
  expect(w.list).toBeNull();
  return s;
};

import { CORPUS_PATH, type Corpus } from "../fixtures/consent/make-corpus.ts";
import { NO_SIGNALS } from "../helpers/privacy-signals.ts";

const corpus = JSON.parse(readFileSync(CORPUS_PATH, "utf8")) as Corpus;

describe("readPrivacySignals", () => {
  it("reads nothing from a request without signals", () => {
    expect(readPrivacySignals({ id: "r" })).toEqual(NO_SIGNALS);
    expect(readPrivacySignals({ id: "r", regs: {}, user: {}, device: {} })).toEqual(NO_SIGNALS);
  });

  it("reads the OpenRTB 2.6 places", () => {
    const body: Json = {
      id: "r",
      regs: { coppa: 1, gdpr: 1, us_privacy: "1YNN", gpp: "DBABLA~BVQqAAAAAgA", gpp_sid: [7, 8] },
      user: { consent: "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA" },
      device: { lmt: 1, ext: { atts: 2 } },
    };
    expect(readPrivacySignals(body)).toEqual({
      coppa: true,
      gdpr: 1,
      tcString: "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
      usPrivacy: "1YNN",
      gpp: "DBABLA~BVQqAAAAAgA",
      gppSid: [7, 8],
      lmt: true,
      ifa: false,
      atts: 2,
    });
  });

  it("reads the OpenRTB 2.5 extension places", () => {
    const body: Json = {
      id: "r",
      regs: { coppa: 0, ext: { gdpr: 0, us_privacy: "1YYN" } },
      user: { ext: { consent: "CO" } },
      device: { lmt: 0, ext: { atts: 3 } },
    };
    expect(readPrivacySignals(body)).toEqual({
      ...NO_SIGNALS,
      gdpr: 0,
      tcString: "CO",
      usPrivacy: "1YYN",
      atts: 3,
    });
  });

  it("notes whether an IFA was sent, which lmt and ATT withhold", () => {
    expect(
      readPrivacySignals({ id: "r", device: { ifa: "6d92e1a0-0000-4000-8000-000000000001", lmt: 1 } }).ifa,
    ).toBe(true);
    expect(readPrivacySignals({ id: "r", device: { lmt: 1 } }).ifa).toBe(false);
    expect(readPrivacySignals({ id: "r", device: { ifa: null } }).ifa).toBe(false);
  });

  it("prefers the 2.6 place when both are present", () => {
    const body: Json = {
      id: "r",
      regs: { gdpr: 0, us_privacy: "1NNN", ext: { gdpr: 1, us_privacy: "1YYN" } },
      user: { consent: "new", ext: { consent: "old" } },
    };
    expect(readPrivacySignals(body)).toMatchObject({ gdpr: 0, usPrivacy: "1NNN", tcString: "new" });
  });

  it("takes null as absent", () => {
    const body: Json = {
      id: "r",
      regs: { coppa: null, gdpr: null, us_privacy: null, gpp: null, gpp_sid: null, ext: null },
      user: { consent: null, ext: { consent: null } },
      device: { lmt: null, ext: { atts: null } },
    };
    expect(readPrivacySignals(body)).toEqual(NO_SIGNALS);
  });

  it("hands back the request's own gpp_sid array, not a copy", () => {
    const sid = [2, 6];
    expect(readPrivacySignals({ id: "r", regs: { gpp_sid: sid } }).gppSid).toBe(sid);
  });

  it("accepts any integer section ID (an unknown one is simply not acted on)", () => {
    expect(readPrivacySignals({ id: "r", regs: { gpp_sid: [-1, 0, 99] } }).gppSid).toEqual([-1, 0, 99]);
  });

  it.each<[Json, string, Partial<PrivacySignals>]>([
    [{ regs: "x" }, "regs", { coppa: true, gdpr: 1 }],
    [{ regs: { coppa: "1" } }, "regs.coppa", { coppa: true }],
    [{ regs: { coppa: 2 } }, "regs.coppa", { coppa: true }],
    [{ regs: { coppa: true } }, "regs.coppa", { coppa: true }],
    [{ regs: { gdpr: "1" } }, "regs.gdpr", { gdpr: 1 }],
    [{ regs: { gdpr: "0" } }, "regs.gdpr", { gdpr: 1 }],
    [{ regs: { ext: [] } }, "regs.ext", { gdpr: 1, usPrivacy: MALFORMED_STRING }],
    [{ regs: { gdpr: 0, us_privacy: "1YNN", ext: [] } }, "regs.ext", { gdpr: 0, usPrivacy: "1YNN" }],
    [{ regs: { ext: { gdpr: 1.5 } } }, "regs.ext.gdpr", { gdpr: 1 }],
    [{ regs: { gdpr: 0, ext: { gdpr: 1.5 } } }, "regs.ext.gdpr", { gdpr: 0 }],
    [{ regs: { us_privacy: 1 } }, "regs.us_privacy", { usPrivacy: MALFORMED_STRING }],
    [{ regs: { ext: { us_privacy: {} } } }, "regs.ext.us_privacy", { usPrivacy: MALFORMED_STRING }],
    [{ regs: { gpp: 7 } }, "regs.gpp", { gpp: MALFORMED_STRING }],
    [{ regs: { gpp: 7, gpp_sid: [7] } }, "regs.gpp", { gpp: MALFORMED_STRING, gppSid: [7] }],
    [{ regs: { gpp_sid: 7 } }, "regs.gpp_sid", { gpp: MALFORMED_STRING, gppSid: [0] }],
    [{ regs: { gpp_sid: "7,8" } }, "regs.gpp_sid", { gpp: MALFORMED_STRING, gppSid: [0] }],
    [
      { regs: { gpp: "DBABLA~BVQqAAAAAgA", gpp_sid: [7, "8"] } },
      "regs.gpp_sid",
      { gpp: MALFORMED_STRING, gppSid: [0] },
    ],
    [{ regs: { gpp_sid: [7.5] } }, "regs.gpp_sid", { gpp: MALFORMED_STRING, gppSid: [0] }],
    [{ user: 1 }, "user", {}],
    [{ user: { consent: 1 } }, "user.consent", { tcString: MALFORMED_STRING }],
    [{ user: { ext: "x" } }, "user.ext", {}],
    [{ user: { ext: { consent: ["x"] } } }, "user.ext.consent", { tcString: MALFORMED_STRING }],
    [{ device: [] }, "device", { lmt: true }],
    [{ device: { lmt: "1" } }, "device.lmt", { lmt: true }],
    [{ device: { lmt: "0" } }, "device.lmt", { lmt: true }],
    [{ device: { ext: 1 } }, "device.ext", { atts: 0 }],
    [{ device: { ext: { atts: 4 } } }, "device.ext.atts", { atts: 0 }],
    [{ device: { ext: { atts: "3" } } }, "device.ext.atts", { atts: 0 }],
    [{ device: { ifa: 7 } }, "device.ifa", { ifa: false }],
  ])("warns %j naming %s, and reads it as the strictest value it could mean", (part, field, closed) => {
    const w = new ReadWarnings();
    expect(readLeniently({ id: "r", ...part }, w)).toEqual({ ...NO_SIGNALS, ...closed });
    expect(w.list).toEqual([{ field, code: "AUD_ERR_BAD_FIELD" }]);
  });

  it("reads every corpus request without throwing", () => {
    for (const c of corpus.cases) expect(() => readPrivacySignals(c.request), c.name).not.toThrow();
  });
});

describe("log redaction", () => {
  it("hashes the ID of an admin user path and every Redis key's ID, and drops queries", async () => {
    const { idHashPrefix, redactMessage, redactPath } = await import("../../src/privacy/log-redaction.ts");
    const h = idHashPrefix("jane@example.com");
    expect(h).toMatch(/^[0-9a-f]{8}$/);
    expect(redactPath("/v1/admin/users/email/jane@example.com")).toBe(`/v1/admin/users/email/#${h}`);
    expect(redactPath("/v1/events/imp?type=bu&id=secret")).toBe("/v1/events/imp");
    const m = redactMessage("AUD_ERR_CODEC unsupported profile format at p:{bu:cookie-9}");
    expect(m).not.toContain("cookie-9");
    expect(m).toBe(`AUD_ERR_CODEC unsupported profile format at p:{#${idHashPrefix("bu:cookie-9")}}`);
  });
});
