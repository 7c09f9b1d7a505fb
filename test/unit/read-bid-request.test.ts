import { describe, expect, it } from "vitest";
import { ApiError, type ErrorCode } from "../../src/errors.ts";
import type { Json } from "../../src/json-fields.ts";
import { readCompact } from "../../src/lookup/read-compact.ts";
import { readBidRequest } from "../../src/openrtb/read-bid-request.ts";
import { ReadWarnings } from "../../src/openrtb/read-warnings.ts";
import { DEFAULT_PRIVACY_POLICY } from "../../src/privacy/privacy-config.ts";
import { decideAccess } from "../../src/privacy/privacy-gate.ts";
import { readPrivacySignals } from "../../src/privacy/privacy-signals.ts";

/** Reads a request as the lookup does: the privacy gate first, from the request's own signals. */
const read = (body: Json, exchange: string, maxIds: number) => {
  const warnings = new ReadWarnings();
  const access = decideAccess(readPrivacySignals(body, warnings), DEFAULT_PRIVACY_POLICY);
  return readBidRequest(body, exchange, maxIds, access, warnings);
};

/** The gate the lookup gives the compact reader. */
const gate = (signals: Parameters<typeof decideAccess>[0]) => decideAccess(signals, DEFAULT_PRIVACY_POLICY);

const IFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
const ZERO_IFA = "00000000-0000-0000-0000-000000000000";

/** Runs `fn` expecting an ApiError; checks its status, code and field, and returns it. */
function apiError(fn: () => unknown, code: ErrorCode, field: string): ApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    expect({ status: e.status, code: e.code, field: e.field }).toEqual({ status: 400, code, field });
    return e;
  }
  throw new Error("no error thrown");
}

describe("readBidRequest: IDs", () => {
  it("reads all four places plus user.ext.eids, in order", () => {
    const body: Json = {
      id: "req-1",
      user: {
        id: "User-7",
        buyeruid: "Buyer-1",
        eids: [
          { source: "UIDAPI.com", uids: [{ id: "Uid2Token" }, { id: "second" }] },
          { source: "id5-sync.com", uids: [{ id: "ID5*abc" }] },
        ],
        ext: { eids: [{ source: "LiveRamp.com", uids: [{ id: "XY1000" }] }] },
      },
      device: { ifa: IFA, lmt: 0 },
    };
    expect(read(body, "ssp1", 64)).toEqual({
      requestId: "req-1",
      keys: [
        "bu:Buyer-1",
        "xu:ssp1:User-7",
        "eid:uidapi.com:Uid2Token",
        "eid:uidapi.com:second",
        "eid:id5-sync.com:ID5*abc",
        "eid:liveramp.com:XY1000",
        `ifa:${IFA.toLowerCase()}`,
      ],
      withheld: [],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("ignores user.id when no exchange is named", () => {
    expect(read({ id: "r", user: { id: "u1", buyeruid: "b1" } }, "", 64).keys).toEqual(["bu:b1"]);
  });

  it("namespaces user.id by the exchange", () => {
    expect(read({ id: "r", user: { id: "u1" } }, "ssp-x", 64).keys).toEqual(["xu:ssp-x:u1"]);
  });

  it("reads OpenRTB 2.5 user.ext.eids alone", () => {
    const body = { id: "r", user: { ext: { eids: [{ source: "id5-sync.com", uids: [{ id: "abc" }] }] } } };
    expect(read(body, "", 64).keys).toEqual(["eid:id5-sync.com:abc"]);
  });

  it("gives no keys for a request without user or device", () => {
    expect(read({ id: "r" }, "ssp", 64)).toEqual({
      requestId: "r",
      keys: [],
      withheld: [],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("accepts null for optional objects and fields", () => {
    const body = {
      id: "r",
      user: { buyeruid: null, eids: null, ext: null },
      device: { ifa: null, lmt: null },
    };
    expect(read(body, "ssp", 64)).toEqual({
      requestId: "r",
      keys: [],
      withheld: [],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
    expect(read({ id: "r", user: null, device: null }, "", 64).keys).toEqual([]);
  });

  it("removes duplicates (same eid in 2.6 and 2.5 places, source case differing)", () => {
    const body = {
      id: "r",
      user: {
        eids: [{ source: "UIDAPI.com", uids: [{ id: "t" }, { id: "t" }] }],
        ext: { eids: [{ source: "uidapi.com", uids: [{ id: "t" }] }] },
      },
      device: { ifa: IFA },
    };
    const body2 = { ...body, device: { ifa: IFA.toLowerCase() } };
    expect(read(body, "", 64).keys).toEqual(["eid:uidapi.com:t", `ifa:${IFA.toLowerCase()}`]);
    expect(read(body2, "", 64).keys).toEqual(["eid:uidapi.com:t", `ifa:${IFA.toLowerCase()}`]);
  });

  it("drops an all-zero IFA without failing", () => {
    expect(read({ id: "r", device: { ifa: ZERO_IFA } }, "", 64)).toEqual({
      requestId: "r",
      keys: [],
      withheld: [],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("skips empty and oversized IDs without failing", () => {
    const body = {
      id: "r",
      user: { buyeruid: "", eids: [{ source: "x.com", uids: [{ id: "y".repeat(257) }, { id: "ok" }] }] },
    };
    expect(read(body, "", 64).keys).toEqual(["eid:x.com:ok"]);
  });

  it("device.lmt=1 drops the ifa and reports lmt as withheld", () => {
    const body = { id: "r", user: { buyeruid: "b" }, device: { ifa: IFA, lmt: 1 } };
    expect(read(body, "", 64)).toEqual({
      requestId: "r",
      keys: ["bu:b"],
      withheld: ["lmt"],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("device.lmt=1 without an ifa withholds nothing", () => {
    expect(read({ id: "r", device: { lmt: 1 } }, "", 64).withheld).toEqual([]);
    expect(read({ id: "r", device: { ext: { atts: 2 } } }, "", 64).withheld).toEqual([]);
  });

  it("an ATT status other than authorised drops the ifa too", () => {
    const body = { id: "r", device: { ifa: IFA, ext: { atts: 2 } } };
    expect(read(body, "", 64)).toMatchObject({ keys: [], withheld: ["lmt"] });
    expect(read({ id: "r", device: { ifa: IFA, ext: { atts: 3 } } }, "", 64).keys).toEqual([
      `ifa:${IFA.toLowerCase()}`,
    ]);
  });

  it("takes no ID at all when nothing personal may be used (COPPA), but still reads (and warns)", () => {
    const body = { id: "r", regs: { coppa: 1 }, user: { buyeruid: "b" }, device: { ifa: IFA } };
    expect(read(body, "", 64)).toEqual({
      requestId: "r",
      keys: [],
      withheld: ["coppa"],
      thirdParties: false,
      useCaps: false,
      warnings: null,
    });
    expect(read({ id: "r", regs: { coppa: 1 }, user: { buyeruid: 5 } }, "", 64).warnings).toEqual([
      { field: "user.buyeruid", code: "AUD_ERR_BAD_FIELD" },
    ]);
  });

  it("caps the number of IDs at maxIds, keeping the first found", () => {
    const body = {
      id: "r",
      user: { buyeruid: "b", eids: [{ source: "s.com", uids: [{ id: "1" }, { id: "2" }, { id: "3" }] }] },
      device: { ifa: IFA },
    };
    expect(read(body, "", 3).keys).toEqual(["bu:b", "eid:s.com:1", "eid:s.com:2"]);
    expect(read(body, "", 1).keys).toEqual(["bu:b"]);
  });

  it("does not count duplicates towards maxIds", () => {
    const body = {
      id: "r",
      user: { eids: [{ source: "s.com", uids: [{ id: "1" }, { id: "1" }, { id: "2" }] }] },
    };
    expect(read(body, "", 2).keys).toEqual(["eid:s.com:1", "eid:s.com:2"]);
  });

  it("accepts an eid without uids", () => {
    expect(read({ id: "r", user: { eids: [{ source: "s.com" }] } }, "", 64).keys).toEqual([]);
  });
});

describe("readBidRequest: only a missing or non-string id is a 400", () => {
  it.each<[string, Json, ErrorCode]>([
    ["id missing", { user: {} }, "AUD_ERR_MISSING_FIELD"],
    ["id null", { id: null }, "AUD_ERR_MISSING_FIELD"],
    ["id a number", { id: 5 }, "AUD_ERR_BAD_FIELD"],
  ])("%s", (_label, body, code) => {
    apiError(() => read(body, "ssp", 64), code, "id");
  });

  it("says what was expected", () => {
    const e = apiError(() => read({ id: 5 }, "", 64), "AUD_ERR_BAD_FIELD", "id");
    expect(e.message).toBe("id must be a string");
    const m = apiError(() => read({}, "", 64), "AUD_ERR_MISSING_FIELD", "id");
    expect(m.message).toBe("id is required");
  });
});

describe("readBidRequest: a malformed optional part is skipped and warned, the rest is read", () => {
  const eids = (list: unknown): Json => ({ id: "r", user: { buyeruid: "b", eids: list } });
  const bad = (field: string) => ({ field, code: "AUD_ERR_BAD_FIELD" });
  const missing = (field: string) => ({ field, code: "AUD_ERR_MISSING_FIELD" });

  it.each<[string, Json, { field: string; code: string }[], string[]]>([
    [
      "user a string",
      { id: "r", user: "u", device: { ifa: IFA } },
      [bad("user")],
      [`ifa:${IFA.toLowerCase()}`],
    ],
    ["user an array", { id: "r", user: [] }, [bad("user")], []],
    [
      "user.buyeruid a number",
      { id: "r", user: { buyeruid: 1, id: "x" } },
      [bad("user.buyeruid")],
      ["xu:ssp:x"],
    ],
    ["user.id an object", { id: "r", user: { id: {}, buyeruid: "b" } }, [bad("user.id")], ["bu:b"]],
    ["user.eids an object", eids({}), [bad("user.eids")], ["bu:b"]],
    [
      "user.eids[0] a string",
      eids(["x", { source: "a.com", uids: [{ id: "1" }] }]),
      [bad("user.eids[0]")],
      ["bu:b", "eid:a.com:1"],
    ],
    [
      "user.eids[1].source missing (prebid-server accepts it)",
      eids([{ source: "a.com", uids: [{ id: "1" }] }, { uids: [{ id: "x" }] }]),
      [missing("user.eids[1].source")],
      ["bu:b", "eid:a.com:1"],
    ],
    [
      "user.eids[0].source a number",
      eids([{ source: 1, uids: [{ id: "x" }] }]),
      [bad("user.eids[0].source")],
      ["bu:b"],
    ],
    [
      "user.eids[0].uids a string",
      eids([{ source: "a.com", uids: "x" }]),
      [bad("user.eids[0].uids")],
      ["bu:b"],
    ],
    [
      "user.eids[0].uids[0] null",
      eids([{ source: "a.com", uids: [null, { id: "2" }] }]),
      [bad("user.eids[0].uids[0]")],
      ["bu:b", "eid:a.com:2"],
    ],
    [
      "user.eids[0].uids[1].id a number",
      eids([{ source: "a.com", uids: [{ id: "ok" }, { id: 42 }] }]),
      [bad("user.eids[0].uids[1].id")],
      ["bu:b", "eid:a.com:ok"],
    ],
    ["user.ext a string", { id: "r", user: { buyeruid: "b", ext: "x" } }, [bad("user.ext")], ["bu:b"]],
    [
      "user.ext.eids not an array",
      { id: "r", user: { ext: { eids: { a: 1 } } } },
      [bad("user.ext.eids")],
      [],
    ],
    [
      "user.ext.eids[0].source missing",
      { id: "r", user: { ext: { eids: [{ uids: [] }] } } },
      [missing("user.ext.eids[0].source")],
      [],
    ],
    ["device a number", { id: "r", device: 3, user: { buyeruid: "b" } }, [bad("device")], ["bu:b"]],
    ["device.ifa a number", { id: "r", device: { ifa: 7 } }, [bad("device.ifa")], []],
    [
      "several parts, each named once",
      { id: "r", user: { buyeruid: 1, eids: [{ uids: [] }, 5] }, device: { ifa: [] } },
      [bad("device.ifa"), bad("user.buyeruid"), missing("user.eids[0].source"), bad("user.eids[1]")],
      [],
    ],
  ])("%s", (_label, body, warnings, keys) => {
    const s = read(body, "ssp", 64);
    expect({ warnings: s.warnings, keys: s.keys }).toEqual({ warnings, keys });
  });

  it("a clean request has no warnings at all (null, not an empty list)", () => {
    expect(read({ id: "r", user: { buyeruid: "b" } }, "", 64).warnings).toBeNull();
  });
});

describe("readBidRequest: a malformed privacy signal fails closed", () => {
  it.each<[string, Json, string]>([
    ["device.lmt = 2", { device: { ifa: IFA, lmt: 2 } }, "device.lmt"],
    ["device.lmt = '1'", { device: { ifa: IFA, lmt: "1" } }, "device.lmt"],
    ["device.lmt = true", { device: { ifa: IFA, lmt: true } }, "device.lmt"],
    ["device.ext.atts = '3'", { device: { ifa: IFA, ext: { atts: "3" } } }, "device.ext.atts"],
    ["device.ext a number", { device: { ifa: IFA, ext: 1 } }, "device.ext"],
  ])("%s: the IFA is not used, as under lmt", (_label, part, field) => {
    const s = read({ id: "r", user: { buyeruid: "b" }, ...part }, "", 64);
    expect(s).toEqual({
      requestId: "r",
      keys: ["bu:b"],
      withheld: ["lmt"],
      thirdParties: true,
      useCaps: true,
      warnings: [{ field, code: "AUD_ERR_BAD_FIELD" }],
    });
  });

  it.each<[string, Json, string]>([
    ["regs.coppa = '1'", { regs: { coppa: "1" } }, "regs.coppa"],
    ["regs.coppa = 2", { regs: { coppa: 2 } }, "regs.coppa"],
    ["regs a string", { regs: "x" }, "regs"],
  ])("%s: as COPPA, nothing personal", (_label, part, field) => {
    const s = read({ id: "r", user: { buyeruid: "b" }, ...part }, "", 64);
    expect({ keys: s.keys, useCaps: s.useCaps, warnings: s.warnings }).toEqual({
      keys: [],
      useCaps: false,
      warnings: [{ field, code: "AUD_ERR_BAD_FIELD" }],
    });
    expect(s.withheld[0]).toBe("coppa");
  });

  it("regs.gdpr = 'yes': GDPR applies and the consent is judged as sent (none here: bad consent)", () => {
    const s = read({ id: "r", regs: { gdpr: "yes" }, user: { buyeruid: "b" } }, "", 64);
    expect({ keys: s.keys, withheld: s.withheld, warnings: s.warnings }).toEqual({
      keys: [],
      withheld: ["gdpr_bad_consent"],
      warnings: [{ field: "regs.gdpr", code: "AUD_ERR_BAD_FIELD" }],
    });
  });

  it("user.consent a number where GDPR applies: an undecodable consent", () => {
    const s = read({ id: "r", regs: { gdpr: 1 }, user: { buyeruid: "b", consent: 5 } }, "", 64);
    expect({ keys: s.keys, withheld: s.withheld, warnings: s.warnings }).toEqual({
      keys: [],
      withheld: ["gdpr_bad_consent"],
      warnings: [{ field: "user.consent", code: "AUD_ERR_BAD_FIELD" }],
    });
  });

  it.each<[string, Json, string, string, boolean]>([
    [
      "regs.us_privacy a number: a malformed US Privacy string, reported and read as no signal",
      { us_privacy: 1 },
      "regs.us_privacy",
      "usp_bad_string",
      true,
    ],
    [
      "regs.gpp_sid not an array of integers: GPP judged undecodable for a section that applies (an opt-out)",
      { gpp_sid: [7, "8"] },
      "regs.gpp_sid",
      "gpp_bad_string",
      false,
    ],
  ])("%s", (_label, regs, field, reason, thirdParties) => {
    const s = read({ id: "r", regs, user: { buyeruid: "b" } }, "", 64);
    expect({
      keys: s.keys,
      withheld: s.withheld,
      thirdParties: s.thirdParties,
      warnings: s.warnings,
    }).toEqual({
      keys: ["bu:b"],
      withheld: [reason],
      thirdParties,
      warnings: [{ field, code: "AUD_ERR_BAD_FIELD" }],
    });
  });
});

describe("readCompact", () => {
  it("reads typed IDs, normalising and removing duplicates", () => {
    const body = {
      id: "c-1",
      ids: [
        { type: "IFA", id: IFA },
        { type: "ifa", id: IFA.toLowerCase() },
        { type: "bu", id: "b1" },
        { type: "email", id: " Jane.Doe@Example.com " },
        { type: "xu:ssp", id: "u1" },
      ],
    };
    const r = readCompact(body, "", 64, gate);
    expect(r.requestId).toBe("c-1");
    expect(r.withheld).toEqual([]);
    expect(r.keys).toHaveLength(4);
    expect(r.keys.slice(0, 2)).toEqual([`ifa:${IFA.toLowerCase()}`, "bu:b1"]);
    expect(r.keys[2]).toMatch(/^hem:[0-9a-f]{64}$/);
    expect(r.keys[3]).toBe("xu:ssp:u1");
  });

  it("has a null requestId when id is absent", () => {
    expect(readCompact({ ids: [] }, "", 64, gate)).toEqual({
      requestId: null,
      keys: [],
      withheld: [],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("accepts exactly maxIds entries", () => {
    const ids = [
      { type: "bu", id: "1" },
      { type: "bu", id: "2" },
    ];
    expect(readCompact({ ids }, "", 2, gate).keys).toEqual(["bu:1", "bu:2"]);
  });

  it("refuses more than maxIds entries with AUD_ERR_TOO_MANY", () => {
    const ids = [1, 2, 3].map((n) => ({ type: "bu", id: String(n) }));
    const e = apiError(() => readCompact({ ids }, "batch[2].", 2, gate), "AUD_ERR_TOO_MANY", "batch[2].ids");
    expect(e.message).toBe("batch[2].ids has 3 entries; at most 2");
    apiError(() => readCompact({ ids }, "", 2, gate), "AUD_ERR_TOO_MANY", "ids");
  });

  it.each<[string, Json, ErrorCode, string, string]>([
    ["id a number", { id: 3, ids: [] }, "AUD_ERR_BAD_FIELD", "batch[2].id", "batch[2].id must be a string"],
    [
      "ids missing",
      { id: "x" },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids",
      "batch[2].ids must be an array of {type, id} objects",
    ],
    [
      "entry a string",
      { ids: ["ifa:x"] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0]",
      "batch[2].ids[0] must be an object {type, id}",
    ],
    [
      "type missing",
      { ids: [{ id: "x" }] },
      "AUD_ERR_MISSING_FIELD",
      "batch[2].ids[0].type",
      "batch[2].ids[0].type is required",
    ],
    [
      "type a number",
      { ids: [{ type: 1, id: "x" }] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0].type",
      "batch[2].ids[0].type must be a string",
    ],
    [
      "id missing",
      { ids: [{ type: "bu", id: "a" }, { type: "bu" }] },
      "AUD_ERR_MISSING_FIELD",
      "batch[2].ids[1].id",
      "batch[2].ids[1].id is required",
    ],
    [
      "id a number",
      { ids: [{ type: "bu", id: 5 }] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0].id",
      "batch[2].ids[0].id must be a string",
    ],
    [
      "unknown type",
      { ids: [{ type: "cookie", id: "x" }] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0].type",
      "batch[2].ids[0]: unknown id type 'cookie'",
    ],
    [
      "empty id",
      { ids: [{ type: "bu", id: "  " }] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0].id",
      "batch[2].ids[0]: empty id",
    ],
    [
      "all-zero ifa",
      { ids: [{ type: "ifa", id: ZERO_IFA }] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0].id",
      "batch[2].ids[0]: all-zero ifa",
    ],
    [
      "bad hem",
      { ids: [{ type: "hem", id: "abc" }] },
      "AUD_ERR_BAD_FIELD",
      "batch[2].ids[0].id",
      "batch[2].ids[0]: hem must be 64 hex characters (SHA-256)",
    ],
  ])("%s -> 400 with the place prefix", (_label, body, code, field, message) => {
    expect(apiError(() => readCompact(body, "batch[2].", 64, gate), code, field).message).toBe(message);
  });

  it("names the field without a prefix for a single lookup", () => {
    apiError(
      () => readCompact({ ids: [{ type: "nope", id: "x" }] }, "", 64, gate),
      "AUD_ERR_BAD_FIELD",
      "ids[0].type",
    );
  });

  it.each<[string, string]>([
    ["an opening brace", "a{b"],
    ["a closing brace, which would end the Cluster hash tag early", "a}:x"],
    ["a newline", "a\nb"],
    ["a NUL", "a\u0000b"],
    ["DEL", "a\u007fb"],
    ["a C1 control", "a\u0085b"],
  ])("refuses an id holding %s", (_label, id) => {
    const e = apiError(
      () => readCompact({ ids: [{ type: "bu", id }] }, "", 64, gate),
      "AUD_ERR_BAD_FIELD",
      "ids[0].id",
    );
    expect(e.message).toBe("ids[0]: id holds '{', '}' or a control character");
  });
});

describe("readCompact: privacy signals", () => {
  const ids = [
    { type: "ifa", id: IFA },
    { type: "bu", id: "b1" },
  ];
  const ifaKey = `ifa:${IFA.toLowerCase()}`;

  it("goes through no gate when the entry carries no signal", () => {
    const r = readCompact({ ids }, "", 64, () => {
      throw new Error("the gate was asked");
    });
    expect(r).toEqual({
      requestId: null,
      keys: [ifaKey, "bu:b1"],
      withheld: [],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("coppa=1 takes no ID and no caps", () => {
    expect(readCompact({ ids, coppa: 1 }, "", 64, gate)).toEqual({
      requestId: null,
      keys: [],
      withheld: ["coppa"],
      thirdParties: false,
      useCaps: false,
      warnings: null,
    });
  });

  it("gdpr=1 without a TC string takes nothing personal, and with a garbled one the same", () => {
    const none = readCompact({ ids, gdpr: 1 }, "", 64, gate);
    expect(none).toEqual({
      requestId: null,
      keys: [],
      withheld: ["gdpr_bad_consent"],
      thirdParties: false,
      useCaps: false,
      warnings: null,
    });
    expect(readCompact({ ids, gdpr: 1, consent: "not-a-tc-string" }, "", 64, gate).keys).toEqual([]);
  });

  it("us_privacy opt-out keeps first-party data only; lmt=1 drops the IFA and says so", () => {
    expect(readCompact({ ids, us_privacy: "1YYN" }, "", 64, gate)).toEqual({
      requestId: null,
      keys: [ifaKey, "bu:b1"],
      withheld: ["usp_optout"],
      thirdParties: false,
      useCaps: true,
      warnings: null,
    });
    expect(readCompact({ ids, lmt: 1 }, "", 64, gate)).toEqual({
      requestId: null,
      keys: ["bu:b1"],
      withheld: ["lmt"],
      thirdParties: true,
      useCaps: true,
      warnings: null,
    });
  });

  it("reads gpp and gpp_sid as a bid request's regs.gpp and regs.gpp_sid: an undecodable string fails closed", () => {
    const r = readCompact({ ids, gpp: "garbage", gpp_sid: [7] }, "", 64, gate);
    expect(r.withheld).toEqual(["gpp_bad_string"]);
    expect(r.thirdParties).toBe(false);
  });

  it.each<[string, Json, string, string]>([
    ["coppa 2", { coppa: 2 }, "batch[1].coppa", "batch[1].coppa must be 0 or 1"],
    ["gdpr a string", { gdpr: "1" }, "batch[1].gdpr", "batch[1].gdpr must be 0 or 1"],
    ["consent a number", { consent: 5 }, "batch[1].consent", "batch[1].consent must be a string"],
    [
      "gpp_sid not an array",
      { gpp_sid: 7 },
      "batch[1].gpp_sid",
      "batch[1].gpp_sid must be an array of integers",
    ],
    [
      "gpp_sid of strings",
      { gpp_sid: ["7"] },
      "batch[1].gpp_sid[0]",
      "batch[1].gpp_sid[0] must be an integer",
    ],
    ["lmt true", { lmt: true }, "batch[1].lmt", "batch[1].lmt must be 0 or 1"],
  ])("%s -> 400 naming the field", (_label, extra, field, message) => {
    const e = apiError(
      () => readCompact({ ids, ...extra }, "batch[1].", 64, gate),
      "AUD_ERR_BAD_FIELD",
      field,
    );
    expect(e.message).toBe(message);
  });
});
