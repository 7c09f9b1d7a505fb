// Scenario (f): pixel URLs (GET /v1/events/imp), each with its own impression id, and their checks.
import { CAP_CAMPAIGNS, CAP_WINDOWS, eventPerson } from "./caps.ts";
import { typedId } from "./users.ts";

export interface PixelEvent {
  readonly type: string;
  readonly id: string;
  readonly campaign: string;
  readonly path: string;
}

/**
 * `count` pixel URLs over `people` people (user numbers from `firstUser` on, by turns of the three ID kinds)
 * and the CAP_CAMPAIGNS campaigns: URL j is person j mod people and a unique imp id, so the first `people`
 * URLs each name a different person. Values are URL-encoded (UID2 IDs are base64, with '+', '/' and '=').
 */
export function pixelEvents(count: number, firstUser: number, people: number): PixelEvent[] {
  const persons = Array.from({ length: Math.min(people, count) }, (_, p) =>
    eventPerson(typedId(firstUser + p)),
  );
  const out = new Array<PixelEvent>(count);
  const enc = encodeURIComponent;
  for (let j = 0; j < count; j++) {
    const p = persons[j % persons.length] as { type: string; id: string };
    const campaign = CAP_CAMPAIGNS[Math.floor(j / persons.length) % CAP_CAMPAIGNS.length] as string;
    const imp = `f-${j.toString(16).padStart(8, "0")}`;
    out[j] = {
      ...p,
      campaign,
      path: `/v1/events/imp?type=${enc(p.type)}&id=${enc(p.id)}&campaign=${campaign}&imp=${imp}`,
    };
  }
  return out;
}

/**
 * Sends each event once and checks it was stored and counted: the GET answers 204, then a compact lookup for
 * the same person on the same instance shows one impression fewer left for the campaign (each event is the
 * person's first of that campaign). Returns "ok/n".
 */
export async function verifyPixelEvents(
  baseUrl: string,
  events: readonly PixelEvent[],
  log: (line: string) => void,
): Promise<string> {
  const tightest = Math.min(...CAP_WINDOWS.map((w) => w.max));
  let ok = 0;
  for (let i = 0; i < events.length; i++) {
    const ev = events[i] as PixelEvent;
    const r = await fetch(`${baseUrl}${ev.path}`, { signal: AbortSignal.timeout(5000) });
    const text = await r.text();
    let problem: string | null = r.status === 204 ? null : `GET answered ${r.status} ${text.slice(0, 300)}`;
    if (problem === null) {
      const l = await fetch(`${baseUrl}/v1/lookup?campaigns=${ev.campaign}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: `verify-f-${i}`, ids: [{ type: ev.type, id: ev.id }] }),
        signal: AbortSignal.timeout(5000),
      });
      const answer = (await l.json()) as { remaining?: Record<string, number | null>; degraded?: boolean };
      const left = answer.remaining?.[ev.campaign];
      if (l.status !== 200 || answer.degraded !== false || left !== tightest - 1) {
        problem = `lookup after the event answered ${l.status} ${JSON.stringify(answer).slice(0, 300)}, expected remaining ${tightest - 1}`;
      }
    }
    if (problem === null) ok++;
    else if (ok === i) log(`    event ${i} (${ev.path}): ${problem}`);
  }
  return `${ok}/${events.length}`;
}
