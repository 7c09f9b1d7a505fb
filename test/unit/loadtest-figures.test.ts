// `audience loadtest`'s figures: latency against a fixed schedule, percentiles, what the answers said, the report.
import { describe, expect, it } from "vitest";
import { AnswerTally } from "../../src/loadtest/answers.ts";
import { bucketOf, highestOf, LatencyHistogram, lowestOf } from "../../src/loadtest/histogram.ts";
import { answersTable, latencyTable, niceTicks, reportHtml } from "../../src/loadtest/report.ts";
import { FixedRateSchedule, latencyOnSchedule, sendLagMs } from "../../src/loadtest/schedule.ts";
import { runResult } from "../helpers/loadtest-result.ts";

describe("latency on a fixed schedule", () => {
  it("makes request k due at start + k / rate", () => {
    const s = new FixedRateSchedule(1000, 100);
    expect(s.dueAt(99.9)).toBe(0);
    expect(s.dueAt(100)).toBe(1);
    expect(s.dueAt(100.999)).toBe(1);
    expect(s.dueAt(101)).toBe(2);
    expect([s.next(), s.next()]).toEqual([100, 101]);
    expect(s.dueAt(101)).toBe(0);
    expect(s.dueAt(105.5)).toBe(4);
    const slow = new FixedRateSchedule(3, 0);
    expect([slow.next(), slow.next(), slow.next(), slow.next()]).toEqual([0, 1000 / 3, 2000 / 3, 1000]);
  });

  it("counts the wait for a free connection from the due time, and not the generator's own lateness", () => {
    // A connection was free before the request came due: it left 0.8 ms late by the generator's timer.
    const idle = { dueMs: 10, freeSinceMs: 5, sentMs: 10.8, answeredMs: 11.3 };
    expect(latencyOnSchedule(idle)).toBe(0.5);
    expect(sendLagMs(idle)).toBeCloseTo(0.8, 12);
    // Every connection was busy until 30: the 20 ms it waited are the service's.
    const busy = { dueMs: 10, freeSinceMs: 30, sentMs: 30.25, answeredMs: 30.75 };
    expect(latencyOnSchedule(busy)).toBe(20.5);
    expect(sendLagMs(busy)).toBe(0.25);
  });

  it("shows a stall in every request it delayed (one connection, 1000/s, a 100 ms answer, then 0.5 ms each)", () => {
    const schedule = new FixedRateSchedule(1000, 0);
    const corrected: number[] = [];
    const uncorrected: number[] = [];
    let freeSince = 0;
    for (let k = 0; k < 1000; k++) {
      const due = schedule.next();
      // A punctual generator: the request leaves once due and the connection is free.
      const sent = Math.max(due, freeSince);
      const answered = sent + (k === 0 ? 100 : 0.5);
      corrected.push(
        latencyOnSchedule({ dueMs: due, freeSinceMs: freeSince, sentMs: sent, answeredMs: answered }),
      );
      uncorrected.push(answered - sent);
      freeSince = answered;
    }
    expect(corrected.slice(0, 4)).toEqual([100, 99.5, 99, 98.5]);
    expect(corrected.slice(197, 201)).toEqual([1.5, 1, 0.5, 0.5]);
    expect(uncorrected.slice(0, 3)).toEqual([100, 0.5, 0.5]);
    const c = new LatencyHistogram();
    const u = new LatencyHistogram();
    for (const v of corrected) c.recordMs(v);
    for (const v of uncorrected) u.recordMs(v);
    // 801 answers of 0.5 ms, then 1, 1.5, ... 99.5 and 100: ranks 500, 900 and 990 are 0.5, 50 and 95 ms, each
    // read as the top of its bucket (500 µs in 500-501, 50,000 in 49,920-50,175, 95,000 in 94,720-95,231).
    expect(c.percentileUs(0.5)).toBe(501);
    expect(c.percentileUs(0.9)).toBe(50_175);
    expect(c.percentileUs(0.99)).toBe(95_231);
    expect(u.percentileUs(0.99)).toBe(501);
    expect(u.maxUs).toBe(100_000);
  });
});

describe("percentiles", () => {
  it("are exact below 256 µs, by nearest rank", () => {
    const h = new LatencyHistogram();
    for (let us = 1; us <= 100; us++) h.recordMs(us / 1000);
    expect([0.5, 0.9, 0.99, 0.999].map((q) => h.percentileUs(q))).toEqual([50, 90, 99, 100]);
    expect(h.count).toBe(100);
    expect(h.maxUs).toBe(100);
    expect(new LatencyHistogram().percentileUs(0.99)).toBe(0);
  });

  it("read the top of a bucket within 1/128 above 256 µs, never above the largest value", () => {
    expect([255, 256, 257, 258, 1000, 1003, 1004].map(bucketOf)).toEqual([255, 256, 256, 257, 506, 506, 507]);
    expect([highestOf(255), highestOf(256), highestOf(506), lowestOf(506)]).toEqual([255, 257, 1003, 1000]);
    for (const v of [256, 300, 1000, 12_345, 1_000_000, 60_000_000, 2 ** 32 - 1]) {
      const b = bucketOf(v);
      expect(lowestOf(b)).toBeLessThanOrEqual(v);
      expect(highestOf(b)).toBeGreaterThanOrEqual(v);
      expect((highestOf(b) + 1 - lowestOf(b)) / lowestOf(b)).toBeLessThanOrEqual(1 / 128);
    }
    const h = new LatencyHistogram();
    h.recordMs(1);
    expect(h.percentileUs(0.5)).toBe(1000);
    h.recordMs(2);
    expect(h.percentileUs(0.5)).toBe(1003);
    expect(h.percentileUs(1)).toBe(2000);
  });
});

describe("answers", () => {
  it("counts segments, degraded, withheld by reason, warnings by code and statuses", () => {
    const t = new AnswerTally();
    t.record(200, '{"segments":["1001"],"degraded":false,"withheld":[]}', {});
    t.record(200, '{"segments":[],"degraded":true,"withheld":["coppa"]}', {});
    t.record(
      200,
      '{"segments":[],"degraded":false,"withheld":["gdpr_no_consent","lmt"],"warnings":[{"code":"W1"},"W2"]}',
      {},
    );
    t.record(200, '{"segments":["1"],"withheld":[],"warnings":[]}', {});
    // An enriched request: segments added to user.data, degraded and withheld in headers.
    t.record(200, '{"id":"r","user":{"data":[{"name":"acme","segment":[{"id":"7"}]}]}}', {
      "X-Audience-Degraded": "1",
      "x-audience-withheld": "usp_optout",
    });
    t.record(200, '{"id":"r","mutations":[{"intent":"ACTIVATE_DEALS"}]}', {});
    t.record(200, '{"id":"r","mutations":[{"intent":"ACTIVATE_SEGMENTS"}]}', {});
    t.record(200, "not json", {});
    t.record(404, '{"error":{"code":"AUD_ERR_NOT_FOUND"}}', {});
    t.record(503, "", {});
    t.record(404, "", {});
    expect({
      answers: t.answers,
      ok: t.ok,
      withSegments: t.withSegments,
      degraded: t.degraded,
      withheldAnswers: t.withheldAnswers,
      withheld: [...t.withheld],
      warningAnswers: t.warningAnswers,
      warnings: [...t.warnings],
      unreadable: t.unreadable,
      non2xx: t.non2xx,
      statuses: [...t.statuses],
    }).toEqual({
      answers: 11,
      ok: 8,
      withSegments: 4,
      degraded: 2,
      withheldAnswers: 3,
      withheld: [
        ["coppa", 1],
        ["gdpr_no_consent", 1],
        ["lmt", 1],
        ["usp_optout", 1],
      ],
      warningAnswers: 1,
      warnings: [
        ["W1", 1],
        ["W2", 1],
      ],
      unreadable: 1,
      non2xx: 3,
      statuses: [
        [200, 8],
        [404, 2],
        [503, 1],
      ],
    });
  });
});

describe("report", () => {
  it("prints throughput, percentiles and the answers as tables", () => {
    const r = runResult();
    expect(latencyTable(r)).toEqual([
      "                         answers     req/s    p50 ms    p90 ms    p99 ms  p99.9 ms    max ms",
      "latency from send              5       2.5     0.301     0.500     0.500     0.500     0.500",
    ]);
    expect(answersTable(r.tally, r)).toEqual([
      "answers                    count    of 2xx",
      "  2xx                          4",
      "  with segments                3     75.0%",
      "  degraded                     0      0.0%",
      "  withheld                     1     25.0%   coppa 1",
      "  warnings                     0      0.0%",
      "  non-2xx                      1             404 1",
      "  errors                       1             timeouts 1",
    ]);
  });

  it("is one self-contained HTML file: inline SVG charts, no script, no stylesheet or font from anywhere", () => {
    const html = reportHtml({
      title: "audience loadtest of http://10.0.0.1:8080/v1/lookup <b>",
      settings: [
        ["target", "POST http://10.0.0.1:8080/v1/lookup"],
        ["ids", "a<b>.csv"],
      ],
      result: runResult(),
      notes: ["rate: asked 3/s, answered 2.5/s"],
      verdict: { pass: false, text: "FAIL: 1 non-2xx answers and 1 errors, more than --max-errors 0" },
    });
    expect(html).toContain("<p>rate: asked 3/s, answered 2.5/s</p>");
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html.match(/<svg /g)?.length).toBe(3);
    expect(html.match(/<\/svg>/g)?.length).toBe(3);
    expect(html).toContain("Latency over time (from send), per second");
    expect(html).toContain("Latency histogram (from send)");
    // Two p50/p99 lines over time, each with a point per second.
    expect(html.match(/<polyline /g)?.length).toBe(4);
    expect(html).toContain('<p class="verdict fail">FAIL: 1 non-2xx answers');
    expect(html).toContain("<td>a&#60;b&#62;.csv</td>");
    expect(html).not.toContain("<b>");
    for (const banned of ["<script", "<link", "@import", "url(", "src=", "xmlns"])
      expect(html).not.toContain(banned);
    // The only addresses in it are the target's, as text.
    expect(new Set(html.match(/https?:\/\/[^\s"'<)]*/g))).toEqual(
      new Set(["http://10.0.0.1:8080/v1/lookup"]),
    );
  });

  it("puts chart ticks at round steps up to the largest value or just above", () => {
    expect(niceTicks(430)).toEqual([0, 100, 200, 300, 400, 500]);
    expect(niceTicks(400)).toEqual([0, 100, 200, 300, 400]);
    expect(niceTicks(0.7)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(3, 8)).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3]);
    expect(niceTicks(0)).toEqual([0]);
  });
});
