// The OpenAPI 3.1 description of every route, served at /openapi.json. Each operation lists exactly the
// statuses it answers with, and each answer's schema is closed wherever the service writes the whole answer:
// the tests check every answer they receive against it (test/helpers/openapi-check.ts), so a field or a
// status added to a route without being described here fails them.
import { ERRORS, type ErrorCode } from "../errors.ts";
import { PRIVACY_REASONS } from "../privacy/privacy-gate.ts";
import { STORE_KINDS } from "../profiles/profile-store.ts";
import { BREAKER_STATES } from "../reliability/circuit-breaker.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
type Headers = Record<string, { description: string; required?: boolean; schema: object }>;
const json = (schema: object, description: string, headers?: Headers) => ({
  description,
  ...(headers === undefined ? {} : { headers }),
  content: { "application/json": { schema } },
});
/** An object whose members are all listed: every one required but those named `optional`, no other allowed. */
const closed = (properties: Record<string, object>, optional: readonly string[] = []) => ({
  type: "object",
  additionalProperties: false,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});
const text = { type: "string" };
const count = { type: "integer", minimum: 0 };
const flag = { type: "boolean" };
const textOrNull = { type: ["string", "null"] };
const list = (items: object) => ({ type: "array", items });
/** An open map, e.g. campaign -> impressions left. */
const mapOf = (values: object, keys?: object) => ({
  type: "object",
  ...(keys === undefined ? {} : { propertyNames: keys }),
  additionalProperties: values,
});

/** The error body with its code narrowed to those this answer can carry. */
const errorOf = (codes: readonly ErrorCode[]) => ({
  allOf: [ref("Error"), { properties: { error: { properties: { code: { enum: codes } } } } }],
});
const error = (codes: readonly ErrorCode[], description: string, headers?: Headers) =>
  json(errorOf(codes), description, headers);
/** A 400 of an all-or-nothing import: a file it cannot read, or the rows it refused. */
const importRefused = (codes: readonly ErrorCode[], description: string) =>
  json({ oneOf: [errorOf(codes), ref("RowsError")] }, description);

const retryAfter: Headers = {
  "Retry-After": {
    description: "Seconds to wait before retrying",
    required: true,
    schema: { type: "integer" },
  },
};
const noStore: Headers = { "Cache-Control": { description: "no-store", required: true, schema: text } };

/** What every route behind admission (all but the operator routes) may answer instead of running. */
const shed = {
  "204": {
    description:
      "Shed with SHED_STATUS=204: too many requests in flight (MAX_IN_FLIGHT, MAX_STREAMS_IN_FLIGHT); no body",
  },
  "503": error(
    ["AUD_ERR_OVERLOADED"],
    "Shed with SHED_STATUS=503 (the default): too many requests in flight; retry",
    retryAfter,
  ),
};
/** What a route that reads a body answers when the body does not arrive in time, or is too large. */
const bodyLimits = {
  "408": error(
    ["AUD_ERR_REQUEST_TIMEOUT"],
    "The body did not arrive within BODY_TIMEOUT_MS (streamed bodies: nothing for STREAM_IDLE_TIMEOUT_MS); the connection is closed. With HTTP_SERVER=node a buffered body's 408 has no body",
  ),
  "413": error(
    ["AUD_ERR_BODY_TOO_LARGE"],
    "The body is over the route's limit (BODY_LIMIT_BYTES, ADMIN_BODY_LIMIT_BYTES, EVENTS_BODY_LIMIT_BYTES); the connection is closed",
  ),
};
/** A store failure outside the bid path: the admin operations do not degrade, they fail. */
const internal = { "500": error(["AUD_ERR_INTERNAL"], "The store failed the operation; retry") };
const keyRefused = {
  "401": error(
    ["AUD_ERR_UNAUTHORIZED"],
    "No bearer token, or an unknown one (every token while ADMIN_TOKENS is empty)",
    {
      "WWW-Authenticate": { description: "Bearer", required: true, schema: text },
    },
  ),
  "403": error(["AUD_ERR_FORBIDDEN"], "The token lacks the route's scope"),
};
const notFound = (what: string) => ({
  "404": error(["AUD_ERR_NOT_FOUND"], `No such ${what} (field names it)`),
});

const bearer = (scope: string) => ({ security: [{ bearer: [scope] }] });
/** An admin operation: a scope, shedding, and the key refusals, besides its own answers. */
const admin = (scope: string, summary: string, responses: Record<string, object>, rest: object = {}) => ({
  summary,
  ...bearer(scope),
  ...rest,
  responses: { ...shed, ...keyRefused, ...responses },
});
/**
 * An admin operation on one item named in the path (a segment, a deal rule, a campaign's cap rules): its
 * 200, a 404 when there is no such item, a 400 for a malformed path, and the store's 500 when it writes.
 */
const adminOne = (
  scope: string,
  summary: string,
  item: { readonly what: string; readonly param: string },
  ok: object,
  writes = false,
) =>
  admin(
    scope,
    summary,
    {
      ...notFound(item.what),
      ...(writes ? internal : {}),
      "200": ok,
      "400": error(["AUD_ERR_BAD_FIELD"], `Bad input: ${PATH_ESCAPE}`),
    },
    { parameters: [pathParam(item.param)] },
  );
/** An admin bulk import, all or nothing: what it imported, or the rows it refused. */
const adminImport = (scope: string, summary: string, rest: object) =>
  admin(
    scope,
    summary,
    {
      ...bodyLimits,
      ...internal,
      "200": json(ref("Imported"), "Imported"),
      "400": importRefused(
        ["AUD_ERR_BAD_FILE"],
        "A file that cannot be read, or rows refused: nothing imported",
      ),
    },
    rest,
  );
const body = (type: string, schema: object = text) => ({ required: true, content: { [type]: { schema } } });
const SEGMENT = { what: "segment", param: "id" };
const DEAL = { what: "deal rule", param: "id" };
const CAMPAIGN = { what: "campaign with cap rules", param: "campaign" };
const pathParam = (name: string) => ({ name, in: "path", required: true, schema: text });
const query = (name: string, description: string, schema: object = text) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const upload = {
  required: true,
  content: {
    "text/csv": { schema: text },
    "application/x-ndjson": { schema: text },
  },
};
const PATH_ESCAPE = "a path parameter with a malformed %-escape (field path)";

const ALL_CODES = Object.keys(ERRORS) as ErrorCode[];
const line = { type: "integer", minimum: 1 };
const rowProblem = closed({ line, reason: text });
const breaker = closed({ state: { enum: BREAKER_STATES }, opened: count, rejected: count });
/** What the service adds to user.data: one entry per provider and taxonomy. */
const dataExt = closed({ segtax: { type: "integer" } });

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "audience lookup service",
    version: "0.1.0",
    description:
      "Real-time audience activation for OpenRTB: lookups for bidders, enrichment for SSPs, impression events, data management.",
  },
  // Answers that depend on no route: which one applies is decided before any handler runs.
  "x-any-path": {
    description:
      "Answers any request may get whatever its path: a framing the server refuses, and with HTTP_SERVER=node a request node:http cannot parse or that is too slow (any path); a path no route has (404); a route's path with a method it does not take (405).",
    responses: {
      "400": error(
        ["AUD_ERR_BAD_FIELD"],
        "Transfer-Encoding other than plain chunked, or with Content-Length (field transfer-encoding); the connection is closed. With HTTP_SERVER=node, a request node:http cannot parse gets a 400 with no body",
      ),
      "408": {
        description:
          "HTTP_SERVER=node only: the request's headers did not arrive within BODY_TIMEOUT_MS; no body, the connection is closed",
      },
      "431": {
        description:
          "HTTP_SERVER=node only: the request's headers are too large; no body, the connection is closed",
      },
      "404": error(["AUD_ERR_NOT_FOUND"], "No route has this path"),
      "405": error(["AUD_ERR_METHOD"], "The path is a route's, the method is not one it takes", {
        Allow: { description: "The methods the path takes", required: true, schema: text },
      }),
    },
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: {
      Error: closed({
        error: closed({ code: { enum: ALL_CODES }, message: text, field: textOrNull }),
      }),
      RowsError: {
        ...closed({
          error: closed({ code: { const: "AUD_ERR_BAD_ROWS" }, message: text, field: textOrNull }),
          rows: {
            ...list(
              closed({ line, reason: text, field: text, column: { type: "integer", minimum: 1 } }, [
                "field",
                "column",
              ]),
            ),
            minItems: 1,
            description: "Deal rules also name the field, and for an expression the column",
          },
        }),
        description: "An all-or-nothing import refused whole: each refused row with its line and reason",
      },
      ReadWarning: {
        ...closed({
          field: text,
          code: { enum: ["AUD_ERR_BAD_FIELD", "AUD_ERR_MISSING_FIELD", "AUD_ERR_TOO_MANY"] },
        }),
        description:
          "A malformed optional part of the bid request, skipped: the part and the code an error about it would carry",
      },
      LookupAnswer: closed(
        {
          id: textOrNull,
          segments: list(text),
          capped: list(text),
          degraded: flag,
          matched: { ...list(text), description: "The kinds of ID that matched (bu, ifa, hem, xu:…, eid:…)" },
          withheld: list({ enum: PRIVACY_REASONS }),
          remaining: {
            ...mapOf({ type: ["integer", "null"], minimum: 0 }),
            description:
              "Only when the request named candidate campaigns: impressions left per campaign (null: uncapped)",
          },
          token: {
            type: "string",
            pattern: "^[A-Za-z0-9_-]+$",
            description:
              "The notice token for the impression pixel: only when cap rules exist and caps may be used",
          },
          warnings: {
            ...list(ref("ReadWarning")),
            minItems: 1,
            description: "Only when lenient reading skipped a malformed optional part of the bid request",
          },
        },
        ["remaining", "token", "warnings"],
      ),
      BatchAnswer: closed({ results: list(ref("LookupAnswer")), degraded: flag }),
      BidRequest: {
        type: "object",
        required: ["id"],
        properties: { id: text },
        description: "An OpenRTB 2.5 or 2.6 BidRequest",
      },
      EnrichmentData: {
        ...closed({ name: text, segment: { ...list(closed({ id: text })), minItems: 1 }, ext: dataExt }, [
          "ext",
        ]),
        description:
          "A user.data entry the service writes (OpenRTB 2.6 Data): name is the provider, ext.segtax the taxonomy",
      },
      EnrichmentDeal: {
        ...closed(
          {
            id: text,
            bidfloor: { type: "number", minimum: 0 },
            bidfloorcur: { type: "string", pattern: "^[A-Z]{3}$" },
            at: { enum: [1, 2, 3] },
            wseat: { ...list(text), minItems: 1 },
            wadomain: { ...list(text), minItems: 1 },
          },
          ["wseat", "wadomain"],
        ),
        description: "A deal the service adds to imp[].pmp.deals (OpenRTB 2.6 Deal)",
      },
      EnrichedRequest: {
        type: "object",
        required: ["id"],
        properties: { id: text },
        description:
          "format=request: the caller's bid request as sent, with EnrichmentData entries added to user.data (or segments added to the caller's own entry of that provider and taxonomy) and EnrichmentDeal objects added to imp[].pmp.deals. Open: everything else is the caller's, kept as sent even where malformed",
      },
      EnrichmentFragment: {
        ...closed({
          user: closed({ data: list(ref("EnrichmentData")) }),
          imp: list(
            closed({ id: text, pmp: closed({ deals: { ...list(ref("EnrichmentDeal")), minItems: 1 } }) }),
          ),
        }),
        description: "format=fragment: only what to merge into the request (ORTB2 fragment)",
      },
      EnrichmentMutations: {
        ...closed({
          id: text,
          mutations: list({
            oneOf: [
              closed({
                intent: { const: "ACTIVATE_SEGMENTS" },
                op: { const: "OPERATION_ADD" },
                path: { const: "/user/data/segment" },
                ids: closed({ id: { ...list(text), minItems: 1 } }),
                data: closed({ name: text, ext: dataExt }, ["ext"]),
              }),
              closed({
                intent: { const: "ACTIVATE_DEALS" },
                op: { const: "OPERATION_ADD" },
                path: { type: "string", pattern: "^/imp/" },
                ids: closed({ id: { ...list(text), minItems: 1 } }),
                deals: { ...list(ref("EnrichmentDeal")), minItems: 1 },
              }),
            ],
          }),
        }),
        description: "format=mutations: the same as IAB Agentic RTB Framework (ARTF v1.0) mutations",
      },
      Segment: closed({
        id: text,
        name: text,
        parent: textOrNull,
        party: { enum: ["first", "second", "third", null] },
        provider: textOrNull,
        sensitive: flag,
        ttlSec: { type: ["integer", "null"], minimum: 1 },
        segtax: { type: ["integer", "null"] },
        segtaxId: textOrNull,
      }),
      SegmentInput: {
        type: "object",
        required: ["name"],
        description: "One segment as the taxonomy file writes it; id defaults to the path's",
        properties: {
          id: text,
          name: text,
          parent: textOrNull,
          party: { enum: ["first", "second", "third", null] },
          provider: textOrNull,
          sensitive: { type: ["boolean", "string", "integer"] },
          ttl: { type: ["integer", "string", "null"] },
          segtax: { type: ["integer", "string", "null"] },
          segtax_id: textOrNull,
        },
      },
      DealRule: closed({
        id: text,
        when: {
          type: "string",
          description: "Boolean expression over segment ids: 1001 AND (1002 OR NOT 1003)",
        },
        bidfloor: { type: "number", minimum: 0 },
        bidfloorcur: { type: "string", pattern: "^[A-Z]{3}$" },
        at: { enum: [1, 2, 3] },
        wseat: { type: ["array", "null"], items: text, minItems: 1 },
        wadomain: { type: ["array", "null"], items: text, minItems: 1 },
        formats: {
          type: ["array", "null"],
          items: { enum: ["banner", "video", "native", "audio"] },
          minItems: 1,
        },
        sizes: {
          type: ["array", "null"],
          items: { type: "string", pattern: "^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$" },
          minItems: 1,
        },
      }),
      CapRule: closed({
        campaign: text,
        lineItem: textOrNull,
        creative: textOrNull,
        windows: {
          ...list(
            closed({
              windowSec: { type: ["integer", "null"], minimum: 60 },
              max: { type: "integer", minimum: 1 },
            }),
          ),
          minItems: 1,
        },
      }),
      MembershipLoad: {
        ...closed({
          read: count,
          loaded: count,
          rejected: count,
          warnings: {
            ...count,
            description: "Rows naming a segment the taxonomy does not have (loaded unless strict)",
          },
          skipped: { ...count, description: "Rows for IDs that opted out: never written" },
          elapsedMs: count,
          rowsPerSec: { type: "number", minimum: 0 },
          errors: { ...list(rowProblem), maxItems: 100, description: "The first rejected rows" },
          activatedGeneration: {
            type: ["integer", "null"],
            description:
              "The generation a replace made live; null for a plain load or a replace with rejected rows",
          },
        }),
        description: "What a membership load did",
      },
      LinkLoad: {
        ...closed({
          read: count,
          linked: count,
          unlinked: count,
          unchanged: count,
          refused: {
            ...count,
            description: "Links refused: the person would grow past MAX_PERSON_IDS, or an ID opted out",
          },
          skipped: { ...count, description: "Removals of links that did not exist" },
          rejected: count,
          elapsedMs: count,
          errors: { ...list(rowProblem), maxItems: 100, description: "The first rejected or refused rows" },
        }),
        description: "What a links load did",
      },
      UserData: closed({
        key: text,
        optedOut: flag,
        memberships: list(
          closed({ segment: text, expiresAt: count, source: text, generation: count, active: flag }),
        ),
        person: list(
          closed({ key: text, confidence: { type: "number", minimum: 0, maximum: 1 }, segments: list(text) }),
        ),
      }),
      Imported: closed({ imported: count }),
      Health: closed({
        status: { const: "ok" },
        http: closed({ name: { const: "uWebSockets.js" }, native: flag, detail: text }),
        worker: closed({ index: count, count: { type: "integer", minimum: 1 } }),
        store: { enum: STORE_KINDS },
        cache: closed({
          entries: count,
          bytes: count,
          hits: count,
          misses: count,
          storeErrors: count,
          deadlines: count,
          breakerSkips: count,
          evictions: count,
        }),
        counters: closed({
          entries: count,
          hits: count,
          reads: count,
          clears: count,
          announced: count,
          announceFailed: count,
        }),
        events: closed({
          counted: count,
          duplicates: count,
          ignored: count,
          rejected: count,
          refused: count,
        }),
        withheld: mapOf(count, { enum: PRIVACY_REASONS }),
        breaker,
        load: closed({ inFlight: count, streamsInFlight: count, shed: count, draining: flag }),
        uptimeS: count,
      }),
      StatusFigures: closed({
        now: count,
        requests: count,
        live: closed({
          seconds: list(
            closed({
              t: count,
              requests: count,
              degraded: count,
              shed: count,
              hitRatio: { type: ["number", "null"], minimum: 0, maximum: 1 },
              p50: { type: ["number", "null"], minimum: 0 },
              p99: { type: ["number", "null"], minimum: 0 },
            }),
          ),
        }),
        store: closed({ kind: { enum: STORE_KINDS }, ready: flag }),
        breaker,
      }),
    },
  },
  paths: {
    "/v1/lookup": {
      post: {
        summary: "Segments, capped campaigns and remaining impressions of the person behind a bid request",
        description:
          "With LOOKUP_CALLERS set, `Authorization: Bearer <caller key>` is required (401 otherwise) and decides whose second-party segments are answered. The compact form and each batch entry take the privacy signals coppa, gdpr, lmt (0/1), consent, us_privacy, gpp, gpp_sid.",
        parameters: [
          query("campaigns", "Candidate campaigns, comma-separated: the answer says what each has left"),
          query("expand", "1: add each segment's ancestors"),
          query("min_confidence", "Leave out linked IDs below this confidence", { type: "number" }),
          query("exchange", "Namespace of user.id (or the x-exchange header)"),
        ],
        requestBody: body("application/json", {
          oneOf: [
            ref("BidRequest"),
            {
              type: "object",
              required: ["ids"],
              properties: {
                id: text,
                ids: list({ type: "object", required: ["type", "id"], properties: { type: text, id: text } }),
                coppa: { enum: [0, 1] },
                gdpr: { enum: [0, 1] },
                lmt: { enum: [0, 1] },
                consent: text,
                us_privacy: text,
                gpp: text,
                gpp_sid: list({ type: "integer" }),
              },
            },
            {
              type: "object",
              required: ["batch"],
              properties: {
                batch: { ...list({ type: "object" }), description: "Entries of the compact form" },
              },
            },
          ],
        }),
        responses: {
          ...shed,
          ...bodyLimits,
          "200": {
            description:
              "The answer: one person's, or {results} for a batch; msgpack when Accept asks for it",
            content: {
              "application/json": { schema: { oneOf: [ref("LookupAnswer"), ref("BatchAnswer")] } },
              "application/msgpack": { schema: { oneOf: [ref("LookupAnswer"), ref("BatchAnswer")] } },
            },
          },
          "400": error(
            ["AUD_ERR_BAD_JSON", "AUD_ERR_BAD_FIELD", "AUD_ERR_MISSING_FIELD", "AUD_ERR_TOO_MANY"],
            "Bad input: the field is named",
          ),
          "401": error(
            ["AUD_ERR_UNAUTHORIZED"],
            "LOOKUP_CALLERS is set and the caller's key is missing or unknown",
          ),
        },
      },
    },
    "/v1/enrich": {
      post: {
        summary:
          "The bid request with the person's segments in user.data and the deals they unlock in imp[].pmp.deals",
        description:
          "With ENRICH_CALLERS set, `Authorization: Bearer <caller key>` is required (401 otherwise) and decides which segments the caller may receive.",
        parameters: [query("format", "request (default), fragment or mutations (ARTF)")],
        requestBody: body("application/json", ref("BidRequest")),
        responses: {
          ...shed,
          ...bodyLimits,
          "200": {
            ...json(
              { anyOf: [ref("EnrichedRequest"), ref("EnrichmentFragment"), ref("EnrichmentMutations")] },
              "The enriched request, the fragment or the mutations, as `format` asks",
              {
                "X-Audience-Withheld": {
                  description: "Privacy reasons, comma-separated, when any",
                  schema: text,
                },
                "X-Audience-Warnings": {
                  description: "Lenient reading's warnings as a JSON array of ReadWarning, when any",
                  schema: text,
                },
                "X-Audience-Degraded": {
                  description: "1 when the store did not answer in time",
                  schema: text,
                },
              },
            ),
            // Which of the three forms answers is the query's choice, not the body's: the forms overlap (an
            // open bid request may hold anything), so a checker picks the schema by the parameter.
            "x-schema-by-query": {
              parameter: "format",
              default: "request",
              schemas: {
                request: ref("EnrichedRequest"),
                fragment: ref("EnrichmentFragment"),
                mutations: ref("EnrichmentMutations"),
              },
            },
          },
          "400": error(
            ["AUD_ERR_BAD_JSON", "AUD_ERR_BAD_FIELD", "AUD_ERR_MISSING_FIELD"],
            "Bad input: the field is named",
          ),
          "401": error(
            ["AUD_ERR_UNAUTHORIZED"],
            "ENRICH_CALLERS is set and the caller's key is missing or unknown",
          ),
        },
      },
    },
    "/v1/events/imp": {
      get: {
        summary:
          "An impression (win or billing notice pixel), counted once per impression id. Names the person by the notice token a lookup answer issued (type and id only with EVENTS_OPEN=true)",
        parameters: [
          query(
            "token",
            "The lookup answer's token: binds the person, the candidate campaigns with a cap rule, an expiry (NOTICE_TOKEN_TTL_SEC) and as many impressions as the bid request had imp objects",
          ),
          ...["campaign", "line_item", "creative", "imp", "ts"].map((n) => query(n, n)),
          query("format", "gif: answer a 1×1 GIF instead of 204"),
          query("type", "Only with EVENTS_OPEN=true (else 400)"),
          query("id", "Only with EVENTS_OPEN=true (else 400)"),
        ],
        responses: {
          ...shed,
          "200": {
            description: "A 1×1 GIF with format=gif",
            headers: noStore,
            content: { "image/gif": { schema: { type: "string", contentMediaType: "image/gif" } } },
          },
          "204": {
            description:
              "Counted, a duplicate, or ignored (no cap rule reads it, or the ID opted out): the same answer for all. Also the shed answer with SHED_STATUS=204",
          },
          "400": error(
            ["AUD_ERR_BAD_FIELD", "AUD_ERR_MISSING_FIELD"],
            "Bad or missing parameter: the field is named",
          ),
          "403": error(
            ["AUD_ERR_NOTICE_REFUSED"],
            "The token expired or has no use left (field token), or was not issued for the campaign (field campaign)",
          ),
          "503": error(
            ["AUD_ERR_OVERLOADED", "AUD_ERR_STORE_UNAVAILABLE"],
            "Shed (SHED_STATUS=503), or the store did not take the impression: retry, it is counted once",
            retryAfter,
          ),
        },
      },
    },
    "/v1/events": {
      post: {
        summary:
          "Impressions in a batch, NDJSON; needs a key with the events scope (none with EVENTS_OPEN=true)",
        ...bearer("events"),
        requestBody: body("application/x-ndjson"),
        responses: {
          ...shed,
          ...keyRefused,
          ...bodyLimits,
          "200": json(
            closed({
              received: count,
              counted: count,
              duplicates: count,
              ignored: count,
              rejected: count,
              errors: {
                ...list(closed({ line, reason: text, field: textOrNull })),
                maxItems: 100,
              },
            }),
            "What was counted; ignored: lines no cap rule reads, or for an ID that opted out; errors: the first rejected lines",
          ),
          "400": error(["AUD_ERR_BAD_FILE"], "The body cannot be read as NDJSON"),
          "503": error(
            ["AUD_ERR_OVERLOADED", "AUD_ERR_STORE_UNAVAILABLE"],
            "Shed (SHED_STATUS=503), or the store did not take an impression: retry the batch, each is counted once",
            retryAfter,
          ),
        },
      },
    },
    "/healthz": {
      get: {
        summary: "Liveness, HTTP engine, the answering worker, cache, counter cache, breaker, load",
        responses: { "200": json(ref("Health"), "Alive") },
      },
    },
    "/readyz": {
      get: {
        summary: "Readiness: the store answers and the instance is not draining",
        responses: {
          "200": json(closed({ ready: { const: true }, store: { enum: STORE_KINDS } }), "Ready"),
          "503": json(
            closed({ ready: { const: false }, draining: { const: true }, store: { enum: STORE_KINDS } }, [
              "draining",
            ]),
            "Not ready: draining (graceful shutdown), or the store does not answer on one of the service's connections",
          ),
        },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics",
        responses: {
          "200": {
            description: "Prometheus text format",
            headers: noStore,
            content: { "text/plain": { schema: text } },
          },
        },
      },
    },
    "/status": {
      get: {
        summary: "The live status page and ID explorer",
        responses: { "200": { description: "HTML", content: { "text/html": { schema: text } } } },
      },
    },
    "/status.json": {
      get: {
        summary: "The status page's figures",
        responses: { "200": json(ref("StatusFigures"), "Live figures", noStore) },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This description",
        responses: {
          "200": json(
            closed({
              openapi: { const: "3.1.0" },
              info: { type: "object" },
              "x-any-path": { type: "object" },
              components: { type: "object" },
              paths: { type: "object" },
            }),
            "OpenAPI 3.1",
          ),
        },
      },
    },
    "/v1/admin/taxonomy": {
      get: admin("taxonomy:read", "Every segment", {
        "200": json(closed({ segments: list(ref("Segment")) }), "The taxonomy"),
      }),
      put: admin(
        "taxonomy:write",
        "Import a taxonomy (JSON array or CSV), all or nothing",
        {
          ...bodyLimits,
          ...internal,
          "200": json(ref("Imported"), "Imported"),
          "400": importRefused(
            ["AUD_ERR_BAD_JSON", "AUD_ERR_BAD_FILE"],
            "Not a taxonomy, or rows refused: nothing imported",
          ),
        },
        {
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: list(ref("SegmentInput")) },
              "text/csv": { schema: text },
            },
          },
        },
      ),
    },
    "/v1/admin/taxonomy/{id}": {
      get: adminOne("taxonomy:read", "One segment", SEGMENT, json(ref("Segment"), "The segment")),
      put: admin(
        "taxonomy:write",
        "Insert or replace one segment",
        {
          ...bodyLimits,
          ...internal,
          "200": json(ref("Segment"), "Stored"),
          "400": importRefused(
            ["AUD_ERR_BAD_JSON", "AUD_ERR_BAD_FIELD"],
            `Not a segment object, an id other than the path's, ${PATH_ESCAPE}, or the segment refused (rows)`,
          ),
        },
        { parameters: [pathParam("id")], requestBody: body("application/json", ref("SegmentInput")) },
      ),
      delete: adminOne(
        "taxonomy:write",
        "Delete one segment",
        SEGMENT,
        json(closed({ deleted: text }), "Deleted"),
        true,
      ),
    },
    "/v1/admin/memberships": {
      post: admin(
        "memberships:write",
        "Load memberships (CSV or NDJSON, gzip allowed), optionally as an atomic replace",
        {
          ...bodyLimits,
          ...internal,
          "200": json(ref("MembershipLoad"), "The load's summary"),
          "400": error(
            ["AUD_ERR_BAD_FIELD", "AUD_ERR_BAD_FILE"],
            "A bad format, replace_segment or replace_provider (named), or a file that cannot be read",
          ),
        },
        {
          parameters: [
            query("format", "csv or ndjson", { enum: ["csv", "ndjson"] }),
            query("strict", "1: reject unknown segments"),
            query("replace_segment", "segment to replace"),
            query("replace_provider", "provider to replace"),
          ],
          requestBody: upload,
        },
      ),
    },
    "/v1/admin/links": {
      post: admin(
        "links:write",
        "Load identity links (CSV edges or NDJSON groups)",
        {
          ...bodyLimits,
          ...internal,
          "200": json(ref("LinkLoad"), "The load's summary"),
          "400": error(
            ["AUD_ERR_BAD_FIELD", "AUD_ERR_BAD_FILE"],
            "A bad format (named), or a file that cannot be read",
          ),
        },
        { parameters: [query("format", "csv or ndjson", { enum: ["csv", "ndjson"] })], requestBody: upload },
      ),
    },
    "/v1/admin/deals": {
      get: admin("deals:read", "Every deal rule", {
        "200": json(closed({ rules: list(ref("DealRule")) }), "Deal rules"),
      }),
      put: adminImport("deals:write", "Import deal rules (NDJSON), all or nothing", {
        requestBody: body("application/x-ndjson"),
      }),
    },
    "/v1/admin/deals/{id}": {
      get: adminOne("deals:read", "One deal rule", DEAL, json(ref("DealRule"), "The rule")),
      delete: adminOne(
        "deals:write",
        "Remove a deal rule",
        DEAL,
        json(closed({ deleted: text }), "Deleted"),
        true,
      ),
    },
    "/v1/admin/caps": {
      get: admin("caps:read", "Every frequency-cap rule", {
        "200": json(closed({ rules: list(ref("CapRule")) }), "Cap rules"),
      }),
      put: adminImport("caps:write", "Import cap rules (CSV or NDJSON), all or nothing", {
        parameters: [query("format", "ndjson, else CSV unless the content type says NDJSON")],
        requestBody: upload,
      }),
    },
    "/v1/admin/caps/{campaign}": {
      get: adminOne(
        "caps:read",
        "One campaign's cap rules",
        CAMPAIGN,
        json(closed({ rules: { ...list(ref("CapRule")), minItems: 1 } }), "Cap rules"),
      ),
      delete: adminOne(
        "caps:write",
        "Remove a campaign's cap rules",
        CAMPAIGN,
        json(closed({ deleted: { type: "integer", minimum: 1 } }), "How many rules were removed"),
        true,
      ),
    },
    "/v1/admin/users/{type}/{id}": {
      get: admin(
        "users:read",
        "One ID: memberships, opt-out state, person",
        {
          ...internal,
          "200": json(ref("UserData"), "The ID"),
          "400": error(["AUD_ERR_BAD_FIELD"], `An unknown type or a malformed id (named), or ${PATH_ESCAPE}`),
        },
        { parameters: [pathParam("type"), pathParam("id")] },
      ),
      delete: admin(
        "users:write",
        "Opt-out and erasure of one ID",
        {
          ...internal,
          "200": json(closed({ key: text, erased: flag, optedOut: { const: true } }), "Erased"),
          "400": error(["AUD_ERR_BAD_FIELD"], `An unknown type or a malformed id (named), or ${PATH_ESCAPE}`),
        },
        { parameters: [pathParam("type"), pathParam("id")] },
      ),
    },
  },
} as const;
