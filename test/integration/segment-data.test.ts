// Segment data management end to end on a real redis-server: taxonomy and expansion, CSV/NDJSON/gzip loads,
// atomic replace under concurrent lookups, a replace killed part-way, opt-out, cache coherence between
// instances, and the admin API's authentication.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CATALOG_KEYS } from "../../src/segments/catalog-store.ts";
import { audience, spawnAudience } from "../helpers/cli.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "admin-token-all-scopes-0001";
const READER = "reader-token-taxonomy-read";
const TOKENS = `${ADMIN}=*,${READER}=taxonomy:read`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
let dir: string;
let svc: TestService;
let lookupUrl: string;
let env: Record<string, string>;

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function segmentsOf(
  ids: { type: string; id: string }[],
  base = svc.base,
  expand = false,
): Promise<string[]> {
  const { status, json } = await postJson(`${base}/v1/lookup${expand ? "?expand=1" : ""}`, { ids });
  expect(status).toBe(200);
  return json.segments;
}

async function admin(
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${svc.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, json: text === "" ? null : JSON.parse(text) };
}

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), "audience-data-"));
  env = { REDIS_URL: redis.url };
  svc = await startService({ REDIS_URL: redis.url, ADMIN_TOKENS: TOKENS, CACHE_TTL_MS: "60000" });
  lookupUrl = `${svc.base}/v1/lookup`;
  const taxonomy = file(
    "taxonomy.csv",
    [
      "id,name,parent,party,provider,sensitive,ttl",
      "100,Food,,first,crm,false,",
      "101,Baking,100,first,crm,false,",
      "102,Sourdough,101,first,crm,false,",
      "200,Autos,,third,acme,false,60",
      "201,Electric cars,200,third,acme,false,",
      "900,Health condition,,third,acme,true,",
    ].join("\n"),
  );
  const r = await audience(["ingest", "taxonomy", taxonomy], env);
  expect(r.stderr).toBe("");
  expect(r.stdout).toMatch(/6 segments imported/);
});
afterAll(async () => {
  await svc?.stop();
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("taxonomy", () => {
  it("expands a membership to its ancestors when asked, and never returns a sensitive segment", async () => {
    const path = file("t1.csv", "type,id,segment\nbu,tax-user,102\nbu,tax-user,900\n");
    expect((await audience(["ingest", "memberships", path], env)).code).toBe(0);
    const ids = [{ type: "bu", id: "tax-user" }];
    expect(await segmentsOf(ids)).toEqual(["102"]);
    expect(await segmentsOf(ids, svc.base, true)).toEqual(["100", "101", "102"]);
  });

  it("refuses a taxonomy with bad rows whole, naming each line", async () => {
    const bad = file("bad-tax.csv", "id,name,parent\n300,Travel,\n301,,300\n302,Cruises,999\n");
    const r = await audience(["ingest", "taxonomy", bad], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/line 3: .*name/);
    expect(r.stderr).toMatch(/line 4: .*parent '999'/);
    expect(r.stdout).toMatch(/nothing imported/);
    expect((await admin("GET", "/v1/admin/taxonomy/300")).status).toBe(404);
  });

  it("is managed through the admin API: list, fetch, put one, delete, bulk import JSON", async () => {
    const list = await admin("GET", "/v1/admin/taxonomy");
    expect(list.status).toBe(200);
    expect(list.json.segments.map((s: { id: string }) => s.id).sort()).toEqual([
      "100",
      "101",
      "102",
      "200",
      "201",
      "900",
    ]);
    expect((await admin("GET", "/v1/admin/taxonomy/101")).json).toMatchObject({
      id: "101",
      name: "Baking",
      parent: "100",
    });
    const put = await admin(
      "PUT",
      "/v1/admin/taxonomy/103",
      JSON.stringify({ name: "Pastry", parent: "101", ttl: 3600 }),
      {
        "content-type": "application/json",
      },
    );
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id: "103", parent: "101", ttlSec: 3600 });
    const bulk = await admin(
      "PUT",
      "/v1/admin/taxonomy",
      JSON.stringify([
        { id: "400", name: "Travel", party: "second", provider: "partner" },
        { id: "401", name: "Cruises", parent: "400", provider: "partner", segtax: 4, segtax_id: "654" },
      ]),
      { "content-type": "application/json" },
    );
    expect(bulk).toMatchObject({ status: 200, json: { imported: 2 } });
    expect((await admin("GET", "/v1/admin/taxonomy/401")).json).toMatchObject({ segtax: 4, segtaxId: "654" });
    const refused = await admin("PUT", "/v1/admin/taxonomy", JSON.stringify([{ id: "402", name: "" }]), {
      "content-type": "application/json",
    });
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBe("AUD_ERR_BAD_ROWS");
    expect(refused.json.rows[0].line).toBe(1);
    expect((await admin("DELETE", "/v1/admin/taxonomy/103")).status).toBe(200);
    expect((await admin("DELETE", "/v1/admin/taxonomy/103")).status).toBe(404);
  });
});

describe("membership loads", () => {
  it("loads CSV, NDJSON and gzip; falls back to the segment's default TTL; warns or rejects unknown segments", async () => {
    const csv = file("m.csv.gz", gzipSync("type,id,segment\nbu,gz-user,101\nbu,gz-user,777\n"));
    const a = await audience(["ingest", "memberships", csv], env);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/read 2, loaded 2, rejected 0, 1 warnings/);
    const nd = file(
      "m.ndjson.gz",
      gzipSync(`${JSON.stringify({ type: "ifa", id: "AB-CD", segment: "200" })}\n`),
    );
    expect((await audience(["ingest", "memberships", nd], env)).code).toBe(0);
    expect(await segmentsOf([{ type: "bu", id: "gz-user" }])).toEqual(["101", "777"]);
    // 200 has a 60 s default TTL in the taxonomy: the stored membership carries it.
    const user = await admin("GET", "/v1/admin/users/ifa/ab-cd");
    const exp = user.json.memberships[0].expiresAt - Date.now() / 1000;
    expect(exp).toBeGreaterThan(50);
    expect(exp).toBeLessThanOrEqual(61);

    const strict = await audience(
      ["ingest", "memberships", "--strict", file("s.csv", "type,id,segment\nbu,s1,101\nbu,s1,778\n")],
      env,
    );
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/s\.csv:3: unknown segment '778'/);
  });

  it("rejects a gzip file's 24 MB line quickly, naming file and line, and loads the rows around it (a byte-order mark first)", async () => {
    // 24 KB of gzip that expands to one 24 MB line: the old reader took 15 s and 422 MB on it.
    const row = (id: string) => `${JSON.stringify({ type: "bu", id, segment: "101" })}\n`;
    const text = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(row("bom-first")),
      Buffer.alloc(24 * 1024 * 1024, 0x61),
      Buffer.from(`\n${row("after-long-1")}${row("after-long-2")}`),
    ]);
    const path = file("long-line.ndjson.gz", gzipSync(text));
    const t0 = performance.now();
    const r = await audience(["ingest", "memberships", path], env);
    const ms = performance.now() - t0;
    expect(r.stderr).toContain(`${path}:2: line longer than 1048576 bytes\n`);
    expect(r.stdout).toMatch(/read 4, loaded 3, rejected 1 /);
    expect(r.code).toBe(1);
    // Well under the 15 s it took; the allowance is for starting the command on a shared machine.
    expect(ms).toBeLessThan(5_000);
    for (const id of ["bom-first", "after-long-1", "after-long-2"]) {
      expect(await segmentsOf([{ type: "bu", id }])).toEqual(["101"]);
    }
  });

  it("takes --max-line-bytes on any command", async () => {
    const path = file("opt-long.csv", `type,id\nbu,${"x".repeat(2_000)}\nbu,short-line\n`);
    const r = await audience(["optout", path, "--max-line-bytes", "1024"], env);
    expect(r.stderr).toBe(`${path}:2: line longer than 1024 bytes\n`);
    expect(r.stdout).toMatch(/1 IDs opted out/);
    const bad = await audience(["optout", path, "--max-line-bytes=12"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--max-line-bytes must be a whole number of bytes from 1024 to 1073741824, got '12'/,
    );
  });

  it("fails clearly on a truncated gzip file", async () => {
    const full = gzipSync(Buffer.from(`type,id,segment\n${"bu,t,101\n".repeat(5000)}`));
    const r = await audience(
      ["ingest", "memberships", file("cut.csv.gz", full.subarray(0, full.length / 2))],
      env,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gzip data is truncated or corrupt/);
  });

  it("leaves no raw e-mail in any Redis key or value", async () => {
    const path = file("e.csv", "type,id,segment\nemail,Scan.Me@Example.ORG,101\n");
    expect((await audience(["ingest", "memberships", path], env)).code).toBe(0);
    const r = new Redis(redis.url);
    try {
      const keys = await r.keys("*");
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        expect(key.toLowerCase()).not.toContain("scan.me");
        const type = await r.type(key);
        const value =
          type === "string"
            ? ((await r.getBuffer(key)) as Buffer).toString("latin1")
            : JSON.stringify(await r.hgetall(key));
        expect(value.toLowerCase(), key).not.toContain("scan.me");
      }
    } finally {
      r.disconnect();
    }
    expect(await segmentsOf([{ type: "email", id: "scan.me@example.org" }])).toEqual(["101"]);
  });

  it("shows a load on every instance at once, not after the cache TTL", async () => {
    const other = await startService({
      REDIS_URL: redis.url,
      CACHE_TTL_MS: "600000",
      CACHE_NEGATIVE_TTL_MS: "600000",
    });
    try {
      const ids = [{ type: "bu", id: "coherent" }];
      expect(await segmentsOf(ids, other.base)).toEqual([]);
      const up = await admin("POST", "/v1/admin/memberships", "type,id,segment\nbu,coherent,201\n", {
        "content-type": "text/csv",
      });
      expect(up.status).toBe(200);
      expect(up.json).toMatchObject({ read: 1, loaded: 1, rejected: 0 });
      await expect.poll(() => segmentsOf(ids, other.base), { timeout: 2_000, interval: 20 }).toEqual(["201"]);
    } finally {
      await other.stop();
    }
  });
});

describe("atomic replace", () => {
  const A = Array.from({ length: 150 }, (_, i) => ({ type: "bu", id: `old-${i}` }));
  const B = Array.from({ length: 150 }, (_, i) => ({ type: "bu", id: `new-${i}` }));
  const rows = (users: { id: string }[], seg: string) =>
    ["type,id,segment", ...users.map((u) => `bu,${u.id},${seg}`)].join("\n");

  it("swaps a segment's membership in one step: concurrent lookups see the old set or the new, never a mix", async () => {
    expect((await audience(["ingest", "memberships", file("a.csv", rows(A, "201"))], env)).code).toBe(0);
    const views = new Set<string>();
    let stop = false;
    const watcher = (async () => {
      while (!stop) {
        const { json } = await postJson(lookupUrl, {
          batch: [...A, ...B].map((u) => ({ id: u.id, ids: [u] })),
        });
        const holders = json.results.filter((r: { segments: string[] }) => r.segments.includes("201"));
        const ids = holders.map((r: { id: string }) => r.id);
        const kind =
          ids.every((id: string) => id.startsWith("old-")) && ids.length === A.length
            ? "old"
            : ids.every((id: string) => id.startsWith("new-")) && ids.length === B.length
              ? "new"
              : `mix(${ids.length})`;
        views.add(kind);
      }
    })();
    await sleep(100);
    // The new membership: B spread through 20,000 rows, so the load spans several store batches.
    const spread = Array.from({ length: 20_000 }, (_, i) => B[i / 130] ?? { id: `pad-${i}` });
    const r = await audience(
      ["ingest", "memberships", "--replace-segment", "201", file("b.csv", rows(spread, "201"))],
      env,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/replace complete, generation \d+ is live/);
    await expect.poll(() => views.has("new"), { timeout: 3_000, interval: 20 }).toBe(true);
    stop = true;
    await watcher;
    expect([...views].sort()).toEqual(["new", "old"]);
  });

  it("a replace killed part-way changes nothing lookups see", async () => {
    const before = await segmentsOf([B[0] as { type: string; id: string }]);
    expect(before).toContain("201");
    const r = new Redis(redis.url);
    const gensBefore = await r.hgetall(CATALOG_KEYS.generations);
    const big = Array.from({ length: 400_000 }, (_, i) => ({ id: `huge-${i}` }));
    const path = file("huge.csv", rows(big, "201"));
    const child = spawnAudience(["ingest", "memberships", "--replace-segment", "201", path], env);
    // Wait until the load has written some of the new generation, then kill it.
    await expect
      .poll(async () => (await r.exists("p:{bu:huge-1000}")) === 1, { timeout: 20_000, interval: 50 })
      .toBe(true);
    child.kill("SIGKILL");
    await new Promise((res) => child.once("exit", res));
    expect(await r.hgetall(CATALOG_KEYS.generations)).toEqual(gensBefore);
    r.disconnect();
    svc.service.cache.clear();
    expect(await segmentsOf([B[0] as { type: string; id: string }])).toContain("201");
    expect(await segmentsOf([{ type: "bu", id: "huge-1000" }])).toEqual([]);
  });

  it("replaces a whole provider through the admin API", async () => {
    const up = await admin(
      "POST",
      "/v1/admin/memberships?replace_provider=acme&format=ndjson",
      gzipSync(`${JSON.stringify({ type: "bu", id: "prov-1", segment: "200" })}\n`),
      { "content-encoding": "gzip" },
    );
    expect(up.status).toBe(200);
    expect(up.json.activatedGeneration).toEqual(expect.any(Number));
    // Every acme segment moved to the new generation: the old members of 201 are gone with it.
    expect(await segmentsOf([{ type: "bu", id: "prov-1" }])).toEqual(["200"]);
    expect(await segmentsOf([B[0] as { type: string; id: string }])).toEqual([]);
    const wrong = await admin(
      "POST",
      "/v1/admin/memberships?replace_provider=acme",
      "type,id,segment\nbu,x,101\n",
    );
    expect(wrong.json.rejected).toBe(1);
    expect(wrong.json.errors[0].reason).toMatch(/not part of the replace of provider acme/);
    // With a rejected row the replace is not made live: the previous one still stands.
    expect(wrong.json.activatedGeneration).toBeNull();
    expect(await segmentsOf([{ type: "bu", id: "prov-1" }])).toEqual(["200"]);
    const none = await admin("POST", "/v1/admin/memberships?replace_provider=nobody", "type,id,segment\n");
    expect(none.status).toBe(400);
  });
});

describe("opt-out and erasure", () => {
  it("DELETE erases at once and later loads skip the ID; `audience optout` does the same from a file", async () => {
    const load = file("o.csv", "type,id,segment\nbu,leaver,101\nifa,LEAVER-IFA,101\nbu,stayer,101\n");
    expect((await audience(["ingest", "memberships", load], env)).code).toBe(0);
    expect(await segmentsOf([{ type: "bu", id: "leaver" }])).toEqual(["101"]);
    const del = await admin("DELETE", "/v1/admin/users/bu/leaver");
    expect(del).toMatchObject({ status: 200, json: { key: "bu:leaver", erased: true, optedOut: true } });
    expect(await segmentsOf([{ type: "bu", id: "leaver" }])).toEqual([]);

    const optout = await audience(["optout", file("optout.csv", "type,id\nifa,leaver-ifa\nbad,1\n")], env);
    expect(optout.code).toBe(1);
    expect(optout.stdout).toMatch(/1 IDs opted out \(1 had data, now erased\), 1 rejected/);
    expect(optout.stderr).toMatch(/optout\.csv:3: unknown id type 'bad'/);
    await expect.poll(() => segmentsOf([{ type: "ifa", id: "leaver-ifa" }]), { timeout: 2_000 }).toEqual([]);

    const again = await audience(["ingest", "memberships", load], env);
    expect(again.stdout).toMatch(/read 3, loaded 1, rejected 0, skipped 2 \(opted out\)/);
    expect(await segmentsOf([{ type: "bu", id: "leaver" }])).toEqual([]);
    expect((await admin("GET", "/v1/admin/users/bu/leaver")).json).toMatchObject({
      optedOut: true,
      memberships: [],
    });
    expect((await admin("GET", "/v1/admin/users/bu/stayer")).json).toMatchObject({
      optedOut: false,
      memberships: [{ segment: "101", active: true }],
    });
  });
});

describe("frequency-cap rules", () => {
  it("are imported by the command, listed by the admin API, and reach every instance without a restart", async () => {
    const other = await startService({ REDIS_URL: redis.url, ADMIN_TOKENS: TOKENS });
    try {
      const path = file(
        "caps.csv",
        "campaign,window,max,line_item\ncamp-1,1h,3,\ncamp-1,24h,10,\ncamp-1,lifetime,20,\ncamp-2,30m,1,li-7\n",
      );
      const r = await audience(["ingest", "caps", path], env);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/2 cap rules imported/);
      const fromOther = async () => {
        const res = await fetch(`${other.base}/v1/admin/caps/camp-1`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        return res.status === 200 ? ((await res.json()) as { rules: unknown[] }).rules : [];
      };
      await expect.poll(fromOther, { timeout: 2_000, interval: 20 }).toEqual([
        {
          campaign: "camp-1",
          lineItem: null,
          creative: null,
          windows: [
            { windowSec: 3_600, max: 3 },
            { windowSec: 86_400, max: 10 },
            { windowSec: null, max: 20 },
          ],
        },
      ]);
      // A changed rule replaces the old one everywhere, again without a restart.
      const put = await admin("PUT", "/v1/admin/caps", "campaign,window,max\ncamp-1,1h,5\n", {
        "content-type": "text/csv",
      });
      expect(put).toMatchObject({ status: 200, json: { imported: 1 } });
      await expect
        .poll(fromOther, { timeout: 2_000, interval: 20 })
        .toEqual([
          { campaign: "camp-1", lineItem: null, creative: null, windows: [{ windowSec: 3_600, max: 5 }] },
        ]);
      expect((await admin("GET", "/v1/admin/caps")).json.rules).toHaveLength(2);
      expect((await admin("DELETE", "/v1/admin/caps/camp-2")).json).toEqual({ deleted: 1 });
      expect((await admin("GET", "/v1/admin/caps/camp-2")).status).toBe(404);
    } finally {
      await other.stop();
    }
  });

  it("refuses a rule file with a bad row whole, by line", async () => {
    const bad = await audience(
      ["ingest", "caps", file("bad-caps.csv", "campaign,window,max\ncamp-3,1h,3\ncamp-3,1w,3\n")],
      env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad-caps\.csv:3: window must be like 30m/);
    expect(bad.stdout).toMatch(/nothing imported/);
    expect((await admin("GET", "/v1/admin/caps/camp-3")).status).toBe(404);
    const api = await admin("PUT", "/v1/admin/caps", "campaign,window,max\ncamp-3,1h,0\n", {
      "content-type": "text/csv",
    });
    expect(api.status).toBe(400);
    expect(api.json).toMatchObject({ error: { code: "AUD_ERR_BAD_ROWS" }, rows: [{ line: 2 }] });
  });
});

describe("admin API authentication", () => {
  const routes: [string, string][] = [
    ["GET", "/v1/admin/taxonomy"],
    ["PUT", "/v1/admin/taxonomy"],
    ["GET", "/v1/admin/taxonomy/101"],
    ["PUT", "/v1/admin/taxonomy/101"],
    ["DELETE", "/v1/admin/taxonomy/101"],
    ["POST", "/v1/admin/memberships"],
    ["GET", "/v1/admin/users/bu/x"],
    ["DELETE", "/v1/admin/users/bu/x"],
    ["GET", "/v1/admin/caps"],
    ["PUT", "/v1/admin/caps"],
    ["GET", "/v1/admin/caps/c1"],
    ["DELETE", "/v1/admin/caps/c1"],
    ["POST", "/v1/admin/links"],
    ["GET", "/v1/admin/deals"],
    ["PUT", "/v1/admin/deals"],
    ["GET", "/v1/admin/deals/d1"],
    ["DELETE", "/v1/admin/deals/d1"],
  ];

  it("covers every admin route the server has", () => {
    const served = svc.service.routes
      .filter((r) => r.path.startsWith("/v1/admin/"))
      .map((r) => `${r.method} ${r.path}`);
    const tested = routes.map(
      ([m, p]) =>
        `${m} ${p.replace("/101", "/:id").replace("/bu/x", "/:type/:id").replace("/caps/c1", "/caps/:campaign").replace("/deals/d1", "/deals/:id")}`,
    );
    expect(tested.sort()).toEqual(served.sort());
  });

  it.each(routes)(
    "%s %s: 401 without a token or with a wrong one, 403 without the scope",
    async (method, path) => {
      const body = method === "GET" || method === "DELETE" ? undefined : "{}";
      const none = await fetch(`${svc.base}${path}`, { method, ...(body === undefined ? {} : { body }) });
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe("AUD_ERR_UNAUTHORIZED");
      const wrong = await fetch(`${svc.base}${path}`, {
        method,
        headers: { authorization: "Bearer not-a-configured-token-at-all" },
        ...(body === undefined ? {} : { body }),
      });
      expect(wrong.status).toBe(401);
      if (method === "GET" && path.startsWith("/v1/admin/taxonomy")) return; // READER holds taxonomy:read
      const scoped = await fetch(`${svc.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${READER}` },
        ...(body === undefined ? {} : { body }),
      });
      expect(scoped.status).toBe(403);
      expect(((await scoped.json()) as { error: { code: string } }).error.code).toBe("AUD_ERR_FORBIDDEN");
    },
  );
});
