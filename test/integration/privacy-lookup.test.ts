// The privacy gate through /v1/lookup on a real redis-server: every case of the consent corpus (real-format
// TCF v2.2, GPP and US Privacy strings, malformed ones too) asserting exactly which segments come back, which
// reasons are given and whether caps state is handed out; sensitive segments never returned, whatever the
// consent and the request form.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { getJson, postJson, startService, type TestService } from "../helpers/service.ts";

interface CorpusCase {
  name: string;
  /** Changes to the test policy (vendor 1001, purposes 1,3,4, no LI, first party on opt-out, all enforced). */
  policy?: Record<string, unknown> | null;
  request: Record<string, unknown>;
  expect: { personal: boolean; thirdParties: boolean; useIfa: boolean; useCaps: boolean; reasons: string[] };
}
const corpus = JSON.parse(
  readFileSync(new URL("../fixtures/consent/corpus.json", import.meta.url), "utf8"),
) as {
  vendorId: number;
  cases: CorpusCase[];
};

const ADMIN = "privacy-admin-token-000001";
/** LOOKUP_CALLERS: a bidder that may receive the partner's second-party data, and one that may not. */
const PARTNER_KEY = "privacy-partner-bidder-key-01";
const OTHER_KEY = "privacy-other-bidder-key-0001";
const LOOKUP_CALLERS = `${PARTNER_KEY}=partner-dsp:partner|*,${OTHER_KEY}=other-dsp:*`;
const AS_PARTNER = { authorization: `Bearer ${PARTNER_KEY}` };
const IFA = "3f1e2d4c-5b6a-4978-8a1b-2c3d4e5f6a7b";
const BUYER = "privacy-user-1";
// bu: first-party 101, second-party 301, third-party 201, sensitive 901 (and 902, child of sensitive 900).
// ifa: first-party 102, third-party 202.
const BU_FIRST = ["101"];
const BU_OTHER = ["201", "301"];
const IFA_FIRST = ["102"];
const IFA_OTHER = ["202"];

let redis: RedisServer;
let svc: TestService;
/** One service per policy of the corpus, on the same Redis, started when first needed. */
const byPolicy = new Map<string, TestService>();

/** The environment that configures a corpus policy. */
function policyEnv(policy: Record<string, unknown> | null | undefined): Record<string, string> {
  const env: Record<string, string> = { TCF_VENDOR_ID: String(corpus.vendorId) };
  if (policy == null) return env;
  if ("vendorId" in policy) env.TCF_VENDOR_ID = policy.vendorId === null ? "" : String(policy.vendorId);
  if ("requiredPurposes" in policy)
    env.TCF_REQUIRED_PURPOSES = (policy.requiredPurposes as number[]).join(",");
  if ("allowLegitimateInterest" in policy)
    env.TCF_ALLOW_LEGITIMATE_INTEREST = String(policy.allowLegitimateInterest);
  if ("firstPartyOnOptOut" in policy) env.FIRST_PARTY_ON_OPTOUT = String(policy.firstPartyOnOptOut);
  if ("gppStates" in policy) {
    env.GPP_STATES = Object.entries(policy.gppStates as Record<string, string>)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
  }
  return env;
}

async function serviceFor(policy: Record<string, unknown> | null | undefined): Promise<TestService> {
  const key = JSON.stringify(policy ?? null);
  let s = byPolicy.get(key);
  if (s === undefined) {
    s = await startService({
      REDIS_URL: redis.url,
      CAP_COUNTERS_CACHE_MS: "0",
      LOOKUP_CALLERS,
      ...policyEnv(policy),
    });
    byPolicy.set(key, s);
  }
  return s;
}

async function admin(method: string, path: string, body: string, type: string) {
  const res = await fetch(`${svc.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": type },
    body,
  });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  redis = await startRedis();
  svc = await startService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
    TCF_VENDOR_ID: String(corpus.vendorId),
    CAP_COUNTERS_CACHE_MS: "0",
    LOOKUP_CALLERS,
    // Impressions named by type and id, as a closed network sends them (the notice token is capping.test.ts's).
    EVENTS_OPEN: "true",
  });
  await admin(
    "PUT",
    "/v1/admin/taxonomy",
    [
      "id,name,parent,party,provider,sensitive,ttl",
      "100,Food,,first,crm,false,",
      "101,Baking,100,first,crm,false,",
      "102,Coffee,100,first,crm,false,",
      "200,Autos,,third,acme,false,",
      "201,Electric cars,200,third,acme,false,",
      "202,SUVs,200,third,acme,false,",
      "301,Partner travellers,,second,partner,false,",
      "900,Health,,third,acme,true,",
      "901,Condition X,100,third,acme,true,",
      "902,Pharmacy shoppers,900,third,acme,false,",
    ].join("\n"),
    "text/csv",
  );
  await admin(
    "POST",
    "/v1/admin/memberships",
    [
      "type,id,segment",
      ...[...BU_FIRST, ...BU_OTHER, "901", "902"].map((s) => `bu,${BUYER},${s}`),
      ...[...IFA_FIRST, ...IFA_OTHER].map((s) => `ifa,${IFA},${s}`),
    ].join("\n"),
    "text/csv",
  );
  await admin("PUT", "/v1/admin/caps", "campaign,window,max\ncamp-1,1h,1\n", "text/csv");
  // One impression for the person under each ID it may be known by: capped wherever caps state is allowed.
  for (const [type, id] of [
    ["bu", BUYER],
    ["ifa", IFA],
  ]) {
    const q = new URLSearchParams({
      type: type as string,
      id: id as string,
      campaign: "camp-1",
      imp: `i-${type}`,
    });
    expect((await fetch(`${svc.base}/v1/events/imp?${q}`)).status).toBe(204);
  }
  // The catalog (taxonomy, rules) reaches the instance through its reload.
  for (let i = 0; i < 100; i++) {
    const { json } = await postJson(
      `${svc.base}/v1/lookup`,
      { ids: [{ type: "bu", id: BUYER }] },
      AS_PARTNER,
    );
    if (json.segments.includes("101") && json.capped.includes("camp-1")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  await svc?.stop();
  for (const s of byPolicy.values()) await s.stop();
  await redis?.stop();
});

/** The case's request with the person's two IDs put in, keeping its own device signals. */
function withPerson(request: Record<string, unknown>): Record<string, unknown> {
  const user = (request.user ?? {}) as Record<string, unknown>;
  const device = request.device as Record<string, unknown> | undefined;
  // A case whose device sends no IFA is about exactly that: it keeps none.
  const sent = device !== undefined && !("ifa" in device) ? device : { ...device, ifa: IFA };
  return { ...request, user: { ...user, buyeruid: BUYER }, device: sent };
}

function expectedSegments(e: CorpusCase["expect"]): string[] {
  if (!e.personal) return [];
  const out = [...BU_FIRST, ...(e.thirdParties ? BU_OTHER : [])];
  if (e.useIfa) out.push(...IFA_FIRST, ...(e.thirdParties ? IFA_OTHER : []));
  // 902 is a third-party segment in its own right (its parent is sensitive, it is not).
  if (e.thirdParties) out.push("902");
  return out.sort();
}

/** The answer a corpus case's decision gives for the person (capped on camp-1 wherever caps state is allowed). */
// biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
function expectAnswerFor(json: any, e: CorpusCase["expect"]): void {
  expect(json.segments).toEqual(expectedSegments(e));
  expect(json.withheld).toEqual(e.reasons);
  if (e.useCaps && e.personal) {
    expect(json.capped).toEqual(["camp-1"]);
    expect(json.remaining).toEqual({ "camp-1": 0 });
  } else {
    // No caps state keyed on the person is handed out.
    expect(json.capped).toEqual([]);
    expect(json.remaining).toBeUndefined();
  }
}

describe("privacy gate through /v1/lookup", () => {
  it("has a corpus of real-format strings to drive it", () => {
    expect(corpus.cases.length).toBeGreaterThan(50);
    const reasons = new Set(corpus.cases.flatMap((c) => c.expect.reasons));
    expect([...reasons].sort()).toEqual([
      "coppa",
      "gdpr_bad_consent",
      "gdpr_no_consent",
      "gpp_bad_string",
      "gpp_optout",
      "lmt",
      "usp_bad_string",
      "usp_optout",
    ]);
  });

  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const service = await serviceFor(c.policy);
    const { status, json } = await postJson(
      `${service.base}/v1/lookup?campaigns=camp-1`,
      withPerson(c.request),
      AS_PARTNER,
    );
    expect(status).toBe(200);
    expectAnswerFor(json, c.expect);
  });

  it("counts every answer by withheld reason in /healthz", async () => {
    const before = (await getJson(`${svc.base}/healthz`)).json.withheld;
    await postJson(`${svc.base}/v1/lookup`, withPerson({ id: "r", regs: { coppa: 1 } }), AS_PARTNER);
    await postJson(`${svc.base}/v1/lookup`, withPerson({ id: "r", regs: { coppa: 1 } }), AS_PARTNER);
    await postJson(
      `${svc.base}/v1/lookup`,
      withPerson({ id: "r", regs: { us_privacy: "1YYN" } }),
      AS_PARTNER,
    );
    const after = (await getJson(`${svc.base}/healthz`)).json.withheld;
    expect(after.coppa - (before.coppa ?? 0)).toBe(2);
    expect(after.usp_optout - (before.usp_optout ?? 0)).toBe(1);
  });

  const ALL = { personal: true, thirdParties: true, useIfa: true, useCaps: true, reasons: [] };
  const NOTHING = { personal: false, thirdParties: false, useIfa: false, useCaps: false };
  it.each<[string, Record<string, unknown>, string, CorpusCase["expect"]]>([
    ["regs.coppa 'yes': COPPA", { regs: { coppa: "yes" } }, "regs.coppa", { ...NOTHING, reasons: ["coppa"] }],
    [
      "regs.gdpr 2: GDPR applies, no consent sent",
      { regs: { gdpr: 2 } },
      "regs.gdpr",
      { ...NOTHING, reasons: ["gdpr_bad_consent"] },
    ],
    [
      "user.consent 5 under GDPR: an undecodable consent",
      { regs: { gdpr: 1 }, user: { consent: 5 } },
      "user.consent",
      { ...NOTHING, reasons: ["gdpr_bad_consent"] },
    ],
    [
      "regs.gpp_sid '7': the GPP string judged undecodable, an opt-out",
      { regs: { gpp_sid: "7" } },
      "regs.gpp_sid",
      { ...ALL, thirdParties: false, reasons: ["gpp_bad_string"] },
    ],
    [
      "device.ext.atts 9: ATT not authorised, no IFA",
      { device: { ifa: "sent", ext: { atts: 9 } } },
      "device.ext.atts",
      { ...ALL, useIfa: false, reasons: ["lmt"] },
    ],
    [
      "regs.us_privacy 1: a malformed string, read as no signal",
      { regs: { us_privacy: 1 } },
      "regs.us_privacy",
      { ...ALL, reasons: ["usp_bad_string"] },
    ],
  ])("a wrongly typed signal is warned and fails closed: %s", async (_name, part, field, want) => {
    const { status, json } = await postJson(
      `${svc.base}/v1/lookup?campaigns=camp-1`,
      withPerson({ id: "r", ...part }),
      AS_PARTNER,
    );
    expect(status).toBe(200);
    expectAnswerFor(json, want);
    expect(json.warnings).toEqual([{ field, code: "AUD_ERR_BAD_FIELD" }]);
  });
});

/**
 * The case's signals in the compact form's flat fields, and the person's IDs as typed IDs; null for a case the
 * compact form cannot say (Apple's ATT status has no compact field).
 */
function asCompact(request: Record<string, unknown>): Record<string, unknown> | null {
  const obj = (v: unknown): Record<string, unknown> => (v ?? {}) as Record<string, unknown>;
  const regs = obj(request.regs);
  const user = obj(request.user);
  const device = obj(request.device);
  if (obj(device.ext).atts !== undefined) return null;
  const out: Record<string, unknown> = { id: "c" };
  const put = (name: string, ...places: unknown[]): void => {
    const v = places.find((p) => p !== undefined);
    if (v !== undefined) out[name] = v;
  };
  put("coppa", regs.coppa);
  put("gdpr", regs.gdpr, obj(regs.ext).gdpr);
  put("consent", user.consent, obj(user.ext).consent);
  put("us_privacy", regs.us_privacy, obj(regs.ext).us_privacy);
  put("gpp", regs.gpp);
  put("gpp_sid", regs.gpp_sid);
  put("lmt", device.lmt);
  const sendsIfa = request.device === undefined || "ifa" in device;
  out.ids = [{ type: "bu", id: BUYER }, ...(sendsIfa ? [{ type: "ifa", id: IFA }] : [])];
  return out;
}

describe("privacy gate through the compact and batch forms", () => {
  const cases = corpus.cases.flatMap((c) => {
    const compact = asCompact(c.request);
    return compact === null ? [] : [[c.name, c, compact] as const];
  });

  it("covers every reason of the corpus but ATT", () => {
    expect(cases.length).toBeGreaterThan(50);
  });

  it.each(cases)("%s", async (_name, c, compact) => {
    const service = await serviceFor(c.policy);
    const single = await postJson(
      `${service.base}/v1/lookup`,
      { ...compact, campaigns: ["camp-1"] },
      AS_PARTNER,
    );
    const batch = await postJson(
      `${service.base}/v1/lookup`,
      { batch: [compact, { ids: [{ type: "bu", id: BUYER }] }], campaigns: ["camp-1"] },
      AS_PARTNER,
    );
    expect(single.status).toBe(200);
    expect(batch.status).toBe(200);
    for (const json of [single.json, batch.json.results[0]]) expectAnswerFor(json, c.expect);
    // The other entry of the batch carries no signal: its own answer, whatever its neighbour's consent.
    expect(batch.json.results[1].segments).toEqual(["101", "201", "301", "902"]);
    expect(batch.json.results[1].withheld).toEqual([]);
  });

  it("refuses signals beside a batch rather than guess whose they are", async () => {
    const { status, json } = await postJson(
      `${svc.base}/v1/lookup`,
      { batch: [{ ids: [{ type: "bu", id: BUYER }] }], gdpr: 1 },
      AS_PARTNER,
    );
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ code: "AUD_ERR_BAD_FIELD", field: "gdpr" });
  });
});

describe("LOOKUP_CALLERS", () => {
  const compact = { ids: [{ type: "bu", id: BUYER }] };

  it("answers 401 to a request without a key, with an unknown key, or with a prefix of a known key", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer privacy-unknown-bidder-key" },
      { authorization: `Bearer ${PARTNER_KEY.slice(0, -1)}` },
      { authorization: `Bearer ${PARTNER_KEY}x` },
      { authorization: PARTNER_KEY },
    ];
    for (const headers of attempts) {
      const { status, json } = await postJson(`${svc.base}/v1/lookup`, compact, headers);
      expect(status).toBe(401);
      expect(json.error.code).toBe("AUD_ERR_UNAUTHORIZED");
    }
  });

  it("gives second-party data only to the partner's caller, on every form", async () => {
    const forms: unknown[] = [compact, withPerson({ id: "r" }), { batch: [compact] }];
    for (const body of forms) {
      const partner = (await postJson(`${svc.base}/v1/lookup`, body, AS_PARTNER)).json;
      const other = (await postJson(`${svc.base}/v1/lookup`, body, { authorization: `Bearer ${OTHER_KEY}` }))
        .json;
      expect((partner.results?.[0] ?? partner).segments).toContain("301");
      expect((other.results?.[0] ?? other).segments).not.toContain("301");
      expect((other.results?.[0] ?? other).segments).toContain("201");
    }
  });

  it("without LOOKUP_CALLERS, the open lookup gives first- and third-party data only", async () => {
    const open = await startService({ REDIS_URL: redis.url, CAP_COUNTERS_CACHE_MS: "0" });
    try {
      for (let i = 0; i < 100; i++) {
        const { status, json } = await postJson(`${open.base}/v1/lookup`, compact);
        expect(status).toBe(200);
        if (json.segments.includes("101")) {
          expect(json.segments).toEqual(["101", "201", "902"]);
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("the open service never loaded the catalog");
    } finally {
      await open.stop();
    }
  });
});

describe("sensitive segments", () => {
  const full = corpus.cases.find((c) => c.name === "gdpr: full consent (2.6 places)")?.request;
  if (full === undefined) throw new Error("the corpus has no full-consent case");
  const forms: [string, string, unknown][] = [
    ["OpenRTB, full TCF consent", "/v1/lookup", withPerson(full)],
    ["OpenRTB, full TCF consent, expanded", "/v1/lookup?expand=1", withPerson(full)],
    ["OpenRTB, no signals, expanded", "/v1/lookup?expand=1", withPerson({ id: "r" })],
    ["compact, expanded", "/v1/lookup", { ids: [{ type: "bu", id: BUYER }], expand: true }],
    [
      "batch, expanded",
      "/v1/lookup",
      { batch: [{ ids: [{ type: "bu", id: BUYER }] }, { ids: [{ type: "ifa", id: IFA }] }], expand: true },
    ],
  ];

  it.each(forms)("are never returned: %s", async (_name, path, body) => {
    const { status, json } = await postJson(`${svc.base}${path}`, body, AS_PARTNER);
    expect(status).toBe(200);
    const answers = (json.results ?? [json]) as { segments: string[] }[];
    const all = answers.flatMap((a) => a.segments);
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain("900");
    expect(all).not.toContain("901");
    // A non-sensitive child of a sensitive segment is itself returned; its parent never is.
    expect(all).toContain("902");
  });
});
