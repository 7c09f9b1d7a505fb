import { readdirSync, readFileSync, statSync } from "node:fs";
import type { BidRequest, EID } from "iab-openrtb/v26";
import { describe, expect, it } from "vitest";
import { loadBidRequestValidator, OPENRTB_SCHEMA_DIR } from "./helpers/openrtb-schema.ts";
import { importedSamples, typedSamples } from "./openrtb-samples.types.ts";

const SAMPLES_DIR = new URL("../openrtb-samples/", import.meta.url);
const UPSTREAM_EXAMPLES_DIR = new URL("examples/bid-requests/", OPENRTB_SCHEMA_DIR);
const DATASET = new URL("../data/demo-memberships.ndjson", import.meta.url);

const validate = loadBidRequestValidator();

function jsonFiles(dir: URL): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort();
}

function readJson(dir: URL, name: string): unknown {
  return JSON.parse(readFileSync(new URL(name, dir), "utf8"));
}

const sampleFiles = jsonFiles(SAMPLES_DIR);
const upstreamExamples = jsonFiles(UPSTREAM_EXAMPLES_DIR);

type TypedId = { type: string; id: string };

/** The IDs the service can look up without any HTTP header (user.id needs the exchange header). */
function typedIds(request: BidRequest): TypedId[] {
  const ids: TypedId[] = [];
  const { user, device } = request;
  if (user?.buyeruid) ids.push({ type: "bu", id: user.buyeruid });
  if (device?.ifa && device.lmt !== 1) ids.push({ type: "ifa", id: device.ifa.toLowerCase() });
  const eids = [...(user?.eids ?? []), ...((user?.ext?.eids as EID[] | undefined) ?? [])];
  for (const eid of eids) {
    for (const uid of eid.uids) ids.push({ type: `eid:${eid.source}`, id: uid.id });
  }
  return ids;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Asserts the fields the service reads have the shape the iab-openrtb types describe. */
function expectReadableShape(value: unknown): asserts value is BidRequest {
  expect(isObject(value)).toBe(true);
  const request = value as Record<string, unknown>;
  expect(typeof request.id).toBe("string");
  expect(Array.isArray(request.imp) && request.imp.length > 0).toBe(true);
  for (const imp of request.imp as unknown[]) expect(typeof (imp as { id?: unknown }).id).toBe("string");
  expect(Number.isInteger(request.tmax)).toBe(true);
  expect(Number.isInteger(request.at)).toBe(true);
  expect(request.cur).toEqual(["USD"]);

  const { user, device } = request;
  if (device !== undefined) {
    expect(isObject(device)).toBe(true);
    const { ifa, lmt } = device as Record<string, unknown>;
    if (ifa !== undefined) expect(typeof ifa).toBe("string");
    if (lmt !== undefined) expect([0, 1]).toContain(lmt);
  }
  if (user !== undefined) {
    expect(isObject(user)).toBe(true);
    const { id, buyeruid, eids, ext } = user as Record<string, unknown>;
    if (id !== undefined) expect(typeof id).toBe("string");
    if (buyeruid !== undefined) expect(typeof buyeruid).toBe("string");
    if (ext !== undefined) expect(isObject(ext)).toBe(true);
    for (const list of [eids, isObject(ext) ? ext.eids : undefined]) {
      if (list === undefined) continue;
      expect(Array.isArray(list)).toBe(true);
      for (const eid of list as unknown[]) {
        const { source, uids } = eid as Record<string, unknown>;
        expect(typeof source).toBe("string");
        expect(Array.isArray(uids) && uids.length > 0).toBe(true);
        for (const uid of uids as unknown[]) expect(typeof (uid as { id?: unknown }).id).toBe("string");
      }
    }
  }
}

type Membership = { type: string; id: string; segment: string; ttl?: number };

function loadDataset(): Map<string, Set<string>> {
  const segmentsById = new Map<string, Set<string>>();
  const lines = readFileSync(DATASET, "utf8").split("\n").filter(Boolean);
  for (const line of lines) {
    const m = JSON.parse(line) as Membership;
    const key = `${m.type} ${m.id}`;
    segmentsById.set(key, (segmentsById.get(key) ?? new Set()).add(m.segment));
  }
  return segmentsById;
}

describe("openrtb-samples", () => {
  it("has at least 10 samples", () => {
    expect(sampleFiles.length).toBeGreaterThanOrEqual(10);
  });

  it.each(sampleFiles)("%s is valid against the OpenRTB 2.6 BidRequest schema", (file) => {
    const result = validate(readJson(SAMPLES_DIR, file));
    expect(result.valid, `${file}:\n${result.errors}`).toBe(true);
  });

  it.each(upstreamExamples)("upstream example %s is valid against the same schema", (file) => {
    const result = validate(readJson(UPSTREAM_EXAMPLES_DIR, file));
    expect(result.valid, `${file}:\n${result.errors}`).toBe(true);
  });

  it("the validator rejects a broken request", () => {
    const broken = structuredClone(readJson(SAMPLES_DIR, "web-banner.json")) as Record<string, unknown>;
    delete broken.imp;
    broken.id = 42;
    const result = validate(broken);
    expect(result.valid).toBe(false);
    expect(result.errors).toContain("must have required property 'imp'");
    expect(result.errors).toContain("/id must be string");
  });

  it.each(sampleFiles)(
    "%s has the shape of the iab-openrtb types for the fields the service reads",
    (file) => {
      expectReadableShape(readJson(SAMPLES_DIR, file));
    },
  );

  it("every sample file is type-checked in openrtb-samples.types.ts, and the imports match the files", () => {
    expect(Object.keys(importedSamples).sort()).toEqual(sampleFiles);
    for (const [file, value] of Object.entries(importedSamples)) {
      expect(value, file).toEqual(readJson(SAMPLES_DIR, file));
    }
  });

  it.each(Object.keys(typedSamples))("the typed copy of %s equals the file", (file) => {
    expect(typedSamples[file]).toEqual(readJson(SAMPLES_DIR, file));
  });
});

describe("demo dataset", () => {
  const dataset = loadDataset();

  it("is well-formed NDJSON and stays small", () => {
    expect(statSync(DATASET).size).toBeLessThan(100 * 1024);
    const lines = readFileSync(DATASET, "utf8").split("\n").filter(Boolean);
    for (const line of lines) {
      const m = JSON.parse(line) as Membership;
      expect(m.type, line).toMatch(/^(bu|ifa|hem|eid:[a-z0-9.-]+|xu:[a-z0-9.-]+)$/);
      expect(m.id, line).toEqual(expect.any(String));
      expect(m.segment, line).toMatch(/^\d+$/);
      if (m.ttl !== undefined) expect(Number.isInteger(m.ttl) && m.ttl > 0, line).toBe(true);
      if (m.type === "ifa") expect(m.id, line).toBe(m.id.toLowerCase());
      if (m.type === "hem") expect(m.id, line).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it.each(sampleFiles)("gives segments to at least one ID carried by %s", (file) => {
    const request = readJson(SAMPLES_DIR, file);
    expectReadableShape(request);
    const withSegments = typedIds(request).filter(({ type, id }) => dataset.has(`${type} ${id}`));
    expect(withSegments, `${file}: ${JSON.stringify(typedIds(request))}`).not.toHaveLength(0);
  });

  it("does not count device.ifa when device.lmt is 1", () => {
    const request = readJson(SAMPLES_DIR, "lmt-device.json");
    expectReadableShape(request);
    const types = typedIds(request).map(({ type }) => type);
    expect(types).toEqual(["bu"]);
  });
});
