// Pieces of reading a bid-time request that /v1/lookup and /v1/enrich share.
import { ApiError, badField } from "../errors.ts";
import { type HttpRequestData, queryParam } from "../http/http-types.ts";
import { normaliseType } from "../identity/typed-id.ts";
import { isObject, type Json } from "../json-fields.ts";

/** The body as a JSON object; 400 naming the problem otherwise. */
export function parseJsonObject(bytes: Buffer): Json {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new ApiError("AUD_ERR_BAD_JSON", `body is not valid JSON: ${(err as Error).message}`, "");
  }
  if (!isObject(v)) throw badField("body", "a JSON object");
  return v;
}

/** The exchange that namespaces user.id: x-exchange header, else ?exchange=, else the configured default. */
export function exchangeOf(req: HttpRequestData, dflt: string): string {
  const named = req.exchange !== "" ? req.exchange : queryParam(req.query, "exchange");
  if (named === "") return dflt;
  const ex = named.toLowerCase();
  if (normaliseType(`xu:${ex}`) === null) {
    throw badField(
      req.exchange !== "" ? "x-exchange" : "exchange",
      "an exchange name of letters, digits, '.', '_' or '-'",
    );
  }
  return ex;
}
