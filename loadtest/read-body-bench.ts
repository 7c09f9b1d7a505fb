// Micro-benchmark: the lookup's reduced body reader (readLookupBody) against JSON.parse of the whole body
// (parseJsonObject), A/B in one process, taking turns round by round so that a shared machine's changes in
// speed hit both alike. Prints the median ns per body of each, per set of bodies.
//   npx tsx loadtest/read-body-bench.ts            (ROUNDS=101, PER_ROUND_MS=20 by default)
import { readdirSync, readFileSync } from "node:fs";
import { parseJsonObject, readLookupBody } from "../src/lookup/request-parts.ts";
import { nsPerItem, quantile } from "./micro-timer.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 101);
const PER_ROUND_MS = Number(process.env.PER_ROUND_MS ?? 20);

function jsonFiles(dir: URL, only?: (name: string) => boolean): Buffer[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json") && (only === undefined || only(f)))
    .sort()
    .map((f) => readFileSync(new URL(f, dir)));
}

const samples = jsonFiles(new URL("../openrtb-samples/", import.meta.url));
// The IAB OpenRTB 2.6 examples (mxmCherry/openrtb testdata) of the shared peer corpus, when it is there.
const corpusDir = new URL("../../shared/peer-corpus/", import.meta.url);
let iab26: Buffer[] = [];
try {
  const manifest = JSON.parse(readFileSync(new URL("manifest.json", corpusDir), "utf8")) as {
    file: string;
    source_path: string;
  }[];
  const names = new Set(
    manifest.filter((m) => m.source_path.includes("bid-request/2.6/")).map((m) => m.file.slice(9)),
  );
  iab26 = jsonFiles(new URL("requests/", corpusDir), (f) => names.has(f));
} catch {
  // No corpus: samples only.
}

let sink = 0;
/** ns per body of `read` over `bodies`, run for about PER_ROUND_MS. */
function time(read: (b: Buffer) => Record<string, unknown>, bodies: Buffer[]): number {
  return nsPerItem(PER_ROUND_MS, () => {
    for (const b of bodies) if (read(b).id !== undefined) sink++;
    return bodies.length;
  });
}

const median = (xs: number[]) => quantile(xs, 0.5);

/** As exchanges send them (and the bench's bodies are): without the files' indentation. */
const minified = (bodies: Buffer[]) =>
  bodies.map((b) => Buffer.from(JSON.stringify(JSON.parse(b.toString()))));

for (const [name, bodies] of [
  ["openrtb-samples, minified", minified(samples)],
  ["IAB 2.6 examples, minified", minified(iab26)],
  ["openrtb-samples, as filed", samples],
  ["IAB 2.6 examples, as filed", iab26],
] as const) {
  if (bodies.length === 0) continue;
  const bytes = bodies.reduce((s, b) => s + b.length, 0) / bodies.length;
  const full: number[] = [];
  const reduced: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so neither always runs on a warmer or cooler machine.
    if (r % 2 === 0) {
      full.push(time(parseJsonObject, bodies));
      reduced.push(time(readLookupBody, bodies));
    } else {
      reduced.push(time(readLookupBody, bodies));
      full.push(time(parseJsonObject, bodies));
    }
  }
  const f = median(full);
  const m = median(reduced);
  console.log(
    `${name} (${bodies.length} bodies, ${Math.round(bytes)} B avg): JSON.parse ${Math.round(f)} ns, ` +
      `reduced read ${Math.round(m)} ns per body (${(m / f).toFixed(2)}x), median of ${ROUNDS} rounds`,
  );
}
if (sink < 0) console.log(sink);
