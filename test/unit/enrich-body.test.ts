// The enriched request written by inserting into the caller's bytes (write-enrichment.ts splicedRequest, over
// the positioned reader of bid-request-scan.ts) against the request parsed whole, enriched and written again
// (enrichedRequest + JSON.stringify): the same JSON value for every sample, every peer-corpus request and
// generated requests, and the same members read.
import { existsSync } from "node:fs";
import fc from "fast-check";
import type { Data } from "iab-openrtb/v26";
import { describe, expect, it } from "vitest";
import type { Json } from "../../src/json-fields.ts";
import { ENRICH_MEMBERS, parseJsonObject, readEnrichBody } from "../../src/lookup/request-parts.ts";
import {
  type Enrichment,
  enrichedRequest,
  planEnrichment,
  splicedRequest,
} from "../../src/openrtb/write-enrichment.ts";
import type { DealRuleDef } from "../../src/segments/deal-rule.ts";
import { dealRule } from "../helpers/deal-rule.ts";
import { visibleMembers } from "../helpers/member-spec.ts";
import { CORPUS_DIR, filesOf, SAMPLES_DIR } from "../helpers/request-files.ts";

const rule = (id: string, extra: Partial<DealRuleDef> = {}): DealRuleDef => dealRule(id, "x", extra);

const DATA: Data[] = [
  { name: "audience", segment: [{ id: "1001" }, { id: "1002" }] },
  { name: "acme", segment: [{ id: "7" }], ext: { segtax: 4 } },
];

/** The same value, -0 and 0 alike: the parsed path writes -0 as 0, the spliced one keeps what was sent. */
const normal = (text: string): unknown => JSON.parse(JSON.stringify(JSON.parse(text)));

/**
 * Enriches `bytes` both ways and compares; true when the spliced way was taken (not the fallback).
 * `data` and `dealsPerImp` are what the handler would have matched.
 */
function expectSame(bytes: Buffer, data: readonly Data[], dealsPerImp: readonly DealRuleDef[][]): boolean {
  const full = parseJsonObject(bytes);
  const { body, ends } = readEnrichBody(bytes);
  expect(visibleMembers(body, ENRICH_MEMBERS)).toEqual(visibleMembers(full, ENRICH_MEMBERS));
  const plan: Enrichment = planEnrichment(full, data, dealsPerImp);
  // The plan depends only on members enrich reads: the same from the reduced body.
  expect(planEnrichment(body, data, dealsPerImp)).toEqual(plan);
  const want = normal(JSON.stringify(enrichedRequest(full, plan)));
  const spliced = ends === null ? null : splicedRequest(bytes, body, ends, plan);
  if (spliced === null) return false;
  expect(normal(spliced.toString("utf8")), bytes.toString("utf8")).toEqual(want);
  return true;
}

const dealsFor = (body: Json, k: number): DealRuleDef[][] =>
  (Array.isArray(body.imp) ? body.imp : []).map((_, i) =>
    [rule(`d-${i}-a`, { wseat: ["s1"] }), rule(`d-${i}-b`), rule("d-held")].slice(0, (i + k) % 4),
  );

describe("splicedRequest", () => {
  it("writes every OpenRTB sample's enrichment as the whole-request writer does, without its fallback", () => {
    for (const { name, bytes } of filesOf(SAMPLES_DIR)) {
      const full = parseJsonObject(bytes);
      for (let k = 0; k < 3; k++)
        expect(expectSame(bytes, k === 0 ? [] : DATA.slice(0, k), dealsFor(full, k)), name).toBe(true);
    }
  });

  it.skipIf(!existsSync(CORPUS_DIR))("does the same for every peer-corpus request it can read", () => {
    let spliced = 0;
    let total = 0;
    for (const { bytes } of filesOf(CORPUS_DIR)) {
      let full: Json;
      try {
        full = parseJsonObject(bytes);
      } catch {
        continue;
      }
      total++;
      if (expectSame(bytes, DATA, dealsFor(full, 1))) spliced++;
    }
    // 408 requests, 4 of them not a JSON object (lookup-body.test.ts); none of the others needs the fallback
    // (a caller's own entry to extend, or a null user, pmp or deals to replace).
    expect(total).toBe(404);
    expect(spliced).toBe(404);
  });

  it("extends what is there: user.data, pmp.deals; adds user, data, pmp, deals where missing", () => {
    const cases: [string, string][] = [
      ['{"imp":[{"id":"1"}]}', '{"imp":[{"id":"1","pmp":{"deals":[D]}}],"user":{"data":[E]}}'],
      [
        '{"imp":[{"id":"1","pmp":{}}],"user":{}}',
        '{"imp":[{"id":"1","pmp":{"deals":[D]}}],"user":{"data":[E]}}',
      ],
      [
        '{ "imp" : [ { "id" : "1" , "pmp" : { "deals" : [ ] } } ] , "user" : { "data" : [ ] } }',
        '{ "imp" : [ { "id" : "1" , "pmp" : { "deals" : [ D] } } ] , "user" : { "data" : [ E] } }',
      ],
      [
        '{"imp":[{"id":"1","pmp":{"private_auction":1,"deals":[{"id":"x"}]}}],"user":{"id":"u","data":[{"name":"z"}]}}',
        '{"imp":[{"id":"1","pmp":{"private_auction":1,"deals":[{"id":"x"},D]}}],"user":{"id":"u","data":[{"name":"z"},E]}}',
      ],
    ];
    const d = rule("d1");
    const entry = DATA[0] as Data;
    for (const [input, expected] of cases) {
      const bytes = Buffer.from(input);
      const { body, ends } = readEnrichBody(bytes);
      const plan = planEnrichment(body, [entry], [[d]]);
      const out = splicedRequest(bytes, body, ends as ReadonlyMap<object, number>, plan);
      const D = JSON.stringify({ id: "d1", bidfloor: 1.5, bidfloorcur: "USD", at: 1 });
      expect(out?.toString()).toBe(expected.replace("D", D).replace("E", JSON.stringify(entry)));
    }
  });

  it("leaves to the whole-request writer what it cannot insert: an entry to extend, a null to replace", () => {
    const d = rule("d1");
    for (const input of [
      '{"imp":[{"id":"1"}],"user":{"data":[{"name":"audience","segment":[{"id":"1001"}]}]}}',
      '{"imp":[{"id":"1"}],"user":null}',
      '{"imp":[{"id":"1"}],"user":{"data":null}}',
      '{"imp":[{"id":"1","pmp":null}]}',
      '{"imp":[{"id":"1","pmp":{"deals":null}}]}',
    ]) {
      const bytes = Buffer.from(input);
      const { body, ends } = readEnrichBody(bytes);
      const plan = planEnrichment(body, DATA, [[d]]);
      expect(splicedRequest(bytes, body, ends as ReadonlyMap<object, number>, plan), input).toBeNull();
      expectSame(bytes, DATA, [[d]]);
    }
  });

  it("never replaces a caller's user.data entry whose segment is not a list: its own entry goes beside it", () => {
    const input = '{"id":"r","imp":[{"id":"1"}],"user":{"data":[{"name":"audience","segment":"1001"}]}}';
    const bytes = Buffer.from(input);
    const { body } = readEnrichBody(bytes);
    const plan = planEnrichment(body, [DATA[0] as Data], [[]]);
    expect(plan.data).toEqual([{ entry: DATA[0], existing: null }]);
    expect(expectSame(bytes, [DATA[0] as Data], [[]])).toBe(true);
    expect(JSON.parse(JSON.stringify(enrichedRequest(parseJsonObject(bytes), plan))).user.data).toEqual([
      { name: "audience", segment: "1001" },
      DATA[0],
    ]);
  });

  it("never sends a byte that is not UTF-8: such a request is written whole, with replacement characters", () => {
    const bytes = Buffer.concat([
      Buffer.from('{"imp":[{"id":"1"}],"site":{"name":"a'),
      Buffer.from([0xff]),
      Buffer.from('"}}'),
    ]);
    const { body, ends } = readEnrichBody(bytes);
    expect(ends).not.toBeNull();
    for (const plan of [planEnrichment(body, [], [[]]), planEnrichment(body, DATA, [[rule("d1")]])])
      expect(splicedRequest(bytes, body, ends as ReadonlyMap<object, number>, plan)).toBeNull();
  });

  it("gives the same value for 20,000 generated requests", () => {
    const anyJson = fc.jsonValue({ maxDepth: 3 });
    const deal = fc.record({
      id: fc.constantFrom("d-0-a", "x", "d-held"),
      bidfloor: fc.double({ noNaN: true }),
    });
    const imp = fc.record(
      {
        id: fc.string({ unit: "binary", maxLength: 6 }),
        pmp: fc.oneof(
          fc.constant(null),
          fc.record(
            {
              deals: fc.oneof(fc.constant(null), fc.array(deal, { maxLength: 3 })),
              private_auction: fc.nat(1),
            },
            { requiredKeys: [] },
          ),
        ),
        banner: fc.record({ w: fc.nat(999), h: fc.nat(999) }, { requiredKeys: [] }),
        video: fc.record({ w: fc.nat(999) }, { requiredKeys: [] }),
        ext: anyJson,
      },
      { requiredKeys: ["id"] },
    );
    const dataEntry = fc.record(
      {
        name: fc.constantFrom("audience", "acme", "other"),
        segment: fc.array(fc.record({ id: fc.constantFrom("1001", "7", "9") }), { maxLength: 2 }),
        ext: fc.record({ segtax: fc.constantFrom(4, 6) }),
      },
      { requiredKeys: [] },
    );
    const request = fc.record(
      {
        id: fc.string({ unit: "grapheme", maxLength: 8 }),
        imp: fc.array(imp, { minLength: 1, maxLength: 3 }),
        user: fc.oneof(
          fc.constant(null),
          fc.record(
            {
              id: fc.string({ unit: "grapheme", maxLength: 8 }),
              data: fc.oneof(fc.constant(null), fc.array(dataEntry, { maxLength: 3 })),
              ext: anyJson,
            },
            { requiredKeys: [] },
          ),
        ),
        site: anyJson,
        regs: fc.record({ coppa: fc.nat(1), gdpr: fc.nat(1) }, { requiredKeys: [] }),
      },
      { requiredKeys: ["imp"] },
    );
    let spliced = 0;
    fc.assert(
      fc.property(
        request,
        fc.constantFrom(undefined, 1, 2, "\t"),
        fc.nat(2),
        fc.nat(3),
        (req, indent, nData, k) => {
          const bytes = Buffer.from(JSON.stringify(req, null, indent));
          const deals = (req.imp as unknown[]).map((_, i) =>
            [rule(`d-${i}-a`), rule("x"), rule("d-held")].slice(0, (i + k) % 4),
          );
          if (expectSame(bytes, DATA.slice(0, nData), deals)) spliced++;
        },
      ),
      { numRuns: 20_000 },
    );
    // The generator makes the fallback's cases (null user, data, pmp or deals; an entry to extend) often, on
    // purpose: about a fifth are written by insertion (some 3,800 when this was written), enough
    // of both ways to compare.
    expect(spliced).toBeGreaterThan(2_000);
  });
});
