import { describe, expect, it } from "vitest";
import { configSummary, loadConfig } from "../../src/config.ts";
import { ANONYMOUS, callerOf, mayReceive, parseEnrichCallers } from "../../src/enrich/enrich-callers.ts";

const KEY_A = "caller-a-key-0000000001";
const KEY_B = "caller-b-key-0000000002";

describe("ENRICH_CALLERS", () => {
  it("maps keys to callers and the providers each may receive", () => {
    const { callers, problems } = parseEnrichCallers(`${KEY_A}=ssp-a:partnerx|*, ${KEY_B}=ssp-b:acme`);
    expect(problems).toEqual([]);
    const a = callerOf(callers, KEY_A);
    const b = callerOf(callers, KEY_B);
    expect(a?.name).toBe("ssp-a");
    expect(callerOf(callers, "caller-a-key-0000000009")).toBeNull();
    expect(callerOf(callers, "")).toBeNull();
    // Second-party data only to the partner that names its provider; `*` opens first and third parties.
    expect(mayReceive(a as never, "partnerx", "second")).toBe(true);
    expect(mayReceive(a as never, "acme", "third")).toBe(true);
    expect(mayReceive(a as never, "other", "second")).toBe(false);
    expect(mayReceive(b as never, "acme", "third")).toBe(true);
    expect(mayReceive(b as never, "crm", "first")).toBe(false);
    expect(mayReceive(ANONYMOUS, "crm", "first")).toBe(true);
    expect(mayReceive(ANONYMOUS, "partnerx", "second")).toBe(false);
  });

  it("names each wrong entry without echoing its key", () => {
    const { problems } = parseEnrichCallers(
      `short=x:*,${KEY_A}=bad name:*,${KEY_B}=ok:bad provider,${KEY_A}x,${KEY_B}=ok:*,${KEY_B}=again:*`,
    );
    expect(problems).toEqual([
      "entry 1 (sh…): a key is at least 16 of A-Z a-z 0-9 . _ ~ + / -",
      "entry 2 (call…): caller name 'bad name' is not valid",
      "entry 3 (call…): provider 'bad provider' is not valid",
      "entry 4 (call…) must be <key>=<caller>:<providers>",
      "entry 6 (call…): the key is listed twice",
    ]);
    expect(() => loadConfig({ ENRICH_CALLERS: "short=x:*" })).toThrow(/ENRICH_CALLERS entry 1 \(sh…\)/);
    expect(() => loadConfig({ ENRICH_CALLERS: "short=x:*" })).not.toThrow(/short=/);
  });

  it("gives LOOKUP_CALLERS the same form, errors and redaction", () => {
    expect(() => loadConfig({ LOOKUP_CALLERS: "short=x:*" })).toThrow(/LOOKUP_CALLERS entry 1 \(sh…\)/);
    expect(() => loadConfig({ LOOKUP_CALLERS: "short=x:*" })).not.toThrow(/short=/);
    const config = loadConfig({ LOOKUP_CALLERS: "dsp-one-key-0000001=dsp-one:partner|*" });
    expect([...config.lookupCallers]).toEqual([
      ["dsp-one-key-0000001", { name: "dsp-one", providers: new Set(["partner"]), allOpen: true }],
    ]);
    expect(configSummary(config).lookupCallers).toBe("1 set");
  });
});
