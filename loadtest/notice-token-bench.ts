// Micro-benchmark: the notice token, version 1 (AES-256-CTR and HMAC-SHA256, as issued before) against
// version 2 (AES-256-CTR from a precomputed keystream and SipHash-2-4-128), issuing and reading, in one
// process, taking turns round by round so that a shared machine's changes in speed hit both alike. Prints the
// median µs per token of each, per grant.
//   npx tsx loadtest/notice-token-bench.ts            (ROUNDS=101, PER_ROUND_MS=20 by default)
import { NoticeTokens } from "../src/capping/notice-token.ts";
import { NoticeTokensV1 } from "../test/helpers/notice-token-v1.ts";
import { nsPerItem, quantile } from "./micro-timer.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 101);
const PER_ROUND_MS = Number(process.env.PER_ROUND_MS ?? 20);
const SECRET = "notice-token-benchmark-secret-0123456789";
const TTL_SEC = 3_600;
const NOW_SEC = Math.floor(Date.now() / 1000);

const GRANTS: readonly { name: string; key: string; campaigns: readonly string[] | null }[] = [
  {
    name: "IFA, 5 campaigns cap-1..cap-5",
    key: "ifa:6f1e8a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
    campaigns: ["cap-1", "cap-2", "cap-3", "cap-4", "cap-5"],
  },
  { name: "IFA, any campaign", key: "ifa:6f1e8a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b", campaigns: null },
  {
    // Past the keystream precomputed per nonce (192 bytes of payload): the rest is computed per token.
    name: "hashed e-mail, 8 campaigns of 36 characters",
    key: `hem:${"b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"}`,
    campaigns: Array.from({ length: 8 }, (_, i) => `campaign-${i}-0f4c6a1e-3b7d-4e2a-9c5b`),
  },
];

let sink = 0;
/** µs per call of `run` (given a running index), run for about PER_ROUND_MS. */
function time(run: (i: number) => number): number {
  let n = 0;
  return (
    nsPerItem(PER_ROUND_MS, () => {
      for (let k = 0; k < 100; k++) sink += run(n++);
      return 100;
    }) / 1000
  );
}

const median = (xs: number[]) => quantile(xs, 0.5);

const v1 = new NoticeTokensV1(SECRET, TTL_SEC);
const v2 = new NoticeTokens(SECRET, TTL_SEC);

for (const { name, key, campaigns } of GRANTS) {
  // Tokens to read, as many as a pool of nonces and more, read round robin.
  const v1Tokens = Array.from({ length: 1_024 }, () => v1.issue(key, campaigns, 1, NOW_SEC));
  const v2Tokens = Array.from({ length: 1_024 }, () => v2.issue(key, campaigns, 1, NOW_SEC));
  for (const t of [v1Tokens[0] as string, v2Tokens[0] as string]) {
    const grant = v2.read(t, NOW_SEC);
    if (typeof grant === "string" || grant.personKey !== key)
      throw new Error(`token does not read: ${JSON.stringify(grant)}`);
  }
  const runs: [string, (i: number) => number][] = [
    ["v1 issue", () => v1.issue(key, campaigns, 1, NOW_SEC).length],
    ["v2 issue", () => v2.issue(key, campaigns, 1, NOW_SEC).length],
    ["v1 read", (i) => (v2.read(v1Tokens[i & 1023] as string, NOW_SEC) as { uses: number }).uses],
    ["v2 read", (i) => (v2.read(v2Tokens[i & 1023] as string, NOW_SEC) as { uses: number }).uses],
  ];
  const times = runs.map((): number[] => []);
  for (let r = 0; r < ROUNDS; r++) {
    // Turn the order round each round, so that none always runs on a warmer or cooler machine.
    for (let j = 0; j < runs.length; j++) {
      const k = (j + r) % runs.length;
      times[k]?.push(time((runs[k] as [string, (i: number) => number])[1]));
    }
  }
  const m = times.map(median);
  const tokenChars = (v2Tokens[0] as string).length;
  console.log(
    `${name} (${tokenChars}-character token): ` +
      runs.map(([label], j) => `${label} ${(m[j] as number).toFixed(2)} µs`).join(", ") +
      ` per token, median of ${ROUNDS} rounds; issue ${((m[0] as number) / (m[1] as number)).toFixed(1)}x faster`,
  );
}
if (sink < 0) console.log(sink);
