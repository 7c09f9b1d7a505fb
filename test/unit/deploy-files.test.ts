// docker-compose.yml, Prometheus and Grafana provisioning: no Docker engine runs here, so the files are
// checked for what would break a `docker compose up`: syntax, the wiring between them, and that every metric
// the dashboard queries is one the service really exports.
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startService, type TestService } from "../helpers/service.ts";

const root = new URL("../../", import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), "utf8");
// biome-ignore lint/suspicious/noExplicitAny: YAML documents are walked freely; the assertions check them
const yaml = (p: string) => parse(read(p)) as Record<string, any>;

let svc: TestService;
beforeAll(async () => {
  svc = await startService();
});
afterAll(() => svc?.stop());

describe("docker-compose.yml", () => {
  const compose = yaml("docker-compose.yml");

  it("runs the service, Redis with persistence, Prometheus and Grafana", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["audience", "grafana", "prometheus", "redis"]);
    expect(compose.services.audience.build).toBe(".");
    expect(compose.services.audience.environment.REDIS_URL).toBe("redis://redis:6379");
    const redisCmd = (compose.services.redis.command as string[]).join(" ");
    expect(redisCmd).toContain("--appendonly yes");
    expect(compose.services.redis.volumes).toContain("redis-data:/data");
    expect(Object.keys(compose.volumes)).toContain("redis-data");
  });

  it("mounts files that exist, and Prometheus scrapes the service's /metrics", () => {
    for (const service of ["prometheus", "grafana"]) {
      for (const v of compose.services[service].volumes as string[]) {
        const host = v.split(":")[0] as string;
        expect(existsSync(new URL(host, root)), `${service} mounts ${host}`).toBe(true);
      }
    }
    const prom = yaml("deploy/prometheus.yml");
    const job = prom.scrape_configs[0];
    expect(job.metrics_path).toBe("/metrics");
    expect(job.static_configs[0].targets).toEqual([`audience:${compose.services.audience.environment.PORT}`]);
    const ds = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    expect(ds.datasources[0].url).toBe("http://prometheus:9090");
    const dashboards = yaml("deploy/grafana/provisioning/dashboards/dashboards.yml");
    const grafanaMount = (compose.services.grafana.volumes as string[]).find((v) =>
      v.startsWith("./deploy/grafana/dashboards"),
    );
    expect(grafanaMount?.split(":")[1]).toBe(dashboards.providers[0].options.path);
  });
});

describe("Grafana dashboard", () => {
  const dash = JSON.parse(read("deploy/grafana/dashboards/audience.json"));

  it("queries only metrics the service exports, with the panels operators need", async () => {
    const exported = new Set(
      (await (await fetch(`${svc.base}/metrics`)).text())
        .split("\n")
        .filter((l) => l.startsWith("# TYPE "))
        .map((l) => l.split(" ")[2] as string),
    );
    const queried = new Set<string>();
    for (const p of dash.panels) {
      expect(p.datasource.uid).toBe("prometheus");
      for (const t of p.targets) for (const m of t.expr.matchAll(/audience_[a-z_]+/g)) queried.add(m[0]);
    }
    const base = (m: string) => m.replace(/_(bucket|count|sum)$/, "");
    const missing = [...queried].filter((m) => !exported.has(m) && !exported.has(base(m)));
    expect(missing).toEqual([]);
    for (const needed of [
      "audience_http_requests_total",
      "audience_http_request_duration_seconds_bucket",
      "audience_cache_hits_total",
      "audience_store_read_duration_seconds_bucket",
      "audience_degraded_answers_total",
      "audience_shed_requests_total",
      "audience_withheld_total",
      "audience_capped_campaigns_total",
      "audience_impression_events_total",
      "audience_ingest_rows_total",
      "audience_nodejs_eventloop_lag_seconds",
    ]) {
      expect(queried.has(needed), needed).toBe(true);
    }
  });
});

describe("package-lock.json", () => {
  // GHSA-3h5v-q93c-6h6q (a request with many headers crashes a ws server) is fixed in 8.17.1; ws comes in
  // through the uWebSockets.js package, so package.json pins it with "overrides".
  it("locks no ws older than 8.17.1", () => {
    const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { version?: string }> };
    const ws = Object.entries(lock.packages).filter(([path]) => /(^|\/)node_modules\/ws$/.test(path));
    expect(ws.length).toBeGreaterThan(0);
    for (const [path, entry] of ws) {
      const [major, minor, patch] = (entry.version ?? "0.0.0").split(".").map(Number) as [
        number,
        number,
        number,
      ];
      const atLeast = major > 8 || (major === 8 && (minor > 17 || (minor === 17 && patch >= 1)));
      expect(atLeast, `${path} is ${entry.version}`).toBe(true);
    }
  });
});
