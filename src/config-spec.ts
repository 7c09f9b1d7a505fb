// How an environment variable is declared and read: the helpers shared by config.ts and the spec fragments
// of other modules (privacy/privacy-config.ts), so every variable is parsed and reported the same way.
import { z } from "zod";

/** One environment variable: its parser (with default) and what it means. The README table is built from this. */
export interface VarSpec<T> {
  readonly env: string;
  readonly schema: z.ZodType<T, z.ZodTypeDef, unknown>;
  readonly doc: string;
  /** Shown in the reference; undefined means "unset". */
  readonly defaultText: string | undefined;
  /** Holds secrets: problems never echo the value. */
  readonly secret: boolean;
  /** How a value that may carry a secret in part (a password in a URL) is shown in problems and logs. */
  readonly redact?: (value: string) => string;
}

export function spec<T>(
  env: string,
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  doc: string,
  dflt?: string,
  secret = false,
): VarSpec<T> {
  return { env, schema, doc, defaultText: dflt, secret };
}

export const intIn = (min: number, max: number, dflt: number) =>
  z.coerce
    .number({ invalid_type_error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(dflt);

export const boolFlag = (dflt: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"], {
      errorMap: () => ({ message: "must be true or false" }),
    })
    .transform((v) => v === "true" || v === "1" || v === "yes")
    .default(dflt ? "true" : "false");

/**
 * Reads every variable of `specs` from `env`: the values that parsed, keyed as in `specs`, and one problem
 * line per variable that did not (naming it, echoing the value unless secret).
 */
export function parseVars(
  specs: Readonly<Record<string, VarSpec<unknown>>>,
  env: Readonly<Record<string, string | undefined>>,
): { values: Record<string, unknown>; problems: string[] } {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(specs)) {
    const raw = env[s.env];
    // A blank value means "unset" (so the default applies), except where blank is itself the default.
    const blank = raw !== undefined && raw.trim() === "";
    const result = s.schema.safeParse(blank && s.defaultText !== "" ? undefined : raw);
    if (result.success) values[key] = result.data;
    else {
      const shown = raw === undefined || s.redact === undefined ? raw : s.redact(raw);
      const got = s.secret ? "" : `, got '${shown}'`;
      let message = result.error.issues.map((i) => i.message).join("; ");
      // Our own parsers redact what they quote, but a library's message may quote the value it received.
      if (s.secret && raw !== undefined && raw.trim() !== "") message = message.replaceAll(raw.trim(), "***");
      problems.push(`${s.env} ${message}${got}`);
    }
  }
  return { values, problems };
}
