// The identity graph end to end on a real redis-server: links loaded by the command and the admin API,
// segments of one ID reaching the others in one read, propagation after linking, minimum confidence,
// unlinking, caps counted per person (and merged on link), the giant-person guard, and erasure leaving no
// trace of the ID in any key or value.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashEmail } from "../../src/identity/typed-id.ts";
import { audience } from "../helpers/cli.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "identity-admin-token-00001";
const IFA = "6d92078a-8246-4ba4-ae5b-76104861e7dc";
const EMAIL = "Jane.Doe@Example.com";
const HEM = hashEmail(EMAIL);

let redis: RedisServer;
let client: Redis;
let dir: string;
let svc: TestService;
let env: Record<string, string>;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function lookup(ids: { type: string; id: string }[], extra: Record<string, unknown> = {}) {
  const { status, json } = await postJson(`${svc.base}/v1/lookup`, { ids, ...extra });
  expect(status).toBe(200);
  return json as { segments: string[]; capped: string[]; matched: string[]; degraded: boolean };
}

const segmentsOf = async (type: string, id: string, extra: Record<string, unknown> = {}) =>
  (await lookup([{ type, id }], extra)).segments;

async function memberships(name: string, rows: string[]): Promise<void> {
  const r = await audience(
    ["ingest", "memberships", file(name, `type,id,segment\n${rows.join("\n")}\n`)],
    env,
  );
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
}

async function links(name: string, text: string, extraEnv: Record<string, string> = {}) {
  return audience(["ingest", "links", file(name, text)], { ...env, ...extraEnv });
}

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
  dir = mkdtempSync(join(tmpdir(), "audience-identity-"));
  env = { REDIS_URL: redis.url };
  // No cache: every lookup reads the store, so each change shows at once and reads can be counted.
  svc = await startService({
    REDIS_URL: redis.url,
    ADMIN_TOKENS: `${ADMIN}=*`,
    CACHE_TTL_MS: "0",
    // Impressions named by type and id, as a closed network sends them (the notice token is capping.test.ts's).
    EVENTS_OPEN: "true",
  });
});
afterAll(async () => {
  await svc?.stop();
  client?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("identity graph", () => {
  it("brings the segments of a cookie to the IFA and the hashed e-mail of the same person", async () => {
    await memberships("cookie.csv", ["bu,cookie-1,1001", "bu,cookie-1,1002", `ifa,${IFA},2001`]);
    expect(await segmentsOf("ifa", IFA)).toEqual(["2001"]);
    const r = await links(
      "links.csv",
      `type_a,id_a,type_b,id_b,confidence,source\nbu,cookie-1,ifa,${IFA},1,login\nbu,cookie-1,email,${EMAIL},1,crm\n`,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/read 2, linked 2, unlinked 0/);
    expect(await segmentsOf("ifa", IFA)).toEqual(["1001", "1002", "2001"]);
    expect(await segmentsOf("hem", HEM)).toEqual(["1001", "1002", "2001"]);
    expect(await segmentsOf("bu", "cookie-1")).toEqual(["1001", "1002", "2001"]);
    // The raw e-mail is hashed on the way in: it is in no key and no value.
    const keys = await client.keys("*");
    expect(keys.some((k) => k.includes(EMAIL) || k.includes(EMAIL.toLowerCase()))).toBe(false);
    expect(keys).toContain(`l:{hem:${HEM}}`);
  });

  it("propagates memberships loaded on one ID after linking to the whole person", async () => {
    await memberships("later.csv", [`hem,${HEM},3001`]);
    expect(await segmentsOf("bu", "cookie-1")).toEqual(["1001", "1002", "2001", "3001"]);
    expect(await segmentsOf("ifa", IFA)).toEqual(["1001", "1002", "2001", "3001"]);
    // A removal propagates as well.
    const rm = await audience(
      ["ingest", "memberships", file("rm.csv", `type,id,segment,op\nhem,${HEM},3001,remove\n`)],
      env,
    );
    expect(rm.code).toBe(0);
    expect(await segmentsOf("ifa", IFA)).toEqual(["1001", "1002", "2001"]);
  });

  it("reads one MGET per lookup, however many IDs the person has", async () => {
    await client.config("RESETSTAT");
    const answer = await lookup([
      { type: "ifa", id: IFA },
      { type: "bu", id: "cookie-1" },
    ]);
    expect(answer.segments).toEqual(["1001", "1002", "2001"]);
    const stats = await client.info("commandstats");
    const calls = Object.fromEntries(
      [...stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)].map((m) => [m[1], Number(m[2])]),
    );
    // Nothing but the one read (and the INFO / CONFIG of this test; readiness PINGs may come and go).
    const { info: _i, "config|resetstat": _c, ping: _p, ...rest } = calls;
    expect(rest).toEqual({ mget: 1 });
  });

  it("honours a minimum confidence, and unlinking stops the sharing", async () => {
    await memberships("probable.csv", ["bu,cookie-2,4001"]);
    const r = await links(
      "probable.ndjson",
      `${JSON.stringify({
        ids: [
          { type: "bu", id: "cookie-1" },
          { type: "bu", id: "cookie-2" },
        ],
        confidence: 0.6,
        source: "graph-vendor",
      })}\n`,
    );
    expect(r.code).toBe(0);
    expect(await segmentsOf("ifa", IFA)).toEqual(["1001", "1002", "2001", "4001"]);
    // The IFA reaches cookie-2 through cookie-1: the path is as strong as its 0.6 link.
    expect(await segmentsOf("ifa", IFA, { min_confidence: 0.8 })).toEqual(["1001", "1002", "2001"]);
    const q = await postJson(`${svc.base}/v1/lookup?min_confidence=0.5`, { ids: [{ type: "ifa", id: IFA }] });
    expect(q.json.segments).toEqual(["1001", "1002", "2001", "4001"]);
    const bad = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "ifa", id: IFA }],
      min_confidence: 2,
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.field).toBe("min_confidence");

    const un = await links("unlink.csv", "type_a,id_a,type_b,id_b,op\nbu,cookie-1,bu,cookie-2,remove\n");
    expect(un.stdout).toMatch(/unlinked 1/);
    expect(await segmentsOf("ifa", IFA)).toEqual(["1001", "1002", "2001"]);
    expect(await segmentsOf("bu", "cookie-2")).toEqual(["4001"]);
  });

  it("refuses and reports a link that would make a person larger than MAX_PERSON_IDS", async () => {
    const group = (n: number, from = 0) =>
      JSON.stringify({
        ids: Array.from({ length: n }, (_, i) => ({ type: "bu", id: `tablet-${from + i}` })),
      });
    const r = await links(
      "giant.ndjson",
      `${group(3)}\n${group(2, 3)}\n{"ids": [{"type": "bu", "id": "tablet-0"}, {"type": "bu", "id": "tablet-3"}]}\n`,
      {
        MAX_PERSON_IDS: "4",
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /giant\.ndjson:3: refused: the person would have 5 IDs, more than the 4 allowed/,
    );
    expect(r.stdout).toMatch(/linked 3, .*refused 1/);
    const tablets = await client.hkeys("l:{bu:tablet-0}");
    expect(tablets.sort()).toEqual(["bu:tablet-1", "bu:tablet-2"]);
  });

  it("rejects bad link rows with their line and loads the rest", async () => {
    const r = await links(
      "bad-links.csv",
      "type_a,id_a,type_b,id_b,confidence\nbu,x-1,bu,x-2,1\nnope,x,bu,y,1\nbu,x-3,bu,x-4,7\nbu,x-5,bu,x-5,1\n",
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-links\.csv:3: id_a: unknown id type 'nope'/);
    expect(r.stderr).toMatch(/bad-links\.csv:4: confidence must be a number in \(0, 1\]/);
    expect(r.stderr).toMatch(/bad-links\.csv:5: an ID cannot be linked to itself/);
    expect(r.stdout).toMatch(/read 4, linked 1/);
  });
});

describe("frequency caps per person", () => {
  async function pixel(type: string, id: string, imp: string): Promise<number> {
    const q = new URLSearchParams({ type, id, campaign: "camp-p", imp });
    return (await fetch(`${svc.base}/v1/events/imp?${q}`)).status;
  }

  beforeAll(async () => {
    const res = await fetch(`${svc.base}/v1/admin/caps`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
      body: "campaign,window,max\ncamp-p,1h,2\n",
    });
    expect(res.status).toBe(200);
    // Rules reach the instance through the catalog reload it triggers.
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${svc.base}/v1/admin/caps/camp-p`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      if (r.status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it("counts an impression on the phone toward the cap seen from the laptop, once per impression id", async () => {
    expect(await pixel("ifa", IFA, "imp-1")).toBe(204);
    expect(await pixel("ifa", IFA, "imp-1")).toBe(204); // a retry: counted once
    expect((await lookup([{ type: "bu", id: "cookie-1" }], { campaigns: ["camp-p"] })).capped).toEqual([]);
    // The same impression reported through another ID of the person is still one impression.
    expect(await pixel("bu", "cookie-1", "imp-1")).toBe(204);
    expect(await pixel("hem", HEM, "imp-2")).toBe(204);
    const seen = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "cookie-1" }],
      campaigns: ["camp-p"],
    });
    expect(seen.json.capped).toEqual(["camp-p"]);
    expect(seen.json.remaining).toEqual({ "camp-p": 0 });
  });

  it("merges the counters of two IDs when they are linked", async () => {
    expect(await pixel("bu", "solo-a", "imp-a")).toBe(204);
    expect(await pixel("bu", "solo-b", "imp-b")).toBe(204);
    const before = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "solo-a" }],
      campaigns: ["camp-p"],
    });
    expect(before.json.remaining).toEqual({ "camp-p": 1 });
    const r = await links("solo.csv", "type_a,id_a,type_b,id_b\nbu,solo-a,bu,solo-b\n");
    expect(r.code).toBe(0);
    for (const id of ["solo-a", "solo-b"]) {
      const after = await postJson(`${svc.base}/v1/lookup`, {
        ids: [{ type: "bu", id }],
        campaigns: ["camp-p"],
      });
      expect(after.json.capped).toEqual(["camp-p"]);
    }
    // Unlinking leaves the counts with the larger side (here: the side of the first ID, as both are equal).
    await links("solo-un.csv", "type_a,id_a,type_b,id_b,op\nbu,solo-a,bu,solo-b,remove\n");
    const a = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "solo-a" }],
      campaigns: ["camp-p"],
    });
    const b = await postJson(`${svc.base}/v1/lookup`, {
      ids: [{ type: "bu", id: "solo-b" }],
      campaigns: ["camp-p"],
    });
    expect([a.json.remaining["camp-p"], b.json.remaining["camp-p"]]).toEqual([0, 2]);
  });
});

describe("erasure of a linked ID", () => {
  it("removes it from its person and leaves no trace of it in any key or value", async () => {
    const res = await fetch(`${svc.base}/v1/admin/users/ifa/${IFA}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    // The rest of the person no longer carries the IFA's own segment, nor the IFA.
    expect(await segmentsOf("bu", "cookie-1")).toEqual(["1001", "1002"]);
    expect(await segmentsOf("hem", HEM)).toEqual(["1001", "1002"]);
    expect(await segmentsOf("ifa", IFA)).toEqual([]);
    const traces: string[] = [];
    for (const key of await client.keys("*")) {
      // The opt-out record is the one key that must name it: later loads are refused by it.
      if (key === `o:{ifa:${IFA}}`) continue;
      if (key.includes(IFA)) traces.push(`key ${key}`);
      const type = await client.type(key);
      const value =
        type === "string"
          ? ((await client.getBuffer(key)) ?? Buffer.alloc(0)).toString("latin1")
          : type === "hash"
            ? JSON.stringify(await client.hgetall(key))
            : type === "set"
              ? JSON.stringify(await client.smembers(key))
              : "";
      if (value.includes(IFA)) traces.push(`value of ${key}`);
    }
    expect(traces).toEqual([]);
    // And a later load of the ID is skipped, as for any opt-out.
    const again = await audience(
      ["ingest", "memberships", file("again.csv", `type,id,segment\nifa,${IFA},2001\n`)],
      env,
    );
    expect(again.stdout).toMatch(/skipped 1 \(opted out\)/);
    const relink = await links("relink.csv", `type_a,id_a,type_b,id_b\nbu,cookie-1,ifa,${IFA}\n`);
    // A link to an opted-out ID is refused and reported with its line, like any refused link.
    expect(relink.stdout).toMatch(/refused 1 \(person too large or an ID opted out\), skipped 0/);
    expect(relink.stderr).toMatch(/relink\.csv:2: refused: an ID of this link opted out/);
    expect(await segmentsOf("bu", "cookie-1")).toEqual(["1001", "1002"]);
  });
});
