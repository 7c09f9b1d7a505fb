// /v1/admin/*: the data team's HTTP API — taxonomy, membership uploads (plain or atomic replace), identity
// links, per-ID read, opt-out and erasure. Every route needs a bearer token with the route's scope.
import type { Readable } from "node:stream";
import { readCapRules } from "../capping/cap-rules-file.ts";
import { ApiError, badField } from "../errors.ts";
import { type AdminTokenScopes, authFailureLog, requireScope } from "../http/admin-auth.ts";
import {
  type HttpAnswer,
  type HttpRequestData,
  jsonAnswer,
  queryParam,
  type Route,
} from "../http/http-types.ts";
import { toTypedId } from "../identity/typed-id.ts";
import { readDealRules } from "../ingest/deal-rules-file.ts";
import { decompressIfGzip, IngestInputError } from "../ingest/open-input.ts";
import { type FileFormat, IngestFileError } from "../ingest/record-reader.ts";
import { DataRequestError, type SegmentData } from "../ingest/segment-data.ts";
import {
  parseTaxonomyJson,
  readTaxonomy,
  TaxonomyFileError,
  type TaxonomyResult,
} from "../ingest/taxonomy-file.ts";
import { refuseDeepJson } from "../json-nesting.ts";
import type { Logger } from "../logger.ts";
import { idHashPrefix } from "../privacy/log-redaction.ts";
import { SEGMENT_ID_RE } from "../segments/segment-def.ts";

export interface AdminDeps {
  readonly data: SegmentData;
  readonly tokens: AdminTokenScopes;
  /** One line per admin action: who (the token's hash prefix), what, how many rows. */
  readonly log?: Logger;
  /** Membership rows loaded and rejected through this API (for metrics). */
  readonly ingest?: { loaded: number; rejected: number };
}

/** Largest JSON taxonomy held in memory while parsing (the taxonomy is thousands of rows, not millions). */
const TAXONOMY_JSON_LIMIT_BYTES = 32 * 1024 * 1024;

export function adminRoutes({ data, tokens, log, ingest }: AdminDeps): Route[] {
  // One report of refused requests for every admin route, so that its rate limit holds across them.
  const failures = log === undefined ? undefined : authFailureLog(log);
  const guard = (scope: string, handler: (req: HttpRequestData) => Promise<HttpAnswer>) =>
    requireScope(tokens, scope, logged(handler), failures);
  // Who did what: never the token or an ID in the clear (hash prefixes), with the rows an upload moved.
  const logged =
    (handler: (req: HttpRequestData) => Promise<HttpAnswer>) =>
    async (req: HttpRequestData): Promise<HttpAnswer> => {
      const who = idHashPrefix(req.authorization.replace(/^Bearer\s+/i, ""));
      let status = 500;
      let rows: unknown;
      try {
        const answer = await handler(req);
        status = answer.status;
        if (answer.contentType === "application/json" && status === 200) {
          const b = JSON.parse(String(answer.body)) as Record<string, unknown>;
          rows = b.loaded ?? b.imported ?? b.linked ?? b.deleted ?? undefined;
          if (req.path === "/v1/admin/memberships" && ingest !== undefined) {
            ingest.loaded += Number(b.loaded ?? 0);
            ingest.rejected += Number(b.rejected ?? 0);
          }
        }
        return answer;
      } catch (err) {
        status = (err as { status?: number }).status ?? 500;
        throw err;
      } finally {
        log?.info({ admin: who, method: req.method, route: req.path, status, rows }, "admin action");
      }
    };

  return [
    {
      method: "GET",
      path: "/v1/admin/taxonomy",
      body: "none",
      handler: guard("taxonomy:read", async () => jsonAnswer(200, { segments: data.catalog.current.all() })),
    },
    {
      method: "PUT",
      path: "/v1/admin/taxonomy",
      body: "stream",
      handler: guard("taxonomy:write", async (req) => {
        const known = new Set((await data.catalog.reload()).all().map((d) => d.id));
        const result = await readTaxonomyBody(req, known, data.maxLineBytes);
        if (result.errors.length > 0) return rowErrors(result.errors);
        await data.putSegments(result.segments);
        return jsonAnswer(200, { imported: result.segments.length });
      }),
    },
    {
      method: "GET",
      path: "/v1/admin/taxonomy/:id",
      body: "none",
      handler: guard("taxonomy:read", async (req) => {
        const def = data.catalog.current.get(req.params[0] ?? "");
        if (def === undefined) throw new ApiError("AUD_ERR_NOT_FOUND", "no such segment", "id");
        return jsonAnswer(200, def);
      }),
    },
    {
      method: "PUT",
      path: "/v1/admin/taxonomy/:id",
      body: "buffered",
      handler: guard("taxonomy:write", async (req) => {
        const id = req.params[0] ?? "";
        const body = parseJson(req.body);
        if (typeof body !== "object" || body === null || Array.isArray(body))
          throw badField("body", "a segment object");
        const entry = {
          ...(body as Record<string, unknown>),
          id: (body as Record<string, unknown>).id ?? id,
        };
        if (entry.id !== id) throw badField("id", `the id in the path ('${id}')`);
        const known = new Set((await data.catalog.reload()).all().map((d) => d.id));
        known.delete(id);
        const result = parseTaxonomyJson([entry], known);
        if (result.errors.length > 0) return rowErrors(result.errors);
        await data.putSegments(result.segments);
        return jsonAnswer(200, result.segments[0]);
      }),
    },
    {
      method: "DELETE",
      path: "/v1/admin/taxonomy/:id",
      body: "none",
      handler: guard("taxonomy:write", async (req) => {
        const id = req.params[0] ?? "";
        if (!(await data.deleteSegment(id))) throw new ApiError("AUD_ERR_NOT_FOUND", "no such segment", "id");
        return jsonAnswer(200, { deleted: id });
      }),
    },
    {
      method: "POST",
      path: "/v1/admin/memberships",
      body: "stream",
      handler: guard("memberships:write", async (req) => {
        const format = uploadFormat(req);
        const strict = ["1", "true"].includes(queryParam(req.query, "strict"));
        const replaceSegment = queryParam(req.query, "replace_segment");
        const replaceProvider = queryParam(req.query, "replace_provider");
        if (replaceSegment !== "" && !SEGMENT_ID_RE.test(replaceSegment)) {
          throw badField("replace_segment", "a segment id");
        }
        try {
          const result = await data.loadMemberships(decompressIfGzip(req.stream as Readable), {
            format,
            strict,
            ...(replaceSegment === "" ? {} : { replaceSegment }),
            ...(replaceProvider === "" ? {} : { replaceProvider }),
          });
          return jsonAnswer(200, result);
        } catch (err) {
          if (err instanceof IngestFileError || err instanceof IngestInputError) {
            throw new ApiError("AUD_ERR_BAD_FILE", err.message, "body");
          }
          if (err instanceof DataRequestError) {
            throw new ApiError(
              "AUD_ERR_BAD_FIELD",
              err.message,
              replaceProvider !== "" ? "replace_provider" : "query",
            );
          }
          throw err;
        }
      }),
    },
    {
      method: "GET",
      path: "/v1/admin/caps",
      body: "none",
      handler: guard("caps:read", async () => jsonAnswer(200, { rules: data.catalog.current.capRules() })),
    },
    {
      method: "PUT",
      path: "/v1/admin/caps",
      body: "stream",
      handler: guard("caps:write", async (req) => {
        const format =
          queryParam(req.query, "format") === "ndjson" || /ndjson|jsonl/.test(req.contentType)
            ? "ndjson"
            : "csv";
        return importWhole(
          () =>
            readCapRules(decompressIfGzip(req.stream as Readable), format, {
              maxLineBytes: data.maxLineBytes,
            }),
          (rules) => data.putCapRules(rules),
        );
      }),
    },
    {
      method: "GET",
      path: "/v1/admin/caps/:campaign",
      body: "none",
      handler: guard("caps:read", async (req) => {
        const rules = data.catalog.current.capRulesOf(req.params[0] ?? "");
        if (rules.length === 0)
          throw new ApiError("AUD_ERR_NOT_FOUND", "no cap rules for this campaign", "campaign");
        return jsonAnswer(200, { rules });
      }),
    },
    {
      method: "DELETE",
      path: "/v1/admin/caps/:campaign",
      body: "none",
      handler: guard("caps:write", async (req) => {
        const deleted = await data.deleteCapRules(req.params[0] ?? "");
        if (deleted === 0)
          throw new ApiError("AUD_ERR_NOT_FOUND", "no cap rules for this campaign", "campaign");
        return jsonAnswer(200, { deleted });
      }),
    },
    {
      method: "GET",
      path: "/v1/admin/deals",
      body: "none",
      handler: guard("deals:read", async () =>
        jsonAnswer(200, { rules: data.catalog.current.deals.rules.map((r) => r.def) }),
      ),
    },
    {
      method: "PUT",
      path: "/v1/admin/deals",
      body: "stream",
      handler: guard("deals:write", async (req) => {
        return importWhole(
          () => readDealRules(decompressIfGzip(req.stream as Readable), { maxLineBytes: data.maxLineBytes }),
          (rules) => data.putDealRules(rules),
        );
      }),
    },
    {
      method: "GET",
      path: "/v1/admin/deals/:id",
      body: "none",
      handler: guard("deals:read", async (req) => {
        const rule = data.catalog.current.deals.get(req.params[0] ?? "");
        if (rule === undefined) throw new ApiError("AUD_ERR_NOT_FOUND", "no such deal rule", "id");
        return jsonAnswer(200, rule.def);
      }),
    },
    {
      method: "DELETE",
      path: "/v1/admin/deals/:id",
      body: "none",
      handler: guard("deals:write", async (req) => {
        const id = req.params[0] ?? "";
        if (!(await data.deleteDealRule(id)))
          throw new ApiError("AUD_ERR_NOT_FOUND", "no such deal rule", "id");
        return jsonAnswer(200, { deleted: id });
      }),
    },
    {
      method: "POST",
      path: "/v1/admin/links",
      body: "stream",
      handler: guard("links:write", async (req) => {
        const format = uploadFormat(req);
        try {
          return jsonAnswer(200, await data.loadLinks(decompressIfGzip(req.stream as Readable), { format }));
        } catch (err) {
          if (err instanceof IngestFileError || err instanceof IngestInputError) {
            throw new ApiError("AUD_ERR_BAD_FILE", err.message, "body");
          }
          throw err;
        }
      }),
    },
    {
      method: "GET",
      path: "/v1/admin/users/:type/:id",
      body: "none",
      handler: guard("users:read", async (req) => jsonAnswer(200, await data.readUser(userKey(req)))),
    },
    {
      method: "DELETE",
      path: "/v1/admin/users/:type/:id",
      body: "none",
      handler: guard("users:write", async (req) => {
        const key = userKey(req);
        const erased = (await data.optOut([key])) > 0;
        return jsonAnswer(200, { key, erased, optedOut: true });
      }),
    },
  ];
}

/** The typed ID named by the path; e-mails are hashed here too, so a raw address goes no further. */
function userKey(req: HttpRequestData): string {
  const r = toTypedId(req.params[0] ?? "", req.params[1] ?? "");
  if (!r.ok)
    throw new ApiError("AUD_ERR_BAD_FIELD", r.reason, r.reason.startsWith("unknown") ? "type" : "id");
  return r.key;
}

/** ?format= wins; otherwise the content type; CSV when neither says. */
function uploadFormat(req: HttpRequestData): FileFormat {
  const f = queryParam(req.query, "format") || (/ndjson|jsonl|json/.test(req.contentType) ? "ndjson" : "csv");
  if (f !== "csv" && f !== "ndjson") throw badField("format", "csv or ndjson");
  return f;
}

async function readTaxonomyBody(
  req: HttpRequestData,
  known: ReadonlySet<string>,
  maxLineBytes: number,
): Promise<TaxonomyResult> {
  const stream = decompressIfGzip(req.stream as Readable);
  try {
    if (req.contentType.includes("csv")) return await readTaxonomy(stream, "csv", known, { maxLineBytes });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of stream) {
      size += (c as Buffer).length;
      if (size > TAXONOMY_JSON_LIMIT_BYTES) {
        throw new ApiError(
          "AUD_ERR_BODY_TOO_LARGE",
          `a JSON taxonomy over ${TAXONOMY_JSON_LIMIT_BYTES} bytes`,
        );
      }
      chunks.push(c as Buffer);
    }
    return parseTaxonomyJson(parseJson(Buffer.concat(chunks)), known);
  } catch (err) {
    if (err instanceof TaxonomyFileError || err instanceof IngestInputError) {
      throw new ApiError("AUD_ERR_BAD_FILE", err.message, "body");
    }
    throw err;
  }
}

function parseJson(bytes: Buffer): unknown {
  refuseDeepJson(bytes, "body");
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new ApiError("AUD_ERR_BAD_JSON", `body is not valid JSON: ${(err as Error).message}`, "body");
  }
}

/** Reads a rules upload whole and stores it only when every row is good (see rowErrors). */
async function importWhole<R>(
  read: () => Promise<{ rules: R[]; errors: readonly { line: number; reason: string }[] }>,
  put: (rules: R[]) => Promise<void>,
): Promise<HttpAnswer> {
  let result: { rules: R[]; errors: readonly { line: number; reason: string }[] };
  try {
    result = await read();
  } catch (err) {
    if (err instanceof IngestFileError || err instanceof IngestInputError) {
      throw new ApiError("AUD_ERR_BAD_FILE", err.message, "body");
    }
    throw err;
  }
  if (result.errors.length > 0) return rowErrors(result.errors);
  await put(result.rules);
  return jsonAnswer(200, { imported: result.rules.length });
}

/**
 * An upload with bad rows is refused whole: a partial taxonomy could leave children without parents, and
 * a partial cap rule would cap a campaign less than its owner asked.
 */
function rowErrors(rows: readonly { line: number; reason: string }[]): HttpAnswer {
  const err = new ApiError("AUD_ERR_BAD_ROWS", `${rows.length} row(s) rejected; nothing imported`, "body");
  return jsonAnswer(400, { ...err.toJSON(), rows });
}
