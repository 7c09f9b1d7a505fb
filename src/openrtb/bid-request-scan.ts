// Reads only the members a reader needs out of a JSON object body, without building the others: a bid
// request's imp, site, app, source, ext and most of user and device are most of its bytes, and JSON.parse of
// the whole body was the largest single cost of a cached lookup. One pass over the UTF-8 bytes validates every
// value it skips; the values it keeps are JSON.parse'd from their own byte ranges. Whenever the answer could
// differ from JSON.parse of the whole body it returns null, and the caller parses the whole body instead: any
// syntax error (so that the 400 carries V8's own message), a kept key given twice (JSON.parse keeps the
// last), an escape in a key, a top level that is not an object, nesting deeper than it tracks.
import { isAscii } from "node:buffer";
import type { Json } from "../json-fields.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Deepest nesting the skipper tracks. Real bid requests nest fewer than 10 levels; a deeper body is left
 * to JSON.parse, which is not recursive and accepts any depth.
 */
const MAX_SKIP_DEPTH = 256;

/** JSON whitespace (RFC 8259 §2): space, tab, line feed, carriage return; nothing else. */
function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function isHex(b: number): boolean {
  return (b >= ZERO && b <= NINE) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function skipSpace(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  while (i < n && isSpace(bytes[i] as number)) i++;
  return i;
}

/**
 * The end (index after the closing quote) of the string whose opening quote is at `i`, or -1 when it is
 * not valid JSON: unterminated, a raw control character, an unknown escape. Bytes from 0x80 up are taken
 * as they are: the body is decoded with replacement of invalid UTF-8, which JSON.parse then accepts in a
 * string, so no sequence of them can make the string invalid. Leaves in `escaped` whether it had an escape.
 */
let escaped = false;
/** Bytes a string's scan must stop at: the quote, the backslash, and raw control characters (1); others 0. */
const STRING_STOP = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) STRING_STOP[b] = 1;
STRING_STOP[QUOTE] = 1;
STRING_STOP[BACKSLASH] = 1;
function skipString(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  escaped = false;
  i++;
  while (i < n) {
    // Most bytes of a string are none of the three: one table load each.
    let b = bytes[i] as number;
    while (STRING_STOP[b] === 0) {
      if (++i === n) return -1;
      b = bytes[i] as number;
    }
    if (b === QUOTE) return i + 1;
    if (b < 0x20) return -1;
    escaped = true;
    const e = bytes[i + 1];
    if (e === 0x75) {
      // \uXXXX: exactly four hex digits (a lone surrogate is valid JSON).
      if (
        !isHex(bytes[i + 2] ?? 0) ||
        !isHex(bytes[i + 3] ?? 0) ||
        !isHex(bytes[i + 4] ?? 0) ||
        !isHex(bytes[i + 5] ?? 0)
      )
        return -1;
      i += 6;
      continue;
    }
    // \" \\ \/ \b \f \n \r \t
    if (
      e !== QUOTE &&
      e !== BACKSLASH &&
      e !== 0x2f &&
      e !== 0x62 &&
      e !== 0x66 &&
      e !== 0x6e &&
      e !== 0x72 &&
      e !== 0x74
    )
      return -1;
    i += 2;
  }
  return -1;
}

function skipDigits(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < ZERO || b > NINE) break;
    i++;
  }
  return i;
}

/** The end of the number at `i` (RFC 8259 §6: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), or -1. */
function skipNumber(bytes: Uint8Array, i: number): number {
  if (bytes[i] === MINUS) i++;
  const first = bytes[i];
  if (first === ZERO) i++;
  else if (first !== undefined && first > ZERO && first <= NINE) i = skipDigits(bytes, i + 1);
  else return -1;
  if (bytes[i] === DOT) {
    const j = skipDigits(bytes, i + 1);
    if (j === i + 1) return -1;
    i = j;
  }
  const e = bytes[i];
  if (e === 0x65 || e === 0x45) {
    i++;
    const s = bytes[i];
    if (s === PLUS || s === MINUS) i++;
    const j = skipDigits(bytes, i);
    if (j === i) return -1;
    i = j;
  }
  return i;
}

/** The end of the literal `word` (true, false, null) at `i`, or -1. */
function skipWord(bytes: Uint8Array, i: number, word: Uint8Array): number {
  for (let k = 0; k < word.length; k++) if (bytes[i + k] !== word[k]) return -1;
  return i + word.length;
}

const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
const NULL = Buffer.from("null");

/** What each open container of the skipper is: the bracket that closes it. */
const openers = new Uint8Array(MAX_SKIP_DEPTH);

/**
 * The end of the JSON value that starts at `i` (no leading whitespace), or -1 when it is not valid JSON or
 * nests deeper than MAX_SKIP_DEPTH. Iterative, with its own stack: a hostile body cannot overflow the
 * call stack.
 */
function skipValue(bytes: Uint8Array, i: number): number {
  let depth = 0;
  for (;;) {
    // At a value.
    const b = bytes[i];
    if (b === QUOTE) i = skipString(bytes, i);
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      const close = b === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
      i = skipSpace(bytes, i + 1);
      if (bytes[i] === close) i++;
      else {
        if (depth === MAX_SKIP_DEPTH) return -1;
        openers[depth++] = close;
        if (close === CLOSE_BRACE) {
          i = objectKey(bytes, i);
          if (i < 0) return -1;
        }
        continue;
      }
    } else if (b === 0x74) i = skipWord(bytes, i, TRUE);
    else if (b === 0x66) i = skipWord(bytes, i, FALSE);
    else if (b === 0x6e) i = skipWord(bytes, i, NULL);
    else i = skipNumber(bytes, i);
    if (i < 0) return -1;
    // After a value: close what is closed, then either the next value or the end.
    for (;;) {
      if (depth === 0) return i;
      i = skipSpace(bytes, i);
      const c = bytes[i];
      const close = openers[depth - 1] as number;
      if (c === close) {
        depth--;
        i++;
        continue;
      }
      if (c !== COMMA) return -1;
      i = skipSpace(bytes, i + 1);
      if (close === CLOSE_BRACE) {
        i = objectKey(bytes, i);
        if (i < 0) return -1;
      }
      break;
    }
  }
}

/** From a member's key at `i`: the start of its value (after the colon and whitespace), or -1. */
function objectKey(bytes: Uint8Array, i: number): number {
  if (bytes[i] !== QUOTE) return -1;
  i = skipString(bytes, i);
  if (i < 0) return -1;
  i = skipSpace(bytes, i);
  if (bytes[i] !== COLON) return -1;
  return skipSpace(bytes, i + 1);
}

/**
 * Which members of an object a reader builds: `true` builds the value in full (JSON.parse of its own
 * bytes); `"length"` builds an array as an array of as many empty slots (its length is right, its elements
 * are not built); a nested spec builds an object value with only the members it names; `each(spec)` builds
 * an array whose object elements are built with only the members `spec` names (other elements in full). A
 * value of another type than the spec expects (an array where a nested spec is, a string where "length" is)
 * is built in full, so that whoever reads it sees the wrong type JSON.parse would have given.
 */
export interface MemberSpec {
  readonly [name: string]: true | "length" | MemberSpec | Each;
}

/** An array whose object elements are read with `spec` (see MemberSpec). */
export class Each {
  constructor(readonly spec: MemberSpec) {}
}

export function each(spec: MemberSpec): Each {
  return new Each(spec);
}

/** Reads the members a spec names out of a JSON object body; null means "parse the whole body instead". */
export type ObjectReader = (bytes: Buffer) => Json | null;

/** A spec compiled once: member names as bytes, what to do with each. */
interface Node {
  readonly keys: readonly string[];
  readonly names: readonly Buffer[];
  /** Per key length, the members of that length: a key is compared with those only. */
  readonly byLength: readonly (readonly number[])[];
  /** `true`, "length", the child node of a nested spec, or of an `each` (its elements' node). */
  readonly kinds: readonly Kind[];
}

type Kind = true | "length" | Node | EachNode;

interface EachNode {
  readonly element: Node;
}

function compile(spec: MemberSpec): Node {
  const keys = Object.keys(spec);
  for (const name of keys) {
    if (!/^[\x20-\x7e]+$/.test(name) || name.includes('"') || name.includes("\\"))
      throw new Error(`member name must be printable ASCII without quote or backslash: ${name}`);
    // readObject tells a member seen from one not seen by `out[key] !== undefined`.
    if (name in {}) throw new Error(`member name must not be one of Object.prototype's: ${name}`);
  }
  const byLength: number[][] = [];
  keys.forEach((k, i) => {
    while (byLength.length <= k.length) byLength.push([]);
    (byLength[k.length] as number[]).push(i);
  });
  return {
    keys,
    names: keys.map((k) => Buffer.from(k, "latin1")),
    byLength,
    kinds: keys.map((k): Kind => {
      const v = spec[k] as true | "length" | MemberSpec | Each;
      if (v === true || v === "length") return v;
      return v instanceof Each ? { element: compile(v.spec) } : compile(v);
    }),
  };
}

/** Which member of `node` the key between `s` and `e` (exclusive, no quotes, no escapes) names; -1: none. */
function memberOf(node: Node, bytes: Uint8Array, s: number, e: number): number {
  const len = e - s;
  const same = node.byLength[len];
  if (same === undefined) return -1;
  for (let c = 0; c < same.length; c++) {
    const k = same[c] as number;
    const nb = node.names[k] as Buffer;
    let j = 0;
    while (j < len && bytes[s + j] === nb[j]) j++;
    if (j === len) return k;
  }
  return -1;
}

/** The end of the array at `i`, its element count left in `counted`; -1 when invalid. */
let counted = 0;
function countArray(bytes: Uint8Array, i: number): number {
  let count = 0;
  i = skipSpace(bytes, i + 1);
  if (bytes[i] === CLOSE_BRACKET) {
    counted = 0;
    return i + 1;
  }
  for (;;) {
    i = skipValue(bytes, i);
    if (i < 0) return -1;
    count++;
    i = skipSpace(bytes, i);
    const c = bytes[i];
    if (c === CLOSE_BRACKET) break;
    if (c !== COMMA) return -1;
    i = skipSpace(bytes, i + 1);
  }
  counted = count;
  return i + 1;
}

/** The body decoded, when it is all ASCII (byte offsets are then character offsets); null otherwise. */
let ascii: string | null = null;

/**
 * The value of the valid JSON between bytes `s` and `e`. Both ends border on ASCII bytes (the value's own
 * first and last, and the whitespace or punctuation around it), and UTF-8 decoding never lets an invalid
 * sequence swallow an ASCII byte, so decoding just these bytes gives the same text as the same stretch of
 * the whole body decoded. A string without escapes is a slice of the decoded text and a literal its value:
 * each JSON.parse call has a fixed cost, and most kept values are such leaves.
 */
function valueAt(bytes: Buffer, s: number, e: number): unknown {
  const b = bytes[s];
  if (b === 0x74) return true;
  if (b === 0x66) return false;
  if (b === 0x6e) return null;
  const text = ascii;
  // skipValue has just run over this value: `escaped` is about it when it is a string.
  if (b === QUOTE && !escaped)
    return text !== null ? text.slice(s + 1, e - 1) : bytes.toString("utf8", s + 1, e - 1);
  // A number skipNumber has checked is valid JSON, and Number() reads JSON's number grammar to the same
  // double (the ECMAScript StringToNumber of a StrDecimalLiteral). A non-ASCII body still has an ASCII number.
  if (b === MINUS || (b !== undefined && b >= ZERO && b <= NINE))
    return Number(text !== null ? text.slice(s, e) : bytes.toString("latin1", s, e));
  const v = JSON.parse(text !== null ? text.slice(s, e) : bytes.toString("utf8", s, e)) as object;
  ends?.set(v, e - 1);
  return v;
}

/**
 * While a positioned reader runs: the offset of the closing brace or bracket of every object and array it
 * built (of a kept value's own, not of what is inside one built in full), so that a writer can insert there.
 */
let ends: Map<object, number> | null = null;

/**
 * Reads the array at `i` (its opening bracket), each object element with `node`, other elements in full:
 * its end, the array left in `built`; -1 when invalid or unsure.
 */
function readEach(bytes: Buffer, i: number, node: Node): number {
  const out: unknown[] = [];
  i = skipSpace(bytes, i + 1);
  if (bytes[i] !== CLOSE_BRACKET) {
    for (;;) {
      if (bytes[i] === OPEN_BRACE) {
        i = readObject(bytes, i, node);
        if (i < 0) return -1;
        out.push(built);
      } else {
        const start = i;
        i = skipValue(bytes, i);
        if (i < 0) return -1;
        out.push(valueAt(bytes, start, i));
      }
      i = skipSpace(bytes, i);
      const c = bytes[i];
      if (c === CLOSE_BRACKET) break;
      if (c !== COMMA) return -1;
      i = skipSpace(bytes, i + 1);
    }
  }
  ends?.set(out, i);
  built = out as unknown as Json;
  return i + 1;
}

/**
 * Reads the object at `i` (its opening brace) keeping the members `node` names: its end, the object left in
 * `built`; -1 when invalid or unsure (a kept key twice, an escaped key). Recursion is bounded by the spec's
 * depth, not the body's.
 */
let built: Json = {};
function readObject(bytes: Buffer, i: number, node: Node): number {
  const out: Json = {};
  i = skipSpace(bytes, i + 1);
  if (bytes[i] === CLOSE_BRACE) {
    ends?.set(out, i);
    built = out;
    return i + 1;
  }
  for (;;) {
    if (bytes[i] !== QUOTE) return -1;
    const keyStart = i + 1;
    let j = keyStart;
    // A key with an escape could spell a kept name another way: left to JSON.parse.
    for (;;) {
      const b = bytes[j];
      if (b === undefined || b === BACKSLASH || b < 0x20) return -1;
      if (b === QUOTE) break;
      j++;
    }
    const k = memberOf(node, bytes, keyStart, j);
    i = skipSpace(bytes, j + 1);
    if (bytes[i] !== COLON) return -1;
    i = skipSpace(bytes, i + 1);
    if (k < 0) i = skipValue(bytes, i);
    else {
      const key = node.keys[k] as string;
      // A kept member given twice: JSON.parse keeps the last; not worth a second path. (No JSON value is
      // undefined, so undefined means not seen yet.)
      if (out[key] !== undefined) return -1;
      const kind = node.kinds[k] as Kind;
      const b = bytes[i];
      if (kind === "length" && b === OPEN_BRACKET) {
        i = countArray(bytes, i);
        if (i >= 0) out[key] = new Array(counted);
      } else if (kind !== true && kind !== "length" && "element" in kind) {
        if (b === OPEN_BRACKET) {
          i = readEach(bytes, i, kind.element);
          if (i >= 0) out[key] = built;
        } else {
          const start = i;
          i = skipValue(bytes, i);
          if (i >= 0) out[key] = valueAt(bytes, start, i);
        }
      } else if (kind !== true && kind !== "length" && b === OPEN_BRACE) {
        i = readObject(bytes, i, kind);
        if (i >= 0) out[key] = built;
      } else {
        const start = i;
        i = skipValue(bytes, i);
        if (i >= 0) out[key] = valueAt(bytes, start, i);
      }
    }
    if (i < 0) return -1;
    i = skipSpace(bytes, i);
    const c = bytes[i];
    if (c === CLOSE_BRACE) {
      ends?.set(out, i);
      built = out;
      return i + 1;
    }
    if (c !== COMMA) return -1;
    i = skipSpace(bytes, i + 1);
  }
}

/** A reader of the members `spec` names out of a body that must be a JSON object (compiled once). */
export function createObjectReader(spec: MemberSpec): ObjectReader {
  const root = compile(spec);
  return function readMembers(bytes: Buffer): Json | null {
    const i = skipSpace(bytes, 0);
    if (bytes[i] !== OPEN_BRACE) return null;
    // Most bodies are ASCII: one decoding, then every kept value is a slice of it.
    ascii = isAscii(bytes) ? bytes.toString("latin1") : null;
    const end = readObject(bytes, i, root);
    ascii = null;
    if (end < 0 || skipSpace(bytes, end) !== bytes.length) return null;
    return built;
  };
}

/** What a positioned reader gives: the members, and where each object and array it built closes. */
export interface PositionedRead {
  readonly body: Json;
  /** Byte offset of the closing brace or bracket of each object and array of `body` built from the spec. */
  readonly ends: ReadonlyMap<object, number>;
}

/**
 * A reader like createObjectReader's that also tells where each object and array it built closes in the
 * bytes, for a writer that inserts into the body instead of writing it again. Null: parse the whole body.
 */
export function createPositionedReader(spec: MemberSpec): (bytes: Buffer) => PositionedRead | null {
  const read = createObjectReader(spec);
  return (bytes) => {
    const map = new Map<object, number>();
    ends = map;
    try {
      const body = read(bytes);
      return body === null ? null : { body, ends: map };
    } finally {
      ends = null;
    }
  };
}
