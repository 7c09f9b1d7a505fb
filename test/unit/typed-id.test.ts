import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  hashEmail,
  MAX_ID_LENGTH,
  normaliseType,
  toTypedId,
  typeOfKey,
} from "../../src/identity/typed-id.ts";
import { idHashPrefix } from "../../src/privacy/log-redaction.ts";

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

describe("normaliseType", () => {
  it.each(["bu", "ifa", "hem", "email"])("accepts the plain type %s", (t) => {
    expect(normaliseType(t)).toBe(t);
  });

  it("lower-cases and trims", () => {
    expect(normaliseType(" IFA ")).toBe("ifa");
    expect(normaliseType("Bu")).toBe("bu");
    expect(normaliseType("XU:SSP-One")).toBe("xu:ssp-one");
    expect(normaliseType("EID:UIDAPI.com")).toBe("eid:uidapi.com");
  });

  it("accepts xu: and eid: namespaces", () => {
    expect(normaliseType("xu:ssp1")).toBe("xu:ssp1");
    expect(normaliseType("eid:id5-sync.com")).toBe("eid:id5-sync.com");
    expect(normaliseType("eid:a_b.c-d")).toBe("eid:a_b.c-d");
    expect(normaliseType(`xu:${"a".repeat(64)}`)).toBe(`xu:${"a".repeat(64)}`);
  });

  it.each([
    ["unknown plain type", "cookie"],
    ["empty", ""],
    ["unknown family", "foo:bar"],
    ["xu without namespace", "xu:"],
    ["eid without namespace", "eid:"],
    ["namespace starting with punctuation", "eid:.uidapi.com"],
    ["namespace with a space", "xu:ssp one"],
    ["namespace with a colon", "eid:a:b"],
    ["namespace longer than 64", `xu:${"a".repeat(65)}`],
    ["a plain type with a namespace", "ifa:x"],
  ])("rejects %s", (_label, t) => {
    expect(normaliseType(t)).toBeNull();
  });
});

describe("toTypedId", () => {
  it("lower-cases an ifa", () => {
    expect(toTypedId("ifa", "6D92078A-8246-4BA4-AE5B-76104861E7DC")).toEqual({
      ok: true,
      key: "ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc",
      type: "ifa",
    });
  });

  it("trims the id", () => {
    expect(toTypedId("bu", "  abc  ")).toEqual({ ok: true, key: "bu:abc", type: "bu" });
  });

  it("keeps the case of other ids", () => {
    expect(toTypedId("bu", "AbC")).toEqual({ ok: true, key: "bu:AbC", type: "bu" });
    expect(toTypedId("xu:ssp", "UsEr")).toEqual({ ok: true, key: "xu:ssp:UsEr", type: "xu:ssp" });
    expect(toTypedId("EID:UIDAPI.com", "Tok+/=")).toEqual({
      ok: true,
      key: "eid:uidapi.com:Tok+/=",
      type: "eid:uidapi.com",
    });
  });

  it.each(["00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000"])(
    "rejects the all-zero ifa %s",
    (id) => {
      expect(toTypedId("ifa", id)).toEqual({ ok: false, reason: "all-zero ifa" });
    },
  );

  it("accepts an ifa that is only partly zero", () => {
    expect(toTypedId("ifa", "00000000-0000-0000-0000-000000000001")).toEqual({
      ok: true,
      key: "ifa:00000000-0000-0000-0000-000000000001",
      type: "ifa",
    });
  });

  it("hashes an e-mail (trimmed, lower-cased) to hem:<sha256>", () => {
    const expected = `hem:${sha256("jane.doe@example.com")}`;
    expect(toTypedId("email", "jane.doe@example.com")).toEqual({ ok: true, key: expected, type: "hem" });
    expect(toTypedId("email", " Jane.Doe@Example.com ")).toEqual({ ok: true, key: expected, type: "hem" });
    expect(hashEmail(" Jane.Doe@Example.com ")).toBe(sha256("jane.doe@example.com"));
  });

  it("rejects an e-mail without '@'", () => {
    expect(toTypedId("email", "jane.doe.example.com")).toEqual({ ok: false, reason: "email without '@'" });
  });

  it("accepts a hem of 64 hex characters, lower-cased", () => {
    const h = sha256("x");
    expect(toTypedId("hem", h.toUpperCase())).toEqual({ ok: true, key: `hem:${h}`, type: "hem" });
    expect(toTypedId("hem", h)).toEqual({ ok: true, key: `hem:${h}`, type: "hem" });
  });

  it.each([
    ["63 characters", "a".repeat(63)],
    ["65 characters", "a".repeat(65)],
    ["non-hex characters", "g".repeat(64)],
    ["a raw e-mail", "jane.doe@example.com"],
  ])("rejects a hem of %s", (_label, id) => {
    expect(toTypedId("hem", id)).toEqual({ ok: false, reason: "hem must be 64 hex characters (SHA-256)" });
  });

  it.each(["", "   "])("rejects an empty id %j", (id) => {
    expect(toTypedId("bu", id)).toEqual({ ok: false, reason: "empty id" });
  });

  it.each([
    ["a closing brace (it would end the Cluster hash tag of p:{bu:...} early)", "a}:b"],
    ["an opening brace", "a{b"],
    ["a tab inside", "a\tb"],
    ["a newline inside", "a\nb"],
    ["NUL", "a\u0000"],
    ["DEL", "\u007fa"],
    ["a C1 control", "a\u009fb"],
  ])("rejects an id holding %s, whatever its type", (_label, id) => {
    for (const type of ["bu", "xu:ssp", "eid:id5-sync.com", "ifa"]) {
      expect(toTypedId(type, id)).toEqual({ ok: false, reason: "id holds '{', '}' or a control character" });
    }
  });

  it("keeps accepting the punctuation real IDs carry", () => {
    expect(toTypedId("bu", "a:b|c=d/e+f~g%20")).toEqual({ ok: true, key: "bu:a:b|c=d/e+f~g%20", type: "bu" });
  });

  it("accepts an id of exactly MAX_ID_LENGTH and rejects one longer", () => {
    expect(MAX_ID_LENGTH).toBe(256);
    expect(toTypedId("bu", "x".repeat(256))).toEqual({ ok: true, key: `bu:${"x".repeat(256)}`, type: "bu" });
    expect(toTypedId("bu", "x".repeat(257))).toEqual({ ok: false, reason: "id longer than 256 characters" });
  });

  it("rejects an unknown type, quoting it only when it looks like a type name", () => {
    expect(toTypedId("cookie", "abc")).toEqual({ ok: false, reason: "unknown id type 'cookie'" });
    expect(toTypedId("xu:", "abc")).toEqual({ ok: false, reason: "unknown id type 'xu:'" });
    // Longer than any type name: shown by a hash prefix only (sha256("zzz...")), as any other odd value.
    expect(toTypedId("z".repeat(100), "abc")).toEqual({
      ok: false,
      reason: `unknown id type #${idHashPrefix("z".repeat(100))}`,
    });
  });

  it("never quotes an e-mail, an ID or a key found where the type belongs (swapped columns)", () => {
    expect(toTypedId("alice@example.com", "email")).toEqual({
      ok: false,
      reason: "unknown id type <e-mail>",
    });
    const uuid = "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35";
    expect(toTypedId(uuid, "bu")).toEqual({ ok: false, reason: `unknown id type #${idHashPrefix(uuid)}` });
    expect(idHashPrefix(uuid)).toMatch(/^[0-9a-f]{8}$/);
    const token = "sk_live_0123456789abcdef";
    expect(toTypedId(token, "bu")).toEqual({ ok: false, reason: `unknown id type #${idHashPrefix(token)}` });
  });

  it("checks the type before the id", () => {
    expect(toTypedId("nope", "")).toEqual({ ok: false, reason: "unknown id type 'nope'" });
  });
});

describe("typeOfKey", () => {
  it.each([
    ["bu:abc", "bu"],
    ["ifa:6d92078a-8246-4ba4-ae5b-76104861e7dc", "ifa"],
    [`hem:${"a".repeat(64)}`, "hem"],
    ["xu:ssp1:user-9", "xu:ssp1"],
    ["eid:uidapi.com:abc", "eid:uidapi.com"],
    ["eid:liveramp.com:XY:1:2", "eid:liveramp.com"],
    ["bu:a:b", "bu"],
  ])("%s -> %s", (key, type) => {
    expect(typeOfKey(key)).toBe(type);
  });

  it("gives back the type toTypedId used", () => {
    for (const [t, id] of [
      ["ifa", "ABC"],
      ["xu:ssp", "u:1"],
      ["eid:id5-sync.com", "ID5*xyz"],
      ["email", "a@b.c"],
    ] as const) {
      const r = toTypedId(t, id);
      if (!r.ok) throw new Error(r.reason);
      expect(typeOfKey(r.key)).toBe(r.type);
    }
  });
});
