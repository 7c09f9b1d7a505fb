// The registry of error codes callers can see, each with its HTTP status. The README's error table lists them.

export const ERRORS = {
  AUD_ERR_BAD_JSON: { status: 400, message: "body is not valid JSON" },
  AUD_ERR_BAD_FIELD: { status: 400, message: "a field has the wrong type or value" },
  AUD_ERR_MISSING_FIELD: { status: 400, message: "a required field is missing" },
  AUD_ERR_TOO_MANY: { status: 400, message: "an array is longer than allowed" },
  AUD_ERR_BAD_FILE: {
    status: 400,
    message: "the uploaded file cannot be read (not CSV/NDJSON/JSON, bad header, truncated gzip)",
  },
  AUD_ERR_BAD_ROWS: { status: 400, message: "rows of the upload were rejected; see rows[]" },
  AUD_ERR_UNAUTHORIZED: { status: 401, message: "a valid bearer token is required" },
  AUD_ERR_FORBIDDEN: { status: 403, message: "the token lacks the scope this route requires" },
  AUD_ERR_NOTICE_REFUSED: {
    status: 403,
    message: "the notice token does not allow this event (expired, used up, or another campaign)",
  },
  AUD_ERR_NOT_FOUND: { status: 404, message: "no such route" },
  AUD_ERR_METHOD: { status: 405, message: "method not allowed on this route" },
  AUD_ERR_REQUEST_TIMEOUT: { status: 408, message: "the request body did not arrive in time" },
  AUD_ERR_BODY_TOO_LARGE: { status: 413, message: "request body exceeds the configured limit" },
  AUD_ERR_INTERNAL: { status: 500, message: "internal error" },
  AUD_ERR_STORE_UNAVAILABLE: { status: 503, message: "the store did not take the write; retry" },
  AUD_ERR_OVERLOADED: { status: 503, message: "too many requests in flight; retry" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error a caller can act on: its code fixes the HTTP status; `field` names the offending input. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly field: string | null = null,
  ) {
    super(message);
    this.status = ERRORS[code].status;
  }

  toJSON(): { error: { code: ErrorCode; message: string; field: string | null } } {
    return { error: { code: this.code, message: this.message, field: this.field } };
  }
}

export const badField = (field: string, expected: string): ApiError =>
  new ApiError("AUD_ERR_BAD_FIELD", `${field} must be ${expected}`, field);

export const missingField = (field: string): ApiError =>
  new ApiError("AUD_ERR_MISSING_FIELD", `${field} is required`, field);
