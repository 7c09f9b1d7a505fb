// Admin API authentication: ADMIN_TOKENS as loadConfig reads it (never echoing a token), and requireScope's
// 401/403/pass-through decisions.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { authFailureLog, parseAdminTokens, redactToken, requireScope } from "../../src/http/admin-auth.ts";
import { type HttpAnswer, type HttpRequestData, jsonAnswer } from "../../src/http/http-types.ts";
import { createLogger } from "../../src/logger.ts";
import { idHashPrefix } from "../../src/privacy/log-redaction.ts";

const READER = "reader-token-0123456789";
const WRITER = "writer.token_~+/-ABCDEFGH";
const ROOT = "root0000000000000000000000000000";

/** loadConfig expecting a ConfigError about ADMIN_TOKENS only; returns the error. */
function tokensError(raw: string): ConfigError {
  try {
    loadConfig({ ADMIN_TOKENS: raw });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^ADMIN_TOKENS /);
    return e;
  }
  throw new Error(`loadConfig accepted ADMIN_TOKENS=${raw}`);
}

/** A request to /v1/admin/users/bu/<id>, as the server hands it to a route's handler. */
function adminRequest(method: string, id: string, authorization: string): HttpRequestData {
  return {
    method,
    path: "/v1/admin/users/:type/:id",
    params: ["bu", id],
    query: "",
    exchange: "",
    accept: "",
    contentType: "",
    contentEncoding: "",
    authorization,
    body: Buffer.alloc(0),
    stream: null,
  };
}

describe("ADMIN_TOKENS", () => {
  it("is empty by default, blank or unset: the admin API is off", () => {
    expect(loadConfig({}).adminTokens.size).toBe(0);
    expect(loadConfig({ ADMIN_TOKENS: "" }).adminTokens.size).toBe(0);
    expect(loadConfig({ ADMIN_TOKENS: "   " }).adminTokens.size).toBe(0);
  });

  it("parses token=scope|scope entries, with spaces around commas and a trailing comma", () => {
    const tokens = loadConfig({
      ADMIN_TOKENS: ` ${READER}=taxonomy:read|users:read , ${WRITER}=memberships:write|users:write|taxonomy:write,${ROOT}=*,`,
    }).adminTokens;
    expect([...tokens.keys()]).toEqual([READER, WRITER, ROOT]);
    expect([...(tokens.get(READER) ?? [])]).toEqual(["taxonomy:read", "users:read"]);
    expect([...(tokens.get(WRITER) ?? [])]).toEqual(["memberships:write", "users:write", "taxonomy:write"]);
    expect([...(tokens.get(ROOT) ?? [])]).toEqual(["*"]);
  });

  it("prints redacted: logging the config never shows a token", () => {
    const tokens = loadConfig({ ADMIN_TOKENS: `${READER}=users:read,${ROOT}=*` }).adminTokens;
    expect(String(tokens)).toBe("read...=users:read,root...=*");
    expect(JSON.stringify({ tokens })).toBe('{"tokens":"read...=users:read,root...=*"}');
  });

  it.each([
    [
      "a short token (15 characters)",
      "short-token-123=users:read",
      "short-token-123",
      /entry 1: token 'shor\.\.\.' must be at least 16/,
    ],
    [
      "a token with a character outside the set",
      `${READER},tok€n-with-euro-sign-0001=users:read`,
      "tok€n-with-euro-sign-0001",
      /entry 2: token 'tok€\.\.\.' must be at least 16 characters of/,
    ],
    [
      "an unknown scope",
      `${READER}=users:read|users:delete`,
      READER,
      /entry 1 \('read\.\.\.'\) has unknown scope 'users:delete' \(known: taxonomy:read, .*\*\)/,
    ],
    ["an empty scope", `${READER}=`, READER, /entry 1 \('read\.\.\.'\) has an empty scope/],
    [
      "a repeated token",
      `${READER}=users:read,${WRITER}=*,${READER}=taxonomy:read`,
      READER,
      /entry 3 repeats the token of entry 1 \('read\.\.\.'\)/,
    ],
    [
      "an entry without =",
      `${READER}=*,${WRITER}`,
      WRITER,
      /entry 2 \('writ\.\.\.'\) is not <token>=<scope>/,
    ],
    [
      "scope and token swapped",
      `users:read=${READER}`,
      READER,
      /entry 1: token 'user\.\.\.' must be at least 16/,
    ],
    [
      "a base64 token with padding",
      "YWRtaW4tdG9rZW4tMDAwMQ===users:read",
      "YWRtaW4tdG9rZW4tMDAwMQ==",
      /entry 1: token 'YWRt\.\.\.' must be/,
    ],
  ])("rejects %s, naming the entry without echoing the token", (_what, raw, token, message) => {
    const err = tokensError(raw);
    expect(err.problems[0]).toMatch(message);
    expect(err.message).not.toContain(token);
    expect(err.message).not.toContain(raw);
    expect(err.message).not.toContain("got '");
  });

  it("reports every bad entry at once, next to other variables' problems", () => {
    let err: ConfigError | undefined;
    try {
      loadConfig({ PORT: "x", ADMIN_TOKENS: `short=users:read,${READER}=nope,${WRITER}` });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err?.problems).toHaveLength(2);
    const tokens = err?.problems.find((p) => p.startsWith("ADMIN_TOKENS ")) ?? "";
    expect(tokens.split("; ")).toHaveLength(3);
    for (const t of [READER, WRITER]) expect(err?.message).not.toContain(t);
  });

  it("a swapped scope=token shows the misplaced token redacted too", () => {
    const { problems } = parseAdminTokens(`${READER}=${WRITER}`);
    expect(problems).toEqual([expect.stringContaining("unknown scope 'writ...'")]);
    expect(problems[0]).not.toContain(WRITER);
  });

  it("redacts to at most 4 characters and never to more than half of a short value", () => {
    expect(redactToken(READER)).toBe("read...");
    expect(redactToken("abcdef")).toBe("abc...");
    expect(redactToken("ab")).toBe("a...");
    expect(redactToken("a")).toBe("...");
  });
});

describe("ADMIN_BODY_LIMIT_BYTES", () => {
  it("defaults to 1 GiB and takes 1 KiB to 64 GiB", () => {
    expect(loadConfig({}).adminBodyLimitBytes).toBe(1_073_741_824);
    expect(loadConfig({ ADMIN_BODY_LIMIT_BYTES: "1024" }).adminBodyLimitBytes).toBe(1024);
    expect(loadConfig({ ADMIN_BODY_LIMIT_BYTES: String(64 * 1024 ** 3) }).adminBodyLimitBytes).toBe(
      68_719_476_736,
    );
    expect(() => loadConfig({ ADMIN_BODY_LIMIT_BYTES: "1023" })).toThrow(
      "ADMIN_BODY_LIMIT_BYTES must be at least 1024, got '1023'",
    );
    expect(() => loadConfig({ ADMIN_BODY_LIMIT_BYTES: String(64 * 1024 ** 3 + 1) })).toThrow(
      /ADMIN_BODY_LIMIT_BYTES must be at most 68719476736/,
    );
  });
});

describe("requireScope", () => {
  const tokens = loadConfig({
    ADMIN_TOKENS: `${READER}=taxonomy:read|users:read,${WRITER}=users:write,${ROOT}=*`,
  }).adminTokens;
  let calls = 0;
  const guarded = requireScope(tokens, "users:read", () => {
    calls++;
    return jsonAnswer(200, { ok: true });
  });
  const request = (authorization: string): HttpRequestData => adminRequest("GET", "x", authorization);
  const answer = (authorization: string): HttpAnswer => guarded(request(authorization)) as HttpAnswer;
  const code = (a: HttpAnswer): string => JSON.parse(String(a.body)).error.code;

  it.each([
    ["no Authorization header", ""],
    ["Basic credentials", "Basic cmVhZGVyOnNlY3JldA=="],
    ["Bearer without a token", "Bearer "],
    ["a garbled bearer value", `Bearer ${READER} extra`],
    ["an unknown token of a known token's length", `Bearer ${"x".repeat(READER.length)}`],
    ["an unknown token of another length", "Bearer unknown-token-000000000000000000000000000"],
    ["a known token's prefix", `Bearer ${READER.slice(0, -1)}`],
    ["a known token with a suffix", `Bearer ${READER}0`],
  ])("401 with WWW-Authenticate: Bearer for %s, without calling the handler", (_what, authorization) => {
    const before = calls;
    const a = answer(authorization);
    expect(a.status).toBe(401);
    expect(code(a)).toBe("AUD_ERR_UNAUTHORIZED");
    expect(a.headers).toEqual([["www-authenticate", "Bearer"]]);
    expect(calls).toBe(before);
  });

  it("403 for a known token without the scope", () => {
    const before = calls;
    const a = answer(`Bearer ${WRITER}`);
    expect(a.status).toBe(403);
    expect(code(a)).toBe("AUD_ERR_FORBIDDEN");
    expect(JSON.parse(String(a.body)).error.message).toContain("users:read");
    expect(calls).toBe(before);
  });

  it("runs the handler for a token with the scope, or with *; the scheme is case-insensitive", () => {
    for (const authorization of [
      `Bearer ${READER}`,
      `bearer ${READER}`,
      `Bearer ${ROOT}`,
      `BEARER  ${ROOT} `,
    ]) {
      const before = calls;
      expect(answer(authorization)).toEqual(jsonAnswer(200, { ok: true }));
      expect(calls).toBe(before + 1);
    }
  });

  it("answers 401 to everything while no tokens are configured", () => {
    const off = requireScope(loadConfig({}).adminTokens, "*", () => jsonAnswer(200, {}));
    for (const authorization of ["", `Bearer ${ROOT}`]) {
      expect((off(request(authorization)) as HttpAnswer).status).toBe(401);
    }
  });

  it("passes the handler's promise through", async () => {
    const asyncGuarded = requireScope(tokens, "users:write", async () => jsonAnswer(202, {}));
    expect((await asyncGuarded(request(`Bearer ${WRITER}`))).status).toBe(202);
  });

  it("refuses a scope that is not in the list (a typo in a route table)", () => {
    expect(() => requireScope(tokens, "user:read", () => jsonAnswer(200, {}))).toThrow(/unknown scope/);
  });
});

describe("refused admin requests are logged", () => {
  const tokens = loadConfig({ ADMIN_TOKENS: `${READER}=users:read,${WRITER}=users:write` }).adminTokens;
  const GUESS = "guessed-token-00000000000000001";

  function setup() {
    const lines: string[] = [];
    let now = 1_000_000;
    const failures = authFailureLog(
      createLogger("info", { write: (l: string) => void lines.push(l) }),
      () => now,
    );
    const guarded = requireScope(tokens, "users:read", () => jsonAnswer(200, {}), failures);
    const call = (authorization: string): number =>
      (guarded(adminRequest("DELETE", "someone", authorization)) as HttpAnswer).status;
    const logged = () =>
      lines.map((l) => {
        const { level, msg, route, method, status, reason, scope, token, suppressed } = JSON.parse(l);
        return { level, msg, route, method, status, reason, scope, token, suppressed };
      });
    return {
      lines,
      call,
      logged,
      tick: (ms: number) => {
        now += ms;
      },
    };
  }

  it("one warn line for each refusal, with route, method, reason and no token", () => {
    const { lines, call, logged } = setup();
    expect(call("")).toBe(401);
    expect(call(`Bearer ${GUESS}`)).toBe(401);
    expect(call(`Bearer ${WRITER}`)).toBe(403);
    expect(call(`Bearer ${READER}`)).toBe(200);
    const base = {
      level: 40,
      msg: "admin request refused",
      route: "/v1/admin/users/:type/:id",
      method: "DELETE",
    };
    expect(logged()).toEqual([
      { ...base, status: 401, reason: "no bearer token", scope: "users:read", token: null, suppressed: 0 },
      {
        ...base,
        status: 401,
        reason: "unknown token",
        scope: "users:read",
        token: idHashPrefix(GUESS),
        suppressed: 0,
      },
      {
        ...base,
        status: 403,
        reason: "scope missing",
        scope: "users:read",
        token: idHashPrefix(WRITER),
        suppressed: 0,
      },
    ]);
    const all = lines.join("\n");
    for (const secret of [GUESS, WRITER, READER, "someone"]) expect(all).not.toContain(secret);
  });

  it("at most one line per reason per second, the next one counting those left out", () => {
    const { call, logged, tick } = setup();
    for (let i = 0; i < 1_000; i++) expect(call(`Bearer ${GUESS}${i}`)).toBe(401);
    expect(call("")).toBe(401);
    expect(logged().map((l) => [l.reason, l.suppressed])).toEqual([
      ["unknown token", 0],
      ["no bearer token", 0],
    ]);
    tick(999);
    call(`Bearer ${GUESS}`);
    expect(logged()).toHaveLength(2);
    tick(1);
    call(`Bearer ${GUESS}`);
    expect(logged().map((l) => [l.reason, l.suppressed])).toEqual([
      ["unknown token", 0],
      ["no bearer token", 0],
      ["unknown token", 1_000],
    ]);
  });
});
