// SSP enrichment end to end on a real redis-server: every sample enriched with exactly the expected
// user.data and deals (and valid OpenRTB 2.6), the fragment and mutations forms carrying the same, deal
// expressions with NOT and nesting, second-party data only to its partner, consent denial attaching nothing,
// bad deal rules refused with their position, rule changes without a restart.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audience } from "../helpers/cli.ts";
import { loadBidRequestValidator } from "../helpers/openrtb-schema.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { startService, type TestService } from "../helpers/service.ts";

// biome-ignore lint/suspicious/noExplicitAny: the tests walk OpenRTB JSON freely; the schema check types it
type Obj = Record<string, any>;

const ADMIN = "enrich-admin-token-000001";
const PARTNER = "partner-key-00000000001";
const OTHER = "other-key-000000000001";
const USER = "enrich-user-1";
const SAMPLES_DIR = new URL("../../openrtb-samples/", import.meta.url);
const samples = readdirSync(SAMPLES_DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((file) => ({ file, body: JSON.parse(readFileSync(new URL(file, SAMPLES_DIR), "utf8")) as Obj }));
const corpus = JSON.parse(readFileSync(new URL("../fixtures/consent/corpus.json", import.meta.url), "utf8"));
const validate = loadBidRequestValidator();

let redis: RedisServer;
let svc: TestService;
let dir: string;

const DEALS = [
  {
    id: "deal-a",
    when: "101 AND (201 OR NOT 999)",
    bidfloor: 2.5,
    bidfloorcur: "USD",
    at: 1,
    wseat: ["seat-1"],
    formats: ["banner"],
  },
  { id: "deal-b", when: "301", bidfloor: 4, bidfloorcur: "EUR", at: 3 },
  { id: "deal-c", when: "NOT 101", bidfloor: 1 },
  {
    id: "deal-d",
    when: "102 AND NOT (201 AND 999)",
    bidfloor: 6,
    at: 2,
    formats: ["video"],
    wadomain: ["cars.example"],
  },
  { id: "deal-e", when: "901", bidfloor: 9 },
  { id: "deal-f", when: "201", bidfloor: 3, sizes: ["300x250"] },
];

async function enrich(body: unknown, key: string | null, query = "") {
  const res = await fetch(`${svc.base}/v1/enrich${query}`, {
    method: "POST",
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Obj, headers: res.headers };
}

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), "audience-enrich-"));
  svc = await startService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
    ENRICH_CALLERS: `${PARTNER}=partner-ssp:partnerx|*,${OTHER}=other-ssp:*`,
    TCF_VENDOR_ID: String(corpus.vendorId),
  });
  const put = async (path: string, body: string, type: string, method = "PUT") => {
    const res = await fetch(`${svc.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": type },
      body,
    });
    expect(res.status).toBe(200);
  };
  await put(
    "/v1/admin/taxonomy",
    [
      "id,name,parent,party,provider,sensitive,ttl,segtax,segtax_id",
      "101,Baking,,first,crm,false,,4,239",
      "102,Coffee,,first,crm,false,,,",
      "201,Electric cars,,third,acme,false,,501,ev-owners",
      "301,Frequent travellers,,second,partnerx,false,,,",
      "901,Health condition,,third,acme,true,,,",
    ].join("\n"),
    "text/csv",
  );
  await put(
    "/v1/admin/memberships",
    ["type,id,segment", ...["101", "102", "201", "301", "901"].map((s) => `bu,${USER},${s}`)].join("\n"),
    "text/csv",
    "POST",
  );
  const file = join(dir, "deals.ndjson");
  writeFileSync(file, `${DEALS.map((d) => JSON.stringify(d)).join("\n")}\n`);
  const r = await audience(["ingest", "deals", file], { REDIS_URL: redis.url });
  expect(r.stderr).toBe("");
  expect(r.stdout).toMatch(/6 deal rules imported/);
  // The command's change reaches the running service over pub/sub.
  for (let i = 0; i < 100 && svc.service.catalog.current.deals.size < DEALS.length; i++) {
    await new Promise((res) => setTimeout(res, 20));
  }
  expect(svc.service.catalog.current.deals.size).toBe(DEALS.length);
});
afterAll(async () => {
  await svc?.stop();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The sample as a request about the test user (its other IDs stay; this Redis knows none of them). */
const aboutUser = (body: Obj): Obj => {
  const copy = structuredClone(body);
  return { ...copy, user: { ...(copy.user ?? {}), buyeruid: USER } };
};

function expectedData(partner: boolean, thirdParties: boolean): Obj[] {
  const data: Obj[] = [
    { name: "crm", segment: [{ id: "102" }] },
    { name: "crm", segment: [{ id: "239" }], ext: { segtax: 4 } },
  ];
  if (thirdParties) data.unshift({ name: "acme", segment: [{ id: "ev-owners" }], ext: { segtax: 501 } });
  if (partner && thirdParties) data.push({ name: "partnerx", segment: [{ id: "301" }] });
  return data;
}

function expectedDeals(imp: Obj, partner: boolean, thirdParties: boolean): Obj[] {
  const sizes = [imp.banner, ...(imp.banner?.format ?? []), imp.video]
    .filter((o) => o?.w !== undefined)
    .map((o) => `${o.w}x${o.h}`);
  const out: Obj[] = [];
  if (imp.banner) out.push({ id: "deal-a", bidfloor: 2.5, bidfloorcur: "USD", at: 1, wseat: ["seat-1"] });
  if (partner && thirdParties) out.push({ id: "deal-b", bidfloor: 4, bidfloorcur: "EUR", at: 3 });
  if (imp.video)
    out.push({ id: "deal-d", bidfloor: 6, bidfloorcur: "USD", at: 2, wadomain: ["cars.example"] });
  if (thirdParties && sizes.includes("300x250"))
    out.push({ id: "deal-f", bidfloor: 3, bidfloorcur: "USD", at: 1 });
  return out;
}

/** The input with exactly the expected additions. */
function expectedOutput(input: Obj, partner: boolean): Obj {
  const thirdParties = input.regs?.us_privacy?.[2] !== "Y";
  const out = structuredClone(input);
  out.user.data = [...(input.user.data ?? []), ...expectedData(partner, thirdParties)];
  out.imp = input.imp.map((imp: Obj) => {
    const deals = expectedDeals(imp, partner, thirdParties);
    return deals.length === 0
      ? imp
      : { ...imp, pmp: { ...(imp.pmp ?? {}), deals: [...(imp.pmp?.deals ?? []), ...deals] } };
  });
  return out;
}

describe("POST /v1/enrich", () => {
  it.each(samples.filter((s) => s.file !== "coppa.json").map((s) => [s.file, s.body] as const))(
    "enriches %s with exactly the expected segments and deals, as valid OpenRTB 2.6",
    async (_file, sample) => {
      const input = aboutUser(sample);
      const { status, json } = await enrich(input, PARTNER);
      expect(status).toBe(200);
      expect(json).toEqual(expectedOutput(input, true));
      const v = validate(json);
      expect(v.errors).toBe("");
      expect(v.valid).toBe(true);
    },
  );

  it("attaches nothing personal to a COPPA request, and says why", async () => {
    const input = aboutUser(samples.find((s) => s.file === "coppa.json")?.body as Obj);
    const { json, headers } = await enrich(input, PARTNER);
    expect(json).toEqual(input);
    expect(headers.get("x-audience-withheld")).toBe("coppa");
  });

  it("attaches nothing personal when GDPR applies without our vendor's consent", async () => {
    const input = aboutUser(samples.find((s) => s.file === "gdpr-tcf.json")?.body as Obj);
    input.user.consent = corpus.tcf.missingVendor.string;
    const { json, headers } = await enrich(input, PARTNER);
    expect(json).toEqual(input);
    expect(headers.get("x-audience-withheld")).toBe("gdpr_no_consent");
  });

  it("gives second-party data (and the deals it unlocks) only to its partner", async () => {
    const input = aboutUser(samples.find((s) => s.file === "eids-uid2-id5-rampid.json")?.body as Obj);
    const other = await enrich(input, OTHER);
    expect(other.json).toEqual(expectedOutput(input, false));
    expect(JSON.stringify(other.json)).not.toContain("partnerx");
    expect(JSON.stringify(other.json)).not.toContain("deal-b");
    const partner = await enrich(input, PARTNER);
    expect(partner.json.user.data.map((d: Obj) => d.name)).toContain("partnerx");
    expect(partner.json).toEqual(expectedOutput(input, true));
    // The same cached profile for each caller in turn: what one caller may receive never reaches another.
    expect((await enrich(input, OTHER)).json).toEqual(expectedOutput(input, false));
    expect((await enrich(input, PARTNER)).json).toEqual(expectedOutput(input, true));
  });

  it("never attaches a sensitive segment or a deal it unlocks", async () => {
    for (const s of samples) {
      const text = JSON.stringify((await enrich(aboutUser(s.body), PARTNER, "?expand=1")).json);
      expect(text).not.toContain('"901"');
      expect(text).not.toContain("deal-e");
    }
  });

  it("carries the same content in the fragment and mutations forms", async () => {
    const input = aboutUser(samples.find((s) => s.file === "multi-imp.json")?.body as Obj);
    const full = (await enrich(input, PARTNER)).json;
    const fragment = (await enrich(input, PARTNER, "?format=fragment")).json;
    const mutations = (await enrich(input, PARTNER, "?format=mutations")).json;
    const data = expectedData(true, true);
    expect(fragment.user.data).toEqual(data);
    const dealsByImp = full.imp
      .filter((i: Obj) => i.pmp?.deals)
      .map((i: Obj) => ({ id: i.id, pmp: { deals: i.pmp.deals } }));
    expect(fragment.imp).toEqual(dealsByImp);
    expect(mutations.id).toBe(input.id);
    expect(mutations.mutations).toEqual([
      ...data.map((d) => ({
        intent: "ACTIVATE_SEGMENTS",
        op: "OPERATION_ADD",
        path: "/user/data/segment",
        ids: { id: d.segment.map((s: Obj) => s.id) },
        data: d.ext === undefined ? { name: d.name } : { name: d.name, ext: d.ext },
      })),
      ...dealsByImp.map((i: Obj) => ({
        intent: "ACTIVATE_DEALS",
        op: "OPERATION_ADD",
        path: `/imp/${i.id}`,
        ids: { id: i.pmp.deals.map((d: Obj) => d.id) },
        deals: i.pmp.deals,
      })),
    ]);
  });

  it("keeps what the caller sent: its user.data entries and deals, private_auction, no duplicates", async () => {
    const input = aboutUser(samples.find((s) => s.file === "web-banner.json")?.body as Obj);
    input.user.data = [
      { name: "crm", segment: [{ id: "239" }, { id: "x" }], ext: { segtax: 4 } },
      { name: "seller", segment: [{ id: "s1" }] },
    ];
    input.imp[0].pmp = { private_auction: 1, deals: [{ id: "deal-a", bidfloor: 9 }] };
    const { json } = await enrich(input, OTHER);
    expect(json.user.data).toEqual([
      { name: "crm", segment: [{ id: "239" }, { id: "x" }], ext: { segtax: 4 } },
      { name: "seller", segment: [{ id: "s1" }] },
      { name: "acme", segment: [{ id: "ev-owners" }], ext: { segtax: 501 } },
      { name: "crm", segment: [{ id: "102" }] },
    ]);
    expect(json.imp[0].pmp).toEqual({ private_auction: 1, deals: [{ id: "deal-a", bidfloor: 9 }] });
    expect(validate(json).valid).toBe(true);
  });

  it("answers 401 without a caller's key and 400 naming the field for a bad format or id", async () => {
    const input = aboutUser(samples[0]?.body as Obj);
    expect((await enrich(input, null)).status).toBe(401);
    expect((await enrich(input, "not-a-known-key-at-all")).status).toBe(401);
    const badFormat = await enrich(input, PARTNER, "?format=xml");
    expect(badFormat.json.error.field).toBe("format");
    const noId = await enrich({ imp: [{ id: "1" }] }, PARTNER);
    expect({ status: noId.status, field: noId.json.error.field }).toEqual({ status: 400, field: "id" });
  });

  it("reads a noisy request leniently: what cannot take an insertion is left as sent, and warned", async () => {
    const warned = (r: { headers: Headers }) => JSON.parse(r.headers.get("x-audience-warnings") ?? "null");
    const clean = await enrich(aboutUser(samples[0]?.body as Obj), PARTNER);
    expect(clean.status).toBe(200);
    expect(clean.headers.get("x-audience-warnings")).toBeNull();

    // No imp: the user's segments still go into user.data; no deals, nowhere to put them.
    const noImp = await enrich({ id: "r", user: { buyeruid: USER } }, PARTNER);
    expect(noImp.status).toBe(200);
    expect(noImp.json).toEqual({ id: "r", user: { buyeruid: USER, data: expectedData(true, true) } });
    expect(warned(noImp)).toEqual([{ field: "imp", code: "AUD_ERR_MISSING_FIELD" }]);

    // user.data not an array: kept as the caller sent it; the deals still go into the imps.
    const input = aboutUser(samples.find((s) => s.file === "web-banner.json")?.body as Obj);
    const badData = await enrich({ ...input, user: { buyeruid: USER, data: { x: 1 } } }, PARTNER);
    expect(badData.status).toBe(200);
    expect(badData.json.user).toEqual({ buyeruid: USER, data: { x: 1 } });
    expect((badData.json.imp[0].pmp?.deals ?? []).length).toBeGreaterThan(0);
    expect(warned(badData)).toEqual([{ field: "user.data", code: "AUD_ERR_BAD_FIELD" }]);

    // An imp that is not an object, and one whose pmp is not an object: both kept as sent, no deals there.
    const imps = await enrich(
      { ...input, imp: [null, { id: "2", pmp: 5 }, ...(input.imp as Obj[])] },
      PARTNER,
    );
    expect(imps.status).toBe(200);
    expect(imps.json.imp.slice(0, 2)).toEqual([null, { id: "2", pmp: 5 }]);
    expect(imps.json.imp.slice(2)).toEqual(badData.json.imp);
    expect(imps.json.user.data).toEqual(expectedData(true, true));
    expect(warned(imps)).toEqual([
      { field: "imp[0]", code: "AUD_ERR_BAD_FIELD" },
      { field: "imp[1].pmp", code: "AUD_ERR_BAD_FIELD" },
    ]);
  });

  it("applies a deal rule change without a restart", async () => {
    const input = aboutUser(samples.find((s) => s.file === "web-banner.json")?.body as Obj);
    const del = await fetch(`${svc.base}/v1/admin/deals/deal-a`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(del.status).toBe(200);
    const ids = (r: { json: Obj }) => (r.json.imp[0].pmp?.deals ?? []).map((d: Obj) => d.id);
    expect(ids(await enrich(input, PARTNER))).toEqual(["deal-b"]);
    const put = await fetch(`${svc.base}/v1/admin/deals`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/x-ndjson" },
      body: `${JSON.stringify(DEALS[0])}\n`,
    });
    expect(put.status).toBe(200);
    expect(ids(await enrich(input, PARTNER))).toEqual(["deal-a", "deal-b"]);
  });
});

describe("deal rule files", () => {
  it("refuses a file with a bad rule whole, naming line and column", async () => {
    const file = join(dir, "bad-deals.ndjson");
    writeFileSync(
      file,
      [
        JSON.stringify({ id: "ok-1", when: "101" }),
        JSON.stringify({ id: "bad-1", when: "101 AND (201 OR" }),
        JSON.stringify({ id: "bad-2", when: "101", at: 7 }),
        "not json",
      ].join("\n"),
    );
    const r = await audience(["ingest", "deals", file], { REDIS_URL: redis.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /bad-deals\.ndjson:2:16: when: expected a segment id, NOT or '\(', found end of expression at column 16/,
    );
    expect(r.stderr).toMatch(/bad-deals\.ndjson:3: at: must be 1, 2 or 3/);
    expect(r.stderr).toMatch(/bad-deals\.ndjson:4: not a JSON object/);
    expect(r.stdout).toMatch(/3 rules rejected; nothing imported/);
    const api = await fetch(`${svc.base}/v1/admin/deals`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: `${JSON.stringify({ id: "bad-1", when: "NOT" })}\n`,
    });
    expect(api.status).toBe(400);
    expect(await api.json()).toMatchObject({
      error: { code: "AUD_ERR_BAD_ROWS" },
      rows: [{ line: 1, field: "when", column: 4 }],
    });
    expect(
      (await fetch(`${svc.base}/v1/admin/deals/ok-1`, { headers: { authorization: `Bearer ${ADMIN}` } }))
        .status,
    ).toBe(404);
  });
});
