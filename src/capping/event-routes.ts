// Impression events: GET /v1/events/imp (a pixel for nurl/burl) and POST /v1/events (NDJSON batches).
// An event is acknowledged only once it is stored; each is counted exactly once per impression id.
import type { Readable } from "node:stream";
import { ApiError } from "../errors.ts";
import { type AdminTokenScopes, type AuthFailures, requireScope } from "../http/admin-auth.ts";
import {
  type HttpAnswer,
  type HttpRequestData,
  jsonAnswer,
  queryParam,
  type Route,
} from "../http/http-types.ts";
import { EVENT_MAX_LINE_BYTES, IngestFileError, readRecords } from "../ingest/record-reader.ts";
import type { ImpressionOutcome, ImpressionWrite, ProfileStore } from "../profiles/profile-store.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";
import type { LiveCatalog } from "../segments/live-catalog.ts";
import { type CapRule, scopeKey } from "./cap-rule.ts";
import { counterWrite } from "./cap-windows.ts";
import type { CounterCache } from "./counter-cache.ts";
import { impressionScopes } from "./counters.ts";
import {
  type EventReading,
  type ImpressionEvent,
  queryFields,
  readImpressionEvent,
} from "./impression-event.ts";
import type { NoticeTokens } from "./notice-token.ts";

export interface EventDeps {
  readonly store: ProfileStore;
  readonly catalog: LiveCatalog;
  readonly counters: CounterCache;
  /** Announces whose counters changed to the other instances (counter-changes.ts). */
  readonly counterChanges: { add(keys: readonly string[]): void };
  readonly tokens: NoticeTokens;
  readonly now: () => number;
  /** Keys of POST /v1/events (scope `events`), as for the admin API. */
  readonly adminTokens: AdminTokenScopes;
  /**
   * EVENTS_OPEN: POST /v1/events without a key and the pixel with type and id, as before tokens existed. For
   * closed networks only: anyone who can reach the service can then count impressions for anyone.
   */
  readonly open: boolean;
  /** Where refused keys are logged, as for the admin API. */
  readonly authFailures?: AuthFailures;
}

/** The smallest 1×1 transparent GIF, for callers that need an image rather than a 204. */
const PIXEL_GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
const NO_STORE: readonly (readonly [string, string])[] = [["cache-control", "no-store"]];
/** An impression id is remembered at least this long, and as long as the longest cap window. */
const MIN_DEDUP_SEC = 86_400;
const EVENT_SHAPE = {
  required: [],
  known: new Set(["type", "id", "token", "campaign", "line_item", "creative", "imp", "ts"]),
} as const;

/** Lifetime counts of what happened to impression events, shown in /healthz. */
export interface EventStats {
  counted: number;
  duplicates: number;
  /**
   * Events that changed nothing and were not errors: none of their scopes has a cap rule (or all they would
   * write is past its retention), their ID opted out, or the person's counters are full.
   */
  ignored: number;
  /** Bad events answered 4xx (pixel) or listed in a batch's errors: replayed or refused tokens included. */
  rejected: number;
  /** Events the store could not take (503). */
  refused: number;
}

type Recorded = "counted" | "duplicate" | "ignored";

export function eventRoutes(deps: EventDeps, stats: EventStats): Route[] {
  const pixelReading: EventReading = { tokens: deps.tokens, idsAllowed: deps.open };
  // The batch route is credentialed (or open): its caller may name people by type and id.
  const batchReading: EventReading = { tokens: deps.tokens, idsAllowed: true };

  const record = async (ev: ImpressionEvent): Promise<Recorded> => {
    const nowSec = Math.floor(deps.now() / 1000);
    const snapshot = deps.catalog.current;
    const rules = rulesByScope(snapshot);
    const counters = counterWrite(
      impressionScopes(ev.campaign, ev.lineItem, ev.creative),
      (scope) => rules.get(scope) ?? [],
      ev.tsSec,
      nowSec,
    );
    // No rule reads anything this event would write: nothing is written at all, not even its marker.
    if (counters === null) {
      stats.ignored++;
      return "ignored";
    }
    const base = { imp: ev.imp, counters, dedupTtlSec: dedupSeconds(snapshot) };
    const first: ImpressionWrite = {
      ...base,
      notice:
        ev.notice === null
          ? null
          : { nonce: ev.notice.nonce, uses: ev.notice.uses, expiresAtSec: ev.notice.expiresAtSec },
    };
    let named: ImpressionOutcome;
    let others: ImpressionOutcome[] = [];
    let keys: string[];
    try {
      // Every ID of the person holds the person's counts (identity-graph.ts), each with its own set-once
      // marker: a retry after a partial failure completes the rest and counts nothing twice. The ID the event
      // names goes first, alone: its step checks its opt-out and spends the token, and when it refuses, no
      // other ID of the person is written.
      const [profile] = await deps.store.readProfiles([ev.personKey], nowSec);
      const members = profile?.link?.members.map((m) => m.key) ?? [];
      keys = [ev.personKey];
      named = await deps.store.recordImpression(ev.personKey, first, nowSec);
      if (named === "counted" || named === "duplicate") {
        keys.push(...members);
        // Each checks its own ID's opt-out in its own atomic step.
        others = await Promise.all(
          members.map((k) => deps.store.recordImpression(k, { ...base, notice: null }, nowSec)),
        );
      }
    } catch (err) {
      // Not stored, so not acknowledged: the caller retries, and the dedup marker makes the retry safe.
      stats.refused++;
      throw new ApiError("AUD_ERR_STORE_UNAVAILABLE", `impression not recorded: ${(err as Error).message}`);
    }
    // This instance's entries go at once; the other instances' when the announcement reaches them.
    for (const k of keys) deps.counters.invalidate(k);
    deps.counterChanges.add(keys);
    if (named === "replayed") {
      stats.rejected++;
      throw new ApiError(
        "AUD_ERR_NOTICE_REFUSED",
        "token has counted as many impressions as its bid request had",
        "token",
      );
    }
    // An opted-out ID is answered like an event that counts toward no rule, not with an error: an error
    // would tell whoever holds the URL that this person opted out, and exchanges retry errors. A full
    // counter hash is an abuse guard a real person never reaches; it too writes nothing and says so in
    // the batch result's `ignored`.
    if (named === "opted_out" || named === "full") {
      stats.ignored++;
      return "ignored";
    }
    if (named === "counted" || others.includes("counted")) {
      stats.counted++;
      return "counted";
    }
    stats.duplicates++;
    return "duplicate";
  };

  const batch = async (req: HttpRequestData): Promise<HttpAnswer> => {
    const result = {
      received: 0,
      counted: 0,
      duplicates: 0,
      ignored: 0,
      rejected: 0,
      errors: [] as object[],
    };
    const nowSec = (): number => Math.floor(deps.now() / 1000);
    try {
      for await (const r of readRecords(req.stream as Readable, "ndjson", EVENT_SHAPE, {
        maxLineBytes: EVENT_MAX_LINE_BYTES,
      })) {
        result.received++;
        try {
          let ev: ImpressionEvent;
          try {
            if ("error" in r) throw new ApiError("AUD_ERR_BAD_JSON", r.error, "");
            ev = readImpressionEvent(r.record, nowSec(), batchReading);
          } catch (err) {
            if (err instanceof ApiError) stats.rejected++;
            throw err;
          }
          const done = await record(ev);
          if (done === "counted") result.counted++;
          else if (done === "duplicate") result.duplicates++;
          else result.ignored++;
        } catch (err) {
          // A store failure ends the batch (503: the caller retries it whole, counted once).
          if (!(err instanceof ApiError) || err.code === "AUD_ERR_STORE_UNAVAILABLE") throw err;
          result.rejected++;
          if (result.errors.length < 100)
            result.errors.push({ line: r.line, reason: err.message, field: err.field });
        }
      }
    } catch (err) {
      if (err instanceof IngestFileError) throw new ApiError("AUD_ERR_BAD_FILE", err.message, "body");
      throw err;
    }
    return jsonAnswer(200, result);
  };

  return [
    {
      method: "GET",
      path: "/v1/events/imp",
      body: "none",
      handler: async (req: HttpRequestData): Promise<HttpAnswer> => {
        let ev: ImpressionEvent;
        try {
          ev = readImpressionEvent(queryFields(req.query), Math.floor(deps.now() / 1000), pixelReading);
        } catch (err) {
          stats.rejected++;
          throw err;
        }
        await record(ev);
        if (queryParam(req.query, "format") === "gif") {
          return { status: 200, contentType: "image/gif", body: PIXEL_GIF, headers: NO_STORE };
        }
        return { status: 204, contentType: "text/plain", body: "", headers: NO_STORE };
      },
    },
    {
      method: "POST",
      path: "/v1/events",
      body: "stream",
      // Decided once: the key check is installed, or (EVENTS_OPEN) not.
      handler: deps.open ? batch : requireScope(deps.adminTokens, "events", batch, deps.authFailures),
    },
  ];
}

/** Cap rules by scope key, computed once per catalog snapshot. */
const rulesBySnapshot = new WeakMap<CatalogSnapshot, Map<string, CapRule[]>>();

function rulesByScope(snapshot: CatalogSnapshot): ReadonlyMap<string, readonly CapRule[]> {
  let byScope = rulesBySnapshot.get(snapshot);
  if (byScope !== undefined) return byScope;
  byScope = new Map();
  for (const rule of snapshot.capRules()) {
    const key = scopeKey(rule);
    const list = byScope.get(key);
    if (list === undefined) byScope.set(key, [rule]);
    else list.push(rule);
  }
  rulesBySnapshot.set(snapshot, byScope);
  return byScope;
}

/** Computed once per catalog snapshot, not per event: a catalog can hold thousands of rules. */
const dedupBySnapshot = new WeakMap<CatalogSnapshot, number>();

function dedupSeconds(snapshot: CatalogSnapshot): number {
  let longest = dedupBySnapshot.get(snapshot);
  if (longest !== undefined) return longest;
  longest = MIN_DEDUP_SEC;
  for (const rule of snapshot.capRules()) {
    for (const w of rule.windows) if (w.windowSec !== null && w.windowSec > longest) longest = w.windowSec;
  }
  dedupBySnapshot.set(snapshot, longest);
  return longest;
}
