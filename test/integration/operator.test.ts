// What operators see: Prometheus metrics that move with known requests, an OpenAPI description that matches
// the router and real answers, the status page's figures.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAPI } from "../../src/http/openapi.ts";
import { AnswerChecker } from "../helpers/openapi-check.ts";
import { getJson, postJson, startService, type TestService } from "../helpers/service.ts";

const ADMIN = "operator-admin-token-00001";
let svc: TestService;

beforeAll(async () => {
  // EVENTS_OPEN: impressions named by type and id, as a closed network sends them.
  svc = await startService({ ADMIN_TOKENS: `${ADMIN}=*`, TCF_VENDOR_ID: "1001", EVENTS_OPEN: "true" });
});
afterAll(() => svc?.stop());

async function metricsText(): Promise<string> {
  const r = await fetch(`${svc.base}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
  return r.text();
}

/** The value of one series, e.g. value(text, 'audience_withheld_total{reason="coppa"}'); 0 when absent. */
function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe("/metrics", () => {
  it("counts requests by route and status, withheld reasons, degraded answers and latency", async () => {
    const before = await metricsText();
    const ok = 'audience_http_requests_total{route="/v1/lookup",status="200"}';
    const bad = 'audience_http_requests_total{route="/v1/lookup",status="400"}';
    for (let i = 0; i < 3; i++) await postJson(`${svc.base}/v1/lookup`, { id: "r", regs: { coppa: 1 } });
    await postJson(`${svc.base}/v1/lookup`, { id: 5 });
    await postJson(`${svc.base}/v1/lookup`, {
      id: "r",
      regs: { us_privacy: "1YYN" },
      user: { buyeruid: "x" },
    });
    const after = await metricsText();
    expect(value(after, ok) - value(before, ok)).toBe(4);
    expect(value(after, bad) - value(before, bad)).toBe(1);
    const coppa = 'audience_withheld_total{reason="coppa"}';
    expect(value(after, coppa) - value(before, coppa)).toBe(3);
    const usp = 'audience_withheld_total{reason="usp_optout"}';
    expect(value(after, usp) - value(before, usp)).toBe(1);
    const count = 'audience_http_request_duration_seconds_count{route="/v1/lookup"}';
    expect(value(after, count) - value(before, count)).toBe(5);
    expect(after).toContain('audience_http_request_duration_seconds_bucket{le="0.0005",route="/v1/lookup"}');
    for (const name of [
      "audience_cache_hits_total",
      "audience_cache_misses_total",
      "audience_cache_evictions_total",
      "audience_cache_entries",
      "audience_degraded_answers_total",
      "audience_shed_requests_total",
      "audience_breaker_open",
      "audience_capped_campaigns_total",
      "audience_nodejs_eventloop_lag_seconds",
      "audience_process_resident_memory_bytes",
    ]) {
      expect(after).toMatch(new RegExp(`^${name}`, "m"));
    }
  });

  it("counts impression events by outcome and capped campaigns", async () => {
    const put = await fetch(`${svc.base}/v1/admin/caps`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/csv" },
      body: "campaign,window,max\nop-camp,1h,1\n",
    });
    expect(put.status).toBe(200);
    const before = await metricsText();
    const pixel = (imp: string) =>
      fetch(`${svc.base}/v1/events/imp?type=bu&id=op-user&campaign=op-camp&imp=${imp}`);
    expect((await pixel("1")).status).toBe(204);
    expect((await pixel("1")).status).toBe(204);
    expect((await fetch(`${svc.base}/v1/events/imp?type=bu&id=op-user&campaign=op-camp`)).status).toBe(400);
    const { json } = await postJson(`${svc.base}/v1/lookup`, { ids: [{ type: "bu", id: "op-user" }] });
    expect(json.capped).toEqual(["op-camp"]);
    const after = await metricsText();
    const d = (s: string) => value(after, s) - value(before, s);
    expect(d('audience_impression_events_total{outcome="counted"}')).toBe(1);
    expect(d('audience_impression_events_total{outcome="duplicate"}')).toBe(1);
    expect(d('audience_impression_events_total{outcome="rejected"}')).toBe(1);
    expect(d("audience_capped_campaigns_total")).toBe(1);
  });
});

describe("/openapi.json", () => {
  const toPattern = (p: string) => p.replace(/\{([^}]+)\}/g, ":$1");

  it("documents exactly the routes the server has", async () => {
    const { status, json } = await getJson(`${svc.base}/openapi.json`);
    expect(status).toBe(200);
    expect(json.openapi).toBe("3.1.0");
    const documented = Object.entries(json.paths as Record<string, object>).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${toPattern(p)}`),
    );
    const served = svc.service.routes.map(
      (r) => `${r.method} ${r.path.replace(/:(type|id|campaign)/g, ":$1")}`,
    );
    expect(documented.sort()).toEqual(served.sort());
  });

  it("describes the real answers of each route", async () => {
    // The description the checker holds every test's answers to is the one served.
    expect((await getJson(`${svc.base}/openapi.json`)).json).toEqual(JSON.parse(JSON.stringify(OPENAPI)));
    const checker = new AnswerChecker();
    const auth = { authorization: `Bearer ${ADMIN}` };
    const csv = { ...auth, "content-type": "text/csv" };
    const sample =
      '{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"buyeruid":"5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35"}}';
    // Each route at least once, with the status it must answer; each answer as the description says.
    const calls: [number, string, RequestInit][] = [
      [200, "/v1/lookup", { method: "POST", body: sample }],
      [200, "/v1/lookup", { method: "POST", body: sample, headers: { accept: "application/msgpack" } }],
      [400, "/v1/lookup", { method: "POST", body: "{" }],
      [405, "/v1/lookup", { method: "GET" }],
      [200, "/v1/enrich", { method: "POST", body: sample }],
      [200, "/v1/enrich?format=fragment", { method: "POST", body: sample }],
      [200, "/v1/enrich?format=mutations", { method: "POST", body: sample }],
      [400, "/v1/enrich?format=xml", { method: "POST", body: sample }],
      [204, "/v1/events/imp?type=bu&id=a&campaign=c&imp=i", {}],
      [200, "/v1/events/imp?type=bu&id=a&campaign=c&imp=i&format=gif", {}],
      [400, "/v1/events/imp?type=bu&id=a&campaign=c", {}],
      [
        200,
        "/v1/events",
        { method: "POST", body: '{"type":"bu","id":"a","campaign":"c","imp":"j"}\n{"id":1}\n' },
      ],
      [200, "/healthz", {}],
      [200, "/readyz", {}],
      [200, "/metrics", {}],
      [200, "/status", {}],
      [200, "/status.json", {}],
      [200, "/openapi.json", {}],
      [404, "/v1/no-such-route", {}],
      [200, "/v1/admin/taxonomy", { headers: auth }],
      [401, "/v1/admin/taxonomy", {}],
      [200, "/v1/admin/taxonomy/9999", { method: "PUT", headers: auth, body: '{"id":"9999","name":"Test"}' }],
      [400, "/v1/admin/taxonomy/9999", { method: "PUT", headers: auth, body: '{"id":"9999","name":""}' }],
      [200, "/v1/admin/taxonomy/9999", { headers: auth }],
      [400, "/v1/admin/taxonomy/%zz", { headers: auth }],
      [200, "/v1/admin/taxonomy/9999", { method: "DELETE", headers: auth }],
      [404, "/v1/admin/taxonomy/9999", { headers: auth }],
      [200, "/v1/admin/taxonomy", { method: "PUT", headers: auth, body: '[{"id":"9998","name":"T"}]' }],
      [
        200,
        "/v1/admin/memberships",
        { method: "POST", headers: csv, body: "type,id,segment\nbu,op-2,1001\n" },
      ],
      [400, "/v1/admin/memberships?format=xml", { method: "POST", headers: csv, body: "type,id,segment\n" }],
      [
        200,
        "/v1/admin/links",
        { method: "POST", headers: csv, body: "type_a,id_a,type_b,id_b\nbu,op-2,bu,op-3\n" },
      ],
      [200, "/v1/admin/deals", { method: "PUT", headers: auth, body: '{"id":"op-deal","when":"1001"}\n' }],
      [
        400,
        "/v1/admin/deals",
        { method: "PUT", headers: auth, body: '{"id":"op-deal","when":"1001 AND"}\n' },
      ],
      [200, "/v1/admin/deals", { headers: auth }],
      [200, "/v1/admin/deals/op-deal", { headers: auth }],
      [200, "/v1/admin/deals/op-deal", { method: "DELETE", headers: auth }],
      [200, "/v1/admin/caps", { method: "PUT", headers: csv, body: "campaign,window,max\nop-c2,1h,2\n" }],
      [200, "/v1/admin/caps", { headers: auth }],
      [200, "/v1/admin/caps/op-c2", { headers: auth }],
      [200, "/v1/admin/caps/op-c2", { method: "DELETE", headers: auth }],
      [404, "/v1/admin/caps/op-c2", { method: "DELETE", headers: auth }],
      [200, "/v1/admin/users/bu/op-2", { headers: auth }],
      [400, "/v1/admin/users/nope/op-2", { headers: auth }],
      [200, "/v1/admin/users/bu/op-3", { method: "DELETE", headers: auth }],
    ];
    for (const [status, url, init] of calls) {
      const res = await fetch(`${svc.base}${url}`, init);
      const answer = {
        method: init.method ?? "GET",
        url: res.url,
        status: res.status,
        headers: new Map(res.headers),
        body: Buffer.from(await res.arrayBuffer()),
      };
      const where = `${answer.method} ${url}`;
      expect(answer.status, `${where}: ${answer.body.toString().slice(0, 200)}`).toBe(status);
      expect(checker.violations(answer), where).toEqual([]);
    }
  });
});

describe("/status.json", () => {
  it("has per-second figures that move with requests", async () => {
    for (let i = 0; i < 20; i++)
      await postJson(`${svc.base}/v1/lookup`, { ids: [{ type: "bu", id: `s-${i}` }] });
    await new Promise((r) => setTimeout(r, 1_100));
    const { json } = await getJson(`${svc.base}/status.json`);
    expect(json.store).toEqual({ kind: "memory", ready: true });
    const recent = (json.live.seconds as { requests: number; p50: number | null }[]).slice(-3);
    expect(recent.reduce((n, s) => n + s.requests, 0)).toBeGreaterThanOrEqual(20);
    expect(recent.some((s) => s.p50 !== null && s.p50 > 0)).toBe(true);
    expect(json.requests).toBeGreaterThanOrEqual(20);
  });
});

describe("structured logs", () => {
  it("log each admin action with who, what and rows, never a token, ID or e-mail in the clear", async () => {
    const lines: string[] = [];
    const token = "logging-admin-token-000001";
    const logged = await startService({ ADMIN_TOKENS: `${token}=*`, LOG_LEVEL: "info" }, "uws", lines);
    try {
      const email = "jane.doe@example.com";
      const up = await fetch(`${logged.base}/v1/admin/memberships`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "text/csv" },
        body: `type,id,segment\nemail,${email},1001\nbu,cookie-logged,1002\n`,
      });
      expect(up.status).toBe(200);
      const del = await fetch(`${logged.base}/v1/admin/users/bu/cookie-logged`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${token}` },
      });
      expect(del.status).toBe(200);
      const actions = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "admin action");
      expect(actions.map((a) => [a.method, a.route, a.status, a.rows])).toEqual([
        ["POST", "/v1/admin/memberships", 200, 2],
        ["DELETE", "/v1/admin/users/:type/:id", 200, undefined],
      ]);
      expect(actions[0].admin).toMatch(/^[0-9a-f]{8}$/);
      const all = lines.join("\n");
      for (const secret of [token, email, "cookie-logged"]) expect(all).not.toContain(secret);
    } finally {
      await logged.stop();
    }
  });
});
