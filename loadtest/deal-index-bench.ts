// Micro-benchmark: matching a person's segments against the bench's 1,000 deal rules (DealIndex.matching),
// the deal step of an enrich. Persons of 2 to 12 segments drawn from the bench's 99 (1001-1099).
//   npx tsx loadtest/deal-index-bench.ts      (ROUNDS=41, PER_ROUND_MS=50)
import { DealIndex } from "../src/segments/deal-index.ts";
import { dealRuleDefs } from "./deals.ts";
import { nsPerItem, quantile } from "./micro-timer.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 41);
const PER_ROUND_MS = Number(process.env.PER_ROUND_MS ?? 50);

const index = new DealIndex(dealRuleDefs());
let seed = 7;
const next = (): number => {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
  return seed;
};
const persons: Set<string>[] = Array.from({ length: 1_000 }, () => {
  const s = new Set<string>();
  const n = 2 + (next() % 11);
  while (s.size < n) s.add(String(1001 + (next() % 99)));
  return s;
});

let sink = 0;
const perRound: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  perRound.push(
    nsPerItem(PER_ROUND_MS, () => {
      for (const p of persons) sink += index.matching(p).length;
      return persons.length;
    }),
  );
}
console.log(
  `deal matching, ${index.size} rules, persons of 2-12 segments: ${quantile(perRound, 0.5).toFixed(0)} ns per person (median of ${ROUNDS} rounds; fastest ${quantile(perRound, 0).toFixed(0)}), ${sink > 0 ? "" : "no "}deals matched`,
);
