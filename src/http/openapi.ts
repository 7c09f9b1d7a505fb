// The OpenAPI 3.1 description of every route, served at /openapi.json. A test holds it to the route table
// (no route undocumented, no documented route missing) and to real answers of each route.
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
const errors = {
  "400": json(ref("Error"), "Bad input: the field is named"),
  "401": json(ref("Error"), "No valid bearer token"),
  "403": json(ref("Error"), "The token lacks the route's scope"),
  "404": json(ref("Error"), "Not found"),
  "413": json(ref("Error"), "Body too large"),
  "503": json(ref("Error"), "Overloaded, or the store did not take a write: retry"),
};
const bearer = (scope: string) => ({ security: [{ bearer: [scope] }] });
const body = (type: string, schema: object = { type: "string" }) => ({
  required: true,
  content: { [type]: { schema } },
});
const pathParam = (name: string) => ({ name, in: "path", required: true, schema: { type: "string" } });
const query = (name: string, description: string, schema: object = { type: "string" }) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const upload = {
  required: true,
  content: {
    "text/csv": { schema: { type: "string" } },
    "application/x-ndjson": { schema: { type: "string" } },
  },
};

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "audience lookup service",
    version: "0.1.0",
    description:
      "Real-time audience activation for OpenRTB: lookups for bidders, enrichment for SSPs, impression events, data management.",
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        properties: {
          error: {
            type: "object",
            required: ["code", "message", "field"],
            properties: {
              code: { type: "string" },
              message: { type: "string" },
              field: { type: ["string", "null"] },
            },
          },
        },
      },
      LookupAnswer: {
        type: "object",
        required: ["id", "segments", "capped", "degraded", "matched", "withheld"],
        properties: {
          id: { type: ["string", "null"] },
          segments: { type: "array", items: { type: "string" } },
          capped: { type: "array", items: { type: "string" } },
          degraded: { type: "boolean" },
          matched: { type: "array", items: { type: "string" } },
          withheld: { type: "array", items: { type: "string" } },
          remaining: { type: "object", additionalProperties: { type: ["integer", "null"] } },
          token: { type: "string" },
          warnings: {
            type: "array",
            description:
              "Only when a malformed optional part of the bid request was skipped (lenient reading): the part and the code an error about it would carry",
            items: {
              type: "object",
              required: ["field", "code"],
              properties: { field: { type: "string" }, code: { type: "string" } },
            },
          },
        },
      },
      BatchAnswer: {
        type: "object",
        required: ["results", "degraded"],
        properties: { results: { type: "array", items: ref("LookupAnswer") }, degraded: { type: "boolean" } },
      },
      BidRequest: { type: "object", required: ["id"], description: "An OpenRTB 2.5 or 2.6 BidRequest" },
      Summary: {
        type: "object",
        description: "What a load did: rows read, loaded, rejected, and the first errors",
      },
      Segment: {
        type: "object",
        required: ["id", "name"],
        properties: { id: { type: "string" }, name: { type: "string" } },
      },
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
                coppa: { enum: [0, 1] },
                gdpr: { enum: [0, 1] },
                lmt: { enum: [0, 1] },
                consent: { type: "string" },
                us_privacy: { type: "string" },
                gpp: { type: "string" },
                gpp_sid: { type: "array", items: { type: "integer" } },
              },
            },
            { type: "object", required: ["batch"] },
          ],
        }),
        responses: {
          "200": json({ oneOf: [ref("LookupAnswer"), ref("BatchAnswer")] }, "The answer"),
          ...errors,
        },
      },
    },
    "/v1/enrich": {
      post: {
        summary:
          "The bid request with the person's segments in user.data and the deals they unlock in imp[].pmp.deals",
        parameters: [query("format", "request (default), fragment or mutations (ARTF)")],
        requestBody: body("application/json", ref("BidRequest")),
        responses: {
          "200": json({ type: "object" }, "The enriched request, fragment or mutations"),
          ...errors,
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
          ...["campaign", "line_item", "creative", "imp", "ts", "format"].map((n) => query(n, n)),
          query("type", "Only with EVENTS_OPEN=true (else 400)"),
          query("id", "Only with EVENTS_OPEN=true (else 400)"),
        ],
        responses: {
          "204": {
            description:
              "Counted, a duplicate, or ignored (no cap rule reads it, or the ID opted out): the same answer for all",
          },
          "200": { description: "A 1×1 GIF with format=gif" },
          ...errors,
          "403": json(
            ref("Error"),
            "AUD_ERR_NOTICE_REFUSED: the token expired or has no use left (field token), or was not issued for the campaign (field campaign)",
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
          "200": json(
            {
              type: "object",
              required: ["received", "counted", "duplicates", "ignored", "rejected", "errors"],
            },
            "What was counted; ignored: lines no cap rule reads, or for an ID that opted out",
          ),
          ...errors,
        },
      },
    },
    "/healthz": {
      get: {
        summary: "Liveness, HTTP engine, the answering worker, cache, counter cache, breaker, load",
        responses: {
          "200": json({ type: "object", required: ["status", "http", "worker", "store"] }, "Alive"),
        },
      },
    },
    "/readyz": {
      get: {
        summary: "Readiness: the store answers and the instance is not draining",
        responses: {
          "200": json({ type: "object", required: ["ready"] }, "Ready"),
          "503": json({ type: "object", required: ["ready"] }, "Not ready"),
        },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics",
        responses: {
          "200": {
            description: "Prometheus text format",
            content: { "text/plain": { schema: { type: "string" } } },
          },
        },
      },
    },
    "/status": {
      get: {
        summary: "The live status page and ID explorer",
        responses: {
          "200": { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
        },
      },
    },
    "/status.json": {
      get: {
        summary: "The status page's figures",
        responses: {
          "200": json({ type: "object", required: ["live", "store", "breaker", "requests"] }, "Live figures"),
        },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This description",
        responses: { "200": json({ type: "object", required: ["openapi", "paths"] }, "OpenAPI 3.1") },
      },
    },
    "/v1/admin/taxonomy": {
      get: {
        summary: "Every segment",
        ...bearer("taxonomy:read"),
        responses: {
          "200": json(
            {
              type: "object",
              required: ["segments"],
              properties: { segments: { type: "array", items: ref("Segment") } },
            },
            "The taxonomy",
          ),
          ...errors,
        },
      },
      put: {
        summary: "Import a taxonomy (JSON array or CSV), all or nothing",
        ...bearer("taxonomy:write"),
        requestBody: body("application/json"),
        responses: { "200": json({ type: "object", required: ["imported"] }, "Imported"), ...errors },
      },
    },
    "/v1/admin/taxonomy/{id}": {
      get: {
        summary: "One segment",
        ...bearer("taxonomy:read"),
        parameters: [pathParam("id")],
        responses: { "200": json(ref("Segment"), "The segment"), ...errors },
      },
      put: {
        summary: "Insert or replace one segment",
        ...bearer("taxonomy:write"),
        parameters: [pathParam("id")],
        requestBody: body("application/json", ref("Segment")),
        responses: { "200": json(ref("Segment"), "Stored"), ...errors },
      },
      delete: {
        summary: "Delete one segment",
        ...bearer("taxonomy:write"),
        parameters: [pathParam("id")],
        responses: { "200": json({ type: "object", required: ["deleted"] }, "Deleted"), ...errors },
      },
    },
    "/v1/admin/memberships": {
      post: {
        summary: "Load memberships (CSV or NDJSON, gzip allowed), optionally as an atomic replace",
        ...bearer("memberships:write"),
        parameters: [
          query("format", "csv or ndjson"),
          query("strict", "1: reject unknown segments"),
          query("replace_segment", "segment to replace"),
          query("replace_provider", "provider to replace"),
        ],
        requestBody: upload,
        responses: { "200": json(ref("Summary"), "The load's summary"), ...errors },
      },
    },
    "/v1/admin/links": {
      post: {
        summary: "Load identity links (CSV edges or NDJSON groups)",
        ...bearer("links:write"),
        parameters: [query("format", "csv or ndjson")],
        requestBody: upload,
        responses: { "200": json(ref("Summary"), "The load's summary"), ...errors },
      },
    },
    "/v1/admin/deals": {
      get: {
        summary: "Every deal rule",
        ...bearer("deals:read"),
        responses: { "200": json({ type: "object", required: ["rules"] }, "Deal rules"), ...errors },
      },
      put: {
        summary: "Import deal rules (NDJSON), all or nothing",
        ...bearer("deals:write"),
        requestBody: body("application/x-ndjson"),
        responses: { "200": json({ type: "object", required: ["imported"] }, "Imported"), ...errors },
      },
    },
    "/v1/admin/deals/{id}": {
      get: {
        summary: "One deal rule",
        ...bearer("deals:read"),
        parameters: [pathParam("id")],
        responses: { "200": json({ type: "object", required: ["id", "when"] }, "The rule"), ...errors },
      },
      delete: {
        summary: "Remove a deal rule",
        ...bearer("deals:write"),
        parameters: [pathParam("id")],
        responses: { "200": json({ type: "object", required: ["deleted"] }, "Deleted"), ...errors },
      },
    },
    "/v1/admin/caps": {
      get: {
        summary: "Every frequency-cap rule",
        ...bearer("caps:read"),
        responses: { "200": json({ type: "object", required: ["rules"] }, "Cap rules"), ...errors },
      },
      put: {
        summary: "Import cap rules (CSV or NDJSON), all or nothing",
        ...bearer("caps:write"),
        requestBody: upload,
        responses: { "200": json({ type: "object", required: ["imported"] }, "Imported"), ...errors },
      },
    },
    "/v1/admin/caps/{campaign}": {
      get: {
        summary: "One campaign's cap rules",
        ...bearer("caps:read"),
        parameters: [pathParam("campaign")],
        responses: { "200": json({ type: "object", required: ["rules"] }, "Cap rules"), ...errors },
      },
      delete: {
        summary: "Remove a campaign's cap rules",
        ...bearer("caps:write"),
        parameters: [pathParam("campaign")],
        responses: { "200": json({ type: "object", required: ["deleted"] }, "Deleted"), ...errors },
      },
    },
    "/v1/admin/users/{type}/{id}": {
      get: {
        summary: "One ID: memberships, opt-out state, person",
        ...bearer("users:read"),
        parameters: [pathParam("type"), pathParam("id")],
        responses: {
          "200": json({ type: "object", required: ["key", "optedOut", "memberships", "person"] }, "The ID"),
          ...errors,
        },
      },
      delete: {
        summary: "Opt-out and erasure of one ID",
        ...bearer("users:write"),
        parameters: [pathParam("type"), pathParam("id")],
        responses: {
          "200": json({ type: "object", required: ["key", "erased", "optedOut"] }, "Erased"),
          ...errors,
        },
      },
    },
  },
} as const;
