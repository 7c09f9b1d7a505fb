// What the answers of a load test said: segments or not, degraded, withheld by reason, warnings, statuses.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Response headers as autocannon hands them over: names as sent, a value or the values of a repeated header. */
export type AnswerHeaders = Readonly<Record<string, string | string[] | undefined>>;

function headerValues(headers: AnswerHeaders, name: string): string[] {
  const out: string[] = [];
  for (const key in headers) {
    if (key.length !== name.length || key.toLowerCase() !== name) continue;
    const v = headers[key];
    if (Array.isArray(v)) out.push(...v);
    else if (v !== undefined) out.push(v);
  }
  return out;
}

/** Whether an enriched request (or its fragment) carries a user.data entry with segments. */
function enrichedHasSegments(answer: Obj): boolean {
  const user = answer.user;
  if (isObj(user) && Array.isArray(user.data)) {
    if (user.data.some((d) => isObj(d) && Array.isArray(d.segment) && d.segment.length > 0)) return true;
  }
  if (Array.isArray(answer.mutations)) {
    return answer.mutations.some((m) => isObj(m) && m.intent === "ACTIVATE_SEGMENTS");
  }
  return false;
}

function warningCode(w: unknown): string {
  if (typeof w === "string") return w;
  if (isObj(w) && typeof w.code === "string") return w.code;
  return "(no code)";
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * Counts what the answers said. A /v1/lookup answer is read from its JSON (`segments`, `degraded`, `withheld`,
 * `warnings`); a /v1/enrich answer from its headers (`x-audience-degraded`, `x-audience-withheld`) and the
 * segments it added to `user.data` (or its ARTF mutations). Every answer is read: JSON.parse and the counting
 * take about 0.6 µs for a lookup answer and 6 µs for an enriched 1.6 KB request, a few percent of a core at
 * the rates one load generator reaches, so nothing is sampled.
 */
export class AnswerTally {
  /** Answers of any status. */
  answers = 0;
  /** 2xx answers: the shares below are of these. */
  ok = 0;
  withSegments = 0;
  degraded = 0;
  /** Answers with at least one reason withheld. */
  withheldAnswers = 0;
  readonly withheld = new Map<string, number>();
  /** Answers carrying a `warnings` array with something in it. */
  warningAnswers = 0;
  readonly warnings = new Map<string, number>();
  /** 2xx answers whose body was not JSON. */
  unreadable = 0;
  non2xx = 0;
  readonly statuses = new Map<number, number>();

  record(status: number, body: string, headers: AnswerHeaders): void {
    this.answers++;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    if (status < 200 || status > 299) {
      this.non2xx++;
      return;
    }
    this.ok++;
    let answer: unknown = null;
    if (body.length > 0) {
      try {
        answer = JSON.parse(body);
      } catch {
        answer = null;
      }
    }
    const withheld = new Set<string>();
    for (const v of headerValues(headers, "x-audience-withheld")) {
      for (const r of v.split(",")) if (r.trim() !== "") withheld.add(r.trim());
    }
    let degraded = headerValues(headers, "x-audience-degraded").length > 0;
    if (isObj(answer)) {
      const segments = answer.segments;
      if (Array.isArray(segments) ? segments.length > 0 : enrichedHasSegments(answer)) this.withSegments++;
      if (answer.degraded === true) degraded = true;
      if (Array.isArray(answer.withheld)) for (const r of answer.withheld) withheld.add(String(r));
      if (Array.isArray(answer.warnings) && answer.warnings.length > 0) {
        this.warningAnswers++;
        for (const w of answer.warnings) bump(this.warnings, warningCode(w));
      }
    } else if (body.length > 0) {
      this.unreadable++;
    }
    if (degraded) this.degraded++;
    if (withheld.size > 0) this.withheldAnswers++;
    for (const r of withheld) bump(this.withheld, r);
  }
}
