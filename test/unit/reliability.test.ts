import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import type { HttpAnswer, HttpRequestData, Route, RouteAdmission } from "../../src/http/http-types.ts";
import { MemoryProfileStore } from "../../src/profiles/memory-profile-store.ts";
import { NodeGate } from "../../src/profiles/node-gate.ts";
import { type CachedProfile, unpackProfile } from "../../src/profiles/packed-profile.ts";
import { ProfileCache } from "../../src/profiles/profile-cache.ts";
import { Admission } from "../../src/reliability/admission.ts";
import { CircuitBreaker } from "../../src/reliability/circuit-breaker.ts";
import { deadlineMs, withDeadline } from "../../src/reliability/deadline.ts";
import { add } from "../contract/profile-store-contract.ts";

describe("circuit breaker", () => {
  it("opens after the failures in a row, lets one probe through after openMs, and closes on its success", () => {
    let now = 1_000;
    const b = new CircuitBreaker({ failures: 3, openMs: 500, now: () => now });
    expect(b.state).toBe("closed");
    b.record(false);
    b.record(true); // a success resets the run
    b.record(false);
    b.record(false);
    expect(b.allow()).toBe(true);
    b.record(false);
    expect(b.state).toBe("open");
    expect(b.allow()).toBe(false);
    now += 499;
    expect(b.allow()).toBe(false);
    now += 1;
    expect(b.state).toBe("half-open");
    expect(b.allow()).toBe(true); // the probe
    expect(b.allow()).toBe(false); // only one at a time
    b.record(false); // the probe failed: open again for openMs
    expect(b.state).toBe("open");
    now += 500;
    expect(b.allow()).toBe(true);
    b.record(true);
    expect(b.state).toBe("closed");
    expect(b.allow()).toBe(true);
    expect(b.stats).toEqual({ opened: 2, rejected: 3 });
  });

  it("counts only the failures its predicate calls costly; a refused probe frees the next probe", () => {
    let t = 0;
    const breaker = new CircuitBreaker({
      failures: 2,
      openMs: 100,
      now: () => t,
      costly: (err) => (err as Error).message === "timeout",
    });
    for (let i = 0; i < 5; i++) {
      expect(breaker.allow()).toBe(true);
      breaker.recordError(new Error("refused"));
    }
    expect(breaker.state).toBe("closed");
    breaker.recordError(new Error("timeout"));
    breaker.recordError(new Error("timeout"));
    expect(breaker.state).toBe("open");
    t = 100;
    expect(breaker.allow()).toBe(true); // the probe
    expect(breaker.allow()).toBe(false); // one at a time
    breaker.recordError(new Error("refused"));
    expect(breaker.allow()).toBe(true); // the next probe
    breaker.record(true);
    expect(breaker.state).toBe("closed");
  });

  it("opens only when the failures in a row span spanMs: a burst at one instant is a stall, not the store", () => {
    let now = 1_000;
    const b = new CircuitBreaker({ failures: 3, openMs: 500, spanMs: 25, now: () => now });
    // Five timers fired together after the loop stalled.
    for (let i = 0; i < 5; i++) b.record(false);
    expect(b.state).toBe("closed");
    now += 24;
    b.record(false);
    expect(b.state).toBe("closed");
    now += 1;
    b.record(false);
    expect(b.state).toBe("open");
    // A new run after a success spans from its own first failure.
    now += 500;
    expect(b.allow()).toBe(true);
    b.record(true);
    b.record(false);
    now += 30;
    b.record(false);
    expect(b.state).toBe("closed");
    b.record(false);
    expect(b.state).toBe("open");
    // A failed probe opens it again at once, span or not.
    now += 500;
    expect(b.allow()).toBe(true);
    b.record(false);
    expect(b.state).toBe("open");
    expect(b.stats.opened).toBe(3);
  });

  it("keeps the cache from calling a failing store while open, and degrades at once", async () => {
    const store = new MemoryProfileStore();
    let calls = 0;
    store.readProfiles = async () => {
      calls++;
      throw new Error("down");
    };
    const breaker = new CircuitBreaker({ failures: 2, openMs: 60_000 });
    const cache = new ProfileCache(store, {
      maxEntries: 10,
      maxBytes: 1e6,
      ttlMs: 1000,
      negativeTtlMs: 0,
      breaker,
    });
    for (let i = 0; i < 5; i++) expect((await cache.getMany([`bu:${i}`])).degraded).toBe(true);
    expect(calls).toBe(2);
    expect(cache.stats.breakerSkips).toBe(3);
  });
});

describe("node gate (a breaker per Cluster master)", () => {
  it("fails one master's commands while it fails, probes it every openMs with a slot-map refresh, and leaves the others alone", () => {
    let now = 0;
    const probes: string[] = [];
    const gate = new NodeGate(
      { failures: 2, openMs: 200, spanMs: 25, now: () => now },
      { onProbe: (node) => probes.push(node) },
    );
    expect(gate.allow("a:1")).toBe(true);
    gate.failed("a:1");
    now += 25;
    gate.failed("a:1");
    expect(gate.allow("a:1")).toBe(false);
    expect(gate.allow("b:2")).toBe(true);
    expect(gate.failing).toEqual(["a:1"]);
    now += 199;
    expect(gate.allow("a:1")).toBe(false);
    now += 1;
    // One probe per interval, announced once.
    expect(gate.allow("a:1")).toBe(true);
    expect(gate.allow("a:1")).toBe(false);
    expect(probes).toEqual(["a:1"]);
    gate.failed("a:1");
    now += 200;
    expect(gate.allow("a:1")).toBe(true);
    gate.ok("a:1");
    expect(gate.allow("a:1")).toBe(true);
    expect(gate.allow("a:1")).toBe(true);
    expect(gate.failing).toEqual([]);
    expect(probes).toEqual(["a:1", "a:1"]);
  });
});

describe("deadline", () => {
  it("is the budget, or tmax minus the margin when that is less, never below 1 ms", () => {
    expect(deadlineMs(undefined, 15, 20)).toBe(15);
    expect(deadlineMs(300, 15, 20)).toBe(15);
    expect(deadlineMs(30, 15, 20)).toBe(10);
    expect(deadlineMs(10, 15, 20)).toBe(1);
    expect(deadlineMs("100", 15, 20)).toBe(15);
    expect(deadlineMs(-5, 15, 20)).toBe(15);
  });

  it("answers the fallback when the work is late, and the work when it is not", async () => {
    const late = new Promise<string>((r) => setTimeout(() => r("late"), 200));
    expect(await withDeadline(late, 10, () => "fallback")).toBe("fallback");
    expect(await withDeadline(Promise.resolve("on time"), 50, () => "fallback")).toBe("on time");
    await expect(withDeadline(Promise.reject(new Error("x")), 50, () => "f")).rejects.toThrow("x");
  });

  it("takes an answer that arrived before the deadline though the loop was too busy to read it in time", async () => {
    // A store answer written to a real socket just after the 10 ms timer is armed; the process is then busy
    // for 40 ms, so when its loop turns again both the expired timer and the unread answer are there. Timers
    // run before sockets are read: the answer must still win, as it came in time.
    let serverSide: Socket | null = null;
    const server = createServer((socket) => {
      serverSide = socket;
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const client = connect(port, "127.0.0.1");
    await new Promise<void>((r) => client.once("connect", () => r()));
    while (serverSide === null) await new Promise<void>((r) => setImmediate(r));
    const answer = new Promise<string>((r) => client.once("data", (d) => r(d.toString())));
    const settled = withDeadline(answer, 10, () => "fallback");
    (serverSide as Socket).write("on time");
    const until = performance.now() + 40;
    while (performance.now() < until) {
      // busy: neither the timer nor the socket is serviced
    }
    expect(await settled).toBe("on time");
    client.destroy();
    server.close();
  });

  it("makes the cache answer a slow store's misses degraded at the deadline, keeping what it held", async () => {
    const store = new MemoryProfileStore();
    await store.applyMemberships([add("bu:held", "1")], 0);
    const cache = new ProfileCache(store, { maxEntries: 10, maxBytes: 1e6, ttlMs: 60_000, negativeTtlMs: 0 });
    await cache.getMany(["bu:held"]);
    const real = store.readProfiles.bind(store);
    store.readProfiles = (keys, now) => new Promise((r) => setTimeout(() => r(real(keys, now)), 300));
    const t = performance.now();
    const batch = await cache.getMany(["bu:held", "bu:slow"], 20);
    expect(performance.now() - t).toBeLessThan(250);
    expect(batch.degraded).toBe(true);
    expect(
      unpackProfile(batch.profiles[0] as CachedProfile, batch.kinds).memberships.map((m) => m.segment),
    ).toEqual(["1"]);
    expect(batch.profiles[1]).toBeNull();
    expect(cache.stats.deadlines).toBe(1);
  });
});

describe("admission", () => {
  const req = {} as HttpRequestData;
  const route = (path: string, body: Route["body"]): Route => ({
    method: "POST",
    path,
    body,
    handler: () => ({ status: 200, contentType: "x", body: "ok" }),
  });

  it.each([
    [503, 503],
    [204, 204],
  ] as const)(
    "refuses a slot past maxInFlight, answers it with %i, never guards the exempt routes, and counts",
    async (shedStatus, status) => {
      const a = new Admission({ maxInFlight: 2, shedStatus });
      const [lookup, healthz] = a.guard(
        [route("/v1/lookup", "buffered"), route("/healthz", "none")],
        new Set(["/healthz"]),
      ) as [Route, Route];
      expect(healthz.admission).toBeUndefined();
      const gate = lookup.admission as RouteAdmission;
      expect([gate.enter(), gate.enter(), gate.enter()]).toEqual([true, true, false]);
      const shed = (await gate.shed(req)) as HttpAnswer;
      expect(shed.status).toBe(status);
      if (status === 503) expect(JSON.parse(String(shed.body)).error.code).toBe("AUD_ERR_OVERLOADED");
      expect(a.inFlight).toBe(2);
      gate.leave();
      gate.leave();
      expect(a.inFlight).toBe(0);
      expect(a.shed).toBe(1);
      expect(await a.idle(10)).toBe(true);
    },
  );

  it("counts streamed routes apart: full streams never take a bid-path slot, nor the reverse", () => {
    const a = new Admission({ maxInFlight: 1, maxStreamsInFlight: 2, shedStatus: 503 });
    const [lookup, upload] = a.guard(
      [route("/v1/lookup", "buffered"), route("/v1/admin/x", "stream")],
      new Set(),
    ) as [Route, Route];
    const streams = upload.admission as RouteAdmission;
    expect([streams.enter(), streams.enter(), streams.enter()]).toEqual([true, true, false]);
    expect(lookup.admission?.enter()).toBe(true);
    expect(lookup.admission?.enter()).toBe(false);
    expect([a.inFlight, a.streamsInFlight, a.shed]).toEqual([1, 2, 2]);
  });

  it("idle() waits for the requests in flight, streams included, or gives up after its time", async () => {
    const a = new Admission({ maxInFlight: 10, shedStatus: 503 });
    const [lookup, upload] = a.guard(
      [route("/v1/lookup", "buffered"), route("/v1/up", "stream")],
      new Set(),
    ) as [Route, Route];
    lookup.admission?.enter();
    upload.admission?.enter();
    expect(await a.idle(1)).toBe(false);
    const drained = a.idle(1_000);
    lookup.admission?.leave();
    expect(await a.idle(1)).toBe(false);
    upload.admission?.leave();
    expect(await drained).toBe(true);
  });
});
