// The error registry and the README's error table must agree: callers code against the table.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ApiError, ERRORS, type ErrorCode } from "../../src/errors.ts";

describe("error codes", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const documented = new Map(
    [...readme.matchAll(/^\| `(AUD_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]),
  );

  it("every code callers can see is in the README table with its status, and nothing else is", () => {
    const inCode = Object.entries(ERRORS).map(([code, e]) => [code, e.status]);
    expect([...documented.entries()].sort()).toEqual(inCode.sort());
  });

  it("an ApiError carries its code's status and serialises to the shared body", () => {
    const e = new ApiError("AUD_ERR_BAD_FIELD", "user must be an object", "user");
    expect(e.status).toBe(400);
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      error: { code: "AUD_ERR_BAD_FIELD", message: "user must be an object", field: "user" },
    });
    const codes: ErrorCode[] = ["AUD_ERR_BODY_TOO_LARGE", "AUD_ERR_METHOD", "AUD_ERR_NOT_FOUND"];
    expect(codes.map((c) => new ApiError(c).status)).toEqual([413, 405, 404]);
  });
});
