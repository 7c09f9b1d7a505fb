import { describe, expect, it } from "vitest";
import {
  DEFAULT_PRIVACY_POLICY,
  PRIVACY_CONFIG_SPEC,
  parsePrivacyPolicy,
} from "../../src/privacy/privacy-config.ts";

describe("parsePrivacyPolicy", () => {
  it("gives the documented defaults for an empty environment", () => {
    expect(parsePrivacyPolicy({})).toEqual({ policy: DEFAULT_PRIVACY_POLICY, problems: [] });
    expect(DEFAULT_PRIVACY_POLICY).toEqual({
      vendorId: undefined,
      requiredPurposes: [1, 3, 4],
      allowLegitimateInterest: false,
      firstPartyOnOptOut: true,
      gppStates: {},
    });
  });

  it("takes blank values as unset", () => {
    const env = {
      TCF_VENDOR_ID: " ",
      TCF_REQUIRED_PURPOSES: "",
      TCF_ALLOW_LEGITIMATE_INTEREST: "",
      FIRST_PARTY_ON_OPTOUT: " ",
      GPP_STATES: "",
    };
    expect(parsePrivacyPolicy(env)).toEqual({ policy: DEFAULT_PRIVACY_POLICY, problems: [] });
  });

  it("reads every variable", () => {
    const { policy, problems } = parsePrivacyPolicy({
      TCF_VENDOR_ID: "1001",
      TCF_REQUIRED_PURPOSES: " 4, 1,2 ,4",
      TCF_ALLOW_LEGITIMATE_INTEREST: "yes",
      FIRST_PARTY_ON_OPTOUT: "0",
      GPP_STATES: "usca=enforce, USVA = ignore,usnat=ignore",
    });
    expect(problems).toEqual([]);
    expect(policy).toEqual({
      vendorId: 1001,
      requiredPurposes: [1, 2, 4],
      allowLegitimateInterest: true,
      firstPartyOnOptOut: false,
      gppStates: { usca: "enforce", usva: "ignore", usnat: "ignore" },
    });
  });

  it("reports every problem at once, naming the variable, and keeps defaults for those", () => {
    const { policy, problems } = parsePrivacyPolicy({
      TCF_VENDOR_ID: "0",
      TCF_REQUIRED_PURPOSES: "1,12,x",
      TCF_ALLOW_LEGITIMATE_INTEREST: "maybe",
      FIRST_PARTY_ON_OPTOUT: "on",
      GPP_STATES: "usca=enforce,usxx=ignore",
    });
    expect(policy).toEqual(DEFAULT_PRIVACY_POLICY);
    expect(problems).toEqual([
      "TCF_VENDOR_ID must be at least 1, got '0'",
      "TCF_REQUIRED_PURPOSES '12' is not a TCF purpose (1 to 11); 'x' is not a TCF purpose (1 to 11), got '1,12,x'",
      "TCF_ALLOW_LEGITIMATE_INTEREST must be true or false, got 'maybe'",
      "FIRST_PARTY_ON_OPTOUT must be true or false, got 'on'",
      expect.stringMatching(
        /^GPP_STATES unknown GPP section 'usxx' \(valid: uspv1, usnat, usca, usva, usco, usut, usct, .*usri\), got 'usca=enforce,usxx=ignore'$/,
      ),
    ]);
  });

  it.each([
    ["TCF_VENDOR_ID", "65536", "must be at most 65535"],
    ["TCF_VENDOR_ID", "12.5", "must be a whole number"],
    ["TCF_VENDOR_ID", "abc", "must be a number"],
    ["TCF_REQUIRED_PURPOSES", "1,,3", "'' is not a TCF purpose (1 to 11)"],
    ["TCF_REQUIRED_PURPOSES", "0", "'0' is not a TCF purpose (1 to 11)"],
    ["GPP_STATES", "usca", "entry 'usca' must be <section>=enforce or <section>=ignore"],
    ["GPP_STATES", "usca=off", "'usca' must be enforce or ignore"],
    ["GPP_STATES", "usca=ignore,usca=enforce", "section 'usca' is listed twice"],
    ["GPP_STATES", "tcfeuv2=ignore", "unknown GPP section 'tcfeuv2'"],
  ])("%s=%s: %s", (env, value, message) => {
    const { problems } = parsePrivacyPolicy({ [env]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`${env} ${message}`);
  });
});

describe("PRIVACY_CONFIG_SPEC", () => {
  it("has CONFIG_SPEC's entry shape, with a doc for every variable", () => {
    for (const s of Object.values(PRIVACY_CONFIG_SPEC)) {
      expect(Object.keys(s).sort()).toEqual(["defaultText", "doc", "env", "schema", "secret"]);
      expect(s.env).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(s.doc.length).toBeGreaterThan(20);
      expect(s.secret).toBe(false);
    }
  });

  it("states each default as the text that parses to it", () => {
    for (const s of Object.values(PRIVACY_CONFIG_SPEC) as {
      schema: { parse(v: unknown): unknown };
      defaultText?: string;
    }[]) {
      expect(s.schema.parse(s.defaultText)).toEqual(s.schema.parse(undefined));
    }
  });
});
