// POST /v1/lookup — the hot path, top to bottom: parse, privacy gate, resolve IDs, fetch profiles, merge,
// apply caps, respond. Transport-neutral: the uWebSockets.js and node:http servers both call it.
import { Packr } from "msgpackr";
import { CallerScopes } from "../callers/caller-scope.ts";
import { CAP_ID_RE } from "../capping/cap-rule.ts";
import { CounterIndex } from "../capping/cap-windows.ts";
import { capsFor } from "../capping/caps-at-bid.ts";
import type { CounterCache, CounterRead } from "../capping/counter-cache.ts";
import { MAX_TOKEN_USES, type NoticeTokens } from "../capping/notice-token.ts";
import { personKeyOf } from "../capping/person-key.ts";
import { ANONYMOUS, callerOf, type EnrichCallers } from "../enrich/enrich-callers.ts";
import { ApiError, badField } from "../errors.ts";
import {
  type HttpAnswer,
  type HttpRequestData,
  JSON_TYPE,
  MSGPACK_TYPE,
  queryParam,
} from "../http/http-types.ts";
import { typeOfKey } from "../identity/typed-id.ts";
import { isObject, type Json } from "../json-fields.ts";
import { readBidRequest } from "../openrtb/read-bid-request.ts";
import { type ReadWarning, ReadWarnings } from "../openrtb/read-warnings.ts";
import type { ConsentDecoder } from "../privacy/consent-decoder.ts";
import type { PrivacyPolicy } from "../privacy/privacy-config.ts";
import { decideAccess } from "../privacy/privacy-gate.ts";
import { COMPACT_SIGNAL_FIELDS, readPrivacySignals } from "../privacy/privacy-signals.ts";
import type { ProfileBatch, ProfileCache } from "../profiles/profile-cache.ts";
import { deadlineMs } from "../reliability/deadline.ts";
import type { LiveCatalog } from "../segments/live-catalog.ts";
import { type LiveSegmentRules, type LiveView, liveView, type ViewHolder } from "./live-segments.ts";
import type { LookupSubject } from "./lookup-subject.ts";
import { type PrivacyGate, readCompact } from "./read-compact.ts";
import { bearerKey, exchangeOf, readLookupBody, readMinConfidence, wantsExpansion } from "./request-parts.ts";

export interface LookupOptions {
  readonly cache: ProfileCache;
  /** LOOKUP_CALLERS: who may call, and whose second-party data each receives; empty: open, none. */
  readonly callers: EnrichCallers;
  /** People's impression counters, for `capped` and `remaining`. */
  readonly counters: CounterCache;
  /** Issues the notice `token` the impression pixel requires. */
  readonly tokens: NoticeTokens;
  /** Taxonomy (sensitive flags, parents) and the active generation of each segment. */
  readonly catalog: LiveCatalog;
  /** Namespace for user.id when the request names no exchange ("" = ignore user.id then). */
  readonly defaultExchange: string;
  readonly idsPerRequestLimit: number;
  readonly batchLimit: number;
  /** Clock in epoch milliseconds. */
  readonly now: () => number;
  /** What consent must allow (TCF vendor and purposes, opt-out handling). */
  readonly privacy: PrivacyPolicy;
  /** Decoded consent strings, cached: bidders see the same strings over and over. */
  readonly consent: ConsentDecoder;
  /** Lifetime count of answers per withheld reason (shown in /healthz). */
  readonly withheldStats: Record<string, number>;
  /** Longest wait for the store (LOOKUP_BUDGET_MS); less when the request's tmax leaves less. */
  readonly budgetMs: number;
  /** Kept back from tmax for the rest of the bid (TMAX_MARGIN_MS). */
  readonly tmaxMarginMs: number;
  /** Told of every answer: cache hits and IDs looked up, whether degraded, campaigns capped (metrics). */
  readonly observe: (hits: number, lookups: number, degraded: boolean, capped: number) => void;
}

/** The answer for one user. Field order here is the order in the JSON. */
export interface LookupAnswer {
  id: string | null;
  /** Possibly shared with the cached profile's view: never changed once in an answer. */
  segments: readonly string[];
  capped: string[];
  degraded: boolean;
  matched: string[];
  withheld: string[];
  /** Only when the request named candidate campaigns: impressions left per campaign (null: uncapped). */
  remaining?: Record<string, number | null>;
  /**
   * The notice token for this person's impressions (nurl/burl pixel): only when cap rules exist, caps state may
   * be used, and the ID has not opted out. Binds the candidate campaigns with a cap rule (any campaign when
   * the request named none), the bid request's imp count as uses, and an expiry.
   */
  token?: string;
  /** Only when lenient reading skipped a malformed part of the bid request: each part and the code an error
   * about it would carry. */
  warnings?: readonly ReadWarning[];
}

const NO_COUNTERS: CounterRead = { counters: new CounterIndex(new Map()), failed: false, optedOut: false };

const msgpack = new Packr({ useRecords: false });

export function createLookupHandler(
  opts: LookupOptions,
): (req: HttpRequestData) => HttpAnswer | Promise<HttpAnswer> {
  const { cache, catalog, counters, now } = opts;
  const open = opts.callers.size === 0;
  const scopes = new CallerScopes();
  const gate: PrivacyGate = (signals) => decideAccess(signals, opts.privacy, opts.consent);

  return function lookup(req: HttpRequestData): HttpAnswer | Promise<HttpAnswer> {
    // 0. Caller: with LOOKUP_CALLERS, only a known key; it decides whose second-party data may be answered.
    const caller = open ? ANONYMOUS : callerOf(opts.callers, bearerKey(req.authorization));
    if (caller === null)
      throw new ApiError(
        "AUD_ERR_UNAUTHORIZED",
        "a lookup caller's key is required (Authorization: Bearer <key>)",
      );
    // One catalog for the whole request: a replace going live mid-request cannot mix two generations.
    const snapshot = catalog.current;
    // 1. Parse: the body must be a JSON object; the form is chosen by its top-level keys. Only the members
    //    the lookup reads are built (request-parts.ts LOOKUP_MEMBERS).
    const body = readLookupBody(req.body);
    const isBatch = body.batch !== undefined;
    const expand = wantsExpansion(req, body);
    // 2. Privacy gate: consent and legal signals decide what may be used, before any ID is read; the compact
    //    and batch forms carry them flat (coppa, gdpr, consent, us_privacy, gpp, gpp_sid, lmt) per user.
    // 3. Resolve IDs: every ID allowed becomes a typed key (none at all when nothing personal is).
    let subjects: LookupSubject[];
    if (isBatch) subjects = readBatch(body, opts, gate);
    else if (body.ids !== undefined) subjects = [readCompact(body, "", opts.idsPerRequestLimit, gate)];
    else {
      // A bid request is read leniently: malformed optional parts are skipped and warned (privacy signals
      // failing closed), never a 400.
      const warnings = new ReadWarnings();
      const access = gate(readPrivacySignals(body, warnings));
      subjects = [
        readBidRequest(
          body,
          exchangeOf(req, opts.defaultExchange),
          opts.idsPerRequestLimit,
          access,
          warnings,
        ),
      ];
    }
    for (const s of subjects)
      for (const r of s.withheld) opts.withheldStats[r] = (opts.withheldStats[r] ?? 0) + 1;

    const candidates = readCandidates(req, body);

    // 4. Fetch profiles: all keys of the call, from cache (synchronously) or in one store round trip; and,
    //    when cap rules exist, each person's counters, issued in the same tick so that they travel in the
    //    same round trip (auto-pipelining) as the profile read.
    const keys = isBatch ? distinctKeys(subjects) : (subjects[0] as LookupSubject).keys;
    // Never wait past the deadline: what the store has not answered by then is answered degraded.
    const wait = deadlineMs(body.tmax, opts.budgetMs, opts.tmaxMarginMs);
    const found = cache.getMany(keys, wait);
    let reads: (CounterRead | Promise<CounterRead>)[] | null = null;
    let pending = found instanceof Promise;
    if (snapshot.capRules().length > 0) {
      reads = subjects.map((s) => {
        const person = s.useCaps ? personKeyOf(s.keys) : null;
        return person === null ? NO_COUNTERS : counters.get(person, wait);
      });
      pending ||= reads.some((r) => r instanceof Promise);
    }
    const ctx: MergeContext = {
      snapshot,
      expand,
      candidates,
      minConfidence: readMinConfidence(req, body),
      scope: scopes.of(caller, snapshot),
      tokens: reads === null ? null : opts.tokens,
      bound: candidates === null ? null : candidates.filter((c) => snapshot.capRulesOf(c).length > 0),
      uses: isBatch || body.ids !== undefined ? 1 : impCount(body.imp),
      nowSec: 0,
      segmentsJson: "[]",
      views: cache.holds ? cache : null,
    };
    if (!pending)
      return respond(
        req,
        subjects,
        keys,
        found as ProfileBatch,
        reads as CounterRead[] | null,
        isBatch,
        ctx,
        now,
        opts.observe,
      );
    return Promise.all([found, reads === null ? null : Promise.all(reads)]).then(([batch, counterReads]) =>
      respond(req, subjects, keys, batch, counterReads, isBatch, ctx, now, opts.observe),
    );
  };
}

/** The bid request's imp objects, as the uses of its notice token: 1 to MAX_TOKEN_USES. */
function impCount(imp: unknown): number {
  return Array.isArray(imp) ? Math.min(MAX_TOKEN_USES, Math.max(1, imp.length)) : 1;
}

/**
 * The candidates of the last queries seen: a bidder names the same campaigns request after request, and
 * splitting, decoding and checking them each time was a tenth of a capped lookup's cost. Emptied when full.
 */
const queryCandidates = new Map<string, readonly string[]>();
const MAX_QUERY_CANDIDATES = 1_024;

/** Candidate campaigns: `?campaigns=c1,c2`, or a `campaigns` array in the compact and batch forms. */
function readCandidates(req: HttpRequestData, body: Json): readonly string[] | null {
  const known = queryCandidates.get(req.query);
  if (known !== undefined) return known;
  const q = queryParam(req.query, "campaigns");
  let list: unknown[];
  let field: string;
  if (q !== "") {
    list = q.split(",");
    field = "campaigns";
    // Checked (below) before it is kept: a query that fails throws and is never held.
    const checked = checkCandidates(list, field);
    if (queryCandidates.size >= MAX_QUERY_CANDIDATES) queryCandidates.clear();
    queryCandidates.set(req.query, checked);
    return checked;
  } else if (body.campaigns !== undefined && body.campaigns !== null && body.imp === undefined) {
    if (!Array.isArray(body.campaigns)) throw badField("campaigns", "an array of campaign ids");
    list = body.campaigns;
    field = "campaigns";
  } else {
    return null;
  }
  return checkCandidates(list, field);
}

function checkCandidates(list: unknown[], field: string): readonly string[] {
  if (list.length > MAX_CANDIDATES) {
    throw new ApiError(
      "AUD_ERR_TOO_MANY",
      `${field} has ${list.length} entries; at most ${MAX_CANDIDATES}`,
      field,
    );
  }
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (typeof c !== "string" || !CAP_ID_RE.test(c)) throw badField(`${field}[${i}]`, "a campaign id");
  }
  return list as readonly string[];
}

const MAX_CANDIDATES = 100;

/** What merging needs besides the profiles. */
interface MergeContext extends LiveSegmentRules {
  /** Campaigns the caller may bid for: the answer says how many impressions each has left. */
  readonly candidates: readonly string[] | null;
  /** Null when no cap rule exists: an event could count toward nothing, so no token is issued. */
  readonly tokens: NoticeTokens | null;
  /** The candidates a token binds: those with a cap rule; null (any) when the request named none. */
  readonly bound: readonly string[] | null;
  /** Impressions a token may count: the bid request's imp objects (1 for the compact and batch forms). */
  readonly uses: number;
  /** Left by merge: the JSON of the segments of the answer it made last. */
  segmentsJson: string;
  /** Where views are kept beside cached profiles (live-segments.ts liveView); null when the cache is off. */
  readonly views: ViewHolder | null;
}

function respond(
  req: HttpRequestData,
  subjects: readonly LookupSubject[],
  keys: readonly string[],
  found: ProfileBatch,
  reads: readonly CounterRead[] | null,
  isBatch: boolean,
  ctx: MergeContext,
  now: () => number,
  observe: LookupOptions["observe"],
): HttpAnswer {
  // 5. Merge each subject's profiles: only live memberships of each segment's active generation, never a
  //    sensitive segment, ancestors added when asked.
  // 6. Caps: campaigns capped for the person, and what each candidate campaign has left.
  ctx.nowSec = Math.floor(now() / 1000);
  let payload: LookupAnswer | { results: LookupAnswer[]; degraded: boolean };
  if (isBatch) {
    const byKey = new Map<string, number>();
    for (let i = 0; i < keys.length; i++) byKey.set(keys[i] as string, i);
    const results = subjects.map((s, i) =>
      merge(
        s,
        found,
        s.keys.map((k) => byKey.get(k) ?? -1),
        reads?.[i] ?? NO_COUNTERS,
        ctx,
        found.degraded,
      ),
    );
    payload = { results, degraded: found.degraded };
  } else {
    payload = merge(
      subjects[0] as LookupSubject,
      found,
      null,
      reads?.[0] ?? NO_COUNTERS,
      ctx,
      found.degraded,
    );
  }
  let capped = 0;
  if ("results" in payload) for (const a of payload.results) capped += a.capped.length;
  else capped = payload.capped.length;
  observe(found.hits, found.hits + found.misses, payload.degraded, capped);
  // 7. Respond: one answer object (or {results} for a batch), JSON or msgpack as asked.
  if (req.accept.includes(MSGPACK_TYPE))
    return { status: 200, contentType: MSGPACK_TYPE, body: msgpack.pack(payload) };
  if ("results" in payload) return { status: 200, contentType: JSON_TYPE, body: JSON.stringify(payload) };
  return { status: 200, contentType: JSON_TYPE, body: answerJson(payload, ctx.segmentsJson) };
}

function readBatch(body: Json, opts: LookupOptions, gate: PrivacyGate): LookupSubject[] {
  const batch = body.batch;
  if (!Array.isArray(batch)) throw badField("batch", "an array of {id, ids} objects");
  // Each user of a batch has its own consent: signals beside the batch would be a guess at whose they are,
  // and ignoring them would fail open.
  for (const f of COMPACT_SIGNAL_FIELDS)
    if (body[f] !== undefined) throw badField(f, "given in each batch entry, not beside the batch");
  if (batch.length > opts.batchLimit) {
    throw new ApiError(
      "AUD_ERR_TOO_MANY",
      `batch has ${batch.length} entries; at most ${opts.batchLimit}`,
      "batch",
    );
  }
  const out = new Array<LookupSubject>(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const entry = batch[i];
    if (!isObject(entry)) throw badField(`batch[${i}]`, "an object {id, ids}");
    out[i] = readCompact(entry, `batch[${i}].`, opts.idsPerRequestLimit, gate);
  }
  return out;
}

function distinctKeys(subjects: readonly LookupSubject[]): string[] {
  if (subjects.length === 1) return (subjects[0] as LookupSubject).keys;
  const set = new Set<string>();
  for (const s of subjects) for (const k of s.keys) set.add(k);
  return [...set];
}

/** Unites the live segments of one subject's profiles (`profiles[i]` belongs to `subject.keys[i]`). */
function merge(
  subject: LookupSubject,
  found: ProfileBatch,
  /** Where each of the subject's keys is in `found` (-1: nowhere); null: at the same index. */
  at: readonly number[] | null,
  read: CounterRead,
  ctx: MergeContext,
  degraded: boolean,
): LookupAnswer {
  const { snapshot, nowSec } = ctx;
  // Most answers take one profile's view as it is (sorted, its JSON written once); only a person matched
  // through several IDs with segments unites them here.
  let only: LiveView | null = null;
  let union: readonly string[] | null = null;
  const matched: string[] = [];
  for (let i = 0; i < subject.keys.length; i++) {
    const j = at === null ? i : (at[i] as number);
    const p = j < 0 ? null : found.profiles[j];
    if (p == null) continue;
    const view = liveView(p, found.kinds, ctx, subject.thirdParties, ctx.views, found.slots[j]);
    if (view.segments.length === 0) continue;
    // The answer names which kinds of ID matched, never the IDs themselves.
    const type = typeOfKey(subject.keys[i] as string);
    if (!matched.includes(type)) matched.push(type);
    if (only === null) only = view;
    else union = mergeSorted(union ?? only.segments, view.segments);
  }
  let segments: readonly string[];
  if (union !== null) {
    segments = union;
    ctx.segmentsJson = JSON.stringify(segments);
  } else {
    segments = only?.segments ?? NONE;
    ctx.segmentsJson = only?.json ?? "[]";
  }
  // Without caps state (COPPA, no GDPR consent) nothing about the person's impressions is handed out; nor for
  // an ID that opted out.
  const useCaps = subject.useCaps && !read.optedOut;
  const caps = useCaps
    ? capsFor(snapshot, read.counters, ctx.candidates, nowSec)
    : { capped: [], remaining: null };
  const answer: LookupAnswer = {
    id: subject.requestId,
    segments,
    capped: caps.capped,
    // A counter read that failed leaves caps unknown: said, rather than silently reported as uncapped.
    degraded: degraded || read.failed,
    matched,
    withheld: subject.withheld,
  };
  if (caps.remaining !== null) answer.remaining = caps.remaining;
  if (ctx.tokens !== null && useCaps) {
    const person = personKeyOf(subject.keys);
    if (person !== null) answer.token = ctx.tokens.issue(person, ctx.bound, ctx.uses, nowSec);
  }
  if (subject.warnings !== null) answer.warnings = subject.warnings;
  return answer;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * The union of two sorted lists without duplicates, sorted as Array.prototype.sort sorts strings (by UTF-16
 * code units, which `<` compares): each view is sorted already, so a merge replaces a Set and a sort.
 */
export function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as string;
    const y = b[j] as string;
    if (x === y) {
      out.push(x);
      i++;
      j++;
    } else if (x < y) {
      out.push(x);
      i++;
    } else {
      out.push(y);
      j++;
    }
  }
  while (i < a.length) out.push(a[i++] as string);
  while (j < b.length) out.push(b[j++] as string);
  return out;
}

/**
 * The JSON of a caps answer's parts, written once: a person's caps answer is held beside the cached counters
 * and shared by the lookups that ask the same (caps-at-bid.ts), so are its `capped` and `remaining`.
 */
const written = new WeakMap<object, string>();
function heldJson(value: object): string {
  let json = written.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    written.set(value, json);
  }
  return json;
}

/** A list of strings as JSON; the empty list (most `capped` and `withheld`) without a call. */
function stringList(list: readonly string[]): string {
  return list.length === 0 ? "[]" : JSON.stringify(list);
}

/**
 * The JSON of one answer, with its segments' JSON as merge wrote it: JSON.stringify(answer) gives the same
 * text (members in the interface's order, optional ones only when set; a token is base64url, nothing to
 * escape), this one without walking the segments again.
 */
export function answerJson(a: LookupAnswer, segmentsJson: string): string {
  let out = `{"id":${a.id === null ? "null" : JSON.stringify(a.id)},"segments":${segmentsJson},"capped":${a.capped.length === 0 ? "[]" : heldJson(a.capped)},"degraded":${a.degraded},"matched":${stringList(a.matched)},"withheld":${stringList(a.withheld)}`;
  if (a.remaining !== undefined) out += `,"remaining":${heldJson(a.remaining)}`;
  if (a.token !== undefined) out += `,"token":"${a.token}"`;
  if (a.warnings !== undefined) out += `,"warnings":${JSON.stringify(a.warnings)}`;
  return `${out}}`;
}
