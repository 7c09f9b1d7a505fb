// Status lines and error bodies, built once; the error body shape is the one every route shares.
import { ApiError, ERRORS } from "../errors.ts";
import { type HttpAnswer, JSON_TYPE } from "./http-types.ts";

export const STATUS_LINES: Readonly<Record<number, string>> = {
  200: "200 OK",
  201: "201 Created",
  202: "202 Accepted",
  204: "204 No Content",
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  405: "405 Method Not Allowed",
  408: "408 Request Timeout",
  409: "409 Conflict",
  413: "413 Payload Too Large",
  415: "415 Unsupported Media Type",
  429: "429 Too Many Requests",
  500: "500 Internal Server Error",
  503: "503 Service Unavailable",
};

/** `{"error": {"code", "message", "field"}}` with the code's status. */
export function errorAnswer(err: ApiError): HttpAnswer {
  const body = JSON.stringify(err.toJSON());
  // A 503 is a "try again": say when, so that clients back off instead of hammering.
  if (err.status === 503)
    return { status: 503, contentType: JSON_TYPE, body, headers: [["retry-after", "1"]] };
  return { status: err.status, contentType: JSON_TYPE, body };
}

/** The answer for anything a handler threw: ApiErrors as they say; anything else is reported and becomes a 500. */
export function answerForError(
  err: unknown,
  path: string,
  onInternalError: (err: unknown, path: string) => void,
): HttpAnswer {
  if (err instanceof ApiError) return errorAnswer(err);
  onInternalError(err, path);
  return errorAnswer(new ApiError("AUD_ERR_INTERNAL", ERRORS.AUD_ERR_INTERNAL.message));
}
