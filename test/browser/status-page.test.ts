// The status page and the ID explorer in a real browser: headless Chromium (Debian's, driven by
// playwright-core, no browser download) against the running service under a little load. Screenshots go to
// test-artifacts/ (kept out of git).
import { existsSync, mkdirSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJson, startService, type TestService } from "../helpers/service.ts";

/** The page's document, as the functions run in the browser see it (this project compiles without the DOM lib). */
declare const document: { getElementById(id: string): { textContent: string | null } | null };

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url);
const ADMIN = "browser-admin-token-000001";
/** A user of the demo dataset (web-banner.json's buyeruid), in segments 1001, 1002 and 1003. */
const DEMO_USER = "5f0c8e7a-d3b1-4c29-a6e4-9b2f71d08c35";

let svc: TestService;
let browser: Browser;
let loading = true;
let load: Promise<void>;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  svc = await startService({ ADMIN_TOKENS: `${ADMIN}=*` });
  // A little load, for the numbers to move.
  load = (async () => {
    while (loading) {
      await postJson(`${svc.base}/v1/lookup`, { ids: [{ type: "bu", id: DEMO_USER }] });
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);
afterAll(async () => {
  loading = false;
  await load;
  await browser?.close();
  await svc?.stop();
});

/** Console messages of the page that report a Content-Security-Policy violation. */
function cspViolations(page: Awaited<ReturnType<Browser["newPage"]>>): string[] {
  const seen: string[] = [];
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) seen.push(msg.text());
  });
  return seen;
}

describe("status page", () => {
  it("shows live figures that move under load", async () => {
    const page = await browser.newPage();
    const violations = cspViolations(page);
    const res = await page.goto(`${svc.base}/status`);
    // The page works with its CSP in force: only its own inline script and style, requests to itself.
    expect(res?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    await page.waitForFunction(() => Number(document.getElementById("total")?.textContent) > 0, null, {
      timeout: 10_000,
    });
    const first = Number(await page.textContent("#total"));
    await page.waitForFunction((n) => Number(document.getElementById("total")?.textContent) > n, first, {
      timeout: 10_000,
    });
    const later = Number(await page.textContent("#total"));
    expect(later).toBeGreaterThan(first);
    await page.waitForFunction(() => Number(document.getElementById("rps")?.textContent) > 0, null, {
      timeout: 10_000,
    });
    expect(Number(await page.textContent("#rps"))).toBeGreaterThan(0);
    expect(await page.textContent("#store")).toBe("memory");
    expect(Number(await page.textContent("#hit"))).toBeGreaterThan(0.5);
    await page.screenshot({ path: new URL("status-page.png", ARTIFACTS).pathname, fullPage: true });
    expect(violations).toEqual([]);
    await page.close();
  }, 40_000);

  it("lets an admin look up a seeded ID and shows its segments and what a bid request gets", async () => {
    const page = await browser.newPage();
    const violations = cspViolations(page);
    await page.goto(`${svc.base}/status`);
    await page.fill("#token", ADMIN);
    await page.fill("#type", "bu");
    await page.fill("#id", DEMO_USER);
    await page.click("#go");
    await page.waitForSelector("#segments", { timeout: 10_000 });
    const rows = await page.$$eval("#segments tr", (trs) =>
      trs.slice(1).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
    );
    expect(rows.map((r) => r[0])).toEqual(["1001", "1002", "1003"]);
    expect(rows[0]?.[1]).toBe("Baking lovers");
    expect(rows[0]?.[2]).toBe("first");
    expect(JSON.parse((await page.textContent("#bid")) ?? "{}")).toEqual({
      segments: ["1001", "1002", "1003"],
      withheld: [],
      degraded: false,
    });
    // The same ID under COPPA: nothing, and why.
    await page.selectOption("#consent", "coppa");
    await page.click("#go");
    await page.waitForFunction(() => document.getElementById("bid")?.textContent?.includes("coppa"), null, {
      timeout: 10_000,
    });
    expect(JSON.parse((await page.textContent("#bid")) ?? "{}")).toEqual({
      segments: [],
      withheld: ["coppa"],
      degraded: false,
    });
    await page.screenshot({ path: new URL("id-explorer.png", ARTIFACTS).pathname, fullPage: true });
    // A wrong token is refused, and said so.
    await page.fill("#token", "not-the-admin-token-at-all");
    await page.click("#go");
    await page.waitForFunction(
      () => document.getElementById("result")?.textContent?.startsWith("401"),
      null,
      {
        timeout: 10_000,
      },
    );
    expect(violations).toEqual([]);
    await page.close();
  }, 40_000);
});

describe("status page in a frame", () => {
  it("is not shown: frame-ancestors 'none' (and X-Frame-Options: DENY) block it", async () => {
    const page = await browser.newPage();
    // A page that frames /status, served (by the browser, intercepted) at a path the service does not have.
    // Same origin even: frame-ancestors 'none' refuses every framer, another origin all the more.
    await page.route(`${svc.base}/framer`, (route) =>
      route.fulfill({ contentType: "text/html", body: '<iframe src="/status"></iframe>' }),
    );
    // The load event waits for the frame, loaded or refused.
    await page.goto(`${svc.base}/framer`, { waitUntil: "load" });
    const child = page.frames().filter((f) => f !== page.mainFrame());
    expect(child).toHaveLength(1);
    // Chromium replaces a frame it refuses to show with its error page: the status page never ran there.
    expect(child[0]?.url()).toBe("chrome-error://chromewebdata/");
    expect(await child[0]?.evaluate(() => document.getElementById("total"))).toBeNull();
    await page.close();
  }, 40_000);
});
