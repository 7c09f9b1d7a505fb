// End to end with a real redis-server: load with the `audience` command, look up over HTTP, from all four
// ID places; expiry, cache TTL and a dead Redis as a bidder would meet them.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audience } from "../helpers/cli.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { postJson, startService, type TestService } from "../helpers/service.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
let dir: string;
let svc: TestService;
let url: string;

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), "audience-ingest-"));
  svc = await startService({ REDIS_URL: redis.url, CACHE_TTL_MS: "400", CACHE_NEGATIVE_TTL_MS: "200" });
  url = `${svc.base}/v1/lookup`;
});
afterAll(async () => {
  await svc?.stop();
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("memberships loaded with `audience ingest memberships` come back from /v1/lookup", () => {
  it("from each of the four ID places, CSV and NDJSON alike", async () => {
    const csv = file(
      "m.csv",
      [
        "type,id,segment,ttl",
        "bu,buyer-42,1001,",
        "xu:exch-a,exuser-7,1002,3600",
        "ifa,6D92078A-8246-4BA4-AE5B-76104861E7DC,1003,",
      ].join("\n"),
    );
    const ndjson = file(
      "m.ndjson",
      `${JSON.stringify({ type: "eid:uidapi.com", id: "UID2+abc/=", segment: "1004" })}\n`,
    );
    const env = { REDIS_URL: redis.url };
    const a = await audience(["ingest", "memberships", csv], env);
    expect(a.stderr).toBe("");
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/read 3, loaded 3, rejected 0/);
    const b = await audience(["ingest", "memberships", ndjson], env);
    expect(b.code).toBe(0);

    const base = { id: "req-1", imp: [{ id: "1", banner: { w: 300, h: 250 } }] };
    const places: [string, object, Record<string, string>, string][] = [
      ["user.buyeruid", { user: { buyeruid: "buyer-42" } }, {}, "1001"],
      ["user.id", { user: { id: "exuser-7" } }, { "x-exchange": "exch-a" }, "1002"],
      ["device.ifa", { device: { ifa: "6d92078a-8246-4ba4-ae5b-76104861e7dc" } }, {}, "1003"],
      [
        "user.eids",
        { user: { eids: [{ source: "uidapi.com", uids: [{ id: "UID2+abc/=", atype: 3 }] }] } },
        {},
        "1004",
      ],
      [
        "user.ext.eids",
        { user: { ext: { eids: [{ source: "uidapi.com", uids: [{ id: "UID2+abc/=" }] }] } } },
        {},
        "1004",
      ],
    ];
    for (const [place, part, headers, segment] of places) {
      const { status, json } = await postJson(url, { ...base, ...part }, headers);
      expect(status, place).toBe(200);
      expect(json.segments, place).toEqual([segment]);
      expect(json.degraded, place).toBe(false);
    }
    const all = await postJson(
      url,
      {
        ...base,
        user: {
          buyeruid: "buyer-42",
          id: "exuser-7",
          eids: [{ source: "uidapi.com", uids: [{ id: "UID2+abc/=" }] }],
        },
        device: { ifa: "6D92078A-8246-4BA4-AE5B-76104861E7DC" },
      },
      { "x-exchange": "exch-a" },
    );
    expect(all.json.segments).toEqual(["1001", "1002", "1003", "1004"]);
    expect(all.json.matched).toEqual(["bu", "xu:exch-a", "eid:uidapi.com", "ifa"]);
  });

  it("hashes e-mails on the way in: the raw address is never stored", async () => {
    const path = file("e.csv", "type,id,segment\nemail, Jane.Doe@Example.COM ,2001\n");
    expect((await audience(["ingest", "memberships", path], { REDIS_URL: redis.url })).code).toBe(0);
    const r = new Redis(redis.url);
    const keys = await r.keys("*");
    r.disconnect();
    expect(keys.some((k) => k.toLowerCase().includes("jane"))).toBe(false);
    const hash = createHash("sha256").update("jane.doe@example.com").digest("hex");
    expect(keys).toContain(`p:{hem:${hash}}`);
    const { json } = await postJson(url, { ids: [{ type: "email", id: "jane.doe@example.com" }] });
    expect(json.segments).toEqual(["2001"]);
  });

  it("never returns an expired membership, even from cache", async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 3;
    const path = file(
      "t.csv",
      `type,id,segment,expires_at\nbu,short-lived,3001,${expiresAt}\nbu,short-lived,3002,\n`,
    );
    expect((await audience(["ingest", "memberships", path], { REDIS_URL: redis.url })).code).toBe(0);
    const first = await postJson(url, { ids: [{ type: "bu", id: "short-lived" }] });
    expect(first.json.segments).toEqual(["3001", "3002"]);
    await sleep(expiresAt * 1000 - Date.now() + 50);
    const later = await postJson(url, { ids: [{ type: "bu", id: "short-lived" }] });
    expect(later.json.segments).toEqual(["3002"]);
  });

  it("shows a changed value within the cache TTL, and a new ID within the negative TTL", async () => {
    const env = { REDIS_URL: redis.url };
    expect(
      (await audience(["ingest", "memberships", file("c1.csv", "type,id,segment\nbu,changing,4001\n")], env))
        .code,
    ).toBe(0);
    const ask = async () =>
      (
        await postJson(url, {
          ids: [
            { type: "bu", id: "changing" },
            { type: "bu", id: "newcomer" },
          ],
        })
      ).json.segments;
    expect(await ask()).toEqual(["4001"]);
    expect(
      (
        await audience(
          [
            "ingest",
            "memberships",
            file(
              "c2.csv",
              "type,id,segment,op\nbu,changing,4002,add\nbu,changing,4001,remove\nbu,newcomer,4003,add\n",
            ),
          ],
          env,
        )
      ).code,
    ).toBe(0);
    // Within CACHE_TTL_MS (400) the cached answer may still be served; past it the change must show.
    await sleep(450);
    expect(await ask()).toEqual(["4002", "4003"]);
  });
});

describe("the `audience` command reports bad input precisely", () => {
  it("names file and line of each rejected row, loads the good rows and exits 1", async () => {
    const path = file(
      "bad.csv",
      [
        "type,id,segment,ttl",
        "bu,good-1,5001,",
        "nope,x,5001,",
        "bu,,5001,",
        "bu,good-2,5002,-1",
        "bu,good-3,5003,",
      ].join("\n"),
    );
    const r = await audience(["ingest", "memberships", path], { REDIS_URL: redis.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}:3: unknown id type 'nope'`);
    expect(r.stderr).toContain(`${path}:4: empty id`);
    expect(r.stderr).toContain(`${path}:5: ttl must be whole seconds`);
    expect(r.stdout).toMatch(/read 5, loaded 2, rejected 3/);
    const { json } = await postJson(url, {
      ids: [
        { type: "bu", id: "good-1" },
        { type: "bu", id: "good-3" },
      ],
    });
    expect(json.segments).toEqual(["5001", "5003"]);
  });

  it("fails with exit 2 and a clear message for a missing file, an unknown format, a bad header or no REDIS_URL", async () => {
    const env = { REDIS_URL: redis.url };
    const missing = await audience(["ingest", "memberships", join(dir, "absent.csv")], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*absent\.csv: no such file/);
    const unknown = await audience(["ingest", "memberships", file("x.txt", "a")], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/cannot tell the format/);
    const header = await audience(["ingest", "memberships", file("h.csv", "type,id\nbu,1\n")], env);
    expect(header.code).toBe(2);
    expect(header.stderr).toMatch(/CSV header must name type,id,segment; missing segment/);
    const noRedis = await audience(["ingest", "memberships", file("n.csv", "type,id,segment\nbu,1,1\n")], {
      REDIS_URL: "",
    });
    expect(noRedis.code).toBe(2);
    expect(noRedis.stderr).toMatch(/REDIS_URL is not set/);
  });
});

describe("a Redis that goes away", () => {
  it("answers from cache with degraded=true instead of failing, and recovers when Redis returns", async () => {
    const own = await startRedis();
    const local = await startService({
      REDIS_URL: own.url,
      CACHE_TTL_MS: "60000",
    });
    try {
      const path = file("d.csv", "type,id,segment\nbu,cached-user,6001\nbu,other-user,6002\n");
      expect((await audience(["ingest", "memberships", path], { REDIS_URL: own.url })).code).toBe(0);
      const lookup = `${local.base}/v1/lookup`;
      expect((await postJson(lookup, { ids: [{ type: "bu", id: "cached-user" }] })).json.segments).toEqual([
        "6001",
      ]);
      await own.stop(true);
      const down = await postJson(lookup, {
        ids: [
          { type: "bu", id: "cached-user" },
          { type: "bu", id: "other-user" },
        ],
      });
      expect(down.status).toBe(200);
      expect(down.json).toMatchObject({ segments: ["6001"], degraded: true });
      expect((await fetch(`${local.base}/readyz`)).status).toBe(503);
      await own.restart();
      await expect
        .poll(async () => (await fetch(`${local.base}/readyz`)).status, { timeout: 5_000 })
        .toBe(200);
      const up = await postJson(lookup, { ids: [{ type: "bu", id: "other-user" }] });
      expect(up.json).toMatchObject({ segments: [], degraded: false });
    } finally {
      await local.stop();
      await own.close();
    }
  });
});

describe("readiness", () => {
  // The service holds two connections of its own (bids; events and admin writes) and they reconnect on
  // their own schedules. A Redis at its client limit keeps the write connection out while the bid one
  // stays: /readyz must say not ready, or a caller sent there by it has its writes refused.
  it("is not ready while the write connection is out, though lookups are served", async () => {
    const own = await startRedis();
    const admin = "readiness-admin-token";
    const local = await startService({ REDIS_URL: own.url, ADMIN_TOKENS: `${admin}=*` }).catch(
      async (err) => {
        await own.close();
        throw err;
      },
    );
    const control = new Redis(own.url);
    const write = (id: string) =>
      fetch(`${local.base}/v1/admin/memberships`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "text/csv" },
        body: `type,id,segment\nbu,${id},6001\n`,
      });
    try {
      expect((await fetch(`${local.base}/readyz`)).status).toBe(200);
      const clients = String(await control.call("CLIENT", "LIST"))
        .trim()
        .split("\n");
      const names = clients.map((c) => /\bname=(\S*)/.exec(c)?.[1] ?? "").sort();
      expect(names).toEqual(["", "audience-bid", "audience-bulk", "audience-invalidations"]);
      const bulk = clients.find((c) => c.includes("name=audience-bulk "));
      const bulkId = /\bid=(\d+)/.exec(bulk ?? "")?.[1];
      // Full once the write connection is gone: it cannot come back until the limit is raised.
      await control.config("SET", "maxclients", String(clients.length - 1));
      await control.call("CLIENT", "KILL", "ID", String(bulkId));
      const out = await fetch(`${local.base}/readyz`);
      expect(out.status).toBe(503);
      expect(await out.json()).toEqual({ ready: false, store: "redis" });
      const answer = await postJson(`${local.base}/v1/lookup`, { ids: [{ type: "bu", id: "ready-user" }] });
      expect(answer.json).toMatchObject({ segments: [], degraded: false });
      // Admin writes do not degrade: the store failed the operation (documented as 500, retry).
      const refused = await write("ready-user");
      expect(refused.status).toBe(500);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("AUD_ERR_INTERNAL");
      await control.config("SET", "maxclients", "10000");
      await expect
        .poll(async () => (await fetch(`${local.base}/readyz`)).status, { timeout: 5_000 })
        .toBe(200);
      expect((await write("ready-user")).status).toBe(200);
      const after = await postJson(`${local.base}/v1/lookup`, { ids: [{ type: "bu", id: "ready-user" }] });
      expect(after.json).toMatchObject({ segments: ["6001"], degraded: false });
    } finally {
      control.disconnect();
      await local.stop();
      await own.close();
    }
  });
});
