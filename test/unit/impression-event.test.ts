// Impression events: every field rule, and every refusal with its code and the field it names.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type EventReading, queryFields, readImpressionEvent } from "../../src/capping/impression-event.ts";
import { NoticeTokens } from "../../src/capping/notice-token.ts";
import { ApiError, type ErrorCode } from "../../src/errors.ts";

const NOW = 1_750_000_000;
const DAY = 86_400;
const IFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
const IFA_KEY = "ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc";
const tokens = new NoticeTokens("event-token-secret-for-the-unit-tests", 3_600);
/** The credentialed batch route (and EVENTS_OPEN): type and id allowed. */
const WITH_IDS: EventReading = { tokens, idsAllowed: true };
/** The pixel: a notice token only. */
const TOKEN_ONLY: EventReading = { tokens, idsAllowed: false };
const issue = (key: string, campaigns: string[] | null = null, at = NOW) =>
  tokens.issue(key, campaigns, 1, at);

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

/** A valid event's fields with `over` applied; an `undefined` in `over` removes the field. */
function fields(over: Record<string, unknown> = {}): Record<string, unknown> {
  const f: Record<string, unknown> = { type: "ifa", id: IFA, campaign: "camp-1", imp: "imp-1", ...over };
  for (const [k, v] of Object.entries(f)) if (v === undefined) delete f[k];
  return f;
}

/** Runs `fn` expecting an ApiError; checks its status, code and field, and returns it. */
function apiError(fn: () => unknown, code: ErrorCode, field: string, status = 400): ApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    expect({ status: e.status, code: e.code, field: e.field }).toEqual({ status, code, field });
    return e;
  }
  throw new Error("no error thrown");
}

const read = (over: Record<string, unknown>, reading: EventReading = WITH_IDS) =>
  readImpressionEvent(fields(over), NOW, reading);

describe("readImpressionEvent: a valid event", () => {
  it("reads the minimal event, defaulting the optional fields", () => {
    expect(read({})).toEqual({
      personKey: IFA_KEY,
      campaign: "camp-1",
      lineItem: null,
      creative: null,
      imp: "imp-1",
      tsSec: NOW,
      notice: null,
    });
  });

  it("reads line_item and creative", () => {
    const e = read({ line_item: "li.7", creative: "cr:9_x" });
    expect([e.lineItem, e.creative]).toEqual(["li.7", "cr:9_x"]);
  });

  it.each([
    ["empty", ""],
    ["null", null],
  ])("takes an %s line_item or creative as not given", (_label, v) => {
    const e = read({ line_item: v, creative: v });
    expect([e.lineItem, e.creative]).toEqual([null, null]);
  });

  it("trims campaign, line_item, creative and imp", () => {
    const e = read({ campaign: " camp-1 ", line_item: " li ", creative: "cr ", imp: " imp-1" });
    expect([e.campaign, e.lineItem, e.creative, e.imp]).toEqual(["camp-1", "li", "cr", "imp-1"]);
  });

  it("takes safe integers for campaign, line_item, creative and imp (JSON lines)", () => {
    const e = read({ campaign: 123, line_item: 0, creative: -4, imp: 9_007_199_254_740_991 });
    expect([e.campaign, e.lineItem, e.creative, e.imp]).toEqual(["123", "0", "-4", "9007199254740991"]);
  });

  it("accepts an imp of 128 characters using every allowed character", () => {
    const imp = `AZaz09._:~-${"x".repeat(117)}`;
    expect(imp).toHaveLength(128);
    expect(read({ imp }).imp).toBe(imp);
  });

  it("accepts a campaign of 64 characters", () => {
    expect(read({ campaign: "c".repeat(64) }).campaign).toBe("c".repeat(64));
  });

  it("ignores fields it does not know (cache busters)", () => {
    expect(read({ cb: "12345", extra: { a: 1 } }).imp).toBe("imp-1");
  });
});

describe("readImpressionEvent: the person", () => {
  it("refuses a raw email as the type: an event carries the hashed form (hem) only", () => {
    apiError(() => read({ type: "email", id: " Jane.Doe@Example.COM " }), "AUD_ERR_BAD_FIELD", "type");
    apiError(() => read({ type: "EMAIL", id: "jane.example.com" }), "AUD_ERR_BAD_FIELD", "type");
    expect(read({ type: "hem", id: sha256("jane.doe@example.com") }).personKey).toBe(
      `hem:${sha256("jane.doe@example.com")}`,
    );
  });

  it.each([
    ["hem", "A".repeat(64), `hem:${"a".repeat(64)}`],
    ["bu", "Buyer-1", "bu:Buyer-1"],
    ["XU:SSP1", "u-7", "xu:ssp1:u-7"],
    ["eid:uidapi.com", "A4AAABsd", "eid:uidapi.com:A4AAABsd"],
  ])("builds the typed key for type %s", (type, id, key) => {
    expect(read({ type, id }).personKey).toBe(key);
  });

  it("reads the person, and the grant, from a token instead of type and id", () => {
    const e = read({ type: undefined, id: undefined, token: issue("bu:Buyer-1") }, TOKEN_ONLY);
    expect(e.personKey).toBe("bu:Buyer-1");
    expect(e.notice).toMatchObject({
      personKey: "bu:Buyer-1",
      campaigns: null,
      uses: 1,
      expiresAtSec: NOW + 3_600,
    });
  });

  it.each([
    ["type and id", {}, "type"],
    ["type", { id: undefined }, "type"],
    ["id", { type: undefined }, "id"],
  ])("refuses %s where only a token may name the person (the pixel)", (_label, over, field) => {
    const e = apiError(() => read(over, TOKEN_ONLY), "AUD_ERR_BAD_FIELD", field);
    expect(e.message).toMatch(/token a lookup issued/);
  });

  it("asks for the token where only a token may name the person", () => {
    apiError(() => read({ type: undefined, id: undefined }, TOKEN_ONLY), "AUD_ERR_MISSING_FIELD", "token");
  });

  it("refuses an expired token with 403, naming the token", () => {
    const token = issue(IFA_KEY, null, NOW - 3_601);
    const e = apiError(
      () => read({ type: undefined, id: undefined, token }, TOKEN_ONLY),
      "AUD_ERR_NOTICE_REFUSED",
      "token",
      403,
    );
    expect(e.message).toMatch(/expired/);
    expect(read({ type: undefined, id: undefined, token: issue(IFA_KEY, null, NOW - 3_600) }).personKey).toBe(
      IFA_KEY,
    );
  });

  it("refuses a campaign the token was not issued for with 403, naming the campaign", () => {
    const token = issue(IFA_KEY, ["camp-1", "camp-2"]);
    expect(read({ type: undefined, id: undefined, token, campaign: "camp-2" }, TOKEN_ONLY).campaign).toBe(
      "camp-2",
    );
    apiError(
      () => read({ type: undefined, id: undefined, token, campaign: "camp-3" }, TOKEN_ONLY),
      "AUD_ERR_NOTICE_REFUSED",
      "campaign",
      403,
    );
    const none = issue(IFA_KEY, []);
    apiError(
      () => read({ type: undefined, id: undefined, token: none }, TOKEN_ONLY),
      "AUD_ERR_NOTICE_REFUSED",
      "campaign",
      403,
    );
  });

  it("takes an empty token as not given", () => {
    expect(read({ token: "" }).personKey).toBe(IFA_KEY);
  });

  it.each([
    ["no token, type or id", { type: undefined, id: undefined }, "AUD_ERR_MISSING_FIELD", "id"],
    ["type without id", { id: undefined }, "AUD_ERR_MISSING_FIELD", "id"],
    ["an empty id", { id: "" }, "AUD_ERR_MISSING_FIELD", "id"],
    ["id without type", { type: undefined }, "AUD_ERR_MISSING_FIELD", "type"],
    ["an unknown type", { type: "cookie" }, "AUD_ERR_BAD_FIELD", "type"],
    ["a plain type with a namespace", { type: "ifa:x" }, "AUD_ERR_BAD_FIELD", "type"],
    ["a type that is not a string", { type: 1 }, "AUD_ERR_BAD_FIELD", "type"],
    ["an id that is not a string", { type: "bu", id: 12345 }, "AUD_ERR_BAD_FIELD", "id"],
    ["an all-zero ifa", { id: "00000000-0000-0000-0000-000000000000" }, "AUD_ERR_BAD_FIELD", "id"],
    ["a hem that is not SHA-256 hex", { type: "hem", id: "abc" }, "AUD_ERR_BAD_FIELD", "id"],
    ["a blank id", { id: "   " }, "AUD_ERR_BAD_FIELD", "id"],
    ["an id over 256 characters", { type: "bu", id: "b".repeat(257) }, "AUD_ERR_BAD_FIELD", "id"],
  ] as const)("refuses %s", (_label, over, code, field) => {
    apiError(() => read(over), code, field);
  });

  it("says why an id is refused", () => {
    const e = apiError(() => read({ type: "hem", id: "abc" }), "AUD_ERR_BAD_FIELD", "id");
    expect(e.message).toMatch(/^id: /);
  });

  it("refuses a tampered token", () => {
    const t = issue(IFA_KEY);
    const tampered = `${t.slice(0, 20)}${t[20] === "A" ? "B" : "A"}${t.slice(21)}`;
    apiError(() => read({ type: undefined, id: undefined, token: tampered }), "AUD_ERR_BAD_FIELD", "token");
  });

  it.each([
    ["truncated", issue(IFA_KEY).slice(0, -3)],
    [
      "from another secret",
      new NoticeTokens("a-different-secret-of-enough-length", 3_600).issue(IFA_KEY, null, 1, NOW),
    ],
    ["garbage", "not a token"],
    ["a raw id", IFA],
  ])("refuses a token that is %s", (_label, token) => {
    apiError(() => read({ type: undefined, id: undefined, token }), "AUD_ERR_BAD_FIELD", "token");
  });

  it("refuses a token that is not a string", () => {
    apiError(() => read({ type: undefined, id: undefined, token: 42 }), "AUD_ERR_BAD_FIELD", "token");
  });

  it.each([
    ["type and id", {}],
    ["type", { id: undefined }],
    ["id", { type: undefined }],
  ])("refuses a token given together with %s: it could name two people", (_label, over) => {
    apiError(() => read({ ...over, token: issue("bu:other") }), "AUD_ERR_BAD_FIELD", "token");
  });
});

describe("readImpressionEvent: campaign, line_item, creative, imp", () => {
  it.each([
    ["absent", undefined],
    ["empty", ""],
    ["null", null],
  ])("refuses an %s campaign as missing", (_label, campaign) => {
    apiError(() => read({ campaign }), "AUD_ERR_MISSING_FIELD", "campaign");
  });

  it.each([
    ["absent", undefined],
    ["empty", ""],
    ["null", null],
  ])("refuses an %s imp as missing", (_label, imp) => {
    apiError(() => read({ imp }), "AUD_ERR_MISSING_FIELD", "imp");
  });

  describe.each(["campaign", "line_item", "creative"])("%s", (name) => {
    it.each([
      ["65 characters", "c".repeat(65)],
      ["a space", "camp 1"],
      ["a tilde (allowed in imp only)", "camp~1"],
      ["a slash", "camp/1"],
      ["blank", "   "],
      ["a fraction", 1.5],
      ["an integer beyond 2^53 (already rounded by JSON.parse)", 2 ** 53],
      ["a boolean", true],
      ["an object", { id: "c" }],
      ["an array", ["c"]],
    ])("refuses %s", (_label, v) => {
      apiError(() => read({ [name]: v }), "AUD_ERR_BAD_FIELD", name);
    });
  });

  it.each([
    ["129 characters", "i".repeat(129)],
    ["a dollar sign", "imp$1"],
    ["a percent sign", "imp%201"],
    ["a slash", "a/b"],
    ["a space", "imp 1"],
    ["a fraction", 2.5],
    ["an integer beyond 2^53", 2 ** 60],
    ["a boolean", false],
  ])("refuses an imp with %s", (_label, imp) => {
    apiError(() => read({ imp }), "AUD_ERR_BAD_FIELD", "imp");
  });

  it("says when an exchange left a macro unexpanded", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an exchange's macro, as a pixel URL carries it
    const impMacro = "${AUCTION_IMP_ID}";
    // biome-ignore lint/suspicious/noTemplateCurlyInString: likewise
    const campaignMacro = "${CAMPAIGN}";
    const e = apiError(() => read({ imp: impMacro }), "AUD_ERR_BAD_FIELD", "imp");
    expect(e.message).toMatch(/unexpanded \$\{…\} macro/);
    const c = apiError(
      () => read({ imp: "imp-1", campaign: campaignMacro }),
      "AUD_ERR_BAD_FIELD",
      "campaign",
    );
    expect(c.message).toMatch(/unexpanded/);
  });

  it("gives a plain reason otherwise", () => {
    const e = apiError(() => read({ campaign: "a b" }), "AUD_ERR_BAD_FIELD", "campaign");
    expect(e.message).toBe("campaign must be 1-64 letters, digits, '.', '_', ':' or '-'");
  });
});

describe("readImpressionEvent: ts", () => {
  it.each([
    ["seconds as a string", String(NOW - 60), NOW - 60],
    ["seconds as a number", NOW - 60, NOW - 60],
    ["milliseconds as a string", String((NOW - 60) * 1000 + 999), NOW - 60],
    ["milliseconds as a number", (NOW - 60) * 1000 + 999, NOW - 60],
    ["leading zeros", `000${NOW}`, NOW],
  ])("reads %s", (_label, ts, sec) => {
    expect(read({ ts }).tsSec).toBe(sec);
  });

  it.each([
    ["absent", undefined],
    ["empty", ""],
    ["null", null],
  ])("is now when %s", (_label, ts) => {
    expect(read({ ts }).tsSec).toBe(NOW);
  });

  it("defaults to whole seconds when now has a fraction", () => {
    expect(readImpressionEvent(fields(), NOW + 0.75, WITH_IDS).tsSec).toBe(NOW);
  });

  it("accepts up to 300 s in the future, in seconds and in milliseconds", () => {
    expect(read({ ts: NOW + 300 }).tsSec).toBe(NOW + 300);
    expect(read({ ts: (NOW + 300) * 1000 + 999 }).tsSec).toBe(NOW + 300);
  });

  it.each([
    ["seconds", NOW + 301],
    ["milliseconds", (NOW + 301) * 1000],
    ["a year ahead", NOW + 365 * DAY],
  ])("refuses more than 300 s in the future (%s)", (_label, ts) => {
    const e = apiError(() => read({ ts }), "AUD_ERR_BAD_FIELD", "ts");
    expect(e.message).toBe("ts must be at most 300 s ahead of the server clock");
  });

  it("accepts exactly 90 days old", () => {
    expect(read({ ts: NOW - 90 * DAY }).tsSec).toBe(NOW - 90 * DAY);
    expect(read({ ts: String((NOW - 90 * DAY) * 1000) }).tsSec).toBe(NOW - 90 * DAY);
  });

  it.each([
    ["seconds", NOW - 90 * DAY - 1],
    ["milliseconds", (NOW - 90 * DAY - 1) * 1000],
    ["zero", 0],
    ["a small number", Math.floor(NOW / 1000)],
  ])("refuses older than 90 days (%s)", (_label, ts) => {
    const e = apiError(() => read({ ts }), "AUD_ERR_BAD_FIELD", "ts");
    expect(e.message).toBe("ts must be within the last 90 days");
  });

  it.each([
    ["a fraction", NOW + 0.5],
    ["a fraction as text", `${NOW}.5`],
    ["exponent notation", "1.75e9"],
    ["a negative number", -1],
    ["a negative number as text", "-1"],
    ["a plus sign", `+${NOW}`],
    ["surrounding spaces", ` ${NOW} `],
    ["words", "yesterday"],
    ["an ISO date", "2025-06-15T12:00:00Z"],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["beyond 2^53", 2 ** 60],
    ["17 digits", "1".repeat(17)],
    ["a boolean", true],
    ["an object", { sec: NOW }],
  ])("refuses %s", (_label, ts) => {
    const e = apiError(() => read({ ts }), "AUD_ERR_BAD_FIELD", "ts");
    expect(e.message).toBe("ts must be whole epoch seconds or milliseconds");
  });
});

describe("queryFields", () => {
  it("is empty for an empty query", () => {
    expect(queryFields("")).toEqual({});
  });

  it("decodes keys and values, '+' as a space and %2B as a plus", () => {
    expect(queryFields("a=1&b=x+y&c=p%2Bq&d=%E2%82%AC&line%5Fitem=li")).toEqual({
      a: "1",
      b: "x y",
      c: "p+q",
      d: "€",
      line_item: "li",
    });
  });

  it("keeps the first value of a repeated key", () => {
    expect(queryFields("imp=first&imp=second&imp=third")).toEqual({ imp: "first" });
  });

  it("takes a key without '=' as empty, keeps '=' inside values and skips empty parts", () => {
    expect(queryFields("flag&a=b=c&&=orphan&z=")).toEqual({ flag: "", a: "b=c", z: "" });
  });

  it("treats __proto__ and constructor as ordinary keys", () => {
    const f = queryFields("__proto__=x&constructor=y&toString=z");
    expect(Object.entries(f)).toEqual([
      ["__proto__", "x"],
      ["constructor", "y"],
      ["toString", "z"],
    ]);
  });

  it.each([
    ["a bad hex escape in a value", "imp=a%zz"],
    ["a cut-off escape", "imp=abc%2"],
    ["a bad escape in a key", "im%p=1"],
    ["an escape decoding to invalid UTF-8", "id=%FF"],
    ["a cut-off multi-byte sequence", "id=%E2%82"],
    ["a bad escape in a repeated key's later value", "imp=ok&imp=%"],
  ])("refuses %s, naming the query", (_label, q) => {
    apiError(() => queryFields(q), "AUD_ERR_BAD_FIELD", "query");
  });

  it("feeds readImpressionEvent: a pixel's query string end to end", () => {
    const q = `type=bu&id=Jane%2BDoe&campaign=camp-1&line_item=&imp=1a2b%3A3&ts=${NOW * 1000}&cb=99`;
    expect(readImpressionEvent(queryFields(q), NOW, WITH_IDS)).toEqual({
      personKey: "bu:Jane+Doe",
      campaign: "camp-1",
      lineItem: null,
      creative: null,
      imp: "1a2b:3",
      tsSec: NOW,
      notice: null,
    });
  });

  it("carries a token through URL decoding unchanged", () => {
    const token = issue(IFA_KEY);
    const e = readImpressionEvent(queryFields(`token=${token}&campaign=c&imp=i`), NOW, TOKEN_ONLY);
    expect(e.personKey).toBe(IFA_KEY);
  });
});
