// Frequency-cap rules: per campaign (optionally per line item and creative), a list of (window, max) pairs,
// e.g. at most 3 per 1 h, 10 per 24 h and 20 per 7 d, or 5 for the campaign's lifetime.
import { quotedInput } from "../privacy/log-redaction.ts";

export interface CapWindow {
  /** Length of the sliding window in seconds; null for the lifetime of the campaign. */
  readonly windowSec: number | null;
  /** Impressions allowed within the window. */
  readonly max: number;
}

export interface CapRule {
  readonly campaign: string;
  readonly lineItem: string | null;
  readonly creative: string | null;
  /** Ordered by window length, lifetime last; at most one entry per window length. */
  readonly windows: readonly CapWindow[];
}

/** Campaign, line item and creative ids: what rule files, events and lookups accept. */
export const CAP_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
/** The longest sliding window: counters are kept this long (lifetime counts are kept apart). */
export const MAX_WINDOW_SEC = 90 * 86_400;
const MIN_WINDOW_SEC = 60;
export const MAX_CAP = 1_000_000;

const WINDOW_RE = /^(\d+)\s*(m|h|d)$/i;
/** A mistyped window ("2w", "1 hour") is quoted as it is; anything else may be an ID in the wrong column. */
const WINDOW_SHAPE = /^[a-z0-9 ]{1,12}$/i;
const UNIT_SEC: Readonly<Record<string, number>> = { m: 60, h: 3_600, d: 86_400 };

/** Parses "30m", "1h", "24h", "7d" or "lifetime"; a string is the reason it is not a window. */
export function parseWindow(text: string): number | null | string {
  const t = text.trim().toLowerCase();
  if (t === "lifetime") return null;
  const m = WINDOW_RE.exec(t);
  if (m === null)
    return `window must be like 30m, 1h, 24h, 7d or lifetime, got ${quotedInput(text, WINDOW_SHAPE)}`;
  const sec = Number(m[1]) * (UNIT_SEC[(m[2] as string).toLowerCase()] as number);
  if (sec < MIN_WINDOW_SEC || sec > MAX_WINDOW_SEC) return "window must be from 1m to 90d (or lifetime)";
  return sec;
}

/** Writes a window back the way rule files write it. */
export function formatWindow(windowSec: number | null): string {
  if (windowSec === null) return "lifetime";
  if (windowSec % 86_400 === 0) return `${windowSec / 86_400}d`;
  if (windowSec % 3_600 === 0) return `${windowSec / 3_600}h`;
  return `${windowSec / 60}m`;
}

/** The rule's identity: one rule per campaign / line item / creative combination. */
export function scopeKey(rule: Pick<CapRule, "campaign" | "lineItem" | "creative">): string {
  return `${rule.campaign}|${rule.lineItem ?? ""}|${rule.creative ?? ""}`;
}

/** Sorts windows shortest first, lifetime last. */
export function sortWindows(windows: readonly CapWindow[]): CapWindow[] {
  return [...windows].sort(
    (a, b) => (a.windowSec ?? Number.POSITIVE_INFINITY) - (b.windowSec ?? Number.POSITIVE_INFINITY),
  );
}
