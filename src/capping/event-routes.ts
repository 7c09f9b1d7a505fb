// Impression events: GET /v1/events/imp (a pixel for nurl/burl) and POST /v1/events (NDJSON batches).
// An event is acknowledged only once it is stored; each is counted exactly once per impression id.
import type { Readable } from "node:stream";
import { ApiError } from "../errors.ts";
import {
  type HttpAnswer,
  type HttpRequestData,
  jsonAnswer,
  queryParam,
  type Route,
} from "../http/http-types.ts";
import { EVENT_MAX_LINE_BYTES, IngestFileError, readRecords } from "../ingest/record-reader.ts";
import type { ProfileStore } from "../profiles/profile-store.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";
import type { LiveCatalog } from "../segments/live-catalog.ts";
import type { CounterCache } from "./counter-cache.ts";
import { fieldsFor, impressionScopes } from "./counters.ts";
import type { EventTokens } from "./event-token.ts";
import { type ImpressionEvent, queryFields, readImpressionEvent } from "./impression-event.ts";

export interface EventDeps {
  readonly store: ProfileStore;
  readonly catalog: LiveCatalog;
  readonly counters: CounterCache;
  readonly tokens: EventTokens | null;
  readonly now: () => number;
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
  /** Bad events answered 400 (pixel) or listed in a batch's errors. */
  rejected: number;
  /** Events the store could not take (503). */
  refused: number;
}

export function eventRoutes(deps: EventDeps, stats: EventStats): Route[] {
  const record = async (ev: ImpressionEvent): Promise<boolean> => {
    const nowSec = Math.floor(deps.now() / 1000);
    const fields = impressionScopes(ev.campaign, ev.lineItem, ev.creative).flatMap((s) =>
      fieldsFor(s, ev.tsSec),
    );
    let counted: boolean;
    let keys: string[];
    try {
      // Every ID of the person holds the person's counts (identity-graph.ts), each with its own set-once
      // marker: a retry after a partial failure completes the rest and counts nothing twice.
      const [profile] = await deps.store.readProfiles([ev.personKey], nowSec);
      keys = [ev.personKey, ...(profile?.link?.members.map((m) => m.key) ?? [])];
      const dedupSec = dedupSeconds(deps.catalog);
      const results = await Promise.all(
        keys.map((k) => deps.store.recordImpression(k, ev.imp, fields, dedupSec, nowSec)),
      );
      counted = results.includes(true);
    } catch (err) {
      // Not stored, so not acknowledged: the caller retries, and the dedup marker makes the retry safe.
      stats.refused++;
      throw new ApiError("AUD_ERR_STORE_UNAVAILABLE", `impression not recorded: ${(err as Error).message}`);
    }
    for (const k of keys) deps.counters.invalidate(k);
    if (counted) stats.counted++;
    else stats.duplicates++;
    return counted;
  };

  return [
    {
      method: "GET",
      path: "/v1/events/imp",
      body: "none",
      handler: async (req: HttpRequestData): Promise<HttpAnswer> => {
        let ev: ImpressionEvent;
        try {
          ev = readImpressionEvent(queryFields(req.query), Math.floor(deps.now() / 1000), deps.tokens);
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
      handler: async (req: HttpRequestData): Promise<HttpAnswer> => {
        const result = { received: 0, counted: 0, duplicates: 0, rejected: 0, errors: [] as object[] };
        try {
          for await (const r of readRecords(req.stream as Readable, "ndjson", EVENT_SHAPE, {
            maxLineBytes: EVENT_MAX_LINE_BYTES,
          })) {
            result.received++;
            let ev: ImpressionEvent;
            try {
              if ("error" in r) throw new ApiError("AUD_ERR_BAD_JSON", r.error, "");
              ev = readImpressionEvent(r.record, Math.floor(deps.now() / 1000), deps.tokens);
            } catch (err) {
              if (!(err instanceof ApiError)) throw err;
              result.rejected++;
              stats.rejected++;
              if (result.errors.length < 100)
                result.errors.push({ line: r.line, reason: err.message, field: err.field });
              continue;
            }
            if (await record(ev)) result.counted++;
            else result.duplicates++;
          }
        } catch (err) {
          if (err instanceof IngestFileError) throw new ApiError("AUD_ERR_BAD_FILE", err.message, "body");
          throw err;
        }
        return jsonAnswer(200, result);
      },
    },
  ];
}

/** Computed once per catalog snapshot, not per event: a catalog can hold thousands of rules. */
const dedupBySnapshot = new WeakMap<CatalogSnapshot, number>();

function dedupSeconds(catalog: LiveCatalog): number {
  const snapshot = catalog.current;
  let longest = dedupBySnapshot.get(snapshot);
  if (longest !== undefined) return longest;
  longest = MIN_DEDUP_SEC;
  for (const rule of snapshot.capRules()) {
    for (const w of rule.windows) if (w.windowSec !== null && w.windowSec > longest) longest = w.windowSec;
  }
  dedupBySnapshot.set(snapshot, longest);
  return longest;
}
