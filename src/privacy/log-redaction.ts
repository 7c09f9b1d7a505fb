// What may reach a log line about a person: never an ID in the clear, at most a short hash prefix that lets
// an operator match two lines without being able to read the ID back.
import { createHash } from "node:crypto";

/** 8 hex characters of SHA-256: enough to tell IDs apart in a log, too little to look one up. */
export function idHashPrefix(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 8);
}

const USER_PATH_RE = /^(\/v1\/admin\/users\/[^/]+\/)([^/?]+)/;
/** Redis keys carry the typed ID in their hash tag: p:{ifa:…}, fc:{bu:…}, im:{…}, nt:{…} */
const KEY_TAG_RE = /\{([^}]+)\}/g;

/** A request path fit for a log: the ID of /v1/admin/users/<type>/<id> hashed, the query dropped. */
export function redactPath(path: string): string {
  const noQuery = path.split("?", 1)[0] as string;
  return noQuery.replace(USER_PATH_RE, (_m, head: string, id: string) => `${head}#${idHashPrefix(id)}`);
}

/** A message fit for a log: every Redis key's ID hashed. */
export function redactMessage(message: string): string {
  return message.replace(KEY_TAG_RE, (_m, id: string) => `{#${idHashPrefix(id)}}`);
}

/** Anything with an `@` between two non-blank characters is taken for an e-mail address. */
const EMAIL_LIKE_RE = /[^\s@]@[^\s@]/;

/**
 * An input value quoted in a message (a CLI line, an API error, a row error), in quotes. Shown as it is only
 * when it has the shape the field expects (`expected`), so that an ordinary typo stays readable; otherwise
 * an e-mail as `<e-mail>` and anything else as `#` and a hash prefix: a value in the wrong column (swapped
 * columns, a file without a header) may be a person's ID, an e-mail address or a key.
 */
export function quotedInput(value: string, expected: RegExp): string {
  return value === "" || expected.test(value) ? `'${value}'` : redactedInput(value);
}

/** The same without the quotes, for lists of names (CSV columns, JSON keys). */
export function shownInput(value: string, expected: RegExp): string {
  return expected.test(value) ? value : redactedInput(value);
}

function redactedInput(value: string): string {
  return EMAIL_LIKE_RE.test(value) ? "<e-mail>" : `#${idHashPrefix(value)}`;
}
