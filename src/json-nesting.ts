// How deeply a JSON text nests, checked on the raw bytes before it is parsed: a body of 20,000 brackets
// parses, but then overflows the stack of whatever walks it recursively (JSON.stringify of an enriched
// request), which would answer 500. Refused with a 400 before any work instead.
import { ApiError } from "./errors.ts";

/**
 * Deepest nesting of objects and arrays a request body may have. Real bid requests nest fewer than 10
 * levels (BidRequest > imp > native > request > assets > ...), admin bodies fewer still; 64 leaves room
 * for any ext a partner adds, far below what overflows a recursive walk (thousands).
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether `bytes` (UTF-8 JSON) opens more than `max` objects or arrays inside one another. One pass, O(n)
 * in the bytes with no allocation: brackets inside strings do not count (a backslash skips the byte it
 * escapes, so `"\""` does not end a string), and UTF-8 continuation bytes are never ASCII, so they cannot
 * pass for a bracket or a quote. Malformed JSON is left to the parser to report.
 */
export function jsonNestingExceeds(bytes: Uint8Array, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i] as number;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}

/** Throws the 400 (AUD_ERR_BAD_JSON, naming `field`) for a body nested deeper than MAX_JSON_DEPTH. */
export function refuseDeepJson(bytes: Uint8Array, field: string): void {
  if (jsonNestingExceeds(bytes)) {
    throw new ApiError("AUD_ERR_BAD_JSON", `body is nested deeper than ${MAX_JSON_DEPTH} levels`, field);
  }
}
