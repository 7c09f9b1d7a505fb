// The privacy policy from environment variables. PRIVACY_CONFIG_SPEC has the shape of src/config.ts
// CONFIG_SPEC entries (env, schema, doc, defaultText, secret) so it can be merged into it as it is;
// until then parsePrivacyPolicy reads the same variables with the same rules and messages.
import { z } from "zod";
import { boolFlag, parseVars, spec, type VarSpec } from "../config-spec.ts";
import { GPP_US_SECTION_NAMES } from "./gpp-sections.ts";

export type GppStateMode = "enforce" | "ignore";

export interface PrivacyPolicy {
  /** Our TCF vendor ID (TCF_VENDOR_ID); undefined: GDPR requests never have our consent. */
  readonly vendorId: number | undefined;
  /** TCF purposes that must all have a legal basis for personal use (TCF_REQUIRED_PURPOSES). */
  readonly requiredPurposes: readonly number[];
  /** A purpose may rest on legitimate interest instead of consent where TCF allows it. */
  readonly allowLegitimateInterest: boolean;
  /** On a US opt-out of sale/sharing, first-party segments still flow (false: nothing personal does). */
  readonly firstPartyOnOptOut: boolean;
  /** Per GPP US section: enforce (the default for a section not listed) or ignore its opt-outs. */
  readonly gppStates: Readonly<Record<string, GppStateMode>>;
}

export const DEFAULT_PRIVACY_POLICY: PrivacyPolicy = Object.freeze({
  vendorId: undefined,
  requiredPurposes: Object.freeze([1, 3, 4]),
  allowLegitimateInterest: false,
  firstPartyOnOptOut: true,
  gppStates: Object.freeze({}),
});

const vendorId = z.coerce
  .number({ invalid_type_error: "must be a number" })
  .int("must be a whole number")
  .min(1, "must be at least 1")
  .max(65535, "must be at most 65535")
  .optional();

const requiredPurposes = z
  .string()
  .default("1,3,4")
  .transform((raw, ctx): readonly number[] => {
    const out = new Set<number>();
    for (const entry of raw.split(",")) {
      const t = entry.trim();
      const p = /^\d{1,2}$/.test(t) ? Number(t) : Number.NaN;
      if (p >= 1 && p <= 11) out.add(p);
      else ctx.addIssue({ code: z.ZodIssueCode.custom, message: `'${t}' is not a TCF purpose (1 to 11)` });
    }
    return Object.freeze([...out].sort((a, b) => a - b));
  });

const gppStates = z
  .string()
  .default("")
  .transform((raw, ctx): Readonly<Record<string, GppStateMode>> => {
    const out: Record<string, GppStateMode> = {};
    if (raw.trim() === "") return Object.freeze(out);
    for (const entry of raw.split(",")) {
      const m = /^\s*([A-Za-z0-9]+)\s*=\s*([A-Za-z]+)\s*$/.exec(entry);
      const name = m?.[1]?.toLowerCase();
      const mode = m?.[2]?.toLowerCase();
      if (name === undefined || mode === undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: `entry '${entry.trim()}' must be <section>=enforce or <section>=ignore`,
        });
      } else if (!GPP_US_SECTION_NAMES.includes(name)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: `unknown GPP section '${name}' (valid: ${GPP_US_SECTION_NAMES.join(", ")})`,
        });
      } else if (mode !== "enforce" && mode !== "ignore") {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `'${name}' must be enforce or ignore` });
      } else if (Object.hasOwn(out, name)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `section '${name}' is listed twice` });
      } else out[name] = mode;
    }
    return Object.freeze(out);
  });

/** The privacy variables, as CONFIG_SPEC entries. */
export const PRIVACY_CONFIG_SPEC = {
  tcfVendorId: spec(
    "TCF_VENDOR_ID",
    vendorId,
    "Our vendor ID in the IAB TCF Global Vendor List (1 to 65535). Unset: a request where GDPR applies never has our consent, so nothing personal is used for it (the embedded demo, with no REDIS_URL, uses 1001, the vendor its samples' consent strings name).",
  ),
  tcfRequiredPurposes: spec(
    "TCF_REQUIRED_PURPOSES",
    requiredPurposes,
    "Comma-separated TCF purposes (1 to 11) that must all have a legal basis in the TC string, with our vendor consent, before personal data is used where GDPR applies.",
    "1,3,4",
  ),
  tcfAllowLegitimateInterest: spec(
    "TCF_ALLOW_LEGITIMATE_INTEREST",
    boolFlag(false),
    "Accept legitimate interest (purpose and vendor LI signals) instead of consent for a required purpose; never for purposes 1 and 3 to 6, which TCF v2.2 allows on consent only.",
    "false",
  ),
  firstPartyOnOptOut: spec(
    "FIRST_PARTY_ON_OPTOUT",
    boolFlag(true),
    "On a US opt-out of sale, sharing or targeted advertising (US Privacy string or GPP), still use first-party segments; false: use nothing personal.",
    "true",
  ),
  gppStates: spec(
    "GPP_STATES",
    gppStates,
    "Per GPP US section, `enforce` or `ignore` its opt-outs: comma-separated `<section>=<mode>` (e.g. `usca=enforce,usva=ignore`), sections uspv1, usnat and the state ones (usca, usva, usco, ...). A section not listed is enforced.",
    "",
  ),
} as const;

type Spec = typeof PRIVACY_CONFIG_SPEC;
/** The parsed values, keyed as in PRIVACY_CONFIG_SPEC (and so as in Config once merged). */
export type PrivacyConfig = { readonly [K in keyof Spec]: Spec[K] extends VarSpec<infer T> ? T : never };

/** The policy from parsed values; takes the whole Config too once PRIVACY_CONFIG_SPEC is merged into it. */
export function privacyPolicyFromConfig(c: PrivacyConfig): PrivacyPolicy {
  return Object.freeze({
    vendorId: c.tcfVendorId,
    requiredPurposes: c.tcfRequiredPurposes,
    allowLegitimateInterest: c.tcfAllowLegitimateInterest,
    firstPartyOnOptOut: c.firstPartyOnOptOut,
    gppStates: c.gppStates,
  });
}

/**
 * Reads the privacy variables with loadConfig's rules (blank is unset; each problem names its variable).
 * A variable with a problem takes its default in the returned policy.
 */
export function parsePrivacyPolicy(env: Readonly<Record<string, string | undefined>> = process.env): {
  policy: PrivacyPolicy;
  problems: string[];
} {
  const { values, problems } = parseVars(PRIVACY_CONFIG_SPEC, env);
  for (const [key, s] of Object.entries(PRIVACY_CONFIG_SPEC) as [string, VarSpec<unknown>][]) {
    if (!(key in values)) values[key] = s.schema.parse(undefined);
  }
  return { policy: privacyPolicyFromConfig(values as PrivacyConfig), problems };
}
