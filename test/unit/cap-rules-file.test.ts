import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { formatWindow, parseWindow, scopeKey } from "../../src/capping/cap-rule.ts";
import { readCapRules } from "../../src/capping/cap-rules-file.ts";
import { IngestFileError } from "../../src/ingest/record-reader.ts";

const read = (text: string, format: "csv" | "ndjson" = "csv") => readCapRules(Readable.from([text]), format);

describe("cap windows", () => {
  it.each([
    ["30m", 1_800],
    ["1h", 3_600],
    ["24h", 86_400],
    ["7d", 604_800],
    [" 90D ", 7_776_000],
    ["lifetime", null],
  ])("parses %s", (text, sec) => {
    expect(parseWindow(text)).toBe(sec);
  });

  it.each(["", "1w", "0m", "59s", "91d", "1.5h", "-1h", "h"])("rejects '%s' with a reason", (text) => {
    expect(typeof parseWindow(text)).toBe("string");
  });

  it("writes windows back in their largest whole unit", () => {
    expect([1_800, 3_600, 86_400, 90_000, null].map(formatWindow)).toEqual([
      "30m",
      "1h",
      "1d",
      "25h",
      "lifetime",
    ]);
  });
});

describe("readCapRules", () => {
  it("builds one rule per campaign / line item / creative, windows shortest first, lifetime last", async () => {
    const { rules, errors } = await read(
      [
        "campaign,window,max,line_item,creative",
        "c1,lifetime,20,,",
        "c1,24h,10,,",
        "c1,1h,3,,",
        "c1,1h,1,li-9,",
        "c2,7d,5,li-1,cr-1",
      ].join("\n"),
    );
    expect(errors).toEqual([]);
    expect(rules).toEqual([
      {
        campaign: "c1",
        lineItem: null,
        creative: null,
        windows: [
          { windowSec: 3_600, max: 3 },
          { windowSec: 86_400, max: 10 },
          { windowSec: null, max: 20 },
        ],
      },
      { campaign: "c1", lineItem: "li-9", creative: null, windows: [{ windowSec: 3_600, max: 1 }] },
      { campaign: "c2", lineItem: "li-1", creative: "cr-1", windows: [{ windowSec: 604_800, max: 5 }] },
    ]);
    expect(rules.map(scopeKey)).toEqual(["c1||", "c1|li-9|", "c2|li-1|cr-1"]);
  });

  it("reports every bad row with its line: campaign, window, max, ids, a window given twice", async () => {
    const { rules, errors } = await read(
      [
        "campaign,window,max,line_item",
        "c1,1h,3,", // 2 ok
        "bad campaign,1h,3,", // 3
        "c1,1w,3,", // 4
        "c1,24h,0,", // 5
        "c1,24h,2.5,", // 6
        "c1,1h,9,", // 7 duplicate of line 2
        "c1,24h,5,li/1", // 8
        "c1,24h,5", // 9 too few fields
      ].join("\n"),
    );
    expect(errors.map((e) => e.line)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(errors.find((e) => e.line === 7)?.reason).toBe(
      "window 1h given twice for this campaign (first at line 2)",
    );
    expect(errors.find((e) => e.line === 4)?.reason).toMatch(/window must be like 30m/);
    expect(errors.find((e) => e.line === 5)?.reason).toMatch(/max must be a whole number from 1/);
    expect(errors.find((e) => e.line === 8)?.reason).toMatch(/line_item must be/);
    expect(rules).toHaveLength(1);
  });

  it("reads NDJSON lines with the same keys", async () => {
    const { rules, errors } = await read(
      '{"campaign":"c9","window":"30m","max":2}\n{"campaign":"c9","window":"lifetime","max":4}\n',
      "ndjson",
    );
    expect(errors).toEqual([]);
    expect(rules[0]?.windows).toEqual([
      { windowSec: 1_800, max: 2 },
      { windowSec: null, max: 4 },
    ]);
  });

  it("refuses a header without the required columns", async () => {
    await expect(read("campaign,max\nc1,3\n")).rejects.toBeInstanceOf(IngestFileError);
  });
});
