// POST /v1/enrich — for SSPs and ad servers, before a bid request goes out: the person's segments in
// user.data (with segtax) and the deals they unlock in imp[].pmp.deals. Top to bottom: caller, parse, privacy
// gate, resolve IDs, fetch profiles (cache, one round trip), segments the caller may receive, deals, write.
import { ApiError, badField } from "../errors.ts";
import { type HttpAnswer, type HttpRequestData, JSON_TYPE, queryParam } from "../http/http-types.ts";
import { isObject, type Json } from "../json-fields.ts";
import { refuseDeepJson } from "../json-nesting.ts";
import {
  addProfile,
  type LiveSegmentRules,
  type LiveView,
  liveView,
  type ViewHolder,
} from "../lookup/live-segments.ts";
import {
  bearerKey,
  exchangeOf,
  parseJsonObject,
  readEnrichBody,
  readMinConfidence,
  wantsExpansion,
} from "../lookup/request-parts.ts";
import { readBidRequest } from "../openrtb/read-bid-request.ts";
import { ReadWarnings } from "../openrtb/read-warnings.ts";
import {
  enrichedRequest,
  enrichmentFragment,
  enrichmentMutations,
  planEnrichment,
  splicedRequest,
  userDataOf,
} from "../openrtb/write-enrichment.ts";
import type { ConsentDecoder } from "../privacy/consent-decoder.ts";
import type { PrivacyPolicy } from "../privacy/privacy-config.ts";
import { decideAccess, type PrivacyDecision } from "../privacy/privacy-gate.ts";
import { readPrivacySignals } from "../privacy/privacy-signals.ts";
import type { CachedProfile } from "../profiles/packed-profile.ts";
import type { ProfileBatch, ProfileCache } from "../profiles/profile-cache.ts";
import { deadlineMs } from "../reliability/deadline.ts";
import type { CatalogSnapshot } from "../segments/catalog.ts";
import { impMatches } from "../segments/deal-index.ts";
import type { DealRule } from "../segments/deal-rule.ts";
import type { LiveCatalog } from "../segments/live-catalog.ts";
import { ANONYMOUS, callerOf, type EnrichCaller, type EnrichCallers, mayReceive } from "./enrich-callers.ts";

export interface EnrichOptions {
  readonly cache: ProfileCache;
  readonly catalog: LiveCatalog;
  readonly callers: EnrichCallers;
  readonly defaultExchange: string;
  readonly idsPerRequestLimit: number;
  readonly privacy: PrivacyPolicy;
  readonly consent: ConsentDecoder;
  readonly now: () => number;
  readonly budgetMs: number;
  readonly tmaxMarginMs: number;
}

type Format = "request" | "fragment" | "mutations";

const MAX_IMPS = 100;

export function createEnrichHandler(
  opts: EnrichOptions,
): (req: HttpRequestData) => HttpAnswer | Promise<HttpAnswer> {
  const open = opts.callers.size === 0;
  return function enrich(req: HttpRequestData): HttpAnswer | Promise<HttpAnswer> {
    // 1. Caller: what it may receive (an open service gives first- and third-party data only).
    const caller = open ? ANONYMOUS : callerOf(opts.callers, bearerKey(req.authorization));
    if (caller === null)
      throw new ApiError(
        "AUD_ERR_UNAUTHORIZED",
        "an enrich caller's key is required (Authorization: Bearer <key>)",
      );
    const format = readFormat(req);
    const snapshot = opts.catalog.current;
    // 2. Parse: a BidRequest with its impressions, reduced to what enrich reads (request-parts.ts
    //    ENRICH_MEMBERS) with where each part closes, so the answer inserts into the request's bytes. When the
    //    whole request must be written again (JSON.stringify, recursive), a body nested deeper than that can
    //    take would fail: deep bodies are refused before any work, whichever way the answer is written.
    refuseDeepJson(req.body, "");
    const { body, ends } = readEnrichBody(req.body);
    // Read leniently, as a lookup is: a malformed part is skipped and warned, and never dropped from the
    // answer (what cannot take an insertion is left as the caller sent it).
    const warnings = new ReadWarnings();
    const imps = readImps(body, warnings);
    const dataInsertable = userDataInsertable(body, warnings);
    // 3. Privacy gate, then 4. resolve the IDs it allows.
    const access = decideAccess(readPrivacySignals(body, warnings), opts.privacy, opts.consent);
    const subject = readBidRequest(
      body,
      exchangeOf(req, opts.defaultExchange),
      opts.idsPerRequestLimit,
      access,
      warnings,
    );
    const rules: LiveSegmentRules = {
      snapshot,
      nowSec: 0,
      expand: wantsExpansion(req, body),
      minConfidence: readMinConfidence(req, body),
      // The caller's scope is applied to the whole answer below (scoped), deals included.
      scope: null,
    };
    // 5. Profiles: from cache, or all misses in one store round trip.
    const found = opts.cache.getMany(subject.keys, deadlineMs(body.tmax, opts.budgetMs, opts.tmaxMarginMs));
    const finish = (batch: ProfileBatch): HttpAnswer => {
      rules.nowSec = Math.floor(opts.now() / 1000);
      const { visible, unlocked } = audienceOf(
        batch,
        rules,
        subject.thirdParties,
        caller,
        access,
        opts.cache.holds ? opts.cache : null,
      );
      const deals = imps.map((imp) =>
        imp === null ? [] : unlocked.filter((r) => impMatches(r.def, imp)).map((r) => r.def),
      );
      const plan = planEnrichment(body, dataInsertable ? userDataOf(visible, snapshot) : [], deals);
      const headers: [string, string][] = [];
      if (subject.withheld.length > 0) headers.push(["x-audience-withheld", subject.withheld.join(",")]);
      // Field names are our own paths and codes (ASCII, no line breaks): the array fits a header as JSON.
      if (warnings.list !== null) headers.push(["x-audience-warnings", JSON.stringify(warnings.list)]);
      if (batch.degraded) headers.push(["x-audience-degraded", "1"]);
      let out: string | Buffer | null = null;
      if (format === "fragment") out = JSON.stringify(enrichmentFragment(body, plan));
      else if (format === "mutations") out = JSON.stringify(enrichmentMutations(body, plan));
      else if (ends !== null) out = splicedRequest(req.body, body, ends, plan);
      // The whole request written again: `body` is all of it only when it was parsed whole.
      out ??= JSON.stringify(enrichedRequest(ends === null ? body : parseJsonObject(req.body), plan));
      return { status: 200, contentType: JSON_TYPE, body: out, headers };
    };
    return found instanceof Promise ? found.then(finish) : finish(found);
  };
}

function readFormat(req: HttpRequestData): Format {
  const f = queryParam(req.query, "format");
  if (f === "" || f === "request") return "request";
  if (f === "fragment" || f === "mutations") return f;
  throw badField("format", "request, fragment or mutations");
}

/**
 * The impressions deals may be added to, by index in `imp` (null: none for that one, warned). A request
 * without a usable `imp` gets no deals; past MAX_IMPS impressions the rest get none.
 */
function readImps(body: Json, warnings: ReadWarnings): (Json | null)[] {
  const imp = body.imp;
  if (imp === undefined || imp === null) {
    warnings.missing("imp");
    return [];
  }
  if (!Array.isArray(imp)) {
    warnings.bad("imp");
    return [];
  }
  if (imp.length > MAX_IMPS) warnings.tooMany("imp");
  const out = new Array<Json | null>(imp.length).fill(null);
  for (let i = 0; i < Math.min(imp.length, MAX_IMPS); i++) {
    const it = imp[i];
    if (!isObject(it)) {
      warnings.bad(`imp[${i}]`);
      continue;
    }
    if (typeof it.id !== "string") {
      warnings.bad(`imp[${i}].id`);
      continue;
    }
    if (it.pmp !== undefined && it.pmp !== null) {
      if (!isObject(it.pmp)) {
        warnings.bad(`imp[${i}].pmp`);
        continue;
      }
      if (it.pmp.deals !== undefined && it.pmp.deals !== null && !Array.isArray(it.pmp.deals)) {
        warnings.bad(`imp[${i}].pmp.deals`);
        continue;
      }
    }
    out[i] = it;
  }
  return out;
}

/** Whether `user.data` entries can be added: `user` and `user.data` absent, null or of their type. */
function userDataInsertable(body: Json, warnings: ReadWarnings): boolean {
  const user = body.user;
  if (user === undefined || user === null) return true;
  // A `user` of the wrong type is warned by readPrivacySignals.
  if (!isObject(user)) return false;
  if (user.data === undefined || user.data === null || Array.isArray(user.data)) return true;
  warnings.bad("user.data");
  return false;
}

/** The segments this caller may receive: by provider, second-party data only to the partner named. */
function scoped(segments: Iterable<string>, snapshot: CatalogSnapshot, caller: EnrichCaller): string[] {
  const out: string[] = [];
  for (const s of segments) {
    const def = snapshot.get(s);
    if (mayReceive(caller, def?.provider ?? null, def?.party ?? null)) out.push(s);
  }
  return out.sort();
}

/** The segments a caller receives and the deal rules they unlock (impression conditions not yet applied). */
interface Audience {
  readonly visible: readonly string[];
  readonly unlocked: readonly DealRule[];
}

/**
 * What one cached profile's view gives each caller: a cached profile is enriched over and over, and matching
 * its segments against every deal rule keyed on them was the largest cost of an enrich after the JSON work.
 * Kept beside the view, so it lasts as long as the view: one catalog snapshot, one set of rules.
 */
const audiences = new WeakMap<LiveView, { readonly caller: EnrichCaller; readonly audience: Audience }>();

function audienceOf(
  batch: ProfileBatch,
  rules: LiveSegmentRules,
  thirdParties: boolean,
  caller: EnrichCaller,
  access: PrivacyDecision,
  views: ViewHolder | null,
): Audience {
  const snapshot = rules.snapshot;
  // Audience deals rest on personal data: none where consent withholds it (not even NOT-only rules).
  const dealsAllowed = access.personal && snapshot.deals.size > 0;
  let only = -1;
  let count = 0;
  for (let i = 0; i < batch.profiles.length; i++)
    if (batch.profiles[i] != null) {
      only = i;
      count++;
    }
  // Kept only where the profile is: with the cache off, nothing would ask again.
  const slot = only < 0 ? -1 : (batch.slots[only] as number);
  if (count === 1 && dealsAllowed && views !== null && slot >= 0) {
    const view = liveView(
      batch.profiles[only] as CachedProfile,
      batch.kinds,
      rules,
      thirdParties,
      views,
      slot,
    );
    const held = audiences.get(view);
    if (held !== undefined && held.caller === caller) return held.audience;
    const visible = scoped(view.segments, snapshot, caller);
    const audience = { visible, unlocked: snapshot.deals.matching(visible) };
    audiences.set(view, { caller, audience });
    return audience;
  }
  const segments = new Set<string>();
  for (const p of batch.profiles) if (p != null) addProfile(p, batch.kinds, segments, rules, thirdParties);
  const visible = scoped(segments, snapshot, caller);
  return { visible, unlocked: dealsAllowed ? snapshot.deals.matching(visible) : [] };
}
