// The check every test's answers go through (openapi-check.ts, wired by openapi-setup.ts) fails where an answer
// strays from /openapi.json: a field the description does not have, a status the route does not list, a
// missing required field, another content type, a wrong Allow. Real answers are taken and changed one way each.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAPI } from "../../src/http/openapi.ts";
import { type Answer, AnswerChecker, serviceAt, takeViolations } from "../helpers/openapi-check.ts";
import { startService, type TestService } from "../helpers/service.ts";

const ADMIN = "contract-admin-token-00001";
let svc: TestService;
const checker = new AnswerChecker();

beforeAll(async () => {
  svc = await startService({ ADMIN_TOKENS: `${ADMIN}=*` });
});
afterAll(() => svc?.stop());

async function answer(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${svc.base}${path}`, init);
  return {
    method: init.method ?? "GET",
    url: `${svc.base}${path}`,
    status: res.status,
    headers: new Map(res.headers),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

const withJson = (a: Answer, change: (body: Record<string, unknown>) => void): Answer => {
  const body = JSON.parse(a.body.toString());
  change(body);
  return { ...a, body: Buffer.from(JSON.stringify(body)) };
};

describe("the answer check", () => {
  it("compiles every schema of the description strictly: a misspelt keyword is an error, not a pass", () => {
    expect(checker.compileAll()).toBeGreaterThan(90);
    const misspelt = JSON.parse(JSON.stringify(OPENAPI));
    misspelt.components.schemas.Segment.additionalProperty = false;
    expect(() => new AnswerChecker(misspelt).compileAll()).toThrow(/unknown keyword: "additionalProperty"/);
  });

  it("passes the service's own answers", async () => {
    const lookup = await answer("/v1/lookup", {
      method: "POST",
      body: JSON.stringify({ ids: [{ type: "bu", id: "contract-user" }] }),
    });
    expect(lookup.status).toBe(200);
    expect(checker.violations(lookup)).toEqual([]);
    expect(checker.violations(await answer("/healthz"))).toEqual([]);
    const noScope = await answer("/v1/admin/taxonomy");
    expect(noScope.status).toBe(401);
    expect(checker.violations(noScope)).toEqual([]);
  });

  it("fails an answer with a field the description does not have, at any depth", async () => {
    const health = await answer("/healthz");
    expect(checker.violations(withJson(health, (b) => Object.assign(b, { extra: 1 })))).toEqual([
      "GET /healthz -> 200: body must NOT have additional properties 'extra'",
    ]);
    const deep = withJson(health, (b) => Object.assign(b.cache as object, { ratio: 0.5 }));
    expect(checker.violations(deep)).toEqual([
      "GET /healthz -> 200: body/cache must NOT have additional properties 'ratio'",
    ]);
    const lookup = await answer("/v1/lookup", {
      method: "POST",
      body: JSON.stringify({ ids: [{ type: "bu", id: "contract-user" }] }),
    });
    expect(checker.violations(withJson(lookup, (b) => Object.assign(b, { score: 3 })))).toContain(
      "POST /v1/lookup -> 200: body must NOT have additional properties 'score'",
    );
    const refused = await answer("/v1/admin/taxonomy");
    const detailed = withJson(refused, (b) => Object.assign(b.error as object, { hint: "use a token" }));
    expect(checker.violations(detailed)).toContain(
      "GET /v1/admin/taxonomy -> 401: body/error must NOT have additional properties 'hint'",
    );
  });

  it("fails a status the route does not list, on a route or on a path no route has", async () => {
    const health = await answer("/healthz");
    expect(checker.violations({ ...health, status: 201 })).toEqual([
      "GET /healthz -> 201: status 201 is not documented for this route",
    ]);
    const refused = await answer("/v1/admin/taxonomy");
    expect(checker.violations({ ...refused, status: 404 })).toEqual([
      "GET /v1/admin/taxonomy -> 404: status 404 is not documented for this route",
    ]);
    const unknown = await answer("/v1/nothing-here");
    expect(unknown.status).toBe(404);
    expect(checker.violations(unknown)).toEqual([]);
    expect(checker.violations({ ...unknown, status: 200 })).toEqual([
      "GET /v1/nothing-here -> 200: the path is no documented route's, and 200 is not a status any path answers",
    ]);
  });

  it("fails a missing field, a wrong type, another content type, a wrong Allow", async () => {
    const health = await answer("/healthz");
    expect(checker.violations(withJson(health, (b) => delete b.uptimeS))).toEqual([
      "GET /healthz -> 200: body must have required property 'uptimeS'",
    ]);
    expect(checker.violations(withJson(health, (b) => Object.assign(b, { store: "disk" })))).toEqual([
      "GET /healthz -> 200: body/store must be equal to one of the allowed values",
    ]);
    const headers = new Map(health.headers).set("content-type", "text/plain");
    expect(checker.violations({ ...health, headers })).toEqual([
      "GET /healthz -> 200: content type 'text/plain' is not one of application/json",
    ]);
    const put = await answer("/v1/lookup", { method: "PUT" });
    expect(put.status).toBe(405);
    expect(checker.violations(put)).toEqual([]);
    const wrongAllow = new Map(put.headers).set("allow", "GET, POST");
    expect(checker.violations({ ...put, headers: wrongAllow })).toEqual([
      "PUT /v1/lookup -> 405: Allow is 'GET, POST', the path takes POST",
    ]);
  });
});

describe("answers the tests receive", () => {
  let fake: Server;
  let base: string;
  let forget: () => void;

  beforeAll(async () => {
    // A stand-in for the service whose /healthz has one field too many and whose lookups answer 201.
    fake = createServer((req, res) => {
      const status = req.url === "/healthz" ? 200 : 201;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(req.url === "/healthz" ? { status: "ok", surprise: true } : {}));
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    forget = serviceAt(base);
  });
  afterAll(() => {
    forget?.();
    fake?.close();
  });

  it("are checked as they arrive: the violations are the test's (taken here, so this one passes)", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/v1/lookup`, { method: "POST", body: "{}" })).status).toBe(201);
    const found = await takeViolations();
    expect(found).toContain("GET /healthz -> 200: body must NOT have additional properties 'surprise'");
    expect(found).toContain("POST /v1/lookup -> 201: status 201 is not documented for this route");
  });

  it("of servers that are not the service are left alone", async () => {
    forget();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await takeViolations()).toEqual([]);
  });
});
