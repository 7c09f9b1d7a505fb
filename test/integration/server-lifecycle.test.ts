// The server against slow clients and through a shutdown: a slow-loris client cannot hold it, and SIGTERM
// with requests in flight loses none of them and exits 0.
import { type ChildProcess, spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceAt } from "../helpers/openapi-check.ts";
import { freePort } from "../helpers/redis-server.ts";
import { postJson, startService, type TestService } from "../helpers/service.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BODY = JSON.stringify({ ids: [{ type: "bu", id: "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35" }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("slow clients", () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startService({ BODY_TIMEOUT_MS: "800" });
  });
  afterAll(() => svc?.stop());

  /** A client that sends the headers of a lookup, then its body a byte at a time, slowly. */
  function slowBody(port: number): { socket: Socket; closed: Promise<string> } {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (d) => {
      received += d.toString("latin1");
    });
    socket.on("error", () => {});
    const closed = new Promise<string>((resolve) => socket.on("close", () => resolve(received)));
    socket.write(`POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: ${BODY.length}\r\n\r\n`);
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= BODY.length) return clearInterval(timer);
      socket.write(BODY[i++] as string);
    }, 200);
    socket.on("close", () => clearInterval(timer));
    return { socket, closed };
  }

  it("answers a trickled body with 408 and closes it, while serving everyone else", async () => {
    const port = Number(new URL(svc.base).port);
    const slow = Array.from({ length: 30 }, () => slowBody(port));
    // Meanwhile the others are served as usual.
    for (let i = 0; i < 20; i++) {
      const { status, json } = await postJson(`${svc.base}/v1/lookup`, JSON.parse(BODY));
      expect(status).toBe(200);
      expect(json.segments.length).toBeGreaterThan(0);
    }
    const started = performance.now();
    const answers = await Promise.all(slow.map((s) => s.closed));
    expect(performance.now() - started).toBeLessThan(3_000);
    for (const a of answers) {
      expect(a).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(a).toContain("AUD_ERR_REQUEST_TIMEOUT");
    }
  });

  it("closes a connection that sends nothing (idle clients are timed out)", async () => {
    const port = Number(new URL(svc.base).port);
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    const started = performance.now();
    await new Promise((resolve) => socket.on("close", resolve));
    // uWebSockets.js times idle HTTP connections out after 10 s.
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 20_000);

  it("keeps serving while many clients trickle their headers", async () => {
    const port = Number(new URL(svc.base).port);
    const sockets = Array.from({ length: 100 }, () => {
      const s = connect(port, "127.0.0.1");
      s.on("error", () => {});
      s.write("POST /v1/lookup HTTP/1.1\r\nHost: x\r\n");
      return s;
    });
    try {
      for (let round = 0; round < 5; round++) {
        for (const s of sockets) if (!s.destroyed) s.write("X-Slow: 1\r\n");
        const { status } = await postJson(`${svc.base}/v1/lookup`, JSON.parse(BODY));
        expect(status).toBe(200);
        await sleep(100);
      }
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});

describe("graceful shutdown", () => {
  let child: ChildProcess | null = null;
  afterAll(() => {
    child?.kill("SIGKILL");
  });

  it("turns unready, finishes every request in flight, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        SHUTDOWN_DRAIN_MS: "400",
        SHUTDOWN_GRACE_MS: "3000",
      },
      stdio: "ignore",
    });
    const exited = new Promise<number | null>((resolve) => child?.once("exit", (code) => resolve(code)));
    const base = `http://127.0.0.1:${port}`;
    child.once("exit", serviceAt(base));
    for (let i = 0; i < 200; i++) {
      const ok = await fetch(`${base}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      await sleep(50);
    }
    // Callers behave like a load balancer's pool: they send while /readyz says ready.
    let ready = true;
    let sent = 0;
    const failures: string[] = [];
    const watch = (async () => {
      while (ready) {
        ready = await fetch(`${base}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        );
        await sleep(20);
      }
    })();
    const caller = async (): Promise<void> => {
      while (ready) {
        sent++;
        try {
          const r = await fetch(`${base}/v1/lookup`, { method: "POST", body: BODY });
          if (r.status !== 200) failures.push(`status ${r.status}`);
          await r.arrayBuffer();
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const callers = Array.from({ length: 16 }, caller);
    await sleep(500);
    const killedAt = performance.now();
    child.kill("SIGTERM");
    await Promise.all([watch, ...callers]);
    const code = await exited;
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(100);
    expect(code).toBe(0);
    expect(performance.now() - killedAt).toBeLessThan(400 + 3_000 + 1_000);
    child = null;
  });
});
