// Set-up of the frequency-capping scenarios: cap rules through the admin API, impressions through the events
// API, and the person each bid request's counters are kept under (worked out as the service does it).
import { personKeyOf } from "../src/capping/person-key.ts";
import { typeOfKey } from "../src/identity/typed-id.ts";
import type { Json } from "../src/json-fields.ts";
import { readBidRequest } from "../src/openrtb/read-bid-request.ts";
import { ReadWarnings } from "../src/openrtb/read-warnings.ts";
import { benchAccess } from "./bodies.ts";

/** The campaigns with cap rules; scenario (e) names them all as candidates in every lookup. */
export const CAP_CAMPAIGNS: readonly string[] = ["cap-1", "cap-2", "cap-3", "cap-4", "cap-5"];
/** Each campaign's rule: these (window, max) pairs. */
export const CAP_WINDOWS: readonly { readonly window: string; readonly max: number }[] = [
  { window: "1h", max: 3 },
  { window: "24h", max: 10 },
  { window: "lifetime", max: 50 },
];
/** Impressions per campaign and person that reach the tightest window's max, so the campaign is capped. */
export const IMPRESSIONS_TO_CAP = Math.min(...CAP_WINDOWS.map((w) => w.max));
/** The lookup path of scenario (e). */
export const CAPS_LOOKUP_PATH = `/v1/lookup?campaigns=${CAP_CAMPAIGNS.join(",")}`;

/** IDS_PER_REQUEST_LIMIT's default: the service reads at most this many IDs from one bid request. */
const IDS_PER_REQUEST = 64;
/**
 * Lines per POST /v1/events batch, and batches in flight at once: no more than MAX_STREAMS_IN_FLIGHT's
 * default (8), past which the service sheds a streamed request (503) rather than let uploads crowd it.
 */
const EVENTS_PER_BATCH = 1_000;
const BATCHES_IN_FLIGHT = 8;

/**
 * The key a bid request's counters are kept under: the strongest typed ID in it, as the lookup picks it
 * (no exchange named, so user.id is ignored, as in the bench's requests). Null when it has no ID at all.
 */
export function personOfBody(bytes: Buffer): string | null {
  const body = JSON.parse(bytes.toString("utf8")) as Json;
  return personKeyOf(readBidRequest(body, "", IDS_PER_REQUEST, benchAccess(body), new ReadWarnings()).keys);
}

/** The event fields that name a person: "eid:uidapi.com:abc" -> type "eid:uidapi.com", id "abc". */
export function eventPerson(personKey: string): { type: string; id: string } {
  const type = typeOfKey(personKey);
  return { type, id: personKey.slice(type.length + 1) };
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function answerOf(r: Response): Promise<string> {
  const text = await r.text();
  return `${r.status} ${text.slice(0, 500)}`;
}

/**
 * Loads the rules of CAP_CAMPAIGNS with PUT /v1/admin/caps (CSV), then waits until the instance serves
 * them (the catalog swaps in after its reload). Returns the number of rules the service reports.
 */
export async function putCapRules(baseUrl: string, token: string): Promise<number> {
  const csv = [
    "campaign,window,max",
    ...CAP_CAMPAIGNS.flatMap((c) => CAP_WINDOWS.map((w) => `${c},${w.window},${w.max}`)),
    "",
  ].join("\n");
  const put = await fetch(`${baseUrl}/v1/admin/caps`, {
    method: "PUT",
    headers: { ...bearer(token), "content-type": "text/csv" },
    body: csv,
    signal: AbortSignal.timeout(10_000),
  });
  if (put.status !== 200) throw new Error(`PUT /v1/admin/caps answered ${await answerOf(put)}`);
  await put.arrayBuffer();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await fetch(`${baseUrl}/v1/admin/caps`, {
      headers: bearer(token),
      signal: AbortSignal.timeout(5_000),
    });
    if (r.status !== 200) throw new Error(`GET /v1/admin/caps answered ${await answerOf(r)}`);
    const { rules } = (await r.json()) as { rules?: { campaign?: string }[] };
    const have = new Set((rules ?? []).map((x) => x.campaign));
    if (CAP_CAMPAIGNS.every((c) => have.has(c))) return rules?.length ?? 0;
    if (Date.now() > deadline) throw new Error(`cap rules not served 10 s after the upload: ${[...have]}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface RecordedImpressions {
  readonly people: number;
  readonly events: number;
  readonly batches: number;
  readonly ms: number;
}

/**
 * Records IMPRESSIONS_TO_CAP impressions of every CAP_CAMPAIGNS campaign for each person (typed keys) with
 * POST /v1/events NDJSON batches, each impression with its own id, sent with `eventsKey` (a key of
 * ADMIN_TOKENS with the `events` scope). Throws unless every event was counted.
 */
export async function recordCappingImpressions(
  baseUrl: string,
  eventsKey: string,
  people: readonly string[],
): Promise<RecordedImpressions> {
  const started = performance.now();
  const lines: string[] = [];
  people.forEach((key, p) => {
    const person = eventPerson(key);
    for (const campaign of CAP_CAMPAIGNS) {
      for (let k = 0; k < IMPRESSIONS_TO_CAP; k++) {
        lines.push(JSON.stringify({ ...person, campaign, imp: `e-${p}-${campaign}-${k}` }));
      }
    }
  });
  const batches: string[] = [];
  for (let i = 0; i < lines.length; i += EVENTS_PER_BATCH) {
    batches.push(`${lines.slice(i, i + EVENTS_PER_BATCH).join("\n")}\n`);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const body = batches[next++] as string;
      const sent = body.split("\n").length - 1;
      const r = await fetch(`${baseUrl}/v1/events`, {
        method: "POST",
        headers: { ...bearer(eventsKey), "content-type": "application/x-ndjson" },
        body,
        signal: AbortSignal.timeout(60_000),
      });
      if (r.status !== 200) throw new Error(`POST /v1/events answered ${await answerOf(r)}`);
      const result = (await r.json()) as { counted?: number; duplicates?: number; rejected?: number };
      if (result.counted !== sent) {
        throw new Error(
          `POST /v1/events counted ${result.counted} of ${sent} events: ${JSON.stringify(result).slice(0, 500)}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCHES_IN_FLIGHT, batches.length) }, worker));
  return {
    people: people.length,
    events: lines.length,
    batches: batches.length,
    ms: performance.now() - started,
  };
}

/** Why a lookup answer does not show every cap campaign capped with nothing left; null when it does. */
export function cappedProblem(answer: {
  capped?: readonly string[];
  remaining?: Readonly<Record<string, number | null>>;
}): string | null {
  const capped = new Set(answer.capped ?? []);
  const notCapped = CAP_CAMPAIGNS.filter((c) => !capped.has(c));
  if (notCapped.length > 0) return `not in capped: ${notCapped.join(",")}`;
  const left = CAP_CAMPAIGNS.filter((c) => answer.remaining?.[c] !== 0);
  if (left.length > 0) return `remaining not 0 for ${left.join(",")}: ${JSON.stringify(answer.remaining)}`;
  return null;
}
