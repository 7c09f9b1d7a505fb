// `audience loadtest`'s command: its arguments, the lines it prints, its verdict.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planOf, progressLine, rateLines, verdictOf } from "../../src/loadtest/command.ts";
import { LatencyHistogram } from "../../src/loadtest/histogram.ts";
import { runResult } from "../helpers/loadtest-result.ts";

const dir = mkdtempSync(join(tmpdir(), "audience-loadtest-command-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("what it prints", () => {
  it("says what a fixed-rate run achieved and how late the generator itself was; the live line", () => {
    const r = runResult();
    const lag = new LatencyHistogram();
    for (const ms of [0.1, 0.2, 1.5]) lag.recordMs(ms);
    expect(rateLines(3, { ...r, notSent: 1, sendLag: lag })).toEqual([
      "rate: asked 3/s, answered 2.5/s; 1 request came due while every connection was busy and never left " +
        "(more --connections, or the service is at its limit)",
      "sending: requests left p50 0.200 ms, p99 1.500 ms after they could have (the generator's own timing, " +
        "not counted in the latency)",
    ]);
    expect(rateLines(2, r)).toEqual(["rate: asked 2/s, answered 2.5/s"]);
    expect(progressLine({ elapsedS: 3, perS: 1234, p99Us: 1500, errors: 2 })).toBe(
      "   3 s     1234 req/s  p99 1.500 ms  errors 2",
    );
  });

  it("fails the run when non-2xx answers and errors exceed --max-errors", () => {
    const r = runResult();
    expect(verdictOf(r, 1)).toEqual({
      pass: false,
      text: "FAIL: 1 non-2xx answers and 1 errors, more than --max-errors 1",
    });
    expect(verdictOf(r, 2)).toEqual({
      pass: true,
      text: "PASS: 1 non-2xx answers and 1 errors (--max-errors 2)",
    });
  });
});

describe("arguments", () => {
  const noErr = { write: () => true } as unknown as NodeJS.WritableStream;

  it("takes the defaults, and the URL's path unless --path is given", () => {
    const plan = planOf(["http://127.0.0.1:9/"], noErr);
    if (plan === "help") throw new Error("help");
    expect(plan.settings).toEqual({
      origin: "http://127.0.0.1:9",
      path: "/v1/lookup",
      durationS: 10,
      connections: 32,
      ratePerS: null,
      headers: [],
    });
    expect(plan.unknownShare).toBe(0.1);
    expect(plan.maxErrors).toBe(0);
    expect(plan.report).toBe(join(process.cwd(), "loadtest-report.html"));
    const enrich = planOf(["http://h:1/v1/enrich?format=fragment", "--rate", "500", "--seed", "9"], noErr);
    if (enrich === "help") throw new Error("help");
    expect([enrich.settings.path, enrich.settings.ratePerS, enrich.seed]).toEqual([
      "/v1/enrich?format=fragment",
      500,
      9,
    ]);
    const overridden = planOf(["http://h:1/v1/enrich", "--path", "/v1/lookup"], noErr);
    expect(overridden !== "help" && overridden.settings.path).toBe("/v1/lookup");
    expect(planOf(["--help"], noErr)).toBe("help");
  });

  it("refuses bad values and bad files with a message naming them", () => {
    const ids = join(dir, "ids.csv");
    writeFileSync(ids, "bu,ok\nbu\nnope,x\n");
    const lines: string[] = [];
    const err = { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream;
    const fails = (args: string[]) => () => planOf(args, err);
    expect(fails(["http://h:1", "--ids", ids])).toThrow(`${ids}: 2 malformed lines; nothing sent`);
    expect(lines).toEqual([
      `${ids}:2: expected 2 fields (type,id), got 1\n`,
      `${ids}:3: unknown id type 'nope'\n`,
    ]);
    expect(fails(["http://h:1", "--ids", join(dir, "none.csv")])).toThrow(
      `${join(dir, "none.csv")}: no such file`,
    );
    expect(fails(["http://h:1", "--duration", "0"])).toThrow(
      "--duration must be a whole number from 1 to 86400, got '0'",
    );
    expect(fails(["http://h:1", "--unknown", "1.5"])).toThrow(
      "--unknown must be a share from 0 to 1, got '1.5'",
    );
    expect(fails(["ftp://h:1"])).toThrow("'ftp://h:1': only http:// and https:// targets");
    expect(fails(["http://h:1", "--header", "host: x"])).toThrow("--header host: set by the command itself");
    expect(fails(["http://h:1", "--report", join(dir, "no", "r.html")])).toThrow(
      `--report ${join(dir, "no", "r.html")}: no such directory ${join(dir, "no")}`,
    );
    expect(fails(["http://h:1", "--bogus"])).toThrow(/Unknown option '--bogus'/);
    expect(fails([])).toThrow(/^loadtest takes one URL/);
  });
});
