// Start-up on a Cluster whose ready check fails. ioredis' Cluster client runs CLUSTER INFO once it has the
// slots; when that fails (here refused by an ACL; in the wild, past a 25 ms command timeout on a busy
// host) it reconnects by itself and never settles its first connect(), and the service used to wait on it
// forever without a word. It must start, report unready, and become ready once the check passes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisCluster, startRedisCluster } from "../helpers/redis-cluster.ts";
import { askRedis } from "../helpers/redis-server.ts";
import { startService, type TestService } from "../helpers/service.ts";

let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster(3, 0);
}, 60_000);
afterAll(() => cluster?.close());

const acl = (rule: string) =>
  Promise.all(cluster.nodes.map((n) => askRedis(n.port, (c) => c.call("ACL", "SETUSER", "default", rule))));

describe("a Cluster whose ready check fails at start-up", () => {
  it("starts within two connect timeouts, unready, and becomes ready when the check passes", async () => {
    expect(await acl("-cluster|info")).toEqual(["OK", "OK", "OK"]);
    let svc: TestService | null = null;
    try {
      const logs: string[] = [];
      // A service that waits forever fails this test by its timeout.
      svc = await startService(
        { REDIS_CLUSTER_NODES: cluster.env, REDIS_CONNECT_TIMEOUT_MS: "500", LOG_LEVEL: "info" },
        "uws",
        logs,
      );
      const said = logs.map((l) => JSON.parse(l) as { msg: string; err?: string });
      expect(said.find((l) => l.msg.startsWith("Redis not reachable"))?.err).toBe(
        "Redis not ready within 1000 ms",
      );
      expect((await fetch(`${svc.base}/readyz`)).status).toBe(503);
      expect(await acl("+cluster|info")).toEqual(["OK", "OK", "OK"]);
      const base = svc.base;
      await expect.poll(async () => (await fetch(`${base}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    } finally {
      await acl("+cluster|info");
      await svc?.stop();
    }
  }, 30_000);
});
