// Hostile or mistaken input against the real service and the real `audience` command, on a Redis of the
// test's own: each answer is a precise error (a row error with its line, a 400 naming the problem), never a
// 500 or a stack trace, and never a raw e-mail, token or key echoed back.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audience } from "../helpers/cli.ts";
import { type RedisServer, startRedis } from "../helpers/redis-server.ts";
import { startService, type TestService } from "../helpers/service.ts";

const ADMIN = "hostile-admin-token-000001";
const EMAIL = "alice@example.com";
const TOO_FAR = "expires_at must be at most 315360000 s (10 years) ahead";

let redis: RedisServer;
let svc: TestService;
let dir: string;
/** The service's log lines (warn and above). */
const logs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
  svc = await startService(
    { REDIS_URL: redis.url, ADMIN_TOKENS: `${ADMIN}=*`, LOG_LEVEL: "warn" },
    "uws",
    logs,
  );
  dir = mkdtempSync(join(tmpdir(), "audience-hostile-"));
});
afterAll(async () => {
  await svc?.stop();
  await redis?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
async function upload(body: string, contentType: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${svc.base}/v1/admin/memberships`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": contentType },
    body,
  });
  return { status: res.status, json: await res.json() };
}

describe("expires_at of 10^20", () => {
  it("is a row error of the admin upload, the other rows loaded", async () => {
    const nd = [
      '{"type":"bu","id":"far-1","segment":"7001"}',
      '{"type":"bu","id":"far-2","segment":"7001","expires_at":1e20}',
      '{"type":"bu","id":"far-3","segment":"7001","expires_at":"100000000000000000000"}',
    ].join("\n");
    const { status, json } = await upload(nd, "application/x-ndjson");
    expect(status).toBe(200);
    expect(json).toMatchObject({ read: 3, loaded: 1, rejected: 2 });
    expect(json.errors).toEqual([
      { line: 2, reason: TOO_FAR },
      { line: 3, reason: TOO_FAR },
    ]);
  });

  it("is a row error of the CLI, named by file and line, with no stack trace", async () => {
    const path = file(
      "far.csv",
      ["type,id,segment,expires_at", "bu,far-4,7001,", "bu,far-5,7001,100000000000000000000"].join("\n"),
    );
    const r = await audience(["ingest", "memberships", path], { REDIS_URL: redis.url });
    expect(r.stderr).toContain(`${path}:3: ${TOO_FAR}\n`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toMatch(/read 2, loaded 1, rejected 1/);
    expect(r.code).toBe(1);
  });
});

describe("the CLI with swapped columns", () => {
  it("names the line and the problem without printing the e-mail", async () => {
    const path = file("swapped.csv", ["id,type,segment", `email,${EMAIL},7001`, "bu,bu-ok,7001"].join("\n"));
    const r = await audience(["ingest", "memberships", path], { REDIS_URL: redis.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}:2: unknown id type <e-mail>\n`);
    expect(r.stderr).not.toContain("alice");
    expect(r.stdout).not.toContain("alice");
  });

  it("does the same for opt-out and link files", async () => {
    const optout = file("optout.csv", ["id,type", `email,${EMAIL}`].join("\n"));
    const o = await audience(["optout", optout], { REDIS_URL: redis.url });
    expect(o.stderr).toContain(`${optout}:2: unknown id type <e-mail>\n`);
    const links = file("links.csv", ["type_a,id_a,id_b,type_b", `bu,x,email,${EMAIL}`].join("\n"));
    const l = await audience(["ingest", "links", links], { REDIS_URL: redis.url });
    expect(l.stderr).toContain(`${links}:2: id_b: unknown id type <e-mail>\n`);
    for (const r of [o, l]) expect(`${r.stdout}${r.stderr}`).not.toContain("alice");
  });
});

describe("20,000 nested brackets", () => {
  const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
  /** A valid bid request but for its ext, which nests 20,000 arrays: it parses, and used to overflow on output. */
  const bidRequest = `{"id":"deep","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"buyeruid":"u1"},"ext":${deep}}`;
  const refused = {
    error: { code: "AUD_ERR_BAD_JSON", message: "body is nested deeper than 64 levels", field: "" },
  };

  it("are refused by /v1/enrich, which writes the request back, with 400 before any work", async () => {
    const res = await fetch(`${svc.base}/v1/enrich`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: bidRequest,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(refused);
  });

  it("cost the lookup nothing: it never walks the body, so a deep ext is simply not read", async () => {
    const bodies: [string, string | null][] = [
      [bidRequest, "deep"],
      [`{"ids":[{"type":"bu","id":"u1"}],"x":${deep}}`, null],
    ];
    for (const [body, id] of bodies) {
      const res = await fetch(`${svc.base}/v1/lookup`, { method: "POST", body });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id, segments: [], degraded: false, withheld: [] });
    }
  });

  it("are refused by an admin JSON body too", async () => {
    const admin = await fetch(`${svc.base}/v1/admin/taxonomy/7001`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: `{"id":"7001","name":"deep","x":${deep}}`,
    });
    expect(admin.status).toBe(400);
    expect(await admin.json()).toEqual({ error: { ...refused.error, field: "body" } });
  });

  it("leave an ordinary bid request, and one nested 64 deep, answered", async () => {
    const ok = `{"id":"ok","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"buyeruid":"u1"},"ext":{"x":${"[".repeat(62)}${"]".repeat(62)}}}`;
    for (const path of ["/v1/enrich", "/v1/lookup"]) {
      const res = await fetch(`${svc.base}${path}`, { method: "POST", body: ok });
      expect(res.status).toBe(200);
    }
  });
});

describe("a 60 KB TC string", () => {
  it("is answered as a malformed one: personal data withheld (gdpr_bad_consent)", async () => {
    const garbage = `C${"QLS0dAQLS0dAEsACBENBQFgALAAAAAAAAYgPpQAgH0gfSAAAAAA".repeat(1_200)}`.slice(
      0,
      60_000,
    );
    const body = {
      id: "long-consent",
      imp: [{ id: "1", banner: { w: 300, h: 250 } }],
      regs: { gdpr: 1 },
      user: { buyeruid: "u1", consent: garbage },
    };
    const res = await fetch(`${svc.base}/v1/lookup`, { method: "POST", body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const json = (await res.json()) as { withheld: string[]; segments: string[] };
    expect(json.withheld).toEqual(["gdpr_bad_consent"]);
    expect(json.segments).toEqual([]);
  });
});

describe("a failed admin login", () => {
  it("logs one warn line naming route, method and reason, without the token", async () => {
    const guess = "guessed-admin-token-0000000000001";
    const before = logs.length;
    const res = await fetch(`${svc.base}/v1/admin/users/email/${encodeURIComponent(EMAIL)}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${guess}` },
    });
    expect(res.status).toBe(401);
    const lines = logs.slice(before);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: 40,
      msg: "admin request refused",
      route: "/v1/admin/users/:type/:id",
      method: "DELETE",
      status: 401,
      reason: "unknown token",
      scope: "users:write",
      suppressed: 0,
    });
    expect(lines[0]).not.toContain(guess);
    expect(lines[0]).not.toContain("alice");
  });
});

describe("/status in someone else's frame", () => {
  it("is refused by its headers: CSP (frame-ancestors 'none', only its own inline script and style), DENY, nosniff, no referrer", async () => {
    const res = await fetch(`${svc.base}/status`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const sha = (tag: string): string => {
      const text = html.split(`<${tag}>`)[1]?.split(`</${tag}>`)[0] as string;
      return `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
    };
    expect(res.headers.get("content-security-policy")).toBe(
      `default-src 'none'; script-src ${sha("script")}; style-src ${sha("style")}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("cache-control")).toBe("no-store");
    // One inline script and one inline style, both covered by the hashes above; no inline handlers.
    expect(html.split("<script").length).toBe(2);
    expect(html.split("<style").length).toBe(2);
    expect(html).not.toMatch(/\son[a-z]+=/);
    expect(html).not.toMatch(/\sstyle=/);
    const json = await fetch(`${svc.base}/status.json`);
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(json.headers.get("x-content-type-options")).toBe("nosniff");
  });
});
