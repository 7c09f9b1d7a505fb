// `audience loadtest`'s inputs: the ids file and the bid request bodies made from templates.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BodiesError,
  BodyFactory,
  DEFAULT_BODIES_DIR,
  loadTemplates,
  prng,
  templateOf,
} from "../../src/loadtest/bodies.ts";
import { parseIdsCsv, splitCsvLine } from "../../src/loadtest/ids-file.ts";

const dir = mkdtempSync(join(tmpdir(), "audience-loadtest-inputs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// biome-ignore lint/suspicious/noExplicitAny: bodies are asserted field by field
const parse = (s: string): any => JSON.parse(s);

describe("ids file", () => {
  it("splits CSV lines, quoted fields included", () => {
    expect(splitCsvLine("bu,abc")).toEqual(["bu", "abc"]);
    expect(splitCsvLine('bu,"a,b"')).toEqual(["bu", "a,b"]);
    expect(splitCsvLine('"eid:uidapi.com","say ""hi"""')).toEqual(["eid:uidapi.com", 'say "hi"']);
    expect(splitCsvLine("bu,")).toEqual(["bu", ""]);
    expect(splitCsvLine("bu")).toEqual(["bu"]);
    expect(splitCsvLine('bu,"open')).toBeNull();
    expect(splitCsvLine('bu,"a"b')).toBeNull();
  });

  it("reads type,id lines with an optional header, normalising the type and keeping the ID as given", () => {
    const text = `\ufefftype,id\nbu,abc\n\nIFA, 6D92078A-8246-4BA4-AE5B-76104861E7DC \r\neid:UIDapi.com,tok+/=\nxu:demo-exchange,dx-1\nhem,${"A".repeat(64)}\n`;
    const f = parseIdsCsv(text);
    expect(f.errors).toEqual([]);
    expect(f.ids).toEqual([
      { type: "bu", id: "abc", line: 2 },
      { type: "ifa", id: "6D92078A-8246-4BA4-AE5B-76104861E7DC", line: 4 },
      { type: "eid:uidapi.com", id: "tok+/=", line: 5 },
      { type: "xu:demo-exchange", id: "dx-1", line: 6 },
      { type: "hem", id: "A".repeat(64), line: 7 },
    ]);
  });

  it("names every malformed line by its number", () => {
    const text = [
      "bu,ok-1",
      "bu",
      "cookie,x",
      "bu,a,b",
      "ifa,00000000-0000-0000-0000-000000000000",
      'bu,"open',
      "bu,",
      "type,id",
      "bu,ok-2",
    ].join("\n");
    const f = parseIdsCsv(text);
    expect(f.ids.map((i) => [i.id, i.line])).toEqual([
      ["ok-1", 1],
      ["ok-2", 9],
    ]);
    expect(f.errors).toEqual([
      { line: 2, reason: "expected 2 fields (type,id), got 1" },
      { line: 3, reason: "unknown id type 'cookie'" },
      { line: 4, reason: "expected 2 fields (type,id), got 3" },
      { line: 5, reason: "all-zero ifa" },
      { line: 6, reason: "unclosed quote" },
      { line: 7, reason: "empty id" },
      // A header is only a header on the first line.
      { line: 8, reason: "unknown id type 'type'" },
    ]);
  });
});

const RICH = {
  id: "orig",
  user: {
    buyeruid: "B",
    id: "U",
    eids: [
      { source: "UIDapi.com", uids: [{ id: "T1" }, { id: "T2" }] },
      { source: "id5-sync.com", uids: [{ id: "I" }] },
    ],
    ext: { eids: [{ source: "liveramp.com", uids: [{ id: "L" }] }] },
  },
  device: { ifa: "F", lmt: 0 },
};

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TOKEN = /^[A-Za-z0-9+/]{43}=$/;

describe("bodies", () => {
  it("finds every ID place of a template, in the order of its JSON", () => {
    const t = templateOf("rich.json", RICH);
    expect(t?.slots).toEqual([
      "reqid",
      "bu",
      "xu",
      "eid:uidapi.com",
      "eid:uidapi.com",
      "eid:id5-sync.com",
      "eid:liveramp.com",
      "ifa",
    ]);
    expect(t?.parts.length).toBe(9);
    // An IFA under device.lmt = 1 is ignored by the service: it is only ever random.
    expect(templateOf("lmt.json", { id: "x", device: { ifa: "F", lmt: 1 } })?.slots).toEqual([
      "reqid",
      "noise",
    ]);
    expect(templateOf("no-id.json", { imp: [] })?.slots).toEqual(["reqid"]);
    expect(templateOf("array.json", [1, 2])).toBeNull();
  });

  it("puts each known ID where the template carries its kind, and random IDs elsewhere", () => {
    const t = templateOf("rich.json", RICH);
    if (t === null) throw new Error("no template");
    const known = [
      { type: "bu", id: "bu-1", line: 1 },
      { type: "ifa", id: "IFA-1", line: 2 },
      { type: "eid:uidapi.com", id: 'tok"q', line: 3 },
      { type: "xu:demo-exchange", id: "x-1", line: 4 },
      { type: "hem", id: "a".repeat(64), line: 5 },
      { type: "eid:criteo.com", id: "c-1", line: 6 },
    ];
    const f = new BodyFactory([t], known, { unknownShare: 0, seed: 7 });
    expect([...f.unused]).toEqual([
      ["hem", 1],
      ["eid:criteo.com", 1],
    ]);
    for (let n = 0; n < 3; n++) {
      const b = f.next();
      expect(b.unknown).toBe(false);
      expect(b.exchange).toBe("demo-exchange");
      const r = parse(b.body);
      expect(r.id).toBe(`lt-7-${n}`);
      expect(r.user.buyeruid).toBe("bu-1");
      expect(r.user.id).toBe("x-1");
      expect(r.device.ifa).toBe("IFA-1");
      expect(r.user.eids[0].uids.map((u: { id: string }) => u.id)).toEqual(['tok"q', 'tok"q']);
      // No known ID of these sources: random, in the shape of a token.
      expect(r.user.eids[1].uids[0].id).toMatch(TOKEN);
      expect(r.user.ext.eids[0].uids[0].id).toMatch(TOKEN);
      // Everything else as the template has it.
      expect(r.user.eids[0].source).toBe("UIDapi.com");
      expect(r.device.lmt).toBe(0);
    }
  });

  it("gives an unknown request random IDs only, never the template's", () => {
    const t = templateOf("rich.json", RICH);
    if (t === null) throw new Error("no template");
    const f = new BodyFactory([t], [{ type: "bu", id: "bu-1", line: 1 }], { unknownShare: 1, seed: 3 });
    const b = f.next();
    expect(b.unknown).toBe(true);
    expect(b.exchange).toBeNull();
    const r = parse(b.body);
    expect(r.user.buyeruid).toMatch(UUID_V4);
    expect(r.user.id).toMatch(UUID_V4);
    expect(r.device.ifa).toMatch(UUID_V4);
    expect(r.user.eids[0].uids[0].id).toMatch(TOKEN);
    expect(r.user.eids[0].uids[1].id).toMatch(TOKEN);
    expect(r.user.eids[0].uids[0].id).not.toBe(r.user.eids[0].uids[1].id);
  });

  it("makes the unknown share deterministic for a seed", () => {
    const templates = loadTemplates(DEFAULT_BODIES_DIR);
    const known = [{ type: "bu", id: "bu-1", line: 1 }];
    const unknownOf = (seed: number): number => {
      const f = new BodyFactory(templates, known, { unknownShare: 0.1, seed });
      let n = 0;
      for (let i = 0; i < 10_000; i++) if (f.next().unknown) n++;
      return n;
    };
    expect(unknownOf(42)).toBe(unknownOf(42));
    expect(unknownOf(42)).toBe(1037);
    expect(unknownOf(43)).toBe(1041);
    const a = new BodyFactory(templates, known, { unknownShare: 0.1, seed: 42 });
    const b = new BodyFactory(templates, known, { unknownShare: 0.1, seed: 42 });
    const c = new BodyFactory(templates, known, { unknownShare: 0.1, seed: 43 });
    const first = [a.next().body, a.next().body];
    expect([b.next().body, b.next().body]).toEqual(first);
    expect([c.next().body, c.next().body]).not.toEqual(first);
  });

  it("uses, with known IDs, only the samples that carry a place for them; without, all of them", () => {
    const templates = loadTemplates(DEFAULT_BODIES_DIR);
    expect(templates.map((t) => t.name)).toEqual([
      "audio.json",
      "coppa.json",
      "ctv-video.json",
      "eids-uid2-id5-rampid.json",
      "gdpr-2.5-ext.json",
      "gdpr-tcf.json",
      "lmt-device.json",
      "mobile-app-ifa.json",
      "multi-imp.json",
      "native.json",
      "openrtb-2.5-ext-eids.json",
      "us-privacy-gpp.json",
      "web-banner.json",
    ]);
    const onlyBu = new BodyFactory(templates, [{ type: "bu", id: "bu-1", line: 1 }], {
      unknownShare: 0,
      seed: 1,
    });
    expect(onlyBu.eligible.map((i) => templates[i]?.name)).toEqual([
      "coppa.json",
      "gdpr-tcf.json",
      "lmt-device.json",
      "multi-imp.json",
      "native.json",
      "openrtb-2.5-ext-eids.json",
      "us-privacy-gpp.json",
      "web-banner.json",
    ]);
    for (let i = 0; i < 200; i++) expect(parse(onlyBu.next().body).user.buyeruid).toBe("bu-1");
    const onlyIfa = new BodyFactory(templates, [{ type: "ifa", id: "ifa-1", line: 1 }], {
      unknownShare: 0,
      seed: 1,
    });
    // lmt-device.json carries an IFA the service ignores: it never gets the known one.
    expect(onlyIfa.eligible.map((i) => templates[i]?.name)).toEqual([
      "audio.json",
      "ctv-video.json",
      "gdpr-tcf.json",
      "mobile-app-ifa.json",
    ]);
    expect(new BodyFactory(templates, null, { unknownShare: 0, seed: 1 }).eligible.length).toBe(13);
  });

  it("refuses a bodies directory it cannot use, naming the file", () => {
    expect(() => loadTemplates(join(dir, "missing"))).toThrow(
      new BodiesError(`${join(dir, "missing")}: no such directory`),
    );
    const empty = join(dir, "empty");
    mkdirSync(empty);
    expect(() => loadTemplates(empty)).toThrow(new BodiesError(`${empty}: no *.json bid requests in it`));
    const bad = join(dir, "bad");
    mkdirSync(bad);
    writeFileSync(join(bad, "a.json"), "[1]");
    expect(() => loadTemplates(bad)).toThrow(
      new BodiesError(`${join(bad, "a.json")}: not a bid request (a JSON object)`),
    );
    writeFileSync(join(bad, "a.json"), "{oops");
    expect(() => loadTemplates(bad)).toThrow(/a\.json: not JSON: /);
  });

  it("draws the same 32-bit numbers for the same seed, everywhere", () => {
    const draw = (seed: number) => {
      const next = prng(seed);
      return [next(), next(), next()];
    };
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).toEqual([2442144158, 3238099751, 3819917871]);
    expect(draw(2)).not.toEqual(draw(1));
  });
});
