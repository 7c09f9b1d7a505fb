// Who calls /v1/enrich and what each may receive: ENRICH_CALLERS maps an API key to a caller and the
// providers whose segments it may get. Second-party data (a partner's own) goes only to a caller that names
// its provider; `*` stands for every first- and third-party provider.
import { keyMatcher } from "../key-match.ts";

export interface EnrichCaller {
  readonly name: string;
  /** Providers named explicitly (any party, second-party ones included). */
  readonly providers: ReadonlySet<string>;
  /** `*`: every first- and third-party provider besides. */
  readonly allOpen: boolean;
}

/** API key -> caller; empty: /v1/enrich is open to anyone, as the caller ANONYMOUS. */
export type EnrichCallers = ReadonlyMap<string, EnrichCaller>;

/** The caller of an open service (no ENRICH_CALLERS): first- and third-party data, no second-party. */
export const ANONYMOUS: EnrichCaller = Object.freeze({
  name: "",
  providers: new Set<string>(),
  allOpen: true,
});

const KEY_RE = /^[A-Za-z0-9._~+/-]{16,}$/;
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Parses `<key>=<caller>:<provider>|<provider>|*,...`; each problem names its entry, the key redacted. */
export function parseEnrichCallers(raw: string): { callers: EnrichCallers; problems: string[] } {
  const callers = new Map<string, EnrichCaller>();
  const problems: string[] = [];
  if (raw.trim() === "") return { callers, problems };
  const entries = raw.split(",");
  for (let i = 0; i < entries.length; i++) {
    const problem = addCaller(callers, entries[i] as string);
    if (problem !== null) problems.push(`entry ${i + 1} ${problem}`);
  }
  return { callers, problems };
}

/**
 * A caller or provider name quoted in a problem: in full when shorter than a key can be, else only its
 * start, since a longer value in a name's place may be a key written in the wrong place.
 */
function quoted(value: string): string {
  return value.length < 16 ? value : `${value.slice(0, 4)}…`;
}

/** Adds one `<key>=<caller>:<providers>` entry; the problem (key redacted) when it is not one. */
function addCaller(callers: Map<string, EnrichCaller>, entry: string): string | null {
  const eq = entry.indexOf("=");
  const key = eq < 0 ? entry.trim() : entry.slice(0, eq).trim();
  const shown = `(${key.slice(0, Math.min(4, Math.floor(key.length / 2)))}…)`;
  if (eq < 0) return `${shown} must be <key>=<caller>:<providers>`;
  if (!KEY_RE.test(key)) return `${shown}: a key is at least 16 of A-Z a-z 0-9 . _ ~ + / -`;
  const rest = entry.slice(eq + 1).trim();
  const colon = rest.indexOf(":");
  const name = colon < 0 ? rest : rest.slice(0, colon);
  if (!NAME_RE.test(name)) return `${shown}: caller name '${quoted(name)}' is not valid`;
  const list =
    colon < 0
      ? []
      : rest
          .slice(colon + 1)
          .split("|")
          .map((p) => p.trim())
          .filter((p) => p !== "");
  const providers = new Set(list.filter((p) => p !== "*"));
  for (const p of providers) if (!NAME_RE.test(p)) return `${shown}: provider '${quoted(p)}' is not valid`;
  if (callers.has(key)) return `${shown}: the key is listed twice`;
  callers.set(key, { name, providers, allOpen: list.includes("*") });
  return null;
}

/** Each callers map's matcher, built on first use (the maps are built once, at start-up). */
const matchers = new WeakMap<EnrichCallers, (key: string) => EnrichCaller | null>();

/**
 * The caller an API key names; null for none or an unknown one. Compared as admin tokens are (key-match.ts):
 * the timing tells neither a key's characters nor its length.
 */
export function callerOf(callers: EnrichCallers, key: string): EnrichCaller | null {
  if (key === "") return null;
  let match = matchers.get(callers);
  if (match === undefined) {
    match = keyMatcher(callers);
    matchers.set(callers, match);
  }
  return match(key);
}

/** Whether a caller may receive a segment of this provider and party. */
export function mayReceive(caller: EnrichCaller, provider: string | null, party: string | null): boolean {
  if (provider !== null && caller.providers.has(provider)) return true;
  return caller.allOpen && party !== "second";
}
