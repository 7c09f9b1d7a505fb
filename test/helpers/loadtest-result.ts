// A finished `audience loadtest` run with known figures, for the tests of what is printed and reported.
import { AnswerTally } from "../../src/loadtest/answers.ts";
import { LatencyHistogram } from "../../src/loadtest/histogram.ts";
import type { RunResult } from "../../src/loadtest/run.ts";

/** A finished run with known figures. */
export function runResult(): RunResult {
  const tally = new AnswerTally();
  for (let i = 0; i < 3; i++) tally.record(200, '{"segments":["1"],"degraded":false,"withheld":[]}', {});
  tally.record(200, '{"segments":[],"degraded":false,"withheld":["coppa"]}', {});
  tally.record(404, "", {});
  const fromSend = new LatencyHistogram();
  for (const ms of [0.1, 0.2, 0.3, 0.4, 0.5]) fromSend.recordMs(ms);
  return {
    elapsedS: 2,
    sent: 6,
    tally,
    fromSend,
    fromSchedule: null,
    sendLag: null,
    seconds: [
      { atS: 1, spanS: 1, answers: 3, p50Us: 200, p99Us: 300, errors: 0 },
      { atS: 2, spanS: 1, answers: 2, p50Us: 400, p99Us: 500, errors: 1 },
    ],
    errors: 1,
    timeouts: 1,
    closed: 0,
    notSent: 0,
  };
}
