// (i): 1,000 deal rules over the bench's segments, loaded through the admin API, and the answer /v1/enrich
// owes a body (its segments in user.data, the deals they unlock) worked out with the service's own matcher.
import type { Json } from "../src/json-fields.ts";
import { DealIndex, impMatches } from "../src/segments/deal-index.ts";
import type { DealRuleDef } from "../src/segments/deal-rule.ts";

export const DEAL_RULES = 1_000;

/**
 * Rule k names four of the segments 1001..1099 in a nested AND / OR / NOT, a third of them with a format
 * condition: a person of the bench (2 to 6 segments) unlocks a few deals, as audience deals go.
 */
export function dealRuleDefs(): DealRuleDef[] {
  const seg = (n: number): string => String(1001 + (n % 99));
  return Array.from({ length: DEAL_RULES }, (_, k) => ({
    id: `bench-deal-${k}`,
    when: `${seg(k)} AND (${seg(k * 7 + 3)} OR ${seg(k * 11 + 1)}) AND NOT ${seg(k * 13 + 5)}`,
    bidfloor: 1 + (k % 20) / 4,
    bidfloorcur: "USD",
    at: 1,
    wseat: null,
    wadomain: null,
    formats: k % 3 === 0 ? ["banner"] : k % 3 === 1 ? ["video", "banner"] : null,
    sizes: null,
  }));
}

export async function putDealRules(baseUrl: string, token: string): Promise<number> {
  const body = `${dealRuleDefs()
    .map((d) => JSON.stringify(Object.fromEntries(Object.entries(d).filter(([, v]) => v !== null))))
    .join("\n")}\n`;
  const put = await fetch(`${baseUrl}/v1/admin/deals`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-ndjson" },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  if (put.status !== 200) throw new Error(`PUT /v1/admin/deals answered ${put.status}: ${await put.text()}`);
  await put.arrayBuffer();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await fetch(`${baseUrl}/v1/admin/deals`, { headers: { authorization: `Bearer ${token}` } });
    const { rules } = (await r.json()) as { rules?: unknown[] };
    if ((rules?.length ?? 0) >= DEAL_RULES) return rules?.length ?? 0;
    if (Date.now() > deadline) throw new Error("deal rules not served 10 s after the upload");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const index = new DealIndex(dealRuleDefs());

/** What is wrong with an enriched answer, or null: the segments under "audience", each imp's deal ids. */
export function enrichProblem(request: Buffer, answer: Json, segments: readonly string[]): string | null {
  const req = JSON.parse(request.toString("utf8")) as Json;
  const data = ((answer.user as Json | undefined)?.data ?? []) as Json[];
  const ours = data.find((d) => d.name === "audience");
  const got = ((ours?.segment ?? []) as Json[]).map((s) => s.id);
  if (got.join() !== segments.join()) return `user.data segments [${got}], expected [${segments}]`;
  const matched = segments.length === 0 ? [] : index.matching(segments);
  const imps = req.imp as Json[];
  for (let i = 0; i < imps.length; i++) {
    const want = matched.filter((r) => impMatches(r.def, imps[i] as Json)).map((r) => r.def.id);
    const pmp = ((answer.imp as Json[])[i] as Json).pmp as Json | undefined;
    const have = ((pmp?.deals ?? []) as Json[]).map((d) => d.id);
    if (have.join() !== want.join()) return `imp ${i}: deals [${have}], expected [${want}]`;
  }
  return null;
}
