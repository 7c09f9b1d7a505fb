// The rule the timed tests hold answer times to: an answer's time less the stalls of the caller's own
// process meanwhile must stay under the bound.
import { describe, expect, it } from "vitest";
import { lateAnswers, type Sample } from "../helpers/load-process.ts";

const answer = (t: number, ms: number): Sample => ({
  t,
  ms,
  status: 200,
  degraded: false,
  segments: [],
  user: 0,
});

describe("lateAnswers", () => {
  it("keeps the answers past the bound that the caller's stalls do not cover by their excess", () => {
    const samples = [answer(0, 84), answer(100, 85), answer(200, 120), answer(400, 120), answer(600, 120)];
    const stalls = [
      // Within the third answer: 36 ms, leaving it 84.
      { t: 230, ms: 36 },
      // Overlaps the fourth by 34 ms only (from 486 to 520), leaving it 86.
      { t: 486, ms: 100 },
      // Two stalls within the fifth: 20 + 16 ms.
      { t: 610, ms: 20 },
      { t: 650, ms: 16 },
    ];
    expect(lateAnswers(samples, stalls, 85)).toEqual([answer(100, 85), answer(400, 120)]);
    expect(lateAnswers(samples, [], 85)).toEqual(samples.slice(1));
  });
});
